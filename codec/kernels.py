"""CPU inference kernels for the high-rate layers: tap-wise matrix-product convolution, ELU.

A small codec spends most of its time in the layers at or near the audio rate, where a conv has
few channels and many samples. There oneDNN's convolution and torch's ELU are far from memory
speed on one CPU thread; the forms here give the same values (to float rounding) 1.5-3.5x faster.
They are used only where they win: on CPU, outside autograd (training keeps torch's kernels).
"""

from __future__ import annotations

import torch
from torch import Tensor

TAPS_MAX_IN_CHANNELS = 64  # wider convs run at lower rates, where oneDNN is as fast or faster


def cpu_inference(x: Tensor) -> bool:
    """Whether `x` is on the CPU with autograd off (`torch.no_grad` or `inference_mode`)."""
    return x.device.type == "cpu" and not torch.is_grad_enabled()


def use_taps(x: Tensor, in_channels: int, kernel_size: int, stride: int) -> bool:
    """Whether `conv1d_by_taps` should run a conv of this shape on `x`.

    The rule depends on the layer, not on the input length, so streaming and offline coding use
    the same kernel.
    """
    shape_fits = stride == 1 and kernel_size > 1 and 1 < in_channels <= TAPS_MAX_IN_CHANNELS
    return shape_fits and cpu_inference(x)


def conv1d_by_taps(x: Tensor, weight: Tensor, bias: Tensor | None, dilation: int = 1) -> Tensor:
    """`F.conv1d(x, weight, bias, dilation=dilation)` (stride 1, no padding) as one matrix
    product per kernel tap, accumulated in place: `[B, C_in, T] -> [B, C_out, T - (k-1) d]`."""
    kernel = weight.shape[-1]
    frames = x.shape[-1] - (kernel - 1) * dilation
    taps = weight.permute(2, 0, 1).contiguous()  # [k, C_out, C_in]
    out = x.new_empty(x.shape[0], weight.shape[0], frames)
    for batch in range(x.shape[0]):
        rows = out[batch]
        if bias is None:
            torch.mm(taps[0], x[batch, :, :frames], out=rows)
        else:
            torch.addmm(bias[:, None], taps[0], x[batch, :, :frames], out=rows)
        for tap in range(1, kernel):
            start = tap * dilation
            rows.addmm_(taps[tap], x[batch, :, start : start + frames])
    return out


def elu(x: Tensor) -> Tensor:
    """ELU with alpha 1, `[...] -> [...]`; in CPU inference computed as `max(x, exp(min(x, 0)) - 1)`
    (equal to it up to float rounding, 1.5x faster than torch's ELU kernel)."""
    if not cpu_inference(x):
        return torch.nn.functional.elu(x)
    return torch.maximum(x, torch.clamp(x, max=0).exp_().sub_(1))

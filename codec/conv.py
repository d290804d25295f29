"""Causal convolutions that stream: `StreamingConv1d` and `StreamingConvTranspose1d`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from codec.kernels import conv1d_by_taps, use_taps
from codec.streaming import StreamingModule


def set_weight_norm(conv: nn.Module, enabled: bool) -> None:
    """Add or remove the weight-norm parametrisation of `conv.weight`; the function is kept.

    Grad mode is forced on: under `no_grad`, torch would leave a plain tensor, not a parameter.
    """
    has_norm = parametrize.is_parametrized(conv, "weight")
    with torch.enable_grad():
        if enabled and not has_norm:
            weight_norm(conv)
        elif not enabled and has_norm:
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)


def folded_state_dict(module: nn.Module) -> dict[str, Tensor]:
    """`module.state_dict()` with each weight-norm pair replaced by the plain `weight` it gives."""
    state = module.state_dict()
    for name, child in module.named_modules():
        if parametrize.is_parametrized(child, "weight"):
            prefix = f"{name}.parametrizations.weight.original"
            del state[prefix + "0"], state[prefix + "1"]
            state[f"{name}.weight"] = child.weight.detach().clone()
    return state


@dataclass
class ConvState:
    """Input samples not consumed yet, left context included: `[B, C_in, n]`."""

    pending: Tensor


class StreamingConv1d(StreamingModule[ConvState]):
    """Causal 1-D convolution: `[B, C_in, T] -> [B, C_out, T // stride]`.

    Offline, the input is left-padded with `(kernel - 1) * dilation + 1 - stride` zeros, so
    output frame `j` sees input samples up to `(j + 1) * stride - 1`. Streaming, any chunk length
    is accepted; samples that do not complete a window wait in the state.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        norm: bool = True,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels, out_channels, kernel_size, stride, dilation=dilation, groups=groups
        )
        self.stride = stride
        self.receptive_field = (kernel_size - 1) * dilation + 1
        if self.receptive_field < stride:
            raise ValueError(
                f"kernel {kernel_size} with dilation {dilation} skips input at stride {stride}"
            )
        self.left_context = self.receptive_field - stride
        set_weight_norm(self.conv, norm)

    def init_state(self, batch_size: int) -> ConvState:
        weight = self.conv.weight
        zeros = weight.new_zeros(batch_size, self.conv.in_channels, self.left_context)
        return ConvState(pending=zeros)

    def forward(self, x: Tensor) -> Tensor:
        """`x`: `[B, C_in, T]` -> `[B, C_out, frames]`."""
        state = self.state
        if state is None:
            return self._convolve(F.pad(x, (self.left_context, 0)))
        x = torch.cat([state.pending, x], dim=-1)
        frames = max(0, (x.shape[-1] - self.receptive_field) // self.stride + 1)
        state.pending = x[..., frames * self.stride :].clone()  # frees the chunk at once
        if frames == 0:
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0)
        used = (frames - 1) * self.stride + self.receptive_field
        return self._convolve(x[..., :used])

    def _convolve(self, x: Tensor) -> Tensor:
        """The unpadded convolution of `x` (already holding its left context)."""
        conv = self.conv
        if conv.groups == 1 and use_taps(x, conv.in_channels, conv.kernel_size[0], self.stride):
            return conv1d_by_taps(x, conv.weight, conv.bias, conv.dilation[0])
        return conv(x)


@dataclass
class ConvTransposeState:
    """Overlap-add tail of the last chunk, bias excluded: `[B, C_out, kernel - stride]`."""

    tail: Tensor


class StreamingConvTranspose1d(StreamingModule[ConvTransposeState]):
    """Causal transposed convolution: `[B, C_in, frames] -> [B, C_out, frames * stride]`.

    The `kernel - stride` samples that overlap the next frame are trimmed offline and carried in
    the state while streaming, so frame `j` yields output samples `[j * stride, (j + 1) * stride)`.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, norm: bool = True
    ) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel {kernel_size} is shorter than stride {stride}")
        self.convtr = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride)
        self.stride = stride
        self.overlap = kernel_size - stride
        set_weight_norm(self.convtr, norm)

    def init_state(self, batch_size: int) -> ConvTransposeState:
        weight = self.convtr.weight
        return ConvTransposeState(
            tail=weight.new_zeros(batch_size, self.convtr.out_channels, self.overlap)
        )

    def forward(self, x: Tensor) -> Tensor:
        """`x`: `[B, C_in, frames]` -> `[B, C_out, frames * stride]`."""
        state = self.state
        if state is None:
            y = self.convtr(x)
            return y[..., : y.shape[-1] - self.overlap]
        n_out = x.shape[-1] * self.stride
        if n_out == 0:
            return x.new_zeros(x.shape[0], self.convtr.out_channels, 0)
        y = F.conv_transpose1d(x, self.convtr.weight, None, self.stride)
        y[..., : self.overlap] += state.tail
        state.tail = y[..., n_out:].clone()
        return y[..., :n_out] + self.convtr.bias[:, None]

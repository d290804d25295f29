"""CPU inference kernels: the same values as torch's kernels, used only where they should be."""

import pytest
import torch
import torch.nn.functional as F

from codec.conv import StreamingConv1d
from codec.kernels import conv1d_by_taps, elu, use_taps


@pytest.mark.parametrize(
    ("batch", "c_in", "c_out", "kernel", "dilation", "bias"),
    [
        (1, 16, 8, 3, 1, True),
        (2, 16, 8, 3, 9, True),
        (1, 16, 1, 7, 1, True),
        (3, 5, 4, 2, 3, False),
    ],
)
def test_conv1d_by_taps_matches_torch(batch, c_in, c_out, kernel, dilation, bias):
    torch.manual_seed(0)
    x = torch.randn(batch, c_in, 500)
    weight = torch.randn(c_out, c_in, kernel)
    b = torch.randn(c_out) if bias else None
    expected = F.conv1d(x, weight, b, dilation=dilation)
    assert torch.allclose(conv1d_by_taps(x, weight, b, dilation), expected, atol=1e-5)


def test_conv1d_by_taps_reads_a_sliced_input():
    """Streaming hands it a view cut from a longer buffer."""
    x = torch.randn(2, 6, 300)[..., :250]
    weight = torch.randn(3, 6, 3)
    expected = F.conv1d(x.contiguous(), weight, None, dilation=2)
    assert torch.allclose(conv1d_by_taps(x, weight, None, 2), expected, atol=1e-5)


def test_taps_only_for_narrow_stride_one_convs_in_cpu_inference():
    x = torch.randn(1, 16, 10)
    with torch.no_grad():
        assert use_taps(x, 16, 3, 1)
        assert not use_taps(x, 16, 3, 2)  # strided: oneDNN
        assert not use_taps(x, 16, 1, 1)  # pointwise: one product already
        assert not use_taps(x, 1, 7, 1)  # a single input channel
        assert not use_taps(x, 256, 3, 1)  # wide, low-rate layers: oneDNN
    assert not use_taps(x, 16, 3, 1)  # autograd on: training keeps torch's kernels


def test_streaming_conv_gives_the_same_in_inference_and_training():
    torch.manual_seed(0)
    conv = StreamingConv1d(16, 8, 3, dilation=3)
    x = torch.randn(2, 16, 400)
    trained_path = conv(x).detach()
    with torch.inference_mode():
        inference_path = conv(x)
    assert torch.allclose(inference_path, trained_path, atol=1e-5)


def test_elu_matches_torch_and_keeps_its_gradient():
    x = torch.linspace(-20, 20, 4001).view(1, 1, -1)
    with torch.no_grad():
        assert torch.allclose(elu(x), F.elu(x), atol=1e-6, rtol=0)
    x.requires_grad_(True)
    elu(x).sum().backward()
    assert torch.allclose(x.grad, torch.where(x > 0, 1.0, torch.exp(x)).detach(), atol=1e-6)

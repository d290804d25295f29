"""Streaming convolutions give the offline output for any chunking."""

import numpy as np
import pytest
import torch
from helpers import random_chunk_sizes, run_chunked

from codec.conv import StreamingConv1d, StreamingConvTranspose1d


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation"),
    [(7, 1, 1), (3, 1, 9), (1, 1, 1), (4, 2, 1), (10, 5, 1), (16, 8, 1), (5, 3, 2)],
)
def test_conv1d_streaming_matches_offline(kernel, stride, dilation):
    torch.manual_seed(0)
    conv = StreamingConv1d(3, 5, kernel, stride, dilation)
    x = torch.randn(2, 3, 1003)
    rng = np.random.default_rng(kernel * 100 + stride)
    with torch.no_grad():
        offline = conv(x)
        with conv.streaming(batch_size=2):
            streamed = run_chunked(conv, x, random_chunk_sizes(1003, rng, max_size=97))
    assert offline.shape == (2, 5, 1003 // stride)
    assert streamed.shape == offline.shape
    assert (streamed - offline).abs().max() <= 1e-5


def test_conv1d_is_causal():
    conv = StreamingConv1d(1, 1, 8, stride=4)
    x = torch.randn(1, 1, 64)
    y = x.clone()
    y[..., 40:] = 0  # change the future from sample 40 on
    with torch.no_grad():
        a, b = conv(x), conv(y)
    # frame j sees samples up to 4j + 3: frames 0..9 see only samples < 40
    assert torch.equal(a[..., :10], b[..., :10])
    assert not torch.equal(a[..., 10:], b[..., 10:])


def test_conv1d_short_chunk_returns_empty_then_catches_up():
    conv = StreamingConv1d(2, 3, 8, stride=4)
    with torch.no_grad(), conv.streaming(batch_size=1):
        assert conv(torch.randn(1, 2, 3)).shape == (1, 3, 0)
        assert conv(torch.randn(1, 2, 1)).shape == (1, 3, 1)


@pytest.mark.parametrize(("kernel", "stride"), [(4, 2), (10, 5), (16, 8), (8, 2), (3, 1)])
def test_conv_transpose_streaming_matches_offline(kernel, stride):
    torch.manual_seed(1)
    conv = StreamingConvTranspose1d(4, 3, kernel, stride)
    x = torch.randn(2, 4, 57)
    rng = np.random.default_rng(kernel)
    with torch.no_grad():
        offline = conv(x)
        with conv.streaming(batch_size=2):
            streamed = run_chunked(conv, x, random_chunk_sizes(57, rng, max_size=9))
    assert offline.shape == (2, 3, 57 * stride)
    assert streamed.shape == offline.shape
    assert (streamed - offline).abs().max() <= 1e-5


def test_streaming_state_keeps_only_the_context_not_the_chunk():
    """A state that were a view of the chunk would pin every layer's whole input in memory."""
    conv = StreamingConv1d(2, 2, 7)
    convtr = StreamingConvTranspose1d(2, 2, 8, 4)
    with torch.no_grad(), conv.streaming(batch_size=1), convtr.streaming(batch_size=1):
        conv(torch.randn(1, 2, 5000))
        convtr(torch.randn(1, 2, 1000))
        for kept in (conv.state.pending, convtr.state.tail):
            assert kept.untyped_storage().nbytes() == kept.numel() * kept.element_size()


def test_state_is_fresh_for_each_stream_and_cleared_after():
    conv = StreamingConv1d(1, 1, 5)
    x = torch.randn(1, 1, 20)
    with torch.no_grad():
        with conv.streaming(batch_size=1):
            first = conv(x)
            assert conv.is_streaming and conv.state is not None
        assert not conv.is_streaming and conv.state is None
        with conv.streaming(batch_size=1):
            second = conv(x)
    assert torch.equal(first, second)


def test_nested_streaming_is_refused():
    conv = StreamingConv1d(1, 1, 3)
    with (
        conv.streaming(1),
        pytest.raises(RuntimeError, match="already streaming"),
        conv.streaming(1),
    ):
        pass


@pytest.mark.parametrize(
    "layer", [StreamingConv1d(2, 3, 4, 2), StreamingConvTranspose1d(2, 3, 4, 2)]
)
def test_removing_weight_norm_keeps_the_function(layer):
    from codec.conv import set_weight_norm

    inner = layer.conv if isinstance(layer, StreamingConv1d) else layer.convtr
    with torch.no_grad():
        inner.parametrizations.weight.original0.mul_(1.7)  # a trained-looking gain
        x = torch.randn(1, 2, 30)
        before = layer(x)
        set_weight_norm(inner, False)
        assert "weight" in dict(inner.named_parameters())
        after = layer(x)
    assert (before - after).abs().max() <= 1e-6


def test_kernel_shorter_than_stride_is_refused():
    with pytest.raises(ValueError, match="skips input"):
        StreamingConv1d(1, 1, 2, stride=4)

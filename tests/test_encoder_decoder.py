"""The whole SEANet encoder and decoder stream exactly like offline."""

import numpy as np
import pytest
import torch
from helpers import random_chunk_sizes, run_chunked

from codec.config import ModelConfig
from codec.decoder import SEANetDecoder
from codec.encoder import SEANetEncoder


def small_config(act: str) -> ModelConfig:
    return ModelConfig(channels=4, latent_dim=8, activation=act, dilations=[1, 3, 9])


@pytest.mark.parametrize("act", ["elu", "snake"])
def test_encoder_streaming_matches_offline(act):
    torch.manual_seed(0)
    encoder = SEANetEncoder(small_config(act))
    wav = torch.randn(2, 1, 320 * 7 + 123)
    sizes = random_chunk_sizes(wav.shape[-1], np.random.default_rng(0), max_size=700)
    with torch.no_grad():
        offline = encoder(wav)
        with encoder.streaming(batch_size=2):
            streamed = run_chunked(encoder, wav, sizes)
    assert offline.shape == (2, 8, 7)
    assert streamed.shape == offline.shape
    assert (streamed - offline).abs().max() <= 1e-5


@pytest.mark.parametrize("act", ["elu", "snake"])
def test_decoder_streaming_matches_offline(act):
    torch.manual_seed(0)
    decoder = SEANetDecoder(small_config(act))
    latent = torch.randn(2, 8, 11)
    sizes = random_chunk_sizes(11, np.random.default_rng(1), max_size=4)
    with torch.no_grad():
        offline = decoder(latent)
        with decoder.streaming(batch_size=2):
            streamed = run_chunked(decoder, latent, sizes)
    assert offline.shape == (2, 1, 11 * 320)
    assert streamed.shape == offline.shape
    assert (streamed - offline).abs().max() <= 1e-5


def test_encoder_is_causal():
    encoder = SEANetEncoder(small_config("elu"))
    wav = torch.randn(1, 1, 320 * 6)
    changed = wav.clone()
    changed[..., 320 * 4 :] = 0
    with torch.no_grad():
        a, b = encoder(wav), encoder(changed)
    assert torch.equal(a[..., :4], b[..., :4])
    assert not torch.equal(a[..., 4:], b[..., 4:])


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        SEANetEncoder(small_config("relu"))

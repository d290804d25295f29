"""Token usage statistics on known distributions."""

import math

import pytest
import torch

from codec.eval.usage import code_usage, stage_usage


def test_uniform_use_of_every_code():
    usage = code_usage(torch.arange(16).repeat(10), 16)
    assert usage.utilisation == 1.0
    assert usage.entropy_bits == pytest.approx(4.0)
    assert usage.perplexity == pytest.approx(16.0)
    assert usage.perplexity_ratio == pytest.approx(1.0)


def test_a_single_code():
    usage = code_usage(torch.full((50,), 3), 8)
    assert usage.utilisation == 1 / 8
    assert usage.entropy_bits == 0.0
    assert usage.perplexity == 1.0


def test_skewed_distribution():
    codes = torch.tensor([0] * 3 + [1])  # p = 3/4, 1/4
    usage = code_usage(codes, 4)
    expected = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert usage.entropy_bits == pytest.approx(expected)
    assert usage.utilisation == 0.5


def test_codes_outside_the_alphabet_are_refused():
    with pytest.raises(ValueError, match="outside an alphabet of 4"):
        code_usage(torch.tensor([0, 4]), 4)


def test_per_stage_usage_of_a_code_tensor():
    codes = torch.stack([torch.arange(8).repeat(4), torch.zeros(32, dtype=torch.long)])[None]
    first, second = stage_usage(codes, [8, 1000])
    assert first.perplexity == pytest.approx(8.0) and first.utilisation == 1.0
    assert second.perplexity == 1.0 and second.perplexity_ratio == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="3 stages"):
        stage_usage(torch.zeros(1, 3, 4, dtype=torch.long), [8, 8])

"""FSQ and FSP: exact codes, the FSP perturbation law, entropy on uniform latents."""

import math

import pytest
import torch

from codec.eval.usage import code_usage
from codec.quantizers import FSP, FSQ
from codec.quantizers.scalar import CDFS

LEVELS = [8, 5, 5, 3]


def unscale(q, out):
    """Stage output -> value in [0, 1]."""
    return out / 2 + 0.5 if isinstance(q, FSQ) else out / math.sqrt(12) + 0.5


def pre_activation(z):
    """The tanh pre-activation that gives `z` in (0, 1)."""
    return torch.atanh((2 * z - 1).clamp(-1 + 1e-7, 1 - 1e-7))


@pytest.mark.parametrize("cls", [FSQ, FSP])
def test_every_code_round_trips_exactly(cls):
    q = cls(LEVELS).eval()
    codes = torch.arange(q.codebook_size).view(1, -1)
    latent = q.decode(codes)
    assert latent.shape == (1, len(LEVELS), q.codebook_size)
    assert torch.equal(q.encode(pre_activation(unscale(q, latent))), codes)


@pytest.mark.parametrize("cls", [FSQ, FSP])
@pytest.mark.parametrize("activation", sorted(CDFS))
def test_codes_in_range_and_eval_matches_decode(cls, activation):
    torch.manual_seed(0)
    q = cls(LEVELS, activation).eval()
    a = 3 * torch.randn(4, len(LEVELS), 200)
    result = q(a)
    assert result.codes.dtype == torch.int64
    assert result.codes.shape == (4, 200)
    assert int(result.codes.min()) >= 0 and int(result.codes.max()) < q.codebook_size
    assert torch.equal(result.codes, q.encode(a))
    assert torch.allclose(result.z, q.decode(result.codes), atol=1e-6)


def test_fsp_eval_is_deterministic_bin_centre_quantization():
    q = FSP([4]).eval()
    a = torch.randn(2, 1, 500)
    first, second = q(a).z, q(a).z
    assert torch.equal(first, second)
    z = CDFS["tanh"][0](a)
    centres = (torch.floor(4 * z) + 0.5) / 4
    assert torch.allclose(unscale(q, first), centres, atol=1e-6)


def test_fsp_perturbation_stays_within_half_a_bin_and_inside_the_support():
    torch.manual_seed(0)
    levels = [8, 5, 5, 3]
    q = FSP(levels, quantize_rate=0.0).train()
    # include saturated latents (z near 0 and 1), where proposals fall outside and are rejected
    a = torch.cat(
        [torch.randn(8, 4, 500), torch.full((1, 4, 500), 6.0), torch.full((1, 4, 500), -6.0)]
    )
    z = CDFS["tanh"][0](a)
    value = unscale(q, q(a).z)
    half_bin = 1 / (2 * torch.tensor(levels, dtype=torch.float32).view(1, -1, 1))
    offset = value - z
    assert (offset.abs() <= half_bin + 1e-6).all()
    assert ((value > 0) & (value < 1)).all()
    # a real perturbation: away from the ends, offsets are uniform on [-half_bin, half_bin]
    middle = (z > 0.4) & (z < 0.6)
    inner = (offset / half_bin)[middle]
    assert inner.abs().mean() == pytest.approx(0.5, abs=0.03)
    assert inner.mean() == pytest.approx(0.0, abs=0.03)


def test_fsp_rejected_proposals_leave_the_latent_unchanged():
    torch.manual_seed(0)
    q = FSP([4], quantize_rate=0.0).train()
    a = torch.full((1, 1, 4000), 8.0)  # z = 1 - 1e-7: every upward proposal leaves (0, 1)
    z = CDFS["tanh"][0](a)
    value = unscale(q, q(a).z)
    unchanged = (value - z).abs() < 1e-7
    assert 0.4 < unchanged.float().mean() < 0.6  # about half the proposals point upward
    assert (value[~unchanged] < z[~unchanged]).all()


@pytest.mark.parametrize(("rate", "share"), [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)])
def test_fsp_quantize_rate_sets_the_share_of_quantized_elements(rate, share):
    torch.manual_seed(0)
    q = FSP([8], quantize_rate=rate)
    a = torch.randn(4, 1, 5000)
    centres = q.eval()(a).z
    trained = q.train()(a).z
    equal = (trained - centres).abs() < 1e-6
    assert equal.float().mean().item() == pytest.approx(share, abs=0.02)


def test_codes_in_training_come_from_clean_levels():
    q = FSP(LEVELS, quantize_rate=0.0)
    a = torch.randn(2, 4, 300)
    assert torch.equal(q.train()(a).codes, q.encode(a))


@pytest.mark.parametrize("cls", [FSQ, FSP])
def test_straight_through_gradient_reaches_the_input(cls):
    a = torch.randn(2, 4, 50, requires_grad=True)
    q = cls(LEVELS).train()
    q(a).z.sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_fsp_code_entropy_on_uniform_latents_beats_fsq():
    torch.manual_seed(0)
    levels = 4
    z = torch.rand(1, 1, 400_000).clamp(1e-6, 1 - 1e-6)
    a = pre_activation(z)
    fsp = code_usage(FSP([levels]).encode(a), levels).entropy_bits
    fsq = code_usage(FSQ([levels]).encode(a), levels).entropy_bits
    assert fsp == pytest.approx(math.log2(levels), abs=0.005)
    assert fsq == pytest.approx(math.log2(levels - 1) + 1 / (levels - 1), abs=0.005)
    assert fsp > fsq + 0.05


def test_fsp_norm_loss_is_small_for_matched_and_large_for_shifted_latents():
    torch.manual_seed(0)
    q = FSP([8, 8])
    u = torch.rand(4, 2, 20000).clamp(1e-6, 1 - 1e-6)
    matched = pre_activation(u)  # the logistic law that tanh squashes to uniform
    assert q.losses(matched)["norm"] < 1e-3
    shifted = (2 * matched + 1).requires_grad_()
    loss = q.losses(shifted)["norm"]
    assert loss > 0.1
    loss.backward()
    assert shifted.grad.abs().sum() > 0
    assert FSP([8, 8], norm_loss=False).losses(matched) == {}


def test_stats_report_usage():
    q = FSP([4, 4]).eval()
    stats = q(torch.randn(2, 2, 1000)).stats
    assert set(stats) == {"perplexity", "utilisation"}
    assert 1 <= stats["perplexity"] <= 16
    assert 0 < stats["utilisation"] <= 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="at least 2 levels"):
        FSP([4, 1])
    with pytest.raises(ValueError, match="quantize_rate"):
        FSP([4], quantize_rate=1.5)
    with pytest.raises(ValueError, match="unknown activation"):
        FSQ([4], activation="cauchy")


def test_fsq_and_fsp_alphabet():
    q = FSP([8, 5, 5, 5])
    assert q.codebook_size == 1000
    assert q.bits_per_code == pytest.approx(math.log2(1000))

"""The residual stack: stage-by-stage coding of residuals, quantizer dropout, n_stages."""

import pytest
import torch

from codec.config import QuantizerConfig
from codec.quantizers import build_quantizer


def trained_stack(kind: str, n_stages: int = 4, steps: int = 300) -> torch.nn.Module:
    """A stack fitted by a few hundred Adam steps to reconstruct Gaussian latents."""
    torch.manual_seed(0)
    cfg = QuantizerConfig(kind=kind, n_stages=n_stages, levels=[5, 5, 5], dropout=0.5)
    rq = build_quantizer(cfg, latent_dim=6)
    opt = torch.optim.Adam(rq.parameters(), lr=1e-2)
    for _ in range(steps):
        x = torch.randn(16, 6, 32)
        result = rq(x)
        loss = (result.z - x).pow(2).mean() + sum(result.losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return rq.eval()


@pytest.mark.parametrize("kind", ["fsp", "fsq"])
def test_error_falls_as_stages_are_added(kind):
    rq = trained_stack(kind)
    x = torch.randn(8, 6, 64)
    with torch.no_grad():
        errors = [(rq.decode(rq.encode(x, n)) - x).pow(2).mean().item() for n in range(1, 5)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 0.5 * errors[0]


def test_encode_returns_codes_per_stage_and_decode_uses_the_prefix():
    rq = build_quantizer(QuantizerConfig(n_stages=3, levels=[4, 4]), latent_dim=5).eval()
    x = torch.randn(2, 5, 9)
    codes = rq.encode(x)
    assert codes.shape == (2, 3, 9) and codes.dtype == torch.int64
    assert torch.equal(rq.encode(x, n_stages=2), codes[:, :2])
    full, first = rq.decode(codes), rq.decode(codes[:, :1])
    assert torch.allclose(first, rq.stages[0].decode(codes[:, 0]))
    assert not torch.allclose(full, first)
    with pytest.raises(ValueError, match="between 1 and 3"):
        rq.encode(x, n_stages=4)


def test_eval_forward_agrees_with_encode():
    rq = build_quantizer(QuantizerConfig(n_stages=3, levels=[4, 4]), latent_dim=5).eval()
    x = torch.randn(2, 5, 40)
    result = rq(x)
    assert torch.equal(result.codes, rq.encode(x))
    assert torch.allclose(result.z, rq.decode(result.codes), atol=1e-5)


def test_quantizer_dropout_trains_prefixes_of_random_length():
    torch.manual_seed(0)
    cfg = QuantizerConfig(kind="fsq", n_stages=4, levels=[4, 4], dropout=1.0)
    rq = build_quantizer(cfg, latent_dim=3)
    x = torch.randn(1, 3, 10).expand(64, 3, 10).contiguous()
    with torch.no_grad():
        prefixes = [rq.eval().decode(rq.encode(x[:1], n)) for n in range(1, 5)]
        trained = rq.train()(x).z  # FSQ adds no noise: each example is one of the prefixes
    used = set()
    for example in trained:
        matches = [n for n, p in enumerate(prefixes, 1) if torch.allclose(example, p[0], atol=1e-5)]
        assert len(matches) == 1
        used.add(matches[0])
    assert used == {1, 2, 3, 4}


def test_no_dropout_in_eval_and_losses_summed_over_stages():
    cfg = QuantizerConfig(kind="fsp", n_stages=3, levels=[4, 4], dropout=1.0)
    rq = build_quantizer(cfg, latent_dim=4)
    x = torch.randn(2, 4, 20)
    result = rq.eval()(x)
    assert torch.allclose(result.z, rq.decode(rq.encode(x)), atol=1e-5)
    per_stage, residual = [], x
    for stage in rq.stages:
        out = stage(residual)
        per_stage.append(out.losses["norm"])
        residual = residual - out.z
    assert torch.allclose(result.losses["norm"], sum(per_stage))
    assert {"stage0/perplexity", "stage2/utilisation"} <= set(result.stats)


def test_the_refine_loss_is_the_mean_residual_energy_and_training_on_it_shrinks_it():
    torch.manual_seed(0)
    cfg = QuantizerConfig(n_stages=3, levels=[5, 5, 5], dropout=0.0, refine_loss=True)
    rq = build_quantizer(cfg, latent_dim=6)
    x = torch.randn(16, 6, 32)
    result = rq(x)
    energies = [result.stats[f"stage{i}/residual_energy"] for i in range(3)]
    assert result.losses["refine"].item() == pytest.approx(sum(energies) / 3, rel=1e-5)
    assert "refine" not in build_quantizer(QuantizerConfig(n_stages=3), latent_dim=6)(x).losses
    opt = torch.optim.Adam(rq.parameters(), lr=1e-2)
    for _ in range(100):
        loss = rq(x).losses["refine"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = [rq(x).stats[f"stage{i}/residual_energy"] for i in range(3)]
    assert after[-1] < after[0] < 1.0 and after[-1] < 0.5 * energies[-1]  # each stage refines

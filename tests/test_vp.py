"""VP: radius, proposals, MH acceptance, queue, codebook compilation, eta calibration."""

import pytest
import torch

from codec.quantizers import VectorPerturbation, estimate_eta
from codec.quantizers.vp import log_acceptance, sample_in_ball


def stage(**kwargs) -> VectorPerturbation:
    torch.manual_seed(0)
    options = {"dim": 2, "codebook_size": 64, "cluster_size_rate": 4.0, "eta": 1.2} | kwargs
    return VectorPerturbation(**options)


def test_queue_size_and_start():
    vp = stage()
    assert vp.cell_size == 8 and vp.queue.shape == (64 * 8, 2)
    assert vp.queue.mean().abs() < 0.2 and (vp.queue.std() - 1).abs() < 0.1  # N(0, I)


def test_radius_grows_where_samples_are_sparse():
    vp = stage()
    vp.neighbours.update(vp.queue)
    x = torch.tensor([[0.0, 0.0], [2.5, 2.5]])
    _, _, radius = vp.perturbation(x)
    assert radius[1] > 3 * radius[0]


def test_proposals_are_uniform_in_the_ball():
    torch.manual_seed(0)
    radius = torch.full((40000,), 2.0)
    step = sample_in_ball(radius, 3)
    length = step.norm(dim=1)
    assert (length <= 2.0 + 1e-6).all()
    # uniform in a 3-ball: P(|u| < r/2) = 1/8, and every direction equally likely
    assert (length < 1.0).float().mean() == pytest.approx(1 / 8, abs=0.01)
    assert step.mean(0).abs().max() < 0.03


def test_acceptance_is_a_probability_and_one_for_equal_densities():
    torch.manual_seed(0)
    at_z, at_p = torch.rand(1000, 2) + 0.01, torch.rand(1000, 2) + 0.01
    alpha = log_acceptance(at_z, at_p, dim=4).exp()
    assert ((alpha >= 0) & (alpha <= 1)).all()
    assert (alpha < 1).any()
    assert torch.equal(log_acceptance(at_z, at_z, dim=4), torch.zeros(1000))


def test_acceptance_in_a_uniform_density_is_high():
    vp = stage(eta=1.0)
    vp.queue.copy_(torch.rand_like(vp.queue) * 20 - 10)
    vp.neighbours.update(vp.queue)
    _, accepted, _ = vp.perturbation(torch.rand(4000, 2) * 4 - 2)
    gaussian = stage(eta=1.0)
    gaussian.neighbours.update(gaussian.queue)
    _, accepted_tail, _ = gaussian.perturbation(torch.randn(4000, 2) * 2.5)
    assert accepted.float().mean() > 0.65
    assert accepted.float().mean() > accepted_tail.float().mean() + 0.05


class FixedDistances:
    """Stand-in kNN: distances `at_z` for the first query (z), `at_p` for the second (z')."""

    def __init__(self, at_z, at_p):
        self.answers = [at_z, at_p]

    def update(self, samples):
        pass

    def __call__(self, x):
        return self.answers.pop(0).expand(x.shape[0], 2)


def test_reverse_radius_rule_rejects_moves_that_could_not_be_undone():
    vp = stage(eta=1.0)
    x = torch.randn(500, 2)
    # equal density (alpha = 1) but a tiny radius at z': |z' - z| > R(z') for nearly every move
    vp.neighbours = FixedDistances(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1e-3]]))
    offset, accepted, _ = vp.perturbation(x)
    assert accepted.float().mean() < 0.01
    assert torch.equal(offset[~accepted], torch.zeros_like(offset[~accepted]))
    vp.neighbours = FixedDistances(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1.0]]))
    offset, accepted, _ = vp.perturbation(x)
    assert accepted.all() and (offset.norm(dim=1) <= 1.0 + 1e-6).all()


def test_without_mh_every_proposal_is_taken():
    vp = stage(mh_accept=False).train()
    z = torch.randn(2, 2, 300)
    out = vp(z)
    assert out.stats["acceptance"] == 1.0
    assert (out.z - z).abs().sum(1).gt(0).all()


def test_training_moves_rejected_vectors_not_and_keeps_identity_gradient():
    vp = stage().train()
    z = torch.randn(2, 2, 300, requires_grad=True)
    out = vp(z)
    moved = (out.z - z).abs().sum(1) > 0
    assert 0.3 < moved.float().mean() < 0.95  # some accepted, some rejected
    assert torch.equal(out.codes, torch.zeros(2, 300, dtype=torch.long))
    out.z.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))
    assert "norm" in out.losses and out.losses["norm"] >= 0


def test_queue_turns_over_in_about_turnover_steps():
    vp = stage(turnover_steps=10).train()
    start = vp.queue.clone()

    def replaced() -> float:
        return (vp.queue != start).all(1).float().mean().item()

    for _ in range(5):
        vp(torch.full((4, 2, 64), 7.0))  # 256 vectors a step into 512 slots
    assert 0.4 < replaced() < 0.6  # FIFO: half the slots after half the turnover
    for _ in range(5):
        vp(torch.full((4, 2, 64), 7.0))
    assert replaced() > 0.85
    assert (vp.queue[(vp.queue != start).all(1)] == 7.0).all()


def test_uncompiled_stage_refuses_to_encode():
    vp = stage().eval()
    with pytest.raises(RuntimeError, match="compile_codebooks"):
        vp.encode(torch.randn(1, 2, 5))
    with pytest.raises(RuntimeError, match="codec compile"):
        vp(torch.randn(1, 2, 5))


def test_compiled_codebook_has_k_distinct_entries_even_for_little_data():
    vp = stage()
    vp.compile(torch.randn(10, 2))
    assert vp.compiled
    assert torch.unique(vp.codebook, dim=0).shape[0] == 64


def test_eval_codes_are_deterministic_nearest_entries():
    vp = stage()
    vp.compile(torch.randn(2000, 2))
    vp.eval()
    z = torch.randn(3, 2, 100)
    first, second = vp(z), vp(z)
    assert torch.equal(first.codes, second.codes) and torch.equal(first.codes, vp.encode(z))
    distances = torch.cdist(z.transpose(1, 2).reshape(-1, 2), vp.codebook)
    assert torch.equal(first.codes.flatten(), distances.argmin(1))
    assert torch.allclose(first.z, vp.decode(first.codes))
    assert first.stats["utilisation"] > 0.5


def test_estimate_eta_matches_perturbation_to_quantization_error():
    estimate = estimate_eta(dim=2, codebook_size=64, iterations=3)
    assert estimate.perturbation == pytest.approx(estimate.quantization_error, rel=0.05)
    assert estimate.eta > 1.0  # eta = 1 under-perturbs
    assert 0.3 < estimate.acceptance < 1.0

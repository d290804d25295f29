"""VQ baseline: k-means initialisation, EMA updates, dead-code restart, commitment loss."""

import pytest
import torch
import torch.nn.functional as F

from codec.quantizers import VectorQuantizer


def clustered(n: int, centres: torch.Tensor) -> torch.Tensor:
    """`[1, d, n]` points around `centres` `[k, d]`."""
    pick = torch.randint(centres.shape[0], (n,))
    return (centres[pick] + 0.05 * torch.randn(n, centres.shape[1])).T[None]


def test_first_training_batch_initialises_by_kmeans():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 4).train()
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    assert not vq.initialized
    vq(clustered(400, centres))
    assert vq.initialized
    nearest_centre = torch.cdist(vq.codebook, centres).min(1).values
    assert (nearest_centre < 0.2).all()
    assert torch.unique(torch.cdist(vq.codebook, centres).argmin(1)).numel() == 4


def test_ema_moves_the_codebook_towards_its_vectors():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 1, decay=0.5).train()
    vq(torch.zeros(1, 2, 10))  # initialise at the origin
    for _ in range(20):
        vq(torch.full((1, 2, 10), 2.0))
    assert torch.allclose(vq.codebook, torch.full((1, 2), 2.0), atol=1e-3)


def test_dead_codes_are_restarted_on_batch_vectors():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 8).train()
    data = torch.randn(1, 2, 200)
    vq(data)
    vq.codebook[:3] = 100.0  # three codes far from the data, unused for a long time
    vq.embed_sum[:3] = 0.0
    vq.cluster_size[:3] = 0.0
    out = vq(data)
    assert out.stats["dead_codes"] >= 3
    rows = data[0].T
    for code in range(3):
        assert (vq.codebook[code] == rows).all(1).any()


def test_commitment_loss_and_straight_through_gradient():
    torch.manual_seed(0)
    vq = VectorQuantizer(3, 16, commitment=0.25)
    vq.train()(torch.randn(2, 3, 50))  # initialise
    z = torch.randn(2, 3, 50, requires_grad=True)
    out = vq.eval()(z)
    quantized = vq.decode(out.codes)
    assert torch.allclose(out.losses["commitment"], 0.25 * F.mse_loss(z, quantized))
    assert torch.allclose(out.z, quantized, atol=1e-6)
    out.z.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))


def test_eval_leaves_the_codebook_alone_and_codes_deterministically():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 8)
    vq.train()(torch.randn(1, 2, 100))
    before = vq.codebook.clone()
    vq.eval()
    z = torch.randn(1, 2, 100)
    assert torch.equal(vq(z).codes, vq(z).codes)
    assert torch.equal(vq.codebook, before)
    assert vq(z).codes.max() < 8


@pytest.mark.parametrize("n", [3, 400])
def test_small_first_batches_still_give_a_full_codebook(n):
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 16).train()
    vq(torch.randn(1, 2, n))
    assert torch.isfinite(vq.codebook).all()
    assert torch.unique(vq.codebook, dim=0).shape[0] == 16

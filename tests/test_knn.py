"""kNN distances: the KD-tree and the brute-force (GPU) path agree with a full sort."""

import pytest
import torch

from codec.quantizers.knn import NeighbourDistances


def test_tree_and_brute_force_agree_with_sorted_distances():
    torch.manual_seed(0)
    samples, queries = torch.randn(3000, 4), torch.randn(500, 4)
    index = NeighbourDistances(ranks=(8, 16))
    index.update(samples)
    expected = torch.cdist(queries, samples).sort(dim=1).values[:, [7, 15]]
    assert torch.allclose(index(queries), expected, atol=1e-5)
    assert torch.allclose(index._brute_force(queries), expected, atol=1e-5)


def test_tree_is_rebuilt_only_every_n_updates():
    index = NeighbourDistances(ranks=(1,), rebuild_every=3)
    old = torch.zeros(10, 2)
    index.update(old)
    index.update(torch.ones(10, 2))  # not yet rebuilt: still answers from the old snapshot
    assert index(torch.zeros(1, 2)).item() == 0.0
    index.update(torch.ones(10, 2))
    index.update(torch.ones(10, 2))  # third update since the build: rebuilt
    assert index(torch.zeros(1, 2)).item() == pytest.approx(2**0.5)
    index.invalidate()
    index.update(old)
    assert index(torch.zeros(1, 2)).item() == 0.0


def test_query_before_update_is_an_error():
    with pytest.raises(RuntimeError, match="update"):
        NeighbourDistances(ranks=(1,))(torch.zeros(1, 2))

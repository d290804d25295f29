"""k-means: finds separated clusters, reseeds empty clusters, nearest assignment."""

import torch

from codec.quantizers.kmeans import _reseed_empty, kmeans, nearest


def test_finds_well_separated_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    x = torch.cat([c + 0.1 * torch.randn(300, 2) for c in centres])
    found = kmeans(x, 3)
    assert torch.cdist(found, centres).min(0).values.max() < 0.05


def test_nearest_matches_cdist():
    torch.manual_seed(0)
    x, c = torch.randn(1000, 4), torch.randn(37, 4)
    index, d2 = nearest(x, c)
    full = torch.cdist(x, c)
    assert torch.equal(index, full.argmin(1))
    assert torch.allclose(d2, full.min(1).values.pow(2), atol=1e-4)


def test_empty_clusters_split_the_largest():
    centroids = torch.tensor([[0.0, 0.0], [1.0, 1.0], [9.0, 9.0]])
    counts = torch.tensor([10, 0, 4])
    _reseed_empty(centroids, counts, torch.Generator().manual_seed(0))
    assert (counts > 0).all() and counts.sum() == 14
    assert (centroids[1] - torch.tensor([0.0, 0.0])).norm() < 0.01  # now beside the largest
    assert not torch.equal(centroids[0], centroids[1])


def test_codebook_entries_are_distinct_with_many_duplicates():
    torch.manual_seed(0)
    x = torch.cat([torch.zeros(500, 2), torch.randn(40, 2)])
    found = kmeans(x, 32)
    assert torch.unique(found, dim=0).shape[0] == 32

"""k-means for codebooks: k-means++ seeding, Lloyd iterations, empty clusters re-seeded."""

from __future__ import annotations

import torch
from torch import Tensor

_CHUNK = 16384  # rows per distance block: bounds memory at _CHUNK * K floats


def nearest(x: Tensor, centroids: Tensor) -> tuple[Tensor, Tensor]:
    """For rows `x` `[N, d]`: index `[N]` and squared distance `[N]` of the nearest centroid."""
    indices, distances = [], []
    c_norm = centroids.pow(2).sum(1)
    for block in x.split(_CHUNK):
        d2 = block.pow(2).sum(1, keepdim=True) - 2 * block @ centroids.T + c_norm
        value, index = d2.min(dim=1)
        indices.append(index)
        distances.append(value.clamp_min(0))
    return torch.cat(indices), torch.cat(distances)


def kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """`k` seeds from rows of `x`, each drawn with probability proportional to its squared
    distance to the seeds so far (Arthur & Vassilvitskii 2007)."""
    first = torch.randint(x.shape[0], (1,), generator=generator, device=x.device)
    seeds = [x[first]]
    d2 = (x - seeds[0]).pow(2).sum(1)
    for _ in range(1, k):
        weights = d2 if d2.sum() > 0 else torch.ones_like(d2)
        pick = torch.multinomial(weights, 1, generator=generator)
        seeds.append(x[pick])
        d2 = torch.minimum(d2, (x - x[pick]).pow(2).sum(1))
    return torch.cat(seeds)


def _reseed_empty(centroids: Tensor, counts: Tensor, generator: torch.Generator) -> None:
    """Move each empty cluster next to the largest one, splitting it in two."""
    for empty in torch.nonzero(counts == 0).flatten().tolist():
        largest = int(counts.argmax())
        jitter = 1e-3 * torch.randn(
            centroids.shape[1], generator=generator, device=centroids.device
        )
        centroids[empty] = centroids[largest] + jitter
        centroids[largest] -= jitter
        counts[empty] = counts[largest] // 2
        counts[largest] -= counts[empty]


def kmeans(x: Tensor, k: int, max_iters: int = 100, tol: float = 1e-5, seed: int = 0) -> Tensor:
    """Centroids `[k, d]` of rows `x` `[N, d]` (needs `N >= k`).

    Stops when no centroid moves by more than `tol` times the data's standard deviation.
    """
    if x.shape[0] < k:
        raise ValueError(f"k-means needs at least {k} vectors, got {x.shape[0]}")
    x = x.float()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    centroids = kmeans_plus_plus(x, k, generator)
    scale = x.std().item() or 1.0
    for _ in range(max_iters):
        index, _ = nearest(x, centroids)
        counts = torch.bincount(index, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, index, x)
        updated = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
        _reseed_empty(updated, counts, generator)
        shift = (updated - centroids).norm(dim=1).max().item()
        centroids = updated
        if shift <= tol * scale:
            break
    return centroids

"""Exact k-nearest-neighbour distances against a sample set: KD-tree on CPU, brute force on GPU."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

_CHUNK = 4096  # query rows per brute-force block


class NeighbourDistances:
    """Distances from query points to their `ranks`-th nearest samples (1-based ranks).

    On CPU the samples are indexed in a KD-tree that `update` rebuilds only every
    `rebuild_every` calls: the samples change slowly, and a query is then exact against that
    snapshot. On GPU every query is a chunked brute-force search of the current samples.
    """

    def __init__(self, ranks: tuple[int, ...], rebuild_every: int = 10) -> None:
        self.ranks = ranks
        self.rebuild_every = rebuild_every
        self._tree: cKDTree | None = None
        self._age = 0
        self._samples: Tensor | None = None

    def update(self, samples: Tensor) -> None:
        """Point the index at `samples` `[S, d]` (rebuilding the CPU tree when it is due)."""
        self._samples = samples
        if samples.is_cuda:
            return
        if self._tree is None or self._age >= self.rebuild_every:
            self._tree = cKDTree(samples.detach().double().numpy())
            self._age = 0
        self._age += 1

    def invalidate(self) -> None:
        """Force a rebuild at the next `update` (after the samples were replaced)."""
        self._tree = None

    def __call__(self, x: Tensor) -> Tensor:
        """`x` `[N, d]` -> distances `[N, len(ranks)]`, one column per rank."""
        if self._samples is None:
            raise RuntimeError("call update(samples) before querying")
        if x.is_cuda:
            return self._brute_force(x)
        distances, _ = self._tree.query(x.detach().double().numpy(), k=list(self.ranks), workers=-1)
        return torch.from_numpy(np.asarray(distances, dtype=np.float32)).to(x.device)

    def _brute_force(self, x: Tensor) -> Tensor:
        top = max(self.ranks)
        columns = torch.tensor(self.ranks, device=x.device) - 1
        out = []
        for block in x.detach().float().split(_CHUNK):
            d = torch.cdist(block, self._samples.float())
            nearest = d.topk(top, dim=1, largest=False).values
            out.append(nearest[:, columns])
        return torch.cat(out)

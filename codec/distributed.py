"""Thin helpers over torch.distributed that do the right thing in a single process too."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite `tensor` in place with rank `src`'s copy (no-op in one process)."""
    if is_distributed():
        dist.broadcast(tensor, src)
    return tensor


def all_reduce_sum_(tensor: Tensor) -> Tensor:
    """Sum `tensor` in place over ranks (no-op in one process)."""
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor


def all_gather_rows(x: Tensor) -> Tensor:
    """Concatenate `[n_r, d]` rows from every rank, in rank order; `n_r` may differ by rank."""
    if not is_distributed():
        return x
    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(world_size())]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    padded = x.new_zeros(longest, *x.shape[1:])
    padded[: x.shape[0]] = x
    gathered = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(c.item())] for g, c in zip(gathered, counts, strict=True)])

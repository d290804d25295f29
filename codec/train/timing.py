"""Where a training step's time goes: wall-clock seconds per phase, summed over steps."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class PhaseTimer:
    """`with timer("forward"): ...` adds the block's wall-clock time to `totals["forward"]`.

    On CUDA the device is synchronised at each boundary, so a phase's kernels count in that
    phase and not in the next; that costs throughput, so a disabled timer (the trainer's
    default) does nothing at all.
    """

    def __init__(self, device: torch.device, enabled: bool = False) -> None:
        self.device, self.enabled = device, enabled
        self.totals: dict[str, float] = defaultdict(float)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.totals[phase] += time.perf_counter() - start

    def reset(self) -> None:
        self.totals.clear()

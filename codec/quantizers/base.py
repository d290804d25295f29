"""The contract every quantizer keeps, and the result it returns."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from torch import Tensor, nn

from codec.eval.usage import code_usage


@dataclass
class QuantizedResult:
    """What a quantizer returns in `forward`.

    `z`: the quantized (training: perturbed) latent, straight-through gradient, same shape as
    the input. `codes`: int64, `[B, frames]` for one stage, `[B, n_q, frames]` for a stack.
    `losses`: auxiliary losses to add to the training objective. `stats`: floats to log.
    """

    z: Tensor
    codes: Tensor
    losses: dict[str, Tensor] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)


class Quantizer(nn.Module, ABC):
    """One stage: latent `[B, d, frames]` <-> codes `[B, frames]` from an alphabet of
    `codebook_size`."""

    dim: int
    codebook_size: int
    report_stats: bool = True  # False skips `stats` (which wait on the device) in `forward`

    @property
    def bits_per_code(self) -> float:
        return math.log2(self.codebook_size)

    @property
    def digit_radices(self) -> list[int]:
        """A code as digits, first least significant (entropy coding's contexts): one here."""
        return [self.codebook_size]

    @abstractmethod
    def forward(self, z: Tensor) -> QuantizedResult:
        """`z`: `[B, d, frames]` -> the quantized latent (training: its stand-in), codes, losses."""

    @abstractmethod
    def encode(self, z: Tensor) -> Tensor:
        """`z`: `[B, d, frames]` -> codes `[B, frames]` (int64)."""

    @abstractmethod
    def decode(self, codes: Tensor) -> Tensor:
        """codes `[B, frames]` -> quantized latent `[B, d, frames]`."""

    def usage_stats(self, codes: Tensor) -> dict[str, float]:
        """Perplexity and utilisation of `codes` in this stage's alphabet (none when
        `report_stats` is off)."""
        if not self.report_stats:
            return {}
        usage = code_usage(codes, self.codebook_size)
        return {"perplexity": usage.perplexity, "utilisation": usage.utilisation}

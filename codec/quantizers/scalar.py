"""What FSQ and FSP share: a CDF squashing to (0, 1) per dimension, and mixed-radix codes."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable

import torch
from torch import Tensor

from codec.quantizers.base import QuantizedResult, Quantizer

# name -> (CDF g mapping R to (0, 1), variance of the distribution whose CDF is g)
CDFS: dict[str, tuple[Callable[[Tensor], Tensor], float]] = {
    "tanh": (lambda a: (torch.tanh(a) + 1) / 2, math.pi**2 / 12),
    "sigmoid": (torch.sigmoid, math.pi**2 / 3),
    "normal": (lambda a: (1 + torch.erf(a / math.sqrt(2))) / 2, 1.0),
    "laplace": (lambda a: 0.5 + 0.5 * torch.sign(a) * -torch.expm1(-a.abs()), 2.0),
}


class ScalarQuantizer(Quantizer):
    """Per dimension `i`: `z_i = g(a_i)` in (0, 1), quantized to one of `levels[i]` values.

    Codes are mixed radix, first dimension least significant:
    `code = sum_i l_i * prod_{j<i} levels[j]`. Arithmetic is fp32 whatever the input dtype.
    Subclasses define the grid (`index`, `value`), the output scaling and the training value.
    """

    def __init__(self, levels: list[int], activation: str = "tanh") -> None:
        super().__init__()
        if activation not in CDFS:
            raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(CDFS)}")
        if any(n < 2 for n in levels):
            raise ValueError(f"every dimension needs at least 2 levels, got {levels}")
        self.squash, self.activation_variance = CDFS[activation]
        self.dim = len(levels)
        self.codebook_size = math.prod(levels)
        self.level_counts = list(levels)
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        self.register_buffer("levels", torch.tensor(levels).view(-1, 1), persistent=False)
        self.register_buffer("basis", torch.tensor(basis).view(-1, 1), persistent=False)

    @property
    def digit_radices(self) -> list[int]:
        """A code's digits are its levels, first dimension least significant."""
        return self.level_counts

    @abstractmethod
    def index(self, z: Tensor) -> Tensor:
        """`z` in (0, 1), `[B, d, T]` -> integer level `[B, d, T]` in `[0, levels)`."""

    @abstractmethod
    def value(self, level: Tensor) -> Tensor:
        """Integer level `[B, d, T]` -> reconstruction point in [0, 1]."""

    @abstractmethod
    def scale(self, value: Tensor) -> Tensor:
        """Map a value in [0, 1] to the stage output (zero mean, about unit scale)."""

    def training_value(self, z: Tensor, quantized: Tensor) -> Tensor:
        """The value passed on in training; default: straight-through quantization."""
        return quantized

    def losses(self, a: Tensor) -> dict[str, Tensor]:
        """Auxiliary losses on the pre-activation `a`; none by default."""
        return {}

    def levels_to_codes(self, level: Tensor) -> Tensor:
        """`[B, d, T]` levels -> `[B, T]` int64 codes."""
        return (level.long() * self.basis).sum(dim=1)

    def codes_to_levels(self, codes: Tensor) -> Tensor:
        """`[B, T]` codes -> `[B, d, T]` levels."""
        return torch.div(codes.unsqueeze(1), self.basis, rounding_mode="floor") % self.levels

    def forward(self, a: Tensor) -> QuantizedResult:
        a = a.float()
        z = self.squash(a)
        level = self.index(z)
        quantized = z + (self.value(level) - z).detach()
        chosen = self.training_value(z, quantized) if self.training else quantized
        codes = self.levels_to_codes(level)
        return QuantizedResult(self.scale(chosen), codes, self.losses(a), self.usage_stats(codes))

    def encode(self, a: Tensor) -> Tensor:
        return self.levels_to_codes(self.index(self.squash(a.float())))

    def decode(self, codes: Tensor) -> Tensor:
        return self.scale(self.value(self.codes_to_levels(codes)))

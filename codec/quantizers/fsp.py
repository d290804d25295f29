"""FSP: finite scalar perturbation (VP-VAE, Zhai et al. 2026, arXiv 2602.17133).

Equal bins with centre decoding; in training each element is either quantized
(straight-through) or perturbed by a bounded uniform offset of at most half a bin.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from codec.quantizers.scalar import ScalarQuantizer

_EPS = 1e-6


class FSP(ScalarQuantizer):
    """`L` equal bins on (0, 1), decoded to their centres `(l + 1/2) / L`.

    Training: with probability `quantize_rate` an element takes its straight-through quantized
    value; otherwise `z + u`, `u ~ U(-1/(2L), 1/(2L))`, kept only if inside (0, 1) (else `z`),
    with an identity gradient. Eval: always the bin centre. Output `(value - 1/2) * sqrt(12)`:
    zero mean and unit variance for uniform `z`. With `norm_loss`, the pre-activation is pulled
    to the mean and variance of the distribution whose CDF is the activation, keeping `z` uniform.
    """

    def __init__(
        self,
        levels: list[int],
        activation: str = "tanh",
        quantize_rate: float = 0.5,
        norm_loss: bool = True,
        mean_weight: float = 0.1,
        var_weight: float = 0.07,
    ) -> None:
        super().__init__(levels, activation)
        if not 0.0 <= quantize_rate <= 1.0:
            raise ValueError(f"quantize_rate must lie in [0, 1], got {quantize_rate}")
        self.quantize_rate = quantize_rate
        self.norm_loss = norm_loss
        self.mean_weight = mean_weight
        self.var_weight = var_weight

    def index(self, z: Tensor) -> Tensor:
        return (self.levels * z.clamp(0.0, 1.0 - _EPS)).floor().long()

    def value(self, level: Tensor) -> Tensor:
        return (level + 0.5) / self.levels

    def scale(self, value: Tensor) -> Tensor:
        return (value - 0.5) * math.sqrt(12)

    def perturb(self, z: Tensor) -> Tensor:
        """`z + u`, `u ~ U(-1/(2L), 1/(2L))` per element; a proposal outside (0, 1) keeps `z`."""
        u = (torch.rand_like(z) - 0.5) / self.levels
        proposal = z + u
        inside = (proposal > 0) & (proposal < 1)
        return z + torch.where(inside, u, torch.zeros_like(u))

    def training_value(self, z: Tensor, quantized: Tensor) -> Tensor:
        take_quantized = torch.rand_like(z) < self.quantize_rate
        return torch.where(take_quantized, quantized, self.perturb(z))

    def losses(self, a: Tensor) -> dict[str, Tensor]:
        if not self.norm_loss:
            return {}
        dims = (0, 2)  # batch statistics per latent dimension of [B, d, T]
        mean, var = a.mean(dim=dims), a.var(dim=dims, unbiased=False)
        loss = self.mean_weight * mean.pow(2) + self.var_weight * (
            var - self.activation_variance
        ).pow(2)
        return {"norm": loss.mean()}

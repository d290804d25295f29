"""What VQ and VP share: a codebook `[K, d]` and exact nearest-neighbour coding."""

from __future__ import annotations

import torch
from torch import Tensor

from codec.quantizers.base import QuantizedResult, Quantizer
from codec.quantizers.kmeans import nearest


def to_rows(z: Tensor) -> Tensor:
    """`[B, d, T]` -> `[B * T, d]` float32 rows."""
    return z.float().transpose(1, 2).reshape(-1, z.shape[1])


def from_rows(x: Tensor, batch_size: int) -> Tensor:
    """`[B * T, d]` rows -> `[B, d, T]`."""
    return x.reshape(batch_size, -1, x.shape[1]).transpose(1, 2)


class CodebookQuantizer(Quantizer):
    """Codes are indices of the nearest codebook vector (Euclidean); decoding looks them up."""

    def __init__(self, dim: int, codebook_size: int) -> None:
        super().__init__()
        self.dim = dim
        self.codebook_size = codebook_size
        self.register_buffer("codebook", torch.zeros(codebook_size, dim))

    def check_ready(self) -> None:
        """Raise a clear error if the codebook cannot code yet (override where that can happen)."""

    def encode(self, z: Tensor) -> Tensor:
        self.check_ready()
        index, _ = nearest(to_rows(z), self.codebook)
        return index.view(z.shape[0], z.shape[2])

    def decode(self, codes: Tensor) -> Tensor:
        self.check_ready()
        return self.codebook[codes].transpose(1, 2)

    def quantize(self, z: Tensor, losses: dict[str, Tensor]) -> QuantizedResult:
        """Nearest-codebook quantization of `z` `[B, d, T]` with a straight-through gradient."""
        codes = self.encode(z)
        z = z.float()
        quantized = z + (self.decode(codes) - z).detach()
        return QuantizedResult(quantized, codes, losses, self.usage_stats(codes))

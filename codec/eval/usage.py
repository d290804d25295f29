"""Token usage of one quantizer stage: utilisation, perplexity, entropy."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class CodeUsage:
    """How a stage spends its alphabet of `codebook_size` codes, measured on some codes."""

    codebook_size: int
    utilisation: float  # fraction of the alphabet that occurs
    entropy_bits: float  # empirical entropy of the code distribution
    perplexity: float  # 2 ** entropy: the number of equally likely codes with that entropy

    @property
    def perplexity_ratio(self) -> float:
        """Perplexity / K: the paper's codebook vector utilisation (CVU)."""
        return self.perplexity / self.codebook_size


def code_usage(codes: Tensor, codebook_size: int) -> CodeUsage:
    """Usage statistics of integer `codes` (any shape) in `[0, codebook_size)`."""
    counts = torch.bincount(codes.reshape(-1).long(), minlength=codebook_size).double()
    if counts.numel() > codebook_size:
        raise ValueError(
            f"codes reach {counts.numel() - 1}, outside an alphabet of {codebook_size}"
        )
    total = counts.sum().item()
    if total == 0:
        return CodeUsage(codebook_size, 0.0, 0.0, 0.0)
    p = counts[counts > 0] / total
    entropy = float(-(p * p.log2()).sum())
    return CodeUsage(codebook_size, p.numel() / codebook_size, entropy, 2.0**entropy)


def stage_usage(codes: Tensor, codebook_sizes: list[int]) -> list[CodeUsage]:
    """Usage of each stage of codes `[B, n_q, frames]` (`codebook_sizes`: K of each stage)."""
    if codes.shape[1] > len(codebook_sizes):
        raise ValueError(
            f"codes have {codes.shape[1]} stages, sizes given for {len(codebook_sizes)}"
        )
    return [code_usage(codes[:, i], k) for i, k in enumerate(codebook_sizes[: codes.shape[1]])]

"""Token usage of a directory of token files: per-stage statistics and the ideal bitrate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from codec.eval.report import markdown_table
from codec.eval.usage import CodeUsage, stage_usage
from codec.tokens import TokenReader


def read_token_dir(directory: Path) -> tuple[list[int], float, np.ndarray]:
    """Codebook sizes, frame rate and all codes `[n_q, frames]` (channels and files joined)."""
    files = sorted(directory.rglob("*.tok")) if directory.is_dir() else [directory]
    if not files:
        raise FileNotFoundError(f"{directory} holds no .tok files")
    blocks, sizes, frame_rate = [], None, None
    for path in files:
        with open(path, "rb") as stream:
            reader = TokenReader(stream, str(path))
            codes = reader.read_all()
        if sizes is None:
            sizes, frame_rate = reader.header.codebook_sizes, reader.header.frame_rate
        elif reader.header.codebook_sizes != sizes:
            raise ValueError(
                f"{path} uses other stages than {files[0]}: score one model's tokens at a time"
            )
        blocks.append(codes.transpose(1, 0, 2).reshape(len(sizes), -1))
    return sizes, frame_rate, np.concatenate(blocks, axis=1)


def token_usage(directory: Path) -> tuple[list[CodeUsage], dict[str, float]]:
    """Per-stage usage, and totals: nominal and ideal (entropy-coded) kbps per channel."""
    sizes, frame_rate, codes = read_token_dir(directory)
    usage = stage_usage(torch.from_numpy(codes)[None], sizes)
    totals = {
        "frames": codes.shape[1],
        "nominal_kbps": frame_rate * sum(np.log2(sizes)) / 1000,
        "ideal_kbps": frame_rate * sum(u.entropy_bits for u in usage) / 1000,
    }
    return usage, totals


def usage_markdown(usage: list[CodeUsage], totals: dict[str, float]) -> str:
    header = ["stage", "K", "utilisation", "perplexity", "perplexity/K", "entropy bits"]
    rows = [
        [str(i + 1), str(u.codebook_size), f"{u.utilisation:.3f}", f"{u.perplexity:.1f}"]
        + [f"{u.perplexity_ratio:.3f}", f"{u.entropy_bits:.2f}"]
        for i, u in enumerate(usage)
    ]
    return markdown_table(header, rows) + (
        f"\n{totals['frames']} frames; nominal {totals['nominal_kbps']:.3f} kbps per channel; an "
        f"ideal entropy coder would need {totals['ideal_kbps']:.3f} kbps\n"
    )

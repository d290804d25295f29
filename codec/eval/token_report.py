"""Token usage of a directory of token files: per-stage statistics and the ideal bitrate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from codec.compress import read_codes
from codec.eval.report import markdown_table
from codec.eval.usage import CodeUsage, stage_usage
from codec.model import CodecModel


def read_token_dir(
    directory: Path, model: CodecModel | None = None
) -> tuple[list[int], float, np.ndarray, float]:
    """Codebook sizes, frame rate, all codes `[n_q, frames]` (channels and files joined) and
    the files' actual kbps per channel (their sizes over their durations). Entropy-coded files
    are read with `model`'s tables, or those of the zoo model they name."""
    files = sorted(directory.rglob("*.tok")) if directory.is_dir() else [directory]
    if not files:
        raise FileNotFoundError(f"{directory} holds no .tok files")
    blocks, sizes, frame_rate, bits, seconds = [], None, None, 0, 0.0
    for path in files:
        header, codes, samples = read_codes(path, model)
        bits += 8 * path.stat().st_size
        seconds += header.channels * samples / header.original_sample_rate
        if sizes is None:
            sizes, frame_rate = header.codebook_sizes, header.frame_rate
        elif header.codebook_sizes != sizes:
            raise ValueError(
                f"{path} uses other stages than {files[0]}: score one model's tokens at a time"
            )
        blocks.append(codes.transpose(1, 0, 2).reshape(len(sizes), -1))
    return sizes, frame_rate, np.concatenate(blocks, axis=1), bits / max(seconds, 1e-9) / 1000


def token_usage(
    directory: Path, model: CodecModel | None = None
) -> tuple[list[CodeUsage], dict[str, float]]:
    """Per-stage usage, and totals per channel: nominal kbps, the ideal kbps of a static
    per-stage entropy coder, and the files' actual kbps."""
    sizes, frame_rate, codes, actual = read_token_dir(directory, model)
    usage = stage_usage(torch.from_numpy(codes)[None], sizes)
    totals = {
        "frames": codes.shape[1],
        "nominal_kbps": frame_rate * sum(np.log2(sizes)) / 1000,
        "ideal_kbps": frame_rate * sum(u.entropy_bits for u in usage) / 1000,
        "actual_kbps": actual,
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
        f"\n{totals['frames']} frames; nominal {totals['nominal_kbps']:.3f} kbps per channel; the "
        f"files take {totals['actual_kbps']:.3f} kbps (whole files); an ideal coder of each "
        f"stage's code frequencies alone would need {totals['ideal_kbps']:.3f} kbps\n"
    )

"""Dump a data directory to one format: mono FLAC at the model's rate, with utt2dur."""

from __future__ import annotations

import shutil
from pathlib import Path

from codec.audio import save_audio
from codec.data.kaldi import load_utterance, read_data_dir, validate_data_dir


def format_part(src: Path, dst: Path, sample_rate: int, job: int = 1, jobs: int = 1) -> int:
    """Convert every `jobs`-th utterance (starting at `job`, 1-based) of `src` into
    `dst/audio/<utt>.flac` and list them in `dst/wav.<job>.scp`."""
    utterances = read_data_dir(src)[job - 1 :: jobs]
    (dst / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for utt in utterances:
        target = dst / "audio" / f"{utt.id}.flac"
        if not target.exists():
            save_audio(
                target, load_utterance(utt, sample_rate).mean(axis=0, keepdims=True), sample_rate
            )
        lines.append(f"{utt.id} {target.resolve()}\n")
    (dst / f"wav.{job}.scp").write_text("".join(lines))
    return len(lines)


def merge_parts(src: Path, dst: Path, jobs: int, sample_rate: int) -> int:
    """Join the parts into `dst/wav.scp`, carry utt2spk/spk2utt over, validate, write utt2dur."""
    lines = []
    for job in range(1, jobs + 1):
        part = dst / f"wav.{job}.scp"
        lines += part.read_text().splitlines(keepends=True)
        part.unlink()
    (dst / "wav.scp").write_text("".join(sorted(lines)))
    for name in ("utt2spk", "spk2utt"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    durations = validate_data_dir(dst, sample_rate)
    (dst / "utt2dur").write_text("".join(f"{u} {d:.3f}\n" for u, d in sorted(durations.items())))
    return len(lines)

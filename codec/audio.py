"""Audio files in and out: the only module that reads or writes audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read `path` as float32 `[channels, T]`, resampled to `sample_rate` when given.

    Returns the audio and its sample rate (the file's own when `sample_rate` is None).
    """
    try:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as error:
        raise ValueError(f"cannot read audio from {path}: {error}") from error
    if sample_rate is not None and rate != sample_rate:
        wav = soxr.resample(wav, rate, sample_rate, quality="HQ").astype(np.float32)
        rate = sample_rate
    return np.ascontiguousarray(wav.T), rate


def save_audio(path: str | Path, wav: np.ndarray, sample_rate: int) -> None:
    """Write float `[channels, T]` audio as 16-bit PCM (format from the suffix, WAV by default)."""
    data = np.clip(np.asarray(wav, dtype=np.float32).T, -1.0, 1.0)
    sf.write(str(path), data, sample_rate, subtype="PCM_16")

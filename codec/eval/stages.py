"""A model's quality at several stage counts (bitrates) on a set of files, scored in workers."""

from __future__ import annotations

import math
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from codec.audio import find_files, load_audio
from codec.data.kaldi import read_wav_scp
from codec.eval.metrics import score, value_names
from codec.model import CodecModel

RATE = 16000


def scored_files(path: Path, every: int = 1) -> list[Path]:
    """Every `every`-th audio file of 1-20 s in a directory, a Kaldi data dir or a wav.scp."""
    kaldi = path.is_file() or (path / "wav.scp").is_file()
    files = sorted(read_wav_scp(path).values()) if kaldi else find_files(path)
    return [f for f in files if 1.0 <= sf.info(f).duration <= 20.0][::every]


def _score(ref: np.ndarray, hyp: np.ndarray, metrics: tuple[str, ...]) -> dict[str, float]:
    return score(ref, hyp, RATE, metrics=metrics).values


def quality_by_stages(
    model: CodecModel,
    files: list[Path],
    stages: list[int],
    metrics: tuple[str, ...],
    pool: Executor,
) -> dict[int, dict[str, float]]:
    """Stage count -> the mean of each value of `metrics` over `files`, each coded offline with
    that many stages (coding here, scoring in `pool`)."""
    jobs: dict[int, list] = {n: [] for n in stages}
    for file in files:
        ref = load_audio(file, RATE)[0].mean(axis=0)
        with torch.inference_mode():
            codes = model.encode(torch.from_numpy(ref).view(1, 1, -1))
            for n in stages:
                hyp = model.decode(codes[:, :n]).view(-1)[: len(ref)].numpy()
                jobs[n].append(pool.submit(_score, ref, hyp, metrics))
    means = {}
    for n in stages:
        values = [job.result() for job in jobs[n]]
        means[n] = {
            k: float(np.nanmean([v.get(k, math.nan) for v in values])) for k in value_names(metrics)
        }
    return means

"""A training corpus held in memory as one int16 tensor, with crops cut from it by index.

On a GPU the whole corpus sits on the device (6.7 h at 16 kHz is 0.8 GB), so a batch costs one
gather instead of a file read per crop. Batches are planned by the same `CropSampler` as the
disk reader's, so both give the same crops for the same (seed, step, rank).
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from codec.audio import load_audio
from codec.data.crops import CropSampler, CropSettings, normalise_crops, utterance_span
from codec.data.kaldi import Utterance

INT16_SCALE = 32768.0


@dataclass
class AudioBank:
    """Every utterance, mono at `sample_rate`, end to end in `audio` `[N]` int16; utterance `i`
    is `audio[starts[i] : starts[i] + lengths[i]]`."""

    audio: Tensor  # [N] int16
    starts: np.ndarray  # [U] int64
    lengths: np.ndarray  # [U] int64
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate

    def utterance(self, index: int) -> Tensor:
        """Utterance `index` as float32 `[T]` in [-1, 1)."""
        start, length = int(self.starts[index]), int(self.lengths[index])
        return self.audio[start : start + length].float() / INT16_SCALE

    def to(self, device: torch.device | str) -> AudioBank:
        return AudioBank(self.audio.to(device), self.starts, self.lengths, self.sample_rate)


def bank_bytes(utterances: list[Utterance], sample_rate: int) -> int:
    """What `load_bank` would hold for these utterances, from their files' headers."""
    return sum(2 * round(n * sample_rate / rate) for rate, _, n in map(utterance_span, utterances))


def _to_int16(wav: np.ndarray) -> np.ndarray:
    return np.clip(np.round(wav * INT16_SCALE), -32768, 32767).astype(np.int16)


def load_bank(
    utterances: list[Utterance], sample_rate: int, workers: int = 8, progress: bool = False
) -> AudioBank:
    """Read every utterance (mono, resampled to `sample_rate`) into one `AudioBank`, in the
    order given. Each file is decoded once, however many segments it holds, `workers` files at
    a time; 16-bit sources are held exactly."""
    from tqdm import tqdm

    by_file: dict[Path, list[int]] = defaultdict(list)
    for i, utt in enumerate(utterances):
        by_file[utt.path].append(i)
    pieces: list[np.ndarray | None] = [None] * len(utterances)

    def read(path: Path) -> None:
        wav = load_audio(path, sample_rate)[0].mean(axis=0)
        for i in by_file[path]:
            utt = utterances[i]
            end = None if utt.end is None else round(utt.end * sample_rate)
            pieces[i] = _to_int16(wav[round(utt.start * sample_rate) : end])

    with ThreadPoolExecutor(max(1, workers)) as pool:  # libsndfile and soxr release the GIL
        jobs = pool.map(read, by_file)
        for _ in tqdm(jobs, total=len(by_file), desc="load", unit="file", disable=not progress):
            pass
    lengths = np.array([len(p) for p in pieces], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return AudioBank(torch.from_numpy(np.concatenate(pieces)), starts, lengths, sample_rate)


class MemoryCrops:
    """`batch(step)` is `[batch_size, 1, segment]` float32 on the bank's device: the crops that
    `CropBatches` would read from disk for the same step, cut from the bank by one gather."""

    def __init__(self, bank: AudioBank, settings: CropSettings) -> None:
        self.bank = bank
        rates = np.full(len(bank.lengths), bank.sample_rate)
        self.sampler = CropSampler(bank.lengths, rates, bank.sample_rate, settings)
        self._positions = torch.arange(settings.segment, device=bank.audio.device)

    def batch(self, step: int) -> Tensor:
        plan = self.sampler.plan(step)
        device = self.bank.audio.device
        first = torch.from_numpy(self.bank.starts[plan.index] + plan.offset).to(device)
        available = torch.from_numpy(self.bank.lengths[plan.index] - plan.offset).to(device)
        keep = self._positions < available[:, None]  # [B, segment]: zero past a short utterance
        index = (first[:, None] + self._positions).clamp_max(len(self.bank.audio) - 1)
        wav = torch.where(keep, self.bank.audio[index].float() / INT16_SCALE, 0.0)
        return normalise_crops(wav[:, None], torch.from_numpy(plan.gain_db).to(device))

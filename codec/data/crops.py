"""Training batches of random fixed-length crops, a pure function of (seed, step, rank).

Batch `step` is drawn from a generator seeded with `(seed, step, rank)`, so a resumed run sees
exactly the batches an uninterrupted one would, whatever the number of loader workers.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr
import torch
from torch.utils.data import Dataset

from codec.data.kaldi import Utterance


def utterance_span(utt: Utterance) -> tuple[int, int, int]:
    """(sample rate, first sample, number of samples) of an utterance in its file."""
    info = sf.info(str(utt.path))
    start = round(utt.start * info.samplerate)
    end = info.frames if utt.end is None else min(info.frames, round(utt.end * info.samplerate))
    return info.samplerate, start, max(0, end - start)


class CropBatches(Dataset):
    """Item `step` is a batch `[batch_size, 1, segment]` of mono crops at `sample_rate`.

    Utterances are picked with probability proportional to their length; a crop starts at a
    uniform position; shorter utterances are zero-padded. Each crop is scaled to `loudness_db`
    RMS (dBFS) plus a uniform gain within `+-gain_jitter_db`, then kept under full scale.
    """

    def __init__(
        self,
        utterances: list[Utterance],
        sample_rate: int,
        batch_size: int,
        segment: int,
        seed: int = 0,
        rank: int = 0,
        loudness_db: float = -23.0,
        gain_jitter_db: float = 6.0,
    ) -> None:
        if not utterances:
            raise ValueError("no training utterances")
        self.utterances = utterances
        self.spans = [utterance_span(u) for u in utterances]
        lengths = np.array([n / rate for rate, _, n in self.spans], dtype=np.float64)
        if lengths.sum() == 0:
            raise ValueError("the training utterances hold no audio")
        self.weights = lengths / lengths.sum()
        self.sample_rate = sample_rate
        self.batch_size = batch_size
        self.segment = segment
        self.seed = seed
        self.rank = rank
        self.loudness_db = loudness_db
        self.gain_jitter_db = gain_jitter_db

    def __len__(self) -> int:
        return 2**62  # endless: the sampler decides which steps are read

    def __getitem__(self, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, step, self.rank])
        picks = rng.choice(len(self.utterances), size=self.batch_size, p=self.weights)
        crops = [self._crop(int(i), rng) for i in picks]
        return torch.from_numpy(np.stack(crops))[:, None]

    def _crop(self, index: int, rng: np.random.Generator) -> np.ndarray:
        rate, start, length = self.spans[index]
        want = int(np.ceil(self.segment * rate / self.sample_rate))
        offset = int(rng.integers(0, max(1, length - want + 1)))
        wav, _ = sf.read(
            str(self.utterances[index].path),
            start=start + offset,
            frames=min(want, length),
            dtype="float32",
            always_2d=True,
        )
        wav = wav.mean(axis=1)
        if rate != self.sample_rate:
            wav = soxr.resample(wav, rate, self.sample_rate, quality="HQ")
        wav = np.pad(wav[: self.segment], (0, max(0, self.segment - len(wav))))
        return self._normalise(wav, rng).astype(np.float32)

    def _normalise(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gain_db = self.loudness_db + rng.uniform(-self.gain_jitter_db, self.gain_jitter_db)
        rms = np.sqrt(np.mean(wav**2))
        if rms > 1e-4:
            wav = wav * (10 ** (gain_db / 20) / rms)
        peak = np.abs(wav).max()
        return wav / peak * 0.99 if peak > 0.99 else wav

"""Training batches of random fixed-length crops, a pure function of (seed, step, rank).

Batch `step` is planned by a generator seeded with `(seed, step, rank)`, so a resumed run sees
exactly the batches an uninterrupted one would, whatever the number of loader workers and
whether the crops are read from disk (`CropBatches`) or cut from memory (`codec.data.memory`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import Tensor
from torch.utils.data import Dataset

from codec.data.kaldi import Utterance


def utterance_span(utt: Utterance) -> tuple[int, int, int]:
    """(sample rate, first sample, number of samples) of an utterance in its file."""
    info = sf.info(str(utt.path))
    start = round(utt.start * info.samplerate)
    end = info.frames if utt.end is None else min(info.frames, round(utt.end * info.samplerate))
    return info.samplerate, start, max(0, end - start)


@dataclass
class CropPlan:
    """Which crops make one batch: utterance `index[i]` from sample `offset[i]` (in the
    utterance's own rate), scaled to `gain_db[i]` dBFS RMS."""

    index: np.ndarray  # [B] int
    offset: np.ndarray  # [B] int
    gain_db: np.ndarray  # [B] float


@dataclass(frozen=True)
class CropSettings:
    """Batches of `batch_size` crops of `segment` samples, planned per (`seed`, step, `rank`),
    scaled to `loudness_db` RMS plus a uniform jitter within `+-gain_jitter_db`."""

    batch_size: int
    segment: int
    seed: int = 0
    rank: int = 0
    loudness_db: float = -23.0
    gain_jitter_db: float = 6.0


@dataclass
class CropSampler:
    """Plans batches of crops at `sample_rate`: utterances picked with probability proportional
    to their duration, a crop start uniform over the positions where a whole crop fits (0 for
    shorter utterances), a gain drawn as `settings` says."""

    lengths: np.ndarray  # [U] samples of each utterance, in its own rate
    rates: np.ndarray  # [U] each utterance's sample rate
    sample_rate: int
    settings: CropSettings

    def __post_init__(self) -> None:
        if len(self.lengths) == 0:
            raise ValueError("no training utterances")
        seconds = self.lengths / self.rates
        if seconds.sum() == 0:
            raise ValueError("the training utterances hold no audio")
        self.weights = seconds / seconds.sum()
        # [U] source samples a crop reads
        self.wants = -(-self.settings.segment * self.rates // self.sample_rate)

    def plan(self, step: int) -> CropPlan:
        s = self.settings
        rng = np.random.default_rng([s.seed, step, s.rank])
        index = rng.choice(len(self.lengths), size=s.batch_size, p=self.weights)
        offset, gain = np.zeros(s.batch_size, np.int64), np.zeros(s.batch_size)
        for i, u in enumerate(index):  # offset then gain per crop: the order fixes the batches
            offset[i] = rng.integers(0, max(1, self.lengths[u] - self.wants[u] + 1))
            gain[i] = s.loudness_db + rng.uniform(-s.gain_jitter_db, s.gain_jitter_db)
        return CropPlan(index, offset, gain)


def normalise_crops(wav: Tensor, gain_db: Tensor) -> Tensor:
    """Scale each crop of `[B, 1, T]` to `gain_db` `[B]` dBFS RMS (crops quieter than -80 dBFS
    are left as they are), then bring any crop that peaks above 0.99 down to 0.99."""
    rms = wav.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
    target = torch.pow(10.0, gain_db.to(wav).view(-1, 1, 1) / 20)
    wav = wav * torch.where(rms > 1e-4, target / rms.clamp_min(1e-4), torch.ones_like(rms))
    peak = wav.abs().amax(dim=(1, 2), keepdim=True)
    return wav * torch.where(peak > 0.99, 0.99 / peak.clamp_min(0.99), torch.ones_like(peak))


class CropBatches(Dataset):
    """Item `step` is a batch `[batch_size, 1, segment]` of mono crops at `sample_rate`, read
    from the utterances' files (resampled where their rate differs); shorter utterances are
    zero-padded, then every crop is normalised (`normalise_crops`)."""

    def __init__(
        self, utterances: list[Utterance], sample_rate: int, settings: CropSettings
    ) -> None:
        self.utterances = utterances
        self.spans = [utterance_span(u) for u in utterances]
        self.sampler = CropSampler(
            np.array([n for _, _, n in self.spans], dtype=np.int64),
            np.array([rate for rate, _, _ in self.spans], dtype=np.int64),
            sample_rate,
            settings,
        )
        self.sample_rate = sample_rate
        self.segment = settings.segment

    def __len__(self) -> int:
        return 2**62  # endless: the sampler decides which steps are read

    def __getitem__(self, step: int) -> Tensor:
        plan = self.sampler.plan(step)
        crops = [self._crop(int(i), int(o)) for i, o in zip(plan.index, plan.offset, strict=True)]
        return normalise_crops(
            torch.from_numpy(np.stack(crops))[:, None], torch.from_numpy(plan.gain_db)
        )

    def _crop(self, index: int, offset: int) -> np.ndarray:
        rate, start, length = self.spans[index]
        want = int(self.sampler.wants[index])
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
        return np.pad(wav[: self.segment], (0, max(0, self.segment - len(wav)))).astype(np.float32)

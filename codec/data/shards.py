"""Pack a corpus into a few large audio files, in loads that fit a transfer limit.

A GPU machine reached through a size-limited copy (e.g. 64 MiB a call) cannot take thousands of
small files: `pack_loads` writes the utterances end to end into shards (FLAC, lossless, or Ogg
Opus at a chosen bitrate) and groups the shards into loads of at most `max_bytes` each. Every
load is a Kaldi data directory (`wav.scp`, `segments`, `utt2spk`) with paths relative to
itself, and `merge_data_dirs` joins the loads that arrived into one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.data.kaldi import read_data_dir
from codec.data.memory import load_bank

OPUS_MIN_KBPS, OPUS_MAX_KBPS = 6.0, 256.0  # libsndfile's Opus range for compression 1 .. 0


@dataclass
class Load:
    """One load: its data directory and the bytes of audio in it."""

    path: Path
    bytes: int
    seconds: float


def _speakers(data_dir: Path) -> dict[str, str]:
    utt2spk = data_dir / "utt2spk"
    if not utt2spk.is_file():
        return {}
    return dict(line.split(maxsplit=1) for line in utt2spk.read_text().splitlines() if line)


def write_shard(path: Path, audio: np.ndarray, sample_rate: int, kbps: float | None) -> int:
    """Write int16 `[T]` as FLAC (`kbps` None) or Ogg Opus at about `kbps`; returns its bytes."""
    if kbps is None:
        sf.write(path, audio, sample_rate, subtype="PCM_16", format="FLAC")
    else:
        if not OPUS_MIN_KBPS <= kbps <= OPUS_MAX_KBPS:
            raise ValueError(f"Opus takes {OPUS_MIN_KBPS:g} to {OPUS_MAX_KBPS:g} kbps, not {kbps}")
        level = (OPUS_MAX_KBPS - kbps) / (OPUS_MAX_KBPS - OPUS_MIN_KBPS)
        with sf.SoundFile(
            path, "w", sample_rate, 1, "OPUS", format="OGG", compression_level=level
        ) as stream:
            stream.write(audio)
    return path.stat().st_size


def pack_loads(
    data_dir: Path,
    out: Path,
    sample_rate: int,
    max_bytes: int,
    kbps: float | None = None,
    shard_seconds: float = 300.0,
    workers: int = 2,
) -> list[Load]:
    """Pack the utterances of `data_dir` (mono, at `sample_rate`) into `out/load1`, `load2`,
    ...: shards of about `shard_seconds`, whole utterances each, as FLAC or Opus at `kbps`, and
    at most `max_bytes` of shards per load. `wav.scp` names each shard relative to its load."""
    utterances = read_data_dir(data_dir)
    speakers = _speakers(data_dir)
    bank = load_bank(utterances, sample_rate, workers, progress=True)
    audio = bank.audio.numpy()
    suffix = ".flac" if kbps is None else ".opus"
    staging = out / "shards"
    staging.mkdir(parents=True, exist_ok=True)
    groups: list[list[int]] = [[]]  # utterance indices of each shard
    limit, filled = round(shard_seconds * sample_rate), 0
    for i, length in enumerate(bank.lengths):
        if filled >= limit:
            groups.append([])
            filled = 0
        groups[-1].append(i)
        filled += int(length)

    def encode(number: int) -> tuple[Path, int, list[int]]:
        group = groups[number]
        span = audio[bank.starts[group[0]] : bank.starts[group[-1]] + bank.lengths[group[-1]]]
        path = staging / f"shard{number:04d}{suffix}"
        size = write_shard(path, span, sample_rate, kbps)
        if size > max_bytes:
            raise ValueError(f"{path} alone is {size} bytes: lower shard_seconds or kbps")
        return path, size, group

    with ThreadPoolExecutor(max(1, workers)) as pool:  # libsndfile releases the GIL
        shards = list(pool.map(encode, range(len(groups))))
    loads: list[Load] = []
    current: list[tuple[Path, int, list[int]]] = []
    for shard in [*shards, None]:  # None: flush the last load
        if current and (shard is None or sum(s for _, s, _ in current) + shard[1] > max_bytes):
            loads.append(_write_load(out / f"load{len(loads) + 1}", current, bank, utterances,
                                     speakers, sample_rate))  # fmt: skip
            current = []
        if shard is not None:
            current.append(shard)
    staging.rmdir()
    return loads


def _write_load(load, shards, bank, utterances, speakers, sample_rate) -> Load:
    load.mkdir(parents=True, exist_ok=True)
    scp, segments, utt2spk = [], [], []
    for path, _, group in shards:
        target = load / path.name
        path.replace(target)
        rec = target.stem
        scp.append(f"{rec} {target.name}\n")
        origin = bank.starts[group[0]]
        for i in group:
            start = (bank.starts[i] - origin) / sample_rate
            end = start + bank.lengths[i] / sample_rate
            utt = utterances[i].id
            segments.append(f"{utt} {rec} {start:.7f} {end:.7f}\n")
            utt2spk.append(f"{utt} {speakers.get(utt, utt)}\n")
    (load / "wav.scp").write_text("".join(scp))
    (load / "segments").write_text("".join(segments))
    (load / "utt2spk").write_text("".join(utt2spk))
    seconds = sum(int(bank.lengths[i]) for _, _, g in shards for i in g) / sample_rate
    return Load(load, sum(s for _, s, _ in shards), seconds)


def merge_data_dirs(parts: list[Path], out: Path) -> int:
    """Join loads (data directories whose `wav.scp` paths are relative to themselves, with
    `segments` and `utt2spk`, distinct ids) into `out`, with absolute paths; returns the
    number of utterances."""
    out.mkdir(parents=True, exist_ok=True)
    scp = []
    for part in parts:
        for line in (part / "wav.scp").read_text().splitlines():
            rec, path = line.split(maxsplit=1)
            scp.append(f"{rec} {(part / path).resolve()}\n")
    (out / "wav.scp").write_text("".join(scp))
    for name in ("segments", "utt2spk"):
        (out / name).write_text("".join((part / name).read_text() for part in parts))
    return len(read_data_dir(out))

"""Kaldi data directories: `wav.scp` (recording -> file) and optional `segments`."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codec.audio import load_audio


@dataclass(frozen=True)
class Utterance:
    """One utterance: a whole file, or `[start, end)` seconds of it when `end` is set."""

    id: str
    path: Path
    start: float = 0.0
    end: float | None = None


def _table(path: Path, fields: int) -> list[list[str]]:
    """Rows of a Kaldi text table; each line has `fields` fields (the last may hold spaces)."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = line.split(maxsplit=fields - 1)
        if len(row) != fields:
            raise ValueError(f"{path}:{number}: expected {fields} fields, got {line!r}")
        rows.append(row)
    return rows


def read_wav_scp(path: str | Path) -> dict[str, Path]:
    """Recording id -> audio file, from a data directory's wav.scp or a .scp file itself;
    paths are relative to the working directory, as in Kaldi."""
    path = Path(path)
    scp = path / "wav.scp" if path.is_dir() or not path.suffix else path
    if not scp.is_file():
        raise FileNotFoundError(f"{path} is not a Kaldi data directory: no wav.scp in it")
    recordings = {}
    for rec, target in _table(scp, 2):
        if target.rstrip().endswith("|"):
            raise ValueError(
                f"{scp}: {rec} is a command pipe; write it to a file and list the file"
            )
        recordings[rec] = Path(target.strip())
    return recordings


def read_text(path: str | Path) -> dict[str, str]:
    """Utterance id -> transcript, from a data directory's `text` file (UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such text file: {path}")
    texts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, words = line.strip().partition(" ")
        if key:
            texts[key] = words.strip()
    return texts


def text_beside(scp: str | Path) -> Path | None:
    """The `text` file beside `scp` (a .scp file, or a data directory holding a wav.scp), if
    there is one."""
    scp = Path(scp)
    if scp.is_dir():
        scp = scp / "wav.scp"
    found = scp.parent / "text"
    return found if scp.is_file() and scp.suffix == ".scp" and found.is_file() else None


def read_data_dir(data_dir: str | Path) -> list[Utterance]:
    """The utterances of a data directory, in file order; checks that every file exists."""
    data_dir = Path(data_dir)
    recordings = read_wav_scp(data_dir)
    missing = [str(p) for p in recordings.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{data_dir}/wav.scp lists {len(missing)} missing files, e.g. {missing[0]}"
        )
    segments = data_dir / "segments"
    if not segments.is_file():
        return [Utterance(rec, path) for rec, path in recordings.items()]
    utterances = []
    for utt, rec, start, end in _table(segments, 4):
        if rec not in recordings:
            raise ValueError(f"{segments}: {utt} refers to recording {rec}, not in wav.scp")
        utterances.append(Utterance(utt, recordings[rec], float(start), float(end)))
    return utterances


def load_utterance(utt: Utterance, sample_rate: int) -> np.ndarray:
    """The utterance's audio, `[channels, T]` float32 at `sample_rate`."""
    wav, rate = load_audio(utt.path, sample_rate)
    end = None if utt.end is None else round(utt.end * rate)
    return wav[:, round(utt.start * rate) : end]


def validate_data_dir(data_dir: str | Path, sample_rate: int | None = None) -> dict[str, float]:
    """Check every utterance: its file opens as audio, holds samples, and has `sample_rate`
    (when given) or a usable rate. Returns utt2dur (seconds); raises ValueError listing up to
    five problems."""
    import soundfile as sf

    from codec.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

    problems, durations = [], {}
    for utt in read_data_dir(data_dir):
        try:
            info = sf.info(str(utt.path))
        except (sf.LibsndfileError, RuntimeError) as error:
            problems.append(f"{utt.id}: cannot read {utt.path} ({error})")
            continue
        wanted_ok = (
            info.samplerate == sample_rate
            if sample_rate
            else MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE
        )
        end = info.duration if utt.end is None else min(utt.end, info.duration)
        if not wanted_ok:
            problems.append(
                f"{utt.id}: {utt.path} is at {info.samplerate} Hz"
                + (f", expected {sample_rate}" if sample_rate else "")
            )
        elif end - utt.start <= 0:
            problems.append(f"{utt.id}: no audio in {utt.path} between {utt.start} and {end} s")
        else:
            durations[utt.id] = end - utt.start
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(
            f"{data_dir} has {len(problems)} bad utterances{more}: " + "; ".join(problems[:5])
        )
    return durations


def sample_audio(
    utterances: list[Utterance], sample_rate: int, max_seconds: float, seed: int = 0
) -> Iterator[np.ndarray]:
    """Utterances `[C, T]` in a fixed shuffled order (all of a corpus, not its first files),
    until `max_seconds` of audio have been read."""
    used = 0.0
    for utt in random.Random(seed).sample(utterances, len(utterances)):
        if used >= max_seconds:
            return
        wav = load_utterance(utt, sample_rate)
        used += wav.shape[1] / sample_rate
        yield wav

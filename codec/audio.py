"""Audio files in and out: the only module that reads or writes audio."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 384000
MAX_CHANNELS = 16

AudioSource = str | Path | BinaryIO
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def find_files(directory: str | Path, suffixes: tuple[str, ...] = AUDIO_SUFFIXES) -> list[Path]:
    """Files under `directory` (recursively) with one of `suffixes`, in sorted order."""
    found = (p for p in Path(directory).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    return sorted(found)


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, empty, non-finite, or of an unsupported shape."""


def _open(source: AudioSource, name: str) -> sf.SoundFile:
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise FileNotFoundError(f"no such audio file: {source}")
    try:
        return sf.SoundFile(source if not isinstance(source, Path) else str(source))
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"cannot read audio from {name}: {error}") from error


def _wav_declared_frames(source: AudioSource) -> int | None:
    """The samples per channel a WAV file's `data` chunk header declares (libsndfile reads what
    is there without a word when a file was cut short), or None where it declares none (a
    stream written to a pipe: size 0 or 0xFFFFFFFF) or the header cannot be walked."""
    if isinstance(source, str | Path):
        with open(source, "rb") as stream:
            head = stream.read(1 << 16)
    else:
        position = source.tell()
        source.seek(0)
        head = source.read(1 << 16)
        source.seek(position)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at, align = 12, 0
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], int.from_bytes(head[at + 4 : at + 8], "little")
        if chunk == b"fmt " and at + 22 <= len(head):
            align = int.from_bytes(head[at + 20 : at + 22], "little")  # bytes per frame
        if chunk == b"data":
            return size // align if align and size not in (0, 0xFFFFFFFF) else None
        at += 8 + size + size % 2
    return None


class AudioReader:
    """Reads an audio file (WAV, FLAC, OGG, MP3: what libsndfile reads) in fixed-size blocks.

    `blocks()` yields float32 `[channels, n]` blocks of `block_frames` samples (the last may be
    shorter), each checked for NaN/Inf. Sample rate and channel count are checked on open; a
    file that ends before its header's length is read to its end and noted in `short_read`.
    """

    def __init__(self, source: AudioSource, name: str | None = None) -> None:
        self.name = name or str(source)
        self.short_read: str | None = None  # after `blocks`: the file ended before its header said
        self._source = source
        self._file = _open(source, self.name)
        self.sample_rate = self._file.samplerate
        self.channels = self._file.channels
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise AudioError(
                f"{self.name}: sample rate {self.sample_rate} Hz is outside the "
                f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz this codec takes"
            )
        if self.channels > MAX_CHANNELS:
            raise AudioError(
                f"{self.name}: {self.channels} channels; at most {MAX_CHANNELS} are taken"
            )

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        total = 0
        declared = _wav_declared_frames(self._source) if self._file.format == "WAV" else None
        with self._file:
            for block in self._file.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise AudioError(f"{self.name} contains NaN or Inf samples")
                total += block.shape[0]
                yield np.ascontiguousarray(block.T)
        if total == 0:
            raise AudioError(f"{self.name} has no audio samples")
        if declared is not None and total < declared:
            self.short_read = (
                f"{self.name}: its header promises {declared} samples, it holds {total}"
            )


class StreamResampler:
    """Chunk-by-chunk resampling of `[channels, n]` float32 audio (identity when rates match)."""

    def __init__(self, in_rate: int, out_rate: int, channels: int) -> None:
        same = in_rate == out_rate
        self._stream = (
            None
            if same
            else soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32", quality="HQ")
        )

    def __call__(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return chunk
        return np.ascontiguousarray(
            self._stream.resample_chunk(np.ascontiguousarray(chunk.T), last=last).T
        )


def duration_seconds(path: str | Path) -> float | None:
    """The duration a file's header states, or None if it cannot be read (errors are left to
    the reader that follows)."""
    try:
        return sf.info(str(path)).duration
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None


def load_audio(path: AudioSource, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 `[channels, T]`, resampled to `sample_rate` when given.

    Returns the audio and its sample rate (the file's own when `sample_rate` is None).
    """
    reader = AudioReader(path)
    wav = np.concatenate(list(reader.blocks(1 << 20)), axis=1)
    rate = reader.sample_rate
    if sample_rate is not None and rate != sample_rate:
        wav = np.ascontiguousarray(soxr.resample(wav.T, rate, sample_rate, quality="HQ").T)
        rate = sample_rate
    return wav.astype(np.float32, copy=False), rate


class AudioWriter:
    """Writes float `[channels, n]` blocks as 16-bit PCM; the format follows `format` (WAV,
    FLAC, OGG). Use as a context manager."""

    def __init__(
        self, target: str | Path | BinaryIO, sample_rate: int, channels: int, format: str = "WAV"
    ) -> None:
        if format.upper() == "FLAC" and channels > FLAC_MAX_CHANNELS:
            raise ValueError(
                f"FLAC holds at most {FLAC_MAX_CHANNELS} channels and this audio has {channels}: "
                "write a .wav file"
            )
        subtype = "VORBIS" if format.upper() == "OGG" else "PCM_16"
        target = str(target) if isinstance(target, Path) else target
        self._file = sf.SoundFile(
            target, "w", sample_rate, channels, subtype, format=format.upper()
        )

    def write(self, block: np.ndarray) -> None:
        self._file.write(np.clip(block, -1.0, 1.0).T)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def save_audio(path: str | Path, wav: np.ndarray, sample_rate: int) -> None:
    """Write float `[channels, T]` audio; the format follows the suffix (WAV by default)."""
    with AudioWriter(path, sample_rate, wav.shape[0], audio_format(path)) as writer:
        writer.write(np.asarray(wav, dtype=np.float32))


def pcm16_bytes(audio: np.ndarray) -> bytes:
    """Mono float audio `[T]` as raw 16-bit little-endian PCM, converted (scaled, clipped) as
    16-bit audio files are written, so a raw stream and a file of the same audio agree."""
    buffer = io.BytesIO()
    sf.write(buffer, audio, MIN_SAMPLE_RATE, format="RAW", subtype="PCM_16", endian="LITTLE")
    return buffer.getvalue()


OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", "": "WAV"}
FLAC_MAX_CHANNELS = 8


def audio_format(path: str | Path) -> str:
    """The container for an output path from its suffix (WAV without one); ValueError for a
    suffix this codec cannot write, rather than WAV bytes under another format's name."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(f"cannot write {suffix} audio to {path}: name a .wav, .flac or .ogg file")
    return OUTPUT_FORMATS[suffix]


def read_stdin_bytes(stream: BinaryIO) -> io.BytesIO:
    """A seekable copy of a pipe (libsndfile needs to seek in most formats)."""
    return io.BytesIO(stream.read())

"""Audio files <-> token files through a model: the library API behind `codec encode/decode`.

Both directions stream: audio is read in fixed blocks, resampled chunk by chunk, and coded in
fixed one-second chunks through the model's streaming path, so the audio held in memory stays
bounded for long files and the tokens depend only on the file's content, never on how it was
read. An encode that may entropy-code holds its token file (a few percent of the audio's size)
until the end, when it knows which format is smaller.

The model is a torch `CodecModel` or an exported `codec.runtime.OnnxCodec` (no torch needed):
both give the same token files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Union

import numpy as np

from codec.audio import MAX_CHANNELS, AudioReader, AudioSource, AudioWriter, StreamResampler
from codec.entropy import SCHEME, EntropyModel
from codec.runtime import FILE_CHUNK_FRAMES, DelayTrim, OnnxCodec, flush_length
from codec.tokens import (
    LOST,
    MAX_PAYLOAD,
    TokenFileError,
    TokenHeader,
    TokenReader,
    TokenWriter,
    frames_per_packet,
)

if TYPE_CHECKING:
    from codec.model import CodecModel

Progress = Callable[[float], None]
READ_BLOCK_SECONDS = 10.0  # audio read per block, at the file's own rate


class TorchStream:
    """The torch model's streaming path with numpy in and out, as `OnnxStream` has it."""

    def __init__(self, model: CodecModel) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.delay = model.delay  # decoded audio runs this many samples late

    def encode(self, audio: np.ndarray, n_stages: int | None = None) -> np.ndarray:
        """`[C, T]` -> codes `[C, n_stages, frames]` of the frames completed."""
        import torch

        wav = torch.from_numpy(audio).to(self.device)[:, None]
        return self.model.encode(wav, n_stages=n_stages).cpu().numpy()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """codes `[C, n, frames]` -> audio `[C, frames * hop]`."""
        import torch

        return self.model.decode(torch.from_numpy(codes).to(self.device))[:, 0].cpu().numpy()


class TorchCoder:
    """A `CodecModel` seen as token files see a model; `OnnxCodec` has the same face."""

    def __init__(self, model: CodecModel) -> None:
        self.model = model
        self.sample_rate, self.hop_length = model.sample_rate, model.hop_length
        self.delay = model.delay
        self.frame_rate, self.num_stages = model.frame_rate, model.num_stages
        self.codebook_sizes = model.quantizer.codebook_sizes
        self.entropy = model.entropy
        self.bitrate = model.bitrate

    @cached_property
    def model_hash(self) -> str:
        return self.model.weights_hash()

    @contextmanager
    def streaming(self, batch_size: int) -> Iterator[TorchStream]:
        import torch

        with torch.inference_mode(), self.model.streaming(batch_size):
            yield TorchStream(self.model)


Model = Union["CodecModel", OnnxCodec]


def as_coder(model: Model) -> TorchCoder | OnnxCodec:
    """The coder of a torch model or an exported one."""
    return model if isinstance(model, OnnxCodec) else TorchCoder(model)


def stages_for_bitrate(model: Model, kbps: float) -> int:
    """The most stages whose bitrate does not exceed `kbps` (an error below one stage)."""
    fitting = [n for n in range(1, model.num_stages + 1) if model.bitrate(n) <= kbps * 1000 + 1e-6]
    if not fitting:
        lowest = model.bitrate(1) / 1000
        raise ValueError(f"{kbps:g} kbps is below this model's lowest bitrate, {lowest:.2f} kbps")
    return fitting[-1]


class _FixedChunks:
    """Re-cuts a stream of `[C, n]` arrays into chunks of exactly `size` samples."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer: list[np.ndarray] = []
        self._length = 0

    def push(self, block: np.ndarray) -> Iterator[np.ndarray]:
        self._buffer.append(block)
        self._length += block.shape[1]
        if self._length < self.size:
            return
        data = np.concatenate(self._buffer, axis=1)
        full = data.shape[1] // self.size * self.size
        yield from np.split(data[:, :full], full // self.size, axis=1)
        self._buffer, self._length = [data[:, full:]], data.shape[1] - full

    def rest(self) -> np.ndarray:
        return np.concatenate(self._buffer, axis=1)


@dataclass
class EncodeResult:
    """What `encode_file` wrote."""

    header: TokenHeader
    num_samples: int  # per channel, at the original rate
    frames: int
    short_read: str | None = None  # the audio ended before its header said (a cut-off file)

    @property
    def seconds(self) -> float:
        return self.num_samples / self.header.original_sample_rate


def _header(
    model: TorchCoder | OnnxCodec,
    model_name: str,
    n_stages: int,
    reader: AudioReader,
    entropy: EntropyModel | None,
) -> TokenHeader:
    """The header of a fixed-rate file (`entropy` None) or of one coded with `entropy`."""
    sizes = model.codebook_sizes[:n_stages]
    packet_frames = frames_per_packet(sizes, reader.channels, model.frame_rate)
    if entropy is not None:
        while entropy.max_payload(packet_frames, reader.channels, n_stages) > MAX_PAYLOAD:
            packet_frames -= 1
    return TokenHeader(
        model=model_name,
        model_hash=model.model_hash,
        sample_rate=model.sample_rate,
        hop_length=model.hop_length,
        codebook_sizes=sizes,
        original_sample_rate=reader.sample_rate,
        channels=reader.channels,
        frames_per_packet=packet_frames,
        entropy_hash=None if entropy is None else entropy.hash,
        entropy_scheme=0 if entropy is None else SCHEME,
    )


def encode_file(
    model: Model,
    model_name: str,
    source: AudioSource,
    target: BinaryIO,
    n_stages: int | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    fixed_rate: bool = False,
) -> EncodeResult:
    """Encode an audio file (path or binary stream) into a token file written to `target`.

    With `fixed_rate`, or a model without entropy tables, the file is fixed-rate (format
    version 2) and streams to `target` as it is coded. Otherwise both formats are coded in
    memory and the smaller is written: entropy-coded (version 3) when the tables save more than
    its extra framing costs, which depends on the model, the stages and the audio. The codes are
    the same either way. `progress(seconds)` is told of each block of audio read."""
    reader = AudioReader(source, name)
    model = as_coder(model)
    n = model.num_stages if n_stages is None else n_stages
    tables = [None] if fixed_rate or model.entropy is None else [None, model.entropy]
    headers = [_header(model, model_name, n, reader, entropy) for entropy in tables]
    outputs = [target] if len(tables) == 1 else [io.BytesIO() for _ in tables]
    writers = [TokenWriter(*args) for args in zip(outputs, headers, tables, strict=True)]
    resample = StreamResampler(reader.sample_rate, model.sample_rate, reader.channels)
    chunks = _FixedChunks(FILE_CHUNK_FRAMES * model.hop_length)
    num_samples = frames = 0

    def code(chunk: np.ndarray) -> None:
        nonlocal frames
        codes = stream.encode(chunk, n)
        for writer in writers:
            writer.write(codes)
        frames += codes.shape[2]

    with model.streaming(batch_size=reader.channels) as stream:
        for block in reader.blocks(round(READ_BLOCK_SECONDS * reader.sample_rate)):
            num_samples += block.shape[1]
            if progress:
                progress(block.shape[1] / reader.sample_rate)
            for chunk in chunks.push(resample(block)):
                code(chunk)
        flushed = resample(np.zeros((reader.channels, 0), np.float32), last=True)
        tail = np.concatenate([chunks.rest(), flushed], axis=1)
        # the decoder's output runs `delay` samples late: code that much more, to whole frames
        code(
            np.pad(tail, ((0, 0), (0, flush_length(tail.shape[1], model.delay, model.hop_length))))
        )
    for writer in writers:
        writer.close(num_samples)
    header = headers[0]
    if len(outputs) > 1:  # fixed-rate on a tie: it decodes faster
        sizes = [output.getbuffer().nbytes for output in outputs]
        chosen = sizes.index(min(sizes))
        target.write(outputs[chosen].getvalue())
        header = headers[chosen]
    return EncodeResult(header, num_samples, frames, reader.short_read)


ModelLoader = Callable[[TokenHeader], Model]
CONCEALMENT_FADE_SECONDS = 0.01  # audio fades out into, and in from, a damaged packet's silence


@dataclass
class DecodeResult:
    """What `decode_file` wrote, and what of the file was damaged and filled."""

    header: TokenHeader
    lost_seconds: list[tuple[float, float]]  # (start, end) of each run of damaged packets
    length_known: bool  # False: the end record was damaged, the length rounded to frames
    lost_packets: int = 0  # in those runs
    trailing_bytes: int = 0  # after the end record, skipped

    def damage(self) -> str | None:
        """One line on what was lost, or None for an intact file."""
        parts = []
        if self.lost_seconds:
            runs = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in self.lost_seconds)
            n = self.lost_packets
            parts.append(f"{n} damaged packet{'s' * (n > 1)}, silence in their place: {runs}")
        if not self.length_known:
            parts.append(
                "end record damaged or at odds with the packets: the length is rounded up to "
                "whole frames"
            )
        if self.trailing_bytes:
            n = self.trailing_bytes
            parts.append(f"{n} byte{'s' * (n > 1)} after the end record skipped")
        return "; ".join(parts) or None


def decode_file(
    source: BinaryIO,
    target: str | Path | BinaryIO,
    load_model: ModelLoader,
    name: str = "token file",
    audio_format: str = "WAV",
    progress: Progress | None = None,
) -> DecodeResult:
    """Decode a token file read from `source` into audio at the original rate and channels.

    `load_model(header)` returns the model to decode with; its weights must hash to the
    header's `model_hash`. Audio is written as packets arrive, holding back only the last
    frame's worth of samples until the end record gives the exact length. `progress(seconds)`
    is told of each packet decoded. A damaged packet costs its own frames only: they are
    written as silence (faded in and out over 10 ms, no clicks), so the output keeps its
    length and timing, and the result says where.
    """
    reader = TokenReader(source, name, salvage=True)
    header = reader.header
    model = as_coder(load_model(header))
    check_header_fits(header, model, name)
    reader.entropy = _entropy_for(model, header, name)
    rate = header.original_sample_rate
    resample = StreamResampler(model.sample_rate, rate, header.channels)
    hold = math.ceil(header.hop_length * rate / model.sample_rate) + 64
    fade = round(CONCEALMENT_FADE_SECONDS * rate)  # <= hold: the held-back audio can fade
    pending = np.zeros((header.channels, 0), dtype=np.float32)
    written = 0
    with (
        AudioWriter(target, rate, header.channels, audio_format) as out,
        model.streaming(batch_size=header.channels) as stream,
    ):
        was_lost = False
        aligned = DelayTrim(stream.delay)  # the decoder's samples from before the file began
        for codes in reader.packets():
            lost = bool(codes.size) and codes[0, 0, 0] == LOST
            if lost:  # a damaged packet: silence of the same length
                audio = np.zeros((header.channels, codes.shape[2] * header.hop_length), np.float32)
            else:
                audio = stream.decode(codes)
            audio = aligned(audio)
            if progress:
                progress(codes.shape[2] / header.frame_rate)
            audio = resample(audio)
            if lost and not was_lost:  # fade the audio held back out, into the silence
                n = min(fade, pending.shape[1])
                pending[:, pending.shape[1] - n :] *= np.linspace(1, 0, n, dtype=np.float32)
            if was_lost and not lost:  # and the audio after it back in
                n = min(fade, audio.shape[1])
                audio[:, :n] *= np.linspace(0, 1, n, dtype=np.float32)
            was_lost = lost
            pending = np.concatenate([pending, audio], axis=1)
            if pending.shape[1] > hold:
                out.write(pending[:, :-hold])
                written += pending.shape[1] - hold
                pending = pending[:, -hold:]
        pending = np.concatenate([pending, resample(pending[:, :0], last=True)], axis=1)
        total = reader.num_samples
        if total is None:  # the end record is damaged: keep every decoded sample
            total = written + pending.shape[1]
        if written > total:
            raise TokenFileError(f"{name} is corrupted (more audio than its end record says)")
        last = pending[:, : total - written]
        out.write(np.pad(last, ((0, 0), (0, total - written - last.shape[1]))))
    lost = [(f / header.frame_rate, (f + n) / header.frame_rate) for f, n in reader.lost]
    packets = sum(math.ceil(n / header.frames_per_packet) for _, n in reader.lost)
    known = reader.num_samples is not None
    return DecodeResult(header, lost, known, packets, reader.trailing)


def check_header_fits(header: TokenHeader, model: TorchCoder | OnnxCodec, name: str) -> None:
    """TokenFileError unless `model` has the weights that wrote the file and the header's
    rates, hop, stages and codes per stage are its (the hash can match while other fields lie),
    with no more channels than `codec encode` takes."""
    if model.model_hash != header.model_hash:
        raise TokenFileError(
            f"{name} was made by model {header.model!r} (weights {header.model_hash}), "
            "and the model given has other weights"
        )
    if header.channels > MAX_CHANNELS:
        raise TokenFileError(
            f"{name} is corrupted: its header says {header.channels} channels, and codec "
            f"codes at most {MAX_CHANNELS}"
        )
    n = header.n_stages
    fits = (header.sample_rate, header.hop_length) == (model.sample_rate, model.hop_length)
    if not fits or n > model.num_stages or header.codebook_sizes != model.codebook_sizes[:n]:
        raise TokenFileError(
            f"{name} is corrupted: its header ({n} stages of {header.codebook_sizes[0]} codes, "
            f"{header.sample_rate} Hz, hop {header.hop_length}) does not fit model "
            f"{header.model!r} ({model.num_stages} stages of {model.codebook_sizes[0]} codes, "
            f"{model.sample_rate} Hz, hop {model.hop_length})"
        )


def _entropy_for(model: Model | TorchCoder, header: TokenHeader, name: str) -> EntropyModel | None:
    """The entropy tables a file needs from `model` (None for fixed-rate files)."""
    if header.version < 3:
        return None
    if model.entropy is None:
        raise TokenFileError(
            f"{name} is entropy-coded, and model {header.model!r} as loaded has no entropy "
            "tables: use the checkpoint that wrote it"
        )
    return model.entropy


def read_codes(
    path: str | Path, model: Model | None = None
) -> tuple[TokenHeader, np.ndarray, int | None]:
    """Header, all codes `[channels, n_q, frames]` and sample count of a token file, read
    strictly (any damage is a TokenFileError). An entropy-coded file is read with `model`'s
    tables, or, without one, those of the zoo model its header names."""
    with open(path, "rb") as stream:
        reader = TokenReader(stream, str(path))
        if reader.header.version >= 3:
            if model is None:  # the zoo model's tables, from its exported graphs: no torch
                from codec.zoo import load_onnx

                model = load_onnx(zoo_name(reader.header, str(path)))
            reader.entropy = _entropy_for(model, reader.header, str(path))
        codes = reader.read_all()
    return reader.header, codes, reader.num_samples


def zoo_name(header: TokenHeader, name: str) -> str:
    """The zoo model that token file `name` names; TokenFileError if the zoo lacks it."""
    from codec.zoo import ARCHIVED, MODELS, resolve

    if resolve(header.model) not in MODELS | ARCHIVED:
        raise TokenFileError(
            f"{name} was made with model {header.model!r}, which is not in the model zoo: "
            "pass --model with that checkpoint"
        )
    return header.model

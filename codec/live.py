"""Live streaming: raw PCM in, one small packet per 20 ms (or per `--packet-ms`) out, as soon as
it is complete; packets in, audio out frame by frame, with lost packets concealed.

A live stream is not a token file: packets carry no checksum (4 bytes on every 20 ms packet
would cost 1.6 kbps; the transport checks integrity) and no length (every packet of a stream has
the same size). The layout is in docs/token-format.md:

    b"CDCS", version u8, header length u16, header (the token file's binary header, version 2),
    CRC-32 of the header u32; then per packet one byte `lost << 7 | sequence % 128` and, unless
    `lost` is set, the packed codes of `frames_per_packet` frames (fixed-rate mixed radix).

A missing sequence number, or a record with `lost` set (written by a relay that knows a packet
was lost), makes the decoder conceal that packet's frames: it decodes the last frame it received
again (the decoder's state runs on) and fades the output out over `FADE_FRAMES` frames, then
back in when packets return. The output stays time-aligned: every frame gives `hop` samples.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from codec.runtime import DelayTrim, flush_length
from codec.tokens import TokenFileError, TokenHeader, pack, packed_size, parse_header, unpack

MAGIC = b"CDCS"
VERSION = 1
LOST_FLAG = 0x80
SEQUENCE_MODULO = 128
FADE_FRAMES = 5  # concealment fades to silence over 100 ms at 20 ms frames


def stream_header_bytes(header: TokenHeader) -> bytes:
    """The bytes that open a live stream."""
    body = header.to_bytes()
    return (
        MAGIC + struct.pack("<BH", VERSION, len(body)) + body + struct.pack("<I", zlib.crc32(body))
    )


def read_stream_header(stream: BinaryIO) -> TokenHeader:
    """Read and check the opening bytes of a live stream."""
    start = stream.read(len(MAGIC) + 3)
    if len(start) < len(MAGIC) + 3 or start[: len(MAGIC)] != MAGIC:
        raise TokenFileError("not a codec live stream (expected the bytes `CDCS` first)")
    version, length = struct.unpack("<BH", start[len(MAGIC) :])
    if version > VERSION:
        raise TokenFileError(f"live stream version {version}: upgrade codec")
    body, crc = stream.read(length), stream.read(4)
    if len(body) != length or len(crc) != 4 or zlib.crc32(body) != struct.unpack("<I", crc)[0]:
        raise TokenFileError("the live stream's header is damaged")
    header = parse_header(body, 2, "the live stream")
    if header.channels != 1:
        raise TokenFileError(f"the live stream's header says {header.channels} channels: it has 1")
    return header


def payload_bytes(header: TokenHeader) -> int:
    """Bytes of one packet's codes."""
    return packed_size(header.codebook_sizes, header.frames_per_packet)


def packet_bytes(sequence: int, codes: np.ndarray, header: TokenHeader) -> bytes:
    """One packet: codes `[n_q, frames_per_packet]` of one channel."""
    body = pack(codes.T[:, None, :], header.codebook_sizes)
    return bytes([sequence % SEQUENCE_MODULO]) + body


class LiveEncoder:
    """Audio in as it arrives, packets out as each is complete, through an encoder `stream`
    (`TorchStream` or `OnnxStream`, one channel) of `coder`."""

    def __init__(self, coder, stream, model_name: str, n_stages: int, packet_frames: int) -> None:
        self.stream, self.n_stages, self.frames = stream, n_stages, packet_frames
        self.header = TokenHeader(
            model=model_name, model_hash=coder.model_hash, sample_rate=coder.sample_rate,
            hop_length=coder.hop_length, codebook_sizes=coder.codebook_sizes[:n_stages],
            original_sample_rate=coder.sample_rate, channels=1, frames_per_packet=packet_frames,
        )  # fmt: skip
        self.packet_samples = packet_frames * coder.hop_length
        self.delay = coder.delay  # the decoder's output runs this late: the end flushes it
        self.pending = np.zeros((1, n_stages, 0), np.int64)
        self.samples = self.sequence = 0

    def header_bytes(self) -> bytes:
        return stream_header_bytes(self.header)

    def push(self, audio: np.ndarray, last: bool = False) -> list[bytes]:
        """The packets that `audio` `[T]` float32 completes; `last` zero-pads the stream by the
        decoder's delay and to whole packets, and sends the rest."""
        self.samples += len(audio)
        if last:
            audio = np.pad(audio, (0, flush_length(self.samples, self.delay, self.packet_samples)))
        codes = self.stream.encode(audio[None].astype(np.float32, copy=False), self.n_stages)
        self.pending = np.concatenate([self.pending, codes], axis=2)
        packets = []
        while self.pending.shape[2] >= self.frames:
            codes, self.pending = np.split(self.pending, [self.frames], axis=2)
            packets.append(packet_bytes(self.sequence, codes[0], self.header))
            self.sequence += 1
        return packets


@dataclass
class Record:
    """A packet as read: its sequence number and codes `[n_q, frames]`, None when marked lost."""

    sequence: int
    codes: np.ndarray | None


def read_packets(stream: BinaryIO, header: TokenHeader) -> Iterator[Record]:
    """The packets of a live stream as they arrive (each read blocks until it is complete)."""
    size = payload_bytes(header)
    frames = header.frames_per_packet
    while True:
        first = stream.read(1)
        if not first:
            return
        sequence = first[0] & (SEQUENCE_MODULO - 1)
        if first[0] & LOST_FLAG:
            yield Record(sequence, None)
            continue
        body = stream.read(size)
        if len(body) < size:
            return  # the stream was cut inside a packet: it is not played
        codes = unpack(body, header.codebook_sizes, frames, 1)[:, 0, :].T
        yield Record(sequence, codes)


class Concealer:
    """Decodes packets in order and fills the ones lost: see the module's docstring.

    `stream` is a decoder stream (`TorchStream` or `OnnxStream`) of one channel."""

    def __init__(self, stream, header: TokenHeader) -> None:
        self.stream, self.header = stream, header
        self.hop = header.hop_length
        self.last: np.ndarray | None = None  # codes [n_q, 1] of the last frame received
        self.lost_run = 0  # frames concealed in a row

    def _gain(self, k: int) -> float:
        return max(0.0, 1.0 - k / FADE_FRAMES)

    def received(self, codes: np.ndarray) -> np.ndarray:
        """Audio `[frames * hop]` of a packet's codes `[n_q, frames]`."""
        audio = self.stream.decode(codes[None])[0]
        if self.lost_run:  # fade back in over the first frame, from where concealment was
            ramp = np.linspace(self._gain(self.lost_run), 1.0, self.hop, dtype=np.float32)
            audio[: self.hop] *= ramp
        self.last, self.lost_run = codes[:, -1:], 0
        return audio

    def lost(self, frames: int) -> np.ndarray:
        """Audio `[frames * hop]` in place of `frames` lost frames."""
        out = []
        for _ in range(frames):
            if self.last is None:  # nothing received yet: silence
                out.append(np.zeros(self.hop, np.float32))
                continue
            audio = self.stream.decode(self.last[None])[0]
            start, end = self._gain(self.lost_run), self._gain(self.lost_run + 1)
            out.append(audio * np.linspace(start, end, self.hop, dtype=np.float32))
            self.lost_run += 1
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def decode_packets(
    records: Iterator[Record], stream, header: TokenHeader, drop: np.random.Generator | None = None,
    loss_rate: float = 0.0,
) -> Iterator[tuple[np.ndarray, bool]]:  # fmt: skip
    """Audio for each packet as it arrives, and whether it was concealed: gaps in the sequence
    and records marked lost are filled; with `drop`, each packet is also dropped with
    probability `loss_rate` (a simulated lossy channel). The decoder's first `stream.delay`
    samples, from before the stream began, are left out, so the output aligns with the input."""
    conceal = Concealer(stream, header)
    frames = header.frames_per_packet
    expected = None
    aligned = DelayTrim(stream.delay)
    for record in records:
        if expected is not None:
            gap = (record.sequence - expected) % SEQUENCE_MODULO
            if gap:
                yield aligned(conceal.lost(gap * frames)), True
        expected = (record.sequence + 1) % SEQUENCE_MODULO
        dropped = drop is not None and drop.random() < loss_rate
        if record.codes is None or dropped:
            yield aligned(conceal.lost(frames)), True
        else:
            yield aligned(conceal.received(record.codes)), False

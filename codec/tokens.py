"""The token file: versioned bytes holding a model's codes, packet by packet (never pickle).

Layout (little-endian; `docs/token-format.md` is the reference):
  magic b"CDCT", u8 format version, u16 header length, header, u32 CRC32 of the header
  (version 2: a packed binary header of about 45 bytes; version 1, still read: JSON);
  packets, each: b"P", u8 frames, the packed codes, u32 CRC32 of tag..codes;
  end: b"E", u64 samples per channel at the original rate, u32 CRC32 of tag..samples.
The codes of a packet, frame by frame, channel by channel, stage by stage, are one mixed-radix
number (first digit least significant) written in the fewest whole bytes.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

MAGIC = b"CDCT"
VERSION = 2
# version 2 header: model name (u8 length + UTF-8), 8-byte weights hash, then these fields,
# then one u16 alphabet size per stage
HEADER_FIELDS = struct.Struct("<IHIBBB")  # sample_rate hop orig_rate channels frames n_stages
PACKET, END = b"P", b"E"
MIN_PACKET_SECONDS = 1.0
MIN_PACKET_BYTES = 320  # keeps per-packet framing (6 bytes) under 2% of the payload
MAX_PACKET_FRAMES = 255
END_RECORD_BYTES = 13  # b"E", u64 samples, u32 CRC
PACKET_FRAMING = 6  # b"P", u8 frames, ..., u32 CRC
LOST = -1  # the code of every frame of a damaged packet, when a reader salvages


class TokenFileError(ValueError):
    """A token file that cannot be read: truncated, corrupted, foreign or too new."""


@dataclass(frozen=True)
class TokenHeader:
    """What a decoder needs to know before the first packet."""

    model: str  # zoo name, or the checkpoint's file name
    model_hash: str  # of the weights: a file decodes only with the model that made it
    sample_rate: int  # of the model
    hop_length: int  # model samples per frame
    codebook_sizes: list[int]  # alphabet size of each stage used
    original_sample_rate: int
    channels: int
    frames_per_packet: int

    @property
    def n_stages(self) -> int:
        return len(self.codebook_sizes)

    def to_bytes(self) -> bytes:
        """The version-2 binary header."""
        name = self.model.encode()
        if len(name) > 255:
            raise ValueError(f"model name {self.model[:40]!r}... is over 255 bytes")
        if max(self.codebook_sizes) > 0xFFFF or self.channels > 255:
            raise ValueError("token files hold alphabets of up to 65535 codes and 255 channels")
        fields = HEADER_FIELDS.pack(
            self.sample_rate,
            self.hop_length,
            self.original_sample_rate,
            self.channels,
            self.frames_per_packet,
            self.n_stages,
        )
        sizes = struct.pack(f"<{self.n_stages}H", *self.codebook_sizes)
        return bytes([len(name)]) + name + bytes.fromhex(self.model_hash) + fields + sizes

    @classmethod
    def from_bytes(cls, data: bytes, version: int) -> TokenHeader:
        """Parse a header of format `version` (2: binary, 1: JSON); ValueError if malformed."""
        if version == 1:
            return cls(**json.loads(data))
        if version != 2:
            raise ValueError(f"unknown format version {version}")
        end = 1 + data[0]
        model = data[1:end].decode()
        model_hash = data[end : end + 8].hex()
        rate, hop, original, channels, frames, n = HEADER_FIELDS.unpack_from(data, end + 8)
        start = end + 8 + HEADER_FIELDS.size
        if len(data) != start + 2 * n:
            raise ValueError("header length does not match its fields")
        sizes = list(struct.unpack_from(f"<{n}H", data, start))
        return cls(model, model_hash, rate, hop, sizes, original, channels, frames)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def bitrate(self) -> float:
        """Nominal bits per second of all channels."""
        return self.frame_rate * self.channels * sum(math.log2(k) for k in self.codebook_sizes)


def frames_per_packet(codebook_sizes: list[int], channels: int, frame_rate: float) -> int:
    """About one second of frames, more when that would give packets under MIN_PACKET_BYTES."""
    bits_per_frame = channels * sum(math.log2(k) for k in codebook_sizes)
    frames = max(
        math.ceil(MIN_PACKET_SECONDS * frame_rate), math.ceil(8 * MIN_PACKET_BYTES / bits_per_frame)
    )
    return min(frames, MAX_PACKET_FRAMES)


def packed_size(n_digits_per_frame: list[int], frames: int) -> int:
    """Bytes taken by `frames` frames whose digits have radices `n_digits_per_frame`."""
    capacity = math.prod(n_digits_per_frame) ** frames
    return max(1, ((capacity - 1).bit_length() + 7) // 8)


def pack(codes: np.ndarray, radices: list[int]) -> bytes:
    """Codes `[frames, channels, n_q]` (each < the radix of its stage) -> mixed-radix bytes."""
    flat_radices = radices * (codes.size // len(radices))
    value = 0
    for digit, radix in zip(
        reversed(codes.reshape(-1).tolist()), reversed(flat_radices), strict=True
    ):
        value = value * radix + digit
    return value.to_bytes(packed_size(radices * codes.shape[1], codes.shape[0]), "little")


def unpack(data: bytes, radices: list[int], frames: int, channels: int) -> np.ndarray:
    """Inverse of `pack`: bytes -> codes `[frames, channels, n_q]` int64."""
    value = int.from_bytes(data, "little")
    digits = []
    for _ in range(frames * channels):
        for radix in radices:
            value, digit = divmod(value, radix)
            digits.append(digit)
    if value:
        raise TokenFileError("a packet's codes are out of range: the file is corrupted")
    return np.array(digits, dtype=np.int64).reshape(frames, channels, len(radices))


class TokenWriter:
    """Writes a header, then codes as they come, in packets; `close` writes the end record."""

    def __init__(self, stream: BinaryIO, header: TokenHeader) -> None:
        self.stream = stream
        self.header = header
        self._pending: list[np.ndarray] = []  # [frames, channels, n_q] blocks not yet written
        payload = header.to_bytes()
        stream.write(MAGIC + struct.pack("<BH", VERSION, len(payload)) + payload)
        stream.write(struct.pack("<I", zlib.crc32(payload)))

    def write(self, codes: np.ndarray) -> None:
        """Append codes `[channels, n_q, frames]`."""
        if codes.shape[:2] != (self.header.channels, self.header.n_stages):
            raise ValueError(f"codes of shape {codes.shape} do not match the header")
        self._pending.append(np.transpose(codes, (2, 0, 1)))
        buffered = np.concatenate(self._pending)
        size = self.header.frames_per_packet
        full = buffered.shape[0] // size * size
        for start in range(0, full, size):
            self._write_packet(buffered[start : start + size])
        self._pending = [buffered[full:]]

    def close(self, num_samples: int) -> None:
        """Flush the last (short) packet; record the original length in samples per channel."""
        rest = np.concatenate(self._pending) if self._pending else np.zeros((0,))
        if rest.shape[0]:
            self._write_packet(rest)
        self._pending = []
        record = END + struct.pack("<Q", num_samples)
        self.stream.write(record + struct.pack("<I", zlib.crc32(record)))

    def _write_packet(self, codes: np.ndarray) -> None:
        record = (
            PACKET + struct.pack("<B", codes.shape[0]) + pack(codes, self.header.codebook_sizes)
        )
        self.stream.write(record + struct.pack("<I", zlib.crc32(record)))


class TokenReader:
    """Reads a token file from a binary stream, checking every checksum as it goes.

    `header` is read at once; iterate `packets()` for codes `[channels, n_q, frames]`; after
    the last packet `num_samples` holds the original length. Every defect is a TokenFileError,
    except with `salvage`: then a damaged packet comes out as `LOST` codes for its frames and is
    listed in `lost` as (first frame, frames), and a damaged end record leaves `num_samples`
    None. A damaged header or a truncated file (its last packet and end record both broken) is
    an error either way.

    Every packet but the last holds `frames_per_packet` frames, so packet k starts at a known
    offset: a flipped bit costs its own packet only, even one in a packet's length byte.
    """

    def __init__(self, stream: BinaryIO, name: str = "token file", salvage: bool = False) -> None:
        self.stream = stream
        self.name = name
        self.salvage = salvage
        self.num_samples: int | None = None
        self.lost: list[tuple[int, int]] = []
        self.header = self._read_header()

    def _read(self, n: int, what: str) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise TokenFileError(f"{self.name} is truncated (it ends inside the {what})")
        return data

    def _read_header(self) -> TokenHeader:
        start = self.stream.read(len(MAGIC))
        if not start:
            raise TokenFileError(f"{self.name} is empty")
        if len(start) < len(MAGIC) and MAGIC.startswith(start):
            raise TokenFileError(f"{self.name} is truncated (it ends inside the magic bytes)")
        if start != MAGIC:
            raise TokenFileError(f"{self.name} is not a codec token file")
        version, length = struct.unpack("<BH", self._read(3, "header"))
        if version > VERSION:
            raise TokenFileError(
                f"{self.name} has token format version {version}; this codec reads up to "
                f"{VERSION}: upgrade codec"
            )
        payload = self._read(length, "header")
        (crc,) = struct.unpack("<I", self._read(4, "header"))
        if zlib.crc32(payload) != crc:
            raise TokenFileError(f"{self.name} is corrupted (header checksum mismatch)")
        try:
            return TokenHeader.from_bytes(payload, version)
        except (ValueError, TypeError, IndexError, struct.error) as error:
            raise TokenFileError(f"{self.name} has an unreadable header ({error})") from error

    def _record_bytes(self, frames: int) -> int:
        per_frame = self.header.codebook_sizes * self.header.channels
        return PACKET_FRAMING + packed_size(per_frame, frames)

    def _fill(self, buffer: bytes, size: int) -> bytes:
        """`buffer` read on to `size` bytes, or to the end of the stream."""
        while len(buffer) < size:
            more = self.stream.read(size - len(buffer))
            if not more:
                break
            buffer += more
        return buffer

    def packets(self) -> Iterator[np.ndarray]:
        """Codes `[channels, n_q, frames]` of each packet, in order."""
        full = self._record_bytes(self.header.frames_per_packet)
        buffer, index, frame = b"", 0, 0
        while True:
            buffer = self._fill(buffer, full + END_RECORD_BYTES + 1)
            if len(buffer) > full + END_RECORD_BYTES:  # a whole packet with more behind it
                record, buffer = buffer[:full], buffer[full:]
                codes = self._packet(record, index, frame, self.header.frames_per_packet)
            else:  # the tail: the last packet, if any, and the end record
                record, end = self._split_tail(buffer)
                ended = self._end_record(end)
                if record:
                    frames = self._tail_frames(record)
                    codes = self._packet(record, index, frame, frames)
                    if not ended and self.lost[-1:] == [(frame, frames)]:  # neither end is whole
                        raise TokenFileError(f"{self.name} is truncated (no end record)")
                    yield codes
                return
            yield codes
            index += 1
            frame += codes.shape[2]

    def _split_tail(self, tail: bytes) -> tuple[bytes, bytes]:
        if not tail:
            raise TokenFileError(f"{self.name} is truncated (no end record)")
        if self.salvage:  # trust the lengths, not the bytes that give them
            if len(tail) < END_RECORD_BYTES:
                raise TokenFileError(f"{self.name} is truncated (no end record)")
            return tail[:-END_RECORD_BYTES], tail[-END_RECORD_BYTES:]
        if tail[:1] == END:
            return b"", tail
        size = self._record_bytes(tail[1]) if len(tail) > 1 else len(tail) + 1
        if len(tail) < size + END_RECORD_BYTES:
            raise TokenFileError(f"{self.name} is truncated (no end record)")
        return tail[:size], tail[size:]

    def _tail_frames(self, record: bytes) -> int:
        """Frames of the last packet: its length byte, or (damaged) what its size implies."""
        if self._record_bytes(record[1]) == len(record):
            return record[1]
        fits = [f for f in range(1, MAX_PACKET_FRAMES + 1) if self._record_bytes(f) == len(record)]
        if not fits:
            raise TokenFileError(f"{self.name} is corrupted (its last packet has no valid size)")
        return fits[-1]

    def _packet(self, record: bytes, index: int, frame: int, frames: int) -> np.ndarray:
        header = self.header
        (crc,) = struct.unpack("<I", record[-4:])
        intact = record[:1] == PACKET and record[1] == frames and zlib.crc32(record[:-4]) == crc
        if intact:
            try:
                codes = unpack(record[2:-4], header.codebook_sizes, frames, header.channels)
                return np.transpose(codes, (1, 2, 0))
            except TokenFileError:
                intact = False
        if not self.salvage:
            raise TokenFileError(f"{self.name} is corrupted (packet {index} checksum mismatch)")
        self.lost.append((frame, frames))
        return np.full((header.channels, header.n_stages, frames), LOST, dtype=np.int64)

    def _end_record(self, end: bytes) -> bool:
        """Read the end record into `num_samples`; False if it is damaged (salvaging)."""
        if len(end) > END_RECORD_BYTES:
            raise TokenFileError(f"{self.name} is corrupted (bytes after the end record)")
        (crc,) = struct.unpack("<I", end[-4:])
        if end[:1] == END and zlib.crc32(end[:-4]) == crc:
            (self.num_samples,) = struct.unpack("<Q", end[1:-4])
            return True
        if not self.salvage:
            raise TokenFileError(f"{self.name} is corrupted (end record checksum mismatch)")
        return False

    def read_all(self) -> np.ndarray:
        """All codes `[channels, n_q, frames]` (and sets `num_samples`)."""
        blocks = list(self.packets())
        if not blocks:
            return np.zeros((self.header.channels, self.header.n_stages, 0), dtype=np.int64)
        return np.concatenate(blocks, axis=2)

"""The token file: versioned bytes holding a model's codes, packet by packet (never pickle).

Layout (little-endian; `docs/token-format.md` is the reference):
  magic b"CDCT", u8 format version, u16 header length, header, u32 CRC32 of the header
  (a packed binary header of about 45 bytes, 54 in version 3; version 1, still read: JSON);
  version 3 (entropy-coded) packets: b"P", u16 sequence number, u8 frames, u16 payload size,
  the payload (`codec.entropy`), u32 CRC32 of tag..payload; end: b"E", u64 samples per channel
  at the original rate, u32 frames, u32 CRC32 of tag..frames;
  version 2 (fixed-rate) packets: b"P", u8 frames, the codes as one mixed-radix number (first
  digit least significant) in the fewest whole bytes, u32 CRC32; end: b"E", u64 samples, CRC.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from codec.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from codec.entropy import SCHEME, EntropyCodingError, EntropyModel

MAGIC = b"CDCT"
VERSION = 3  # the newest this module reads; it writes 3 with entropy tables, 2 without
# version 2 header: model name (u8 length + UTF-8), 8-byte weights hash, then these fields,
# then one u16 alphabet size per stage
HEADER_FIELDS = struct.Struct("<IHIBBB")  # sample_rate hop orig_rate channels frames n_stages
PACKET, END = b"P", b"E"
MIN_PACKET_SECONDS = 1.0
MIN_PACKET_BYTES = 320  # keeps per-packet framing (6 bytes) under 2% of the payload
MAX_PACKET_FRAMES = 255
END_RECORD_BYTES = 13  # b"E", u64 samples, u32 CRC
PACKET_FRAMING = 6  # b"P", u8 frames, ..., u32 CRC
CODED_PACKET = struct.Struct("<cHBH")  # version 3: b"P", sequence, frames, payload size
CODED_END = struct.Struct("<cQI")  # version 3: b"E", samples, frames
MAX_PAYLOAD = 0xFFFF
MIN_PAYLOAD = 5  # version 3: the coder's final state, at least 5 bytes
MAX_PACKET_BITS = 1 << 20  # a fixed-rate packet's codes: at most 128 KiB (unpacking costs
# the square of a packet's size: about 0.3 s at this size)
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
    entropy_hash: str | None = None  # version 3: the entropy tables that coded the packets
    entropy_scheme: int = 0

    @property
    def n_stages(self) -> int:
        return len(self.codebook_sizes)

    @property
    def version(self) -> int:
        return 2 if self.entropy_hash is None else 3

    def to_bytes(self) -> bytes:
        """The binary header (version 2, and version 3 with the entropy tables' scheme and
        hash after it)."""
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
        coding = b""
        if self.entropy_hash is not None:
            coding = bytes([self.entropy_scheme]) + bytes.fromhex(self.entropy_hash)
        return bytes([len(name)]) + name + bytes.fromhex(self.model_hash) + fields + sizes + coding

    def check(self) -> None:
        """ValueError unless every field is of its type and within the format's limits, so
        that what a reader allocates and computes is bounded by the file's own size."""
        numbers = [self.sample_rate, self.hop_length, self.original_sample_rate, self.channels]
        numbers += [self.frames_per_packet, self.entropy_scheme]
        sizes = self.codebook_sizes
        if not (
            isinstance(self.model, str)
            and isinstance(self.model_hash, str)
            and isinstance(sizes, list)
            and all(type(n) is int for n in [*numbers, *sizes])
            and (self.entropy_hash is None or isinstance(self.entropy_hash, str))
        ):
            raise ValueError("a field holds a value of the wrong type")
        limits = [
            ("model sample rate", self.sample_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
            ("hop length", self.hop_length, 1, self.sample_rate),
            ("original sample rate", self.original_sample_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
            ("channels", self.channels, 1, 255),
            ("frames per packet", self.frames_per_packet, 1, MAX_PACKET_FRAMES),
            ("stages", len(sizes), 1, 255),
            ("codes per stage", min(sizes, default=2), 2, 0xFFFF),
            ("codes per stage", max(sizes, default=2), 2, 0xFFFF),
        ]
        for what, value, low, high in limits:
            if not low <= value <= high:
                raise ValueError(f"{what} {value} is outside {low}..{high}")
        if self.entropy_hash is not None and self.entropy_scheme != SCHEME:
            raise ValueError(
                f"entropy-coding scheme {self.entropy_scheme} is unknown (this codec reads "
                f"scheme {SCHEME}): upgrade codec"
            )
        bits = self.frames_per_packet * self.channels * sum(math.log2(k) for k in sizes)
        if bits > MAX_PACKET_BITS:
            raise ValueError(f"a packet would take {bits / 8:.0f} bytes, over 128 KiB")

    @classmethod
    def from_bytes(cls, data: bytes, version: int) -> TokenHeader:
        """Parse a header of format `version` (2, 3: binary, 1: JSON) and `check` it;
        ValueError if malformed."""
        if version == 1:
            fields = json.loads(data)
            if not isinstance(fields, dict):
                raise ValueError("a version-1 header is a JSON object")
            header = cls(**fields)
            header.check()
            return header
        if version not in (2, 3):
            raise ValueError(f"unknown format version {version}")
        end = 1 + data[0]
        model = data[1:end].decode()
        model_hash = data[end : end + 8].hex()
        rate, hop, original, channels, frames, n = HEADER_FIELDS.unpack_from(data, end + 8)
        start = end + 8 + HEADER_FIELDS.size
        coding = 9 if version == 3 else 0
        if len(data) != start + 2 * n + coding:
            raise ValueError("header length does not match its fields")
        sizes = list(struct.unpack_from(f"<{n}H", data, start))
        header = cls(model, model_hash, rate, hop, sizes, original, channels, frames)
        if version == 3:
            scheme, digest = data[start + 2 * n], data[start + 2 * n + 1 :].hex()
            header = dataclasses.replace(header, entropy_hash=digest, entropy_scheme=scheme)
        header.check()
        return header

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
    if bits_per_frame > MAX_PACKET_BITS:
        raise ValueError(f"a frame of {bits_per_frame / 8:.0f} bytes: over a packet's 128 KiB")
    return min(frames, MAX_PACKET_FRAMES, int(MAX_PACKET_BITS // bits_per_frame))


def packed_size(n_digits_per_frame: list[int], frames: int) -> int:
    """Bytes taken by `frames` frames whose digits have radices `n_digits_per_frame`: exact,
    and refused (ValueError) beyond MAX_PACKET_BITS before any large number is formed, so
    its cost is bounded whatever a header says."""
    if frames * sum(math.log2(r) for r in n_digits_per_frame) > MAX_PACKET_BITS + 1:
        raise ValueError("a packet of over 128 KiB")
    capacity = math.prod(n_digits_per_frame) ** frames
    return max(1, ((capacity - 1).bit_length() + 7) // 8)


def pack(codes: np.ndarray, radices: list[int]) -> bytes:
    """Codes `[frames, channels, n_q]` (each < the radix of its stage) -> mixed-radix bytes."""
    value = _number(codes.reshape(-1).tolist(), radices, codes.size // len(radices), {})
    return value.to_bytes(packed_size(radices * codes.shape[1], codes.shape[0]), "little")


def _number(digits: list[int], radices: list[int], groups: int, powers: dict[int, int]) -> int:
    """The number whose digits (first least significant) are `digits`, in `groups` repeats of
    `radices`: built by halves, as `_digits` takes it apart."""
    if groups <= 8:
        value = 0
        for digit, radix in zip(reversed(digits), reversed(radices * groups), strict=True):
            value = value * radix + digit
        return value
    low = groups // 2
    split = low * len(radices)
    high = _number(digits[split:], radices, groups - low, powers)
    return _number(digits[:split], radices, low, powers) + _power(radices, low, powers) * high


def unpack(data: bytes, radices: list[int], frames: int, channels: int) -> np.ndarray:
    """Inverse of `pack`: bytes -> codes `[frames, channels, n_q]` int64."""
    digits = _digits(int.from_bytes(data, "little"), radices, frames * channels, {})
    return np.array(digits, dtype=np.int64).reshape(frames, channels, len(radices))


def _digits(value: int, radices: list[int], groups: int, powers: dict[int, int]) -> list[int]:
    """The digits of `value` in `groups` repeats of `radices`, first digit least significant.
    Halving (one division by the lower half's radix product, then each half) costs a few
    divisions of large numbers, where one division per digit would cost the square of the
    packet's size in as many steps as it has digits; `powers` caches those products."""
    if groups <= 8:
        digits = []
        for _ in range(groups):
            for radix in radices:
                value, digit = divmod(value, radix)
                digits.append(digit)
        if value:
            raise TokenFileError("a packet's codes are out of range: the file is corrupted")
        return digits
    low = groups // 2
    high, rest = divmod(value, _power(radices, low, powers))
    return _digits(rest, radices, low, powers) + _digits(high, radices, groups - low, powers)


def _power(radices: list[int], groups: int, powers: dict[int, int]) -> int:
    """The product of `groups` repeats of `radices`, kept in `powers`."""
    if groups not in powers:
        powers[groups] = math.prod(radices) ** groups
    return powers[groups]


def parse_header(payload: bytes, version: int, name: str) -> TokenHeader:
    """`TokenHeader.from_bytes`, every way a header can be malformed one TokenFileError."""
    try:
        return TokenHeader.from_bytes(payload, version)
    except (ValueError, TypeError, IndexError, struct.error, RecursionError) as error:
        reason = "nested too deep" if isinstance(error, RecursionError) else error
        raise TokenFileError(f"{name} has an unreadable header ({reason})") from None


class TokenWriter:
    """Writes a header, then codes as they come, in packets; `close` writes the end record.

    A header with an `entropy_hash` makes a version-3 file, coded with `entropy` (the tables
    of that hash); without one, a version-2 fixed-rate file."""

    def __init__(
        self, stream: BinaryIO, header: TokenHeader, entropy: EntropyModel | None = None
    ) -> None:
        if header.entropy_hash is not None and (
            entropy is None or entropy.hash != header.entropy_hash
        ):
            raise ValueError("a version-3 header needs the entropy tables it names")
        self.stream = stream
        self.header = header
        self.entropy = entropy if header.entropy_hash is not None else None
        self._pending: list[np.ndarray] = []  # [frames, channels, n_q] blocks not yet written
        self._packets = self._frames = 0
        payload = header.to_bytes()
        stream.write(MAGIC + struct.pack("<BH", header.version, len(payload)) + payload)
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
        if self.entropy is None:
            record = END + struct.pack("<Q", num_samples)
        else:
            record = CODED_END.pack(END, num_samples, self._frames)
        self.stream.write(record + struct.pack("<I", zlib.crc32(record)))

    def _write_packet(self, codes: np.ndarray) -> None:
        """Codes `[frames, channels, n_q]`."""
        frames = codes.shape[0]
        if self.entropy is None:
            record = PACKET + struct.pack("<B", frames) + pack(codes, self.header.codebook_sizes)
        else:
            payload = self.entropy.encode(codes)
            if len(payload) > MAX_PAYLOAD:
                raise ValueError("a packet's payload is over 64 KiB: use fewer frames a packet")
            sequence = self._packets & 0xFFFF
            record = CODED_PACKET.pack(PACKET, sequence, frames, len(payload)) + payload
        self.stream.write(record + struct.pack("<I", zlib.crc32(record)))
        self._packets += 1
        self._frames += frames


def token_file_bytes(
    header: TokenHeader, codes: np.ndarray, num_samples: int, entropy: EntropyModel | None = None
) -> bytes:
    """A whole token file in memory, from codes `[channels, n_q, frames]`."""
    buffer = io.BytesIO()
    writer = TokenWriter(buffer, header, entropy)
    writer.write(codes)
    writer.close(num_samples)
    return buffer.getvalue()


class TokenReader:
    """Reads a token file from a binary stream, checking every checksum as it goes.

    `header` is read at once; iterate `packets()` for codes `[channels, n_q, frames]`; after
    the last packet `num_samples` holds the original length. Every defect is a TokenFileError,
    except with `salvage`: then a damaged packet comes out as `LOST` codes for its frames and is
    listed in `lost` as (first frame, frames); a damaged end record leaves `num_samples` None;
    bytes after an intact end record (a second file appended, say) are skipped and counted in
    `trailing`. A damaged header, or a file with no end record (truncated), is an error either
    way.

    Every packet but the last holds `frames_per_packet` frames. After damage the reader finds
    the next intact record by its checksum, wherever it starts, so flipped bits and inserted
    or deleted bytes cost only the packets they touch. Version 3 (entropy-coded, packets of
    varying size, needs `entropy`, the tables the header names) numbers its packets, which
    says how many were lost; versions 1 and 2 (fixed-rate) do not, and the count comes from
    the distance to the next intact packet in whole packets (exact for damage under half a
    packet), and at the end from the end record's length. Frames lost are never more than the
    damaged bytes could have held, so the output stays bounded by the file's size.
    """

    def __init__(
        self,
        stream: BinaryIO,
        name: str = "token file",
        salvage: bool = False,
        entropy: EntropyModel | None = None,
    ) -> None:
        self.stream = stream
        self.name = name
        self.salvage = salvage
        self.entropy = entropy
        self.num_samples: int | None = None
        self.lost: list[tuple[int, int]] = []
        self.trailing = 0
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
        return parse_header(payload, version, self.name)

    def packets(self) -> Iterator[np.ndarray]:
        """Codes `[channels, n_q, frames]` of each packet, in order."""
        yield from self._packets(decode=True)

    def count_frames(self) -> int:
        """Read to the end, checking every record, without decoding codes; the frame count."""
        return sum(codes.shape[2] for codes in self._packets(decode=False))

    def _packets(self, decode: bool) -> Iterator[np.ndarray]:
        """Without `decode`, each packet comes out as zeros of its shape."""
        header = self.header
        coded = header.version == 3
        if decode and coded and self.entropy is None:
            raise TokenFileError(f"{self.name} is entropy-coded: reading it needs its model")
        if decode and coded and self.entropy.hash != header.entropy_hash:
            raise TokenFileError(
                f"{self.name} was coded with entropy tables {header.entropy_hash}, and the model "
                f"given has tables {self.entropy.hash}"
            )
        records = _Records(self.stream, header, self._max_payload(), self.salvage)
        expected = frame = 0  # the next packet's number and first frame
        spare = 0  # packets that the bytes skipped could have held, beyond those counted lost
        while True:
            found = records.here(expected)
            if found is None or (found.tag == PACKET and found.index != expected):
                if not self.salvage:
                    raise TokenFileError(f"{self.name} is {records.damage(expected)}")
                found = records.resync(expected)
                if found is None:
                    if not records.damaged_end():
                        raise TokenFileError(f"{self.name} is truncated (no end record)")
                    return  # the end record alone is damaged: the length stays unknown
                spare += records.most_packets(found)
                if found.tag == PACKET:
                    lost = min(found.index - expected, spare)
                    yield from self._lost(frame, lost * header.frames_per_packet)
                    frame += lost * header.frames_per_packet
                    expected, spare = found.index, spare - lost
            if found.tag == END:
                most = spare * header.frames_per_packet
                yield from self._end(found, frame, most, records.resynced)
                self.trailing = records.trailing
                return
            if decode:
                codes = self._decoded(found.payload, found.frames)
                yield from [codes] if codes is not None else self._lost(frame, found.frames)
            else:
                yield np.zeros((header.channels, header.n_stages, found.frames), dtype=np.int64)
            records.accept(found)
            expected += 1
            frame += found.frames

    def _end(self, end: _Record, frame: int, most: int, damaged: bool) -> Iterator[np.ndarray]:
        """Check the end record against the `frame` frames read, and set `num_samples`.
        Salvaging a `damaged` file, the frames the record counts beyond those come out `LOST`,
        as many as the damaged bytes had room for (`most`); where the two still disagree,
        the frames read stand and the length stays unknown."""
        exact = end.frames is not None  # version 3 counts frames, 1 and 2 only samples
        total = end.frames if exact else self._frames_for(end.samples)
        slack = 0 if exact else 1  # frames from samples: to within one
        missing = total - frame
        wrong = f"{self.name} is corrupted (its {'frame' if exact else 'sample'} count is wrong)"
        if exact and abs(total - self._frames_for(end.samples)) > 1:
            raise TokenFileError(wrong)
        if abs(missing) > slack:
            if not (self.salvage and damaged):
                raise TokenFileError(wrong)
            yield from self._lost(frame, min(max(missing, 0), most))
            if not 0 < missing <= most:
                return
        self.num_samples = end.samples

    def _decoded(self, payload: bytes, frames: int) -> np.ndarray | None:
        """A packet's codes `[C, n_q, frames]`; None (salvaging) if they do not decode."""
        header = self.header
        try:
            if header.version < 3:
                codes = unpack(payload, header.codebook_sizes, frames, header.channels)
            else:
                codes = self.entropy.decode(payload, frames, header.channels, header.n_stages)
                if (codes >= np.array(header.codebook_sizes)).any():
                    raise EntropyCodingError("codes out of range")
        except (EntropyCodingError, TokenFileError) as error:
            if not self.salvage:
                raise TokenFileError(f"{self.name} is corrupted ({error})") from error
            return None
        return np.transpose(codes, (1, 2, 0))

    def _lost(self, frame: int, frames: int | None) -> Iterator[np.ndarray]:
        """`LOST` codes for `frames` frames from `frame` (nothing for 0 or None), in blocks of
        at most a packet, so memory stays bounded however much was lost."""
        if frames:
            if self.lost and sum(self.lost[-1]) == frame:  # one run with the loss before
                self.lost[-1] = (self.lost[-1][0], self.lost[-1][1] + frames)
            else:
                self.lost.append((frame, frames))
            header = self.header
            for start in range(0, frames, header.frames_per_packet):
                n = min(header.frames_per_packet, frames - start)
                yield np.full((header.channels, header.n_stages, n), LOST, dtype=np.int64)

    def _frames_for(self, samples: int) -> int:
        """Frames that code `samples` samples at the original rate (to within one)."""
        header = self.header
        model_samples = samples * header.sample_rate / header.original_sample_rate
        return math.ceil(model_samples / header.hop_length)

    def _max_payload(self) -> int:
        """The most bytes a version-3 packet's payload can take (each symbol moves at most
        one word)."""
        if self.entropy is not None:
            return self.entropy.max_payload(
                self.header.frames_per_packet, self.header.channels, self.header.n_stages
            )
        return MAX_PAYLOAD

    def read_all(self) -> np.ndarray:
        """All codes `[channels, n_q, frames]` (and sets `num_samples`)."""
        blocks = list(self.packets())
        if not blocks:
            return np.zeros((self.header.channels, self.header.n_stages, 0), dtype=np.int64)
        return np.concatenate(blocks, axis=2)


@dataclass(frozen=True)
class _Record:
    """A record whose checksum holds."""

    tag: bytes  # PACKET or END
    offset: int  # in the stream, from the first byte after the header
    size: int  # bytes, checksum included
    index: int = 0  # a packet's number (v3: its 16-bit sequence number, unwrapped)
    frames: int | None = 0  # an end record's: None in versions 1 and 2
    payload: bytes = b""
    samples: int = 0  # the end record's


class _Records:
    """The records of a stream: the one at the current offset, or (after damage) the next
    intact one, found by its checksum. Holds only a window of the stream in memory.

    A packet of fewer than `frames_per_packet` frames counts only where the end record (or,
    damaged, its length of bytes) follows it, and the end record only where nothing follows
    (salvaging: whatever follows is skipped, and counted in `trailing`)."""

    def __init__(
        self, stream: BinaryIO, header: TokenHeader, max_payload: int, salvage: bool
    ) -> None:
        self.stream = stream
        self.frames_per_packet = header.frames_per_packet
        self.salvage = salvage
        self.fixed_rate = header.version < 3
        self._digits = header.codebook_sizes * header.channels
        self._sizes: dict[int, int] = {}  # fixed-rate record bytes by frames
        if self.fixed_rate:
            self.end_size = END_RECORD_BYTES
            self.max_packet = self.min_packet = self._fixed_size(header.frames_per_packet)
        else:
            self.end_size = CODED_END.size + 4
            self.max_payload = max_payload
            self.max_packet = CODED_PACKET.size + max_payload + 4
            self.min_packet = CODED_PACKET.size + MIN_PAYLOAD + 4
        self.buffer = bytearray()
        self.base = 0  # stream offset of buffer[0]
        self.offset = 0  # where the next record should start
        self.eof = False
        self.trailing = 0
        self.resynced = False

    def _fixed_size(self, frames: int) -> int:
        if frames not in self._sizes:
            self._sizes[frames] = PACKET_FRAMING + packed_size(self._digits, frames)
        return self._sizes[frames]

    def _fill(self, end: int) -> None:
        """Read until the buffer reaches stream offset `end`, or the stream ends."""
        while not self.eof and self.base + len(self.buffer) < end:
            more = self.stream.read(max(end - self.base - len(self.buffer), 1 << 16))
            self.eof = not more
            self.buffer += more

    def _bytes(self, start: int, size: int) -> bytes:
        self._fill(start + size)
        return bytes(self.buffer[start - self.base : start - self.base + size])

    def _checked(self, at: int, size: int) -> bytes | None:
        """The `size` bytes at `at` if they end in the CRC-32 of the rest, else None."""
        record = self._bytes(at, size)
        if len(record) < size or zlib.crc32(record[:-4]) != struct.unpack("<I", record[-4:])[0]:
            return None
        return record

    def _end_at(self, at: int) -> _Record | None:
        if self._bytes(at, 1) != END or (record := self._checked(at, self.end_size)) is None:
            return None
        if self.fixed_rate:
            (samples,) = struct.unpack("<Q", record[1:-4])
            return _Record(END, at, len(record), frames=None, samples=samples)
        _, samples, frames = CODED_END.unpack(record[:-4])
        return _Record(END, at, len(record), frames=frames, samples=samples)

    def _packet_at(self, at: int, expected: int) -> _Record | None:
        if self.fixed_rate:
            head = self._bytes(at, 2)
            if len(head) < 2 or head[:1] != PACKET or not 1 <= head[1] <= self.frames_per_packet:
                return None
            frames, start = head[1], 2
            size = self._fixed_size(frames)
            index = expected + round((at - self.offset) / self.max_packet)
        else:
            head = self._bytes(at, CODED_PACKET.size)
            if len(head) < CODED_PACKET.size or head[:1] != PACKET:
                return None
            _, sequence, frames, payload = CODED_PACKET.unpack(head)
            if not 1 <= frames <= self.frames_per_packet or payload > self.max_payload:
                return None
            size, start = CODED_PACKET.size + payload + 4, CODED_PACKET.size
            index = expected + ((sequence - expected) & 0xFFFF)
        if (record := self._checked(at, size)) is None:
            return None
        if frames < self.frames_per_packet and not self._ends_at(at + size):
            return None  # a short packet is the last one
        return _Record(PACKET, at, size, index, frames, record[start:-4])

    def _ends_at(self, at: int) -> bool:
        """Whether an end record follows at `at`, or (damaged) just its length of bytes."""
        self._fill(at + self.end_size + 1)
        return self._end_at(at) is not None or self.base + len(self.buffer) == at + self.end_size

    def _record_at(self, at: int, expected: int) -> _Record | None:
        record = self._packet_at(at, expected) or self._end_at(at)
        if record is not None and record.tag == END:
            self._fill(at + record.size + 1)
            if self.base + len(self.buffer) > at + record.size:
                if not self.salvage:
                    return None  # bytes after the end record
                self.trailing = self._skip_rest(at + record.size)
        return record

    def _skip_rest(self, start: int) -> int:
        """Read to the end of the stream, a window at a time; the bytes from `start`."""
        self._fill(start)
        size = self.base + len(self.buffer) - start
        while more := self.stream.read(1 << 16):
            size += len(more)
        self.eof = True
        return size

    def here(self, expected: int) -> _Record | None:
        return self._record_at(self.offset, expected)

    def accept(self, record: _Record) -> None:
        """Move past `record`, and drop what lies before it from memory."""
        self.offset = record.offset + record.size
        del self.buffer[: self.offset - self.base]
        self.base = self.offset

    def most_packets(self, record: _Record) -> int:
        """The most packets the bytes between the current offset and `record` could hold."""
        return -(-(record.offset - self.offset) // self.min_packet)

    def resync(self, expected: int) -> _Record | None:
        """The next intact packet numbered `expected` or later, or the end record, searched
        from the byte after the current offset; None if there is none."""
        self.resynced = True
        at = self.offset + 1
        while True:
            self._fill(at + self.max_packet + self.end_size + 1)
            if at >= self.base + len(self.buffer):
                return None
            hits = [self.buffer.find(tag, at - self.base) for tag in (PACKET, END)]
            hits = [i for i in hits if i >= 0]
            if not hits:
                at = self.base + len(self.buffer)
                continue
            at = self.base + min(hits)
            record = self._record_at(at, expected)
            if record is not None and (record.tag == END or record.index >= expected):
                return record
            at += 1

    def damaged_end(self) -> bool:
        """Whether what follows the current offset has exactly an end record's length."""
        return self._ends_at(self.offset)

    def damage(self, expected: int) -> str:
        """What is wrong at the current offset, for an error message."""
        if self._end_at(self.offset) is not None:
            return "corrupted (bytes after the end record)"
        if self.damaged_end():
            return "corrupted (end record checksum mismatch)"
        self._fill(self.offset + self.max_packet + self.end_size + 1)
        stream_end = self.base + len(self.buffer)
        if self.eof and self._end_at(max(stream_end - self.end_size, 0)) is None:
            return "truncated (no end record)"
        return f"corrupted (packet {expected} checksum mismatch)"

"""The token file: exact packing, packets, checksums, and every way a file can be wrong."""

import dataclasses
import io
import json
import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.tokens import (
    LOST,
    TokenFileError,
    TokenHeader,
    TokenReader,
    TokenWriter,
    frames_per_packet,
    pack,
    packed_size,
    unpack,
)


def header(sizes=(1000, 1000, 1000), channels=1, rate=16000) -> TokenHeader:
    sizes = list(sizes)
    return TokenHeader(
        "m",
        "0123456789abcdef",
        16000,
        320,
        sizes,
        rate,
        channels,
        frames_per_packet(sizes, channels, 50.0),
    )


def write(h: TokenHeader, codes: np.ndarray, num_samples: int, pieces: int = 3) -> bytes:
    buffer = io.BytesIO()
    writer = TokenWriter(buffer, h)
    for part in np.array_split(codes, pieces, axis=2):
        writer.write(part)
    writer.close(num_samples)
    return buffer.getvalue()


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(2, 5000), min_size=1, max_size=4),
    frames=st.integers(1, 40),
    channels=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_packing_is_exact_and_minimal(sizes, frames, channels, seed):
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.integers(0, k, (frames, channels)) for k in sizes], axis=-1)
    data = pack(codes, sizes)
    bits = frames * channels * sum(math.log2(k) for k in sizes)
    assert 8 * (len(data) - 1) < bits + 1e-6 <= 8 * len(data) + 1e-6  # fits, < 8 spare bits
    assert np.array_equal(unpack(data, sizes, frames, channels), codes)
    value, weight = 0, 1  # the format's number: c_0 + K_0 (c_1 + K_1 (c_2 + ...))
    for code, radix in zip(codes.reshape(-1).tolist(), sizes * (frames * channels), strict=True):
        value, weight = value + code * weight, weight * radix
    assert data == value.to_bytes(len(data), "little")


def test_the_largest_packet_allowed_packs_and_unpacks():
    """128 KiB of 1-bit codes (255 frames of 255 channels of 16 stages): taken apart by halves,
    not a division per digit (which took minutes at this size); twice the size is refused, and
    a number beyond the codes' range is caught at any size."""
    sizes, frames, channels = [2] * 16, 255, 255
    codes = np.random.default_rng(0).integers(0, 2, (frames, channels, 16))
    data = pack(codes, sizes)
    assert len(data) == 130_050 and np.array_equal(unpack(data, sizes, frames, channels), codes)
    with pytest.raises(ValueError, match="over 128 KiB"):
        packed_size(sizes * channels * 2, frames)
    sizes, codes = [3] * 10, codes[:, :, :10]  # 3^(10 x 255 x 255) < 256^bytes: room on top
    data = pack(codes, sizes)
    with pytest.raises(TokenFileError, match="out of range"):
        unpack(data[:-1] + b"\xff", sizes, frames, channels)


def test_round_trip_through_packets():
    rng = np.random.default_rng(0)
    h = header(channels=2)
    codes = rng.integers(0, 1000, (2, 3, 523))
    reader = TokenReader(io.BytesIO(write(h, codes, 167_360)))
    assert reader.header == h
    packets = list(reader.packets())
    assert [p.shape[2] for p in packets] == [50] * 10 + [23]
    assert np.array_equal(np.concatenate(packets, axis=2), codes)
    assert reader.num_samples == 167_360


@pytest.mark.parametrize(
    ("sizes", "channels"), [((1000,) * 3, 1), ((1000,) * 12, 2), ((16, 16), 1), ((1000,), 1)]
)
def test_size_stays_within_3_percent_of_the_nominal_bitrate(sizes, channels):
    h = header(sizes, channels)
    seconds = 5.0
    frames = int(seconds * 50)
    codes = np.zeros((channels, len(sizes), frames), dtype=np.int64)
    size = len(write(h, codes, int(seconds * 16000)))
    nominal = h.bitrate * seconds / 8
    assert size <= 1.03 * nominal + 1024
    assert size - len(write(h, codes[..., :0], 0)) <= 1.03 * nominal  # packets alone


def test_fixed_overhead_is_small_so_short_files_stay_near_nominal():
    h = TokenHeader("speech16k-mini-v1", "0123456789abcdef", 16000, 320, [1000] * 12, 44100, 2, 50)
    empty = write(h, np.zeros((2, 12, 0), dtype=np.int64), 0)
    assert len(empty) <= 100  # magic, version, binary header, CRCs, end record
    assert TokenReader(io.BytesIO(empty)).header == h


def test_version_1_files_with_a_json_header_still_read():
    h = header()
    payload = json.dumps(dataclasses.asdict(h)).encode()
    end = b"E" + struct.pack("<Q", 0)  # an empty recording: no packets
    data = b"CDCT" + struct.pack("<BH", 1, len(payload)) + payload
    data += struct.pack("<I", zlib.crc32(payload)) + end + struct.pack("<I", zlib.crc32(end))
    reader = TokenReader(io.BytesIO(data))
    assert reader.header == h and reader.read_all().shape == (1, 3, 0)
    assert reader.num_samples == 0


def test_foreign_truncated_corrupted_and_newer_files_are_refused():
    rng = np.random.default_rng(1)
    good = write(header(), rng.integers(0, 1000, (1, 3, 120)), 38_400)

    def read(data: bytes) -> None:
        TokenReader(io.BytesIO(data), "x.tok").read_all()

    with pytest.raises(TokenFileError, match="x.tok is not a codec token file"):
        read(b"RIFF" + good[4:])
    with pytest.raises(TokenFileError, match="newer|upgrade"):
        read(good[:4] + bytes([9]) + good[5:])
    for cut in (3, 20, len(good) // 2, len(good) - 1):
        with pytest.raises(TokenFileError, match="truncated"):
            read(good[:cut])
    for position in (10, 300, len(good) // 2, len(good) - 10):
        flipped = bytearray(good)
        flipped[position] ^= 0x10
        with pytest.raises(TokenFileError, match="corrupted|unreadable"):
            read(bytes(flipped))


def test_writer_checks_the_code_shape():
    writer = TokenWriter(io.BytesIO(), header())
    with pytest.raises(ValueError, match="do not match"):
        writer.write(np.zeros((2, 3, 5), dtype=np.int64))


def _salvage(data: bytes) -> tuple[TokenReader, np.ndarray]:
    reader = TokenReader(io.BytesIO(data), "x.tok", salvage=True)
    return reader, reader.read_all()


def _layout(h: TokenHeader, frames: int, size: int) -> list[tuple[int, int, int]]:
    """(offset, first frame, frames) of each packet of a file of `size` bytes."""
    per_frame = h.codebook_sizes * h.channels
    counts = [h.frames_per_packet] * (frames // h.frames_per_packet)
    counts += [frames % h.frames_per_packet] if frames % h.frames_per_packet else []
    lengths = [6 + packed_size(per_frame, n) for n in counts]
    offset = size - 13 - sum(lengths)
    layout = []
    for n, length in zip(counts, lengths, strict=True):
        layout.append((offset, sum(c for _, _, c in layout), n))
        offset += length
    return layout


@pytest.mark.parametrize("frames", [120, 172])  # a short last packet, and none (86 a packet)
def test_a_flipped_bit_costs_its_own_packet_only(frames):
    h = header()
    codes = np.random.default_rng(2).integers(0, 1000, (1, 3, frames))
    good = write(h, codes, 320 * frames)
    for offset, first, count in _layout(h, frames, len(good)):
        for byte in (0, 1, 7):  # the tag, the frame count, the codes
            flipped = bytearray(good)
            flipped[offset + byte] ^= 4
            reader, got = _salvage(bytes(flipped))
            assert reader.lost == [(first, count)] and reader.num_samples == 320 * frames
            lost = slice(first, first + count)
            assert (got[:, :, lost] == LOST).all()
            np.testing.assert_array_equal(np.delete(got, lost, 2), np.delete(codes, lost, 2))
            with pytest.raises(TokenFileError, match="corrupted|truncated"):
                TokenReader(io.BytesIO(bytes(flipped)), "x.tok").read_all()  # strict: refused
    flipped = bytearray(good)
    flipped[-8] ^= 1  # the end record: every packet intact, the length unknown
    reader, got = _salvage(bytes(flipped))
    assert reader.lost == [] and reader.num_samples is None
    np.testing.assert_array_equal(got, codes)


def test_random_damage_never_hangs_or_crashes_the_reader():
    h = header(channels=2)
    rng = np.random.default_rng(4)
    good = write(h, rng.integers(0, 1000, (2, 3, 230)), 73_600)
    for _ in range(300):
        damaged = bytearray(good)
        for position in rng.integers(0, len(good), rng.integers(1, 4)):
            damaged[position] ^= 1 << int(rng.integers(8))
        for salvage in (False, True):
            try:
                got = TokenReader(io.BytesIO(bytes(damaged)), salvage=salvage).read_all()
            except TokenFileError:
                continue
            assert got.shape == (2, 3, 230)  # flips never change the number of frames

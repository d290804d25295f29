"""Token file format version 3: entropy-coded packets, sequence numbers, damage and resync."""

import dataclasses
import io
import struct

import numpy as np
import pytest
from test_entropy import FSP, fitted, markov_codes

from codec.entropy import SCHEME, EntropyModel
from codec.tokens import LOST, TokenFileError, TokenHeader, TokenReader, TokenWriter

TABLES = fitted(FSP[:3])


def coded_header(channels: int = 1, entropy: EntropyModel = TABLES) -> TokenHeader:
    return TokenHeader(
        "m", "0123456789abcdef", 16000, 320, [1000] * 3, 16000, channels, 50,
        entropy_hash=entropy.hash, entropy_scheme=SCHEME,
    )  # fmt: skip


def speechlike(frames: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Codes `[channels, 3, frames]` the tables predict well."""
    rng = np.random.default_rng(seed)
    return np.stack([markov_codes(rng, frames, FSP[:3]) for _ in range(channels)])


def write(codes: np.ndarray, h: TokenHeader | None = None, pieces: int = 3) -> bytes:
    h = h or coded_header(codes.shape[0])
    buffer = io.BytesIO()
    writer = TokenWriter(buffer, h, TABLES)
    for part in np.array_split(codes, pieces, axis=2):
        writer.write(part)
    writer.close(max(320 * codes.shape[2] - 17, 0))
    return buffer.getvalue()


def read(data: bytes, salvage: bool = False) -> tuple[TokenReader, np.ndarray]:
    reader = TokenReader(io.BytesIO(data), "x.tok", salvage, TABLES)
    return reader, reader.read_all()


def packet_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset, frames) of each packet, walking the sizes of an intact file."""
    (length,) = struct.unpack_from("<H", data, 5)
    offset, out = 4 + 3 + length + 4, []
    while data[offset : offset + 1] == b"P":
        _, _, frames, size = struct.unpack_from("<cHBH", data, offset)
        out.append((offset, frames))
        offset += 6 + size + 4
    return out


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frames", [0, 1, 50, 173])
def test_round_trip_in_any_pieces(channels, frames):
    codes = speechlike(frames, channels)
    data = write(codes, pieces=max(1, min(frames, 4)))
    assert data[4] == 3
    reader, got = read(data)
    assert reader.header == coded_header(channels) and reader.num_samples == max(
        320 * frames - 17, 0
    )
    np.testing.assert_array_equal(got, codes)
    assert TokenReader(io.BytesIO(data), "x.tok").count_frames() == frames  # no tables needed


def test_predictable_codes_make_a_smaller_file_than_version_2():
    codes = speechlike(500)
    fixed = io.BytesIO()
    writer = TokenWriter(fixed, dataclasses.replace(coded_header(), entropy_hash=None))
    writer.write(codes)
    writer.close(160_000)
    assert fixed.getvalue()[4] == 2
    assert len(write(codes)) < 0.7 * len(fixed.getvalue())


def test_reading_needs_the_tables_that_wrote_it():
    data = write(speechlike(60))
    with pytest.raises(TokenFileError, match="entropy-coded: reading it needs its model"):
        TokenReader(io.BytesIO(data), "x.tok").read_all()
    other = fitted(FSP[:3], seed=7)
    with pytest.raises(TokenFileError, match="coded with entropy tables"):
        TokenReader(io.BytesIO(data), "x.tok", entropy=other).read_all()
    with pytest.raises(ValueError, match="needs the entropy tables"):
        TokenWriter(io.BytesIO(), coded_header(), other)


@pytest.mark.parametrize("frames", [120, 150])  # a short last packet, and none
def test_a_flipped_bit_costs_its_own_packet_only(frames):
    codes = speechlike(frames, seed=frames)
    good = write(codes)
    packets = packet_offsets(good)
    assert len(packets) == -(-frames // 50)
    for k, (offset, count) in enumerate(packets):
        first = 50 * k
        for byte in (0, 1, 3, 4, 6, 9):  # tag, sequence, frames, size, payload
            flipped = bytearray(good)
            flipped[offset + byte] ^= 4
            reader, got = read(bytes(flipped), salvage=True)
            assert reader.lost == [(first, count)], (k, byte)
            assert reader.num_samples == max(320 * frames - 17, 0)
            lost = slice(first, first + count)
            assert (got[:, :, lost] == LOST).all()
            np.testing.assert_array_equal(np.delete(got, lost, 2), np.delete(codes, lost, 2))
            with pytest.raises(TokenFileError, match="corrupted|truncated"):
                read(bytes(flipped))  # strict: refused
    flipped = bytearray(good)
    flipped[-8] ^= 1  # the end record: every packet intact, the length unknown
    reader, got = read(bytes(flipped), salvage=True)
    assert reader.lost == [] and reader.num_samples is None
    np.testing.assert_array_equal(got, codes)


def test_lost_and_inserted_bytes_cost_only_the_packets_they_touch():
    codes = speechlike(260, seed=3)
    good = write(codes)
    packets = packet_offsets(good)
    start, end = packets[1][0] + 5, packets[3][0] + 2  # from inside packet 1 to inside packet 3
    reader, got = read(good[:start] + good[end:], salvage=True)
    assert reader.lost == [(50, 150)] and got.shape == codes.shape
    np.testing.assert_array_equal(got[:, :, 200:], codes[:, :, 200:])
    junk = np.random.default_rng(0).bytes(700)
    at = packets[2][0]
    reader, got = read(good[:at] + junk + good[at:], salvage=True)
    assert reader.lost == [] and np.array_equal(got, codes)
    with pytest.raises(TokenFileError, match="packet 2 checksum mismatch"):
        read(good[:at] + junk + good[at:])


def test_truncated_appended_and_newer_files_are_refused():
    good = write(speechlike(120))
    for cut in (3, 30, len(good) // 2, len(good) - 1):
        for salvage in (False, True):
            with pytest.raises(TokenFileError, match="truncated"):
                read(good[:cut], salvage)
    with pytest.raises(TokenFileError, match="bytes after the end record"):
        read(good + b"\x00")
    with pytest.raises(TokenFileError, match="newer|upgrade"):
        read(good[:4] + bytes([4]) + good[5:])


def test_random_damage_garbage_and_odd_files_never_hang_or_crash_the_reader():
    rng = np.random.default_rng(4)
    codes = speechlike(230, channels=2, seed=4)
    files = [write(codes), write(speechlike(1, 2)), write(speechlike(0, 2))]
    extreme = np.random.default_rng(5).integers(0, 1000, (2, 3, 230))  # what tables never saw
    files.append(write(extreme))
    outcomes = {"error": 0, "read": 0}
    for trial in range(1500):
        good = files[trial % len(files)]
        damaged = bytearray(good)
        kind = trial % 5
        if kind < 3:  # bit flips
            for position in rng.integers(0, len(good), rng.integers(1, 4)):
                damaged[position] ^= 1 << int(rng.integers(8))
        elif kind == 3:  # garbage after a good header
            cut = 4 + 3 + struct.unpack_from("<H", good, 5)[0] + 4
            damaged = damaged[:cut] + bytearray(rng.bytes(int(rng.integers(0, 2000))))
        else:  # truncated
            damaged = damaged[: int(rng.integers(0, len(good)))]
        for salvage in (False, True):
            try:
                reader, got = read(bytes(damaged), salvage)
            except TokenFileError as error:
                assert "\n" not in str(error)
                outcomes["error"] += 1
                continue
            outcomes["read"] += 1
            assert got.shape[:2] == (2, 3)
            ok = got[got != LOST]
            assert ok.size == 0 or (ok.min() >= 0 and ok.max() < 1000)
    assert outcomes["read"] > 300 and outcomes["error"] > 300

"""Token files from someone else: edited headers (with valid checksums) and hostile sizes are
refused with one `error:` line, in bounded time and memory, before anything is allocated."""

import io
import json
import struct
import subprocess
import zlib

import numpy as np
import pytest
from helpers import CODEC, DATA
from test_tokens_coded import TABLES, speechlike
from test_tokens_coded import write as write_coded

from codec.tokens import (
    HEADER_FIELDS,
    TokenFileError,
    TokenHeader,
    TokenReader,
    TokenWriter,
    frames_per_packet,
    packed_size,
)


def header(**fields) -> TokenHeader:
    sizes = fields.pop("codebook_sizes", [1000] * 3)
    base = dict(model="m", model_hash="0123456789abcdef", sample_rate=16000, hop_length=320,
                codebook_sizes=sizes, original_sample_rate=16000, channels=1,
                frames_per_packet=frames_per_packet(sizes, 1, 50.0))  # fmt: skip
    return TokenHeader(**(base | fields))


def fixed_rate_file(
    h: TokenHeader, frames: int, samples: int, codes: np.ndarray | None = None
) -> bytes:
    buffer = io.BytesIO()
    writer = TokenWriter(buffer, h)
    if codes is None:
        codes = np.random.default_rng(0).integers(0, 1000, (h.channels, h.n_stages, frames))
    writer.write(codes)
    writer.close(samples)
    return buffer.getvalue()


def with_header(data: bytes, payload: bytes, version: int = 2) -> bytes:
    """`data` with its header replaced by `payload` (checksum made valid)."""
    (length,) = struct.unpack_from("<H", data, 5)
    rest = data[7 + length + 4 :]
    head = b"CDCT" + struct.pack("<BH", version, len(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(payload)) + rest


def raw_header(channels=1, frames=50, sizes=(1000,) * 3, rate=16000, hop=320, original=16000):
    name = b"m"
    fields = HEADER_FIELDS.pack(rate, hop, original, channels, frames, len(sizes))
    return bytes([len(name)]) + name + bytes(8) + fields + struct.pack(f"<{len(sizes)}H", *sizes)


def read(data: bytes) -> TokenReader:
    reader = TokenReader(io.BytesIO(data), "x.tok")
    reader.count_frames()
    return reader


def test_a_sample_count_that_the_frames_cannot_hold_is_refused():
    """A decompression bomb: 184 frames (3.7 s) whose end record says 10^8 samples."""
    good = fixed_rate_file(header(), 184, 184 * 320 - 100)
    assert read(good).num_samples == 184 * 320 - 100
    end = b"E" + struct.pack("<Q", 10**8)
    bomb = good[:-13] + end + struct.pack("<I", zlib.crc32(end))
    with pytest.raises(TokenFileError, match="sample count is wrong"):
        read(bomb)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"channels": 255, "frames": 255, "sizes": (65535,) * 255}, "over 128 KiB"),
        ({"channels": 0}, "channels 0"),
        ({"frames": 0}, "frames per packet 0"),
        ({"sizes": (1,)}, "codes per stage 1"),
        ({"original": 1}, "original sample rate 1 "),
        ({"hop": 0}, "hop length 0"),
        ({"rate": 0}, "model sample rate 0"),
    ],
)
def test_header_fields_outside_the_formats_limits_are_refused_at_once(fields, message):
    good = fixed_rate_file(header(), 10, 3000)
    with pytest.raises(TokenFileError, match=f"unreadable header.*{message}"):
        read(with_header(good, raw_header(**fields)))


def test_version_1_headers_of_the_wrong_types_or_depth_are_refused():
    good = fixed_rate_file(header(), 10, 3000)
    fields = json.loads(json.dumps(header().__dict__))
    for bad in (
        fields | {"channels": "1"},
        fields | {"frames_per_packet": 1_000_000},
        [fields],
    ):
        with pytest.raises(TokenFileError, match="unreadable header"):
            read(with_header(good, json.dumps(bad).encode(), version=1))
    deep = ("[" * 30000 + "]" * 30000).encode()  # a header holds at most 65,535 bytes
    with pytest.raises(TokenFileError, match="nested too deep"):
        read(with_header(good, deep, version=1))


def test_an_unknown_entropy_scheme_is_refused():
    coded = header(entropy_hash="00" * 8, entropy_scheme=7)
    with pytest.raises(ValueError, match="entropy-coding scheme 7 is unknown"):
        coded.check()


def test_a_last_packet_of_any_claimed_length_is_sized_in_bounded_time():
    """A damaged length byte costs the last packet, whose frames the end record's length
    gives, on a header of the largest alphabets and channels allowed."""
    h = header(codebook_sizes=[65535] * 4, channels=16)
    h = TokenHeader(**(h.__dict__ | {"frames_per_packet": 50}))
    data = bytearray(fixed_rate_file(h, 75, 75 * 320))  # one full packet, one of 25 frames
    tail = len(data) - 13 - (6 + (25 * 16 * 4 * 16 + 7) // 8)
    data[tail + 1] = 200  # the last packet's length byte
    reader = TokenReader(io.BytesIO(bytes(data)), "x.tok", salvage=True)
    assert reader.count_frames() == 75 and reader.lost == [(50, 25)]


def test_a_header_that_lies_about_its_model_is_refused_on_decode(tmp_path):
    """The model's weights match the header's hash, but the header claims 65,535 codes per
    stage, 13 stages where the model has 12 of 1000, or 17 channels where codec codes 16 at
    most: one error line, no output."""
    source = tmp_path / "x.tok"
    subprocess.run([CODEC, "encode", str(DATA / "speech_en.flac"), "-o", str(source),
                    "--fixed-rate", "-s", "3"], check=True)  # fmt: skip
    data = source.read_bytes()
    (length,) = struct.unpack_from("<H", data, 5)
    real = TokenHeader.from_bytes(data[7 : 7 + length], 2)
    for lie in ({"codebook_sizes": [65535] * 3}, {"codebook_sizes": [1000] * 13}, {"channels": 17}):
        lying = TokenHeader(**(real.__dict__ | lie))
        (tmp_path / "lie.tok").write_bytes(with_header(data, lying.to_bytes()))
        decode = [CODEC, "decode", str(tmp_path / "lie.tok"), "-o", str(tmp_path / "lie.wav")]
        done = subprocess.run(decode, capture_output=True, text=True)
        assert done.returncode == 1 and not (tmp_path / "lie.wav").exists()
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        assert "does not fit" in lines[0] or "codes at most 16" in lines[0]


def packet_starts(data: bytes, version: int) -> list[int]:
    """Offsets of the packets of an intact file."""
    offset = 4 + 3 + struct.unpack_from("<H", data, 5)[0] + 4
    h = TokenReader(io.BytesIO(data)).header
    starts = []
    while data[offset : offset + 1] == b"P":
        starts.append(offset)
        if version == 3:
            offset += 6 + struct.unpack_from("<H", data, offset + 4)[0] + 4
        else:
            offset += 6 + packed_size(h.codebook_sizes * h.channels, data[offset + 1])
    return starts


@pytest.mark.parametrize("version", [2, 3])
def test_edited_appended_and_concatenated_files_cost_only_the_packets_they_touch(version):
    """Fixed-rate files as version 3: bytes inserted or deleted cost the packet they land in,
    bytes appended (a second file) are skipped, and the frames stay where they were."""
    if version == 3:
        codes = speechlike(300, seed=5)
        good, fpp = write_coded(codes), 50
    else:
        codes = np.random.default_rng(5).integers(0, 1000, (1, 3, 300))
        good = fixed_rate_file(header(), 300, 300 * 320, codes)
        fpp = header().frames_per_packet
    p = packet_starts(good, version)[2]  # packet 2: frames 2 fpp .. 3 fpp
    edits = {
        "3 bytes inserted": good[: p + 9] + b"abc" + good[p + 9 :],
        "5 bytes deleted": good[: p + 9] + good[p + 14 :],
        "a bit flipped in its frame count": good[: p + 1]
        + bytes([good[p + 1] ^ 2])
        + good[p + 2 :],
    }
    for what, data in edits.items():
        reader = TokenReader(io.BytesIO(data), "x.tok", salvage=True, entropy=TABLES)
        got = reader.read_all()
        assert reader.lost == [(2 * fpp, fpp)] and reader.num_samples == 300 * 320 - 17 * (
            version == 3
        ), what
        np.testing.assert_array_equal(np.delete(got, slice(2 * fpp, 3 * fpp), 2),
                                      np.delete(codes, slice(2 * fpp, 3 * fpp), 2))  # fmt: skip
    for tail in (b"\0", good):  # a byte appended, a second file
        reader = TokenReader(io.BytesIO(good + tail), "x.tok", salvage=True, entropy=TABLES)
        np.testing.assert_array_equal(reader.read_all(), codes)
        assert reader.lost == [] and reader.trailing == len(tail)
        with pytest.raises(TokenFileError, match="bytes after the end record"):
            TokenReader(io.BytesIO(good + tail), "x.tok", entropy=TABLES).read_all()

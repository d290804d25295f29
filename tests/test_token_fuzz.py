"""A fuzzer for token files: a valid file of each format version, its header fields, packet
sizes and end record mutated (boundary and random values, checksums made valid so that each
mutation reaches the parser), read in-process and, a few hundred of them, decoded by
`codec decode` in a process bounded in time and memory."""

import dataclasses
import io
import json
import re
import resource
import struct
import subprocess
import zlib

import numpy as np
import soundfile as sf
from helpers import CODEC, DATA
from test_tokens_coded import TABLES, speechlike
from test_tokens_coded import write as write_coded
from test_untrusted_tokens import fixed_rate_file, header, packet_starts

from codec.tokens import HEADER_FIELDS, LOST, TokenFileError, TokenReader, packed_size

MUTATIONS_PER_VERSION = 10_000
SMALLEST_RECORD = 7  # bytes: a fixed-rate packet of one byte of codes
JSON_VALUES = [0, 1, -1, 2, 255, 256, 65535, 65536, 2**31, 2**64, 10**30, 1.5, float("inf"),
               "1", "", None, True, [], {}, [1000] * 300, [[1000]], "x" * 300]  # fmt: skip


def split(data: bytes) -> tuple[int, bytes, bytes]:
    """(version, header payload, the records after the header's checksum)."""
    (length,) = struct.unpack_from("<H", data, 5)
    return data[4], data[7 : 7 + length], data[7 + length + 4 :]


def join(version: int, payload: bytes, body: bytes) -> bytes:
    """A file whose header checksum holds, whatever the header says."""
    prefix = b"CDCT" + struct.pack("<BH", version, len(payload) & 0xFFFF)
    return prefix + payload + struct.pack("<I", zlib.crc32(payload)) + body


def as_version_1(data: bytes) -> bytes:
    """A version-2 file with its header written as version 1's JSON object."""
    _, payload, body = split(data)
    fields = dataclasses.asdict(TokenReader(io.BytesIO(data)).header)
    return join(1, json.dumps(fields).encode(), body)


def boundary(rng: np.random.Generator, width: int, now: int) -> int:
    """A value for an unsigned field of `width` bytes: an edge, a neighbour or random."""
    top = (1 << (8 * width)) - 1
    choices = [
        0,
        1,
        2,
        top,
        top - 1,
        now - 1,
        now + 1,
        now * 2,
        int.from_bytes(rng.bytes(width), "little"),
    ]
    return int(choices[rng.integers(len(choices))]) & top


def binary_fields(payload: bytes, version: int) -> list[tuple[int, int]]:
    """(offset, width) of each number in a version-2/3 header, as the header itself says."""
    name_end = 1 + payload[0]
    start = name_end + 8
    fields = [(0, 1), (start, 4), (start + 4, 2), (start + 6, 4)]
    fields += [(start + 10, 1), (start + 11, 1), (start + 12, 1)]
    n = payload[start + 12] if len(payload) > start + 12 else 0
    sizes = start + HEADER_FIELDS.size
    fields += [(sizes + 2 * i, 2) for i in range(n)]
    if version == 3:
        fields.append((sizes + 2 * n, 1))  # scheme
    return [(o, w) for o, w in fields if o + w <= len(payload)]


def mutate_header(data: bytes, rng: np.random.Generator) -> bytes:
    version, payload, body = split(data)
    kind = rng.integers(5)
    if version == 1 and kind < 3:
        fields = json.loads(payload)
        key = list(fields)[rng.integers(len(fields))]
        if kind == 0:
            fields[key] = JSON_VALUES[rng.integers(len(JSON_VALUES))]
        elif kind == 1:
            del fields[key]
        else:
            fields[key] = boundary(rng, 4, fields[key] if isinstance(fields[key], int) else 0)
        return join(version, json.dumps(fields).encode(), body)
    edited = bytearray(payload)
    if kind < 3:  # a number of the header: an edge or random value
        offset, width = binary_fields(payload, version)[rng.integers(9)]
        value = boundary(rng, width, int.from_bytes(edited[offset : offset + width], "little"))
        edited[offset : offset + width] = value.to_bytes(width, "little")
    elif kind == 3:  # random bytes anywhere in it
        for at in rng.integers(0, len(edited), rng.integers(1, 4)):
            edited[at] = int(rng.integers(256))
    else:  # shorter or longer than its fields
        cut = int(rng.integers(0, len(edited) + 1))
        edited = edited[:cut] + bytearray(rng.bytes(int(rng.integers(0, 4)) * (cut % 2)))
    version = int([version, 1, 2, 3, 0, 4][rng.integers(6)]) if rng.random() < 0.1 else version
    return join(version, bytes(edited), body)


def record_starts(data: bytes) -> list[int]:
    """Offsets in the file of each record of an intact file: packets, then the end record."""
    version = data[4]
    return [*packet_starts(data, version), len(data) - (17 if version == 3 else 13)]


def mutate_records(data: bytes, rng: np.random.Generator) -> bytes:
    """A packet's frame count, sequence number or size, or the end record's sample or frame
    count, set to an edge or random value, with a checksum where the reader will look."""
    version, _, _ = split(data)
    h = TokenReader(io.BytesIO(data)).header
    starts = record_starts(data)
    at = starts[rng.integers(len(starts))]
    edited = bytearray(data)
    if edited[at : at + 1] == b"E":
        fields = [(1, 8), (9, 4)] if version == 3 else [(1, 8)]
        offset, width = fields[rng.integers(len(fields))]
    else:
        fields = [(1, 2), (3, 1), (4, 2)] if version == 3 else [(1, 1)]
        offset, width = fields[rng.integers(len(fields))]
    now = int.from_bytes(edited[at + offset : at + offset + width], "little")
    edited[at + offset : at + offset + width] = boundary(rng, width, now).to_bytes(width, "little")
    if edited[at : at + 1] == b"E":
        size = 17 if version == 3 else 13
    elif version == 3:
        size = 6 + struct.unpack_from("<H", edited, at + 4)[0] + 4
    else:
        frames = edited[at + 1]
        size = 6 + packed_size(h.codebook_sizes * h.channels, frames) if frames else 6
    if at + size <= len(edited):
        edited[at + size - 4 : at + size] = struct.pack(
            "<I", zlib.crc32(edited[at : at + size - 4])
        )
    return bytes(edited)


def mutants(files: list[bytes], count: int, seed: int) -> list[bytes]:
    """`count` mutations of `files`: four in five of the header, one of the records."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        good = files[i % len(files)]
        out.append(mutate_records(good, rng) if i % 5 == 4 else mutate_header(good, rng))
    return out


def check_read(data: bytes, salvage: bool) -> str:
    """Read `data` in full: the format's own one-line error, or codes whose number is bounded
    by the file's size and a length that the frames hold."""
    try:
        reader = TokenReader(io.BytesIO(data), "x.tok", salvage, TABLES)
        blocks = list(reader.packets())
    except TokenFileError as error:
        assert "\n" not in str(error)
        return "error"
    h = reader.header
    frames = sum(block.shape[2] for block in blocks)
    assert frames <= (len(data) // SMALLEST_RECORD + 1) * h.frames_per_packet
    for block in blocks:
        assert block.shape[:2] == (h.channels, h.n_stages)
        sizes = np.array(h.codebook_sizes)[None, :, None]
        assert ((block == LOST) | ((block >= 0) & (block < sizes))).all()
    if reader.num_samples is not None:
        assert abs(reader._frames_for(reader.num_samples) - frames) <= 1
    return "read"


def small_files() -> dict[int, list[bytes]]:
    """Valid files of each version: one and two packets, one and two channels."""
    fixed = [fixed_rate_file(header(), 100, 100 * 320 - 5),
             fixed_rate_file(header(channels=2), 30, 30 * 320)]  # fmt: skip
    coded = [write_coded(speechlike(80, seed=1)), write_coded(speechlike(20, 2, seed=2))]
    return {1: [as_version_1(f) for f in fixed], 2: fixed, 3: coded}


def test_every_mutated_header_and_record_reads_or_fails_cleanly():
    for version, files in small_files().items():
        for data in files:
            assert check_read(data, salvage=False) == "read"
        outcomes = {"error": 0, "read": 0}
        for i, data in enumerate(mutants(files, MUTATIONS_PER_VERSION, seed=version)):
            outcomes[check_read(data, salvage=i % 2 == 1)] += 1
        assert outcomes["error"] > 0.3 * MUTATIONS_PER_VERSION, (version, outcomes)
        assert outcomes["read"] > 0.02 * MUTATIONS_PER_VERSION, (version, outcomes)


def _limit_memory() -> None:
    limit = 3 << 30  # the runtime maps more than it uses; a bomb would ask for far more
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_hundreds_of_mutated_files_decode_cleanly_in_bounded_time_and_memory(tmp_path):
    """The shipped model's files, mutated, through `codec decode` as a batch: for each, one
    `error:` line, or audio no longer than the file's bytes allow."""
    speech, rate = sf.read(DATA / "speech_en.flac")
    sf.write(tmp_path / "x.wav", speech[: 2 * rate], rate)
    base = []
    for flags in ([], ["--fixed-rate"]):
        out = tmp_path / f"x{len(flags)}.tok"
        subprocess.run([CODEC, "encode", str(tmp_path / "x.wav"), "-o", str(out), *flags],
                       check=True)  # fmt: skip
        base.append(out.read_bytes())
    base.append(as_version_1(base[1]))
    (tmp_path / "in").mkdir()
    names = []
    for i, data in enumerate(mutants(base, 300, seed=7)):
        names.append(f"m{i:03d}")
        (tmp_path / "in" / f"{names[-1]}.tok").write_bytes(data)
    done = subprocess.run(
        [CODEC, "decode", str(tmp_path / "in"), "-o", str(tmp_path / "out") + "/"],
        capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "warning:"))]
    errors = {name: 0 for name in names}
    for line in lines:
        named = re.search(r"/(m\d{3})\.tok\b", line)
        if line.startswith("error:") and named:
            errors[named.group(1)] += 1
    assert max(errors.values()) <= 1
    decoded = 0
    for name, data in zip(names, (tmp_path / "in" / f"{n}.tok" for n in names), strict=True):
        out = tmp_path / "out" / f"{name}.wav"
        if not out.exists():
            assert errors[name] == 1, name  # no audio: one error line says why
            continue
        decoded += 1
        info = sf.info(out)
        h = TokenReader(io.BytesIO(data.read_bytes())).header
        packets = data.stat().st_size // SMALLEST_RECORD + 1  # the most the bytes can hold
        assert info.duration <= packets * h.frames_per_packet / h.frame_rate + 0.1, name
    assert 20 < decoded < 280 and sum(errors.values()) > 20, (decoded, errors)

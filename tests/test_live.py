"""Live streaming: raw PCM -> packets -> PCM through the command, with lost packets concealed."""

import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest
import soundfile as sf
from helpers import DATA, save_tiny_frame_model
from typer.testing import CliRunner

from codec.cli.app import app
from codec.compress import TorchCoder, stages_for_bitrate
from codec.live import (
    LOST_FLAG,
    decode_packets,
    payload_bytes,
    read_packets,
    read_stream_header,
    stream_header_bytes,
)
from codec.tokens import TokenFileError, packed_size
from codec.zoo import load_model

PCM, _ = sf.read(DATA / "speech_fr.flac", dtype="int16")


@pytest.fixture(scope="module", params=["speech16k-mini-v2", "tiny-frame"])
def live(request, tmp_path_factory):
    """speech_fr at 3 kbps in 40 ms packets, through the shipped SEANet (by name) and the
    briefly trained frame-rate backbone (by file): `(model reference, stream bytes)`."""
    reference = request.param
    if reference == "tiny-frame":
        reference = save_tiny_frame_model(tmp_path_factory.mktemp("models") / "tiny-frame.ckpt")
    result = CliRunner().invoke(
        app,
        ["stream", "encode", "-b", "3", "--packet-ms", "40", "--model", reference],
        input=PCM.astype("<i2").tobytes(),
    )
    assert result.exit_code == 0, result.stderr
    return reference, result.stdout_bytes


def test_packets_are_small_and_decode_like_a_file(live, tmp_path):
    reference, stream_bytes = live
    model = load_model(reference)
    stream = io.BytesIO(stream_bytes)
    header = read_stream_header(stream)
    assert header.frames_per_packet == 2
    assert header.n_stages == stages_for_bitrate(model, 3)
    size = payload_bytes(header)
    records = list(read_packets(stream, header))
    frames = -(-(len(PCM) + model.delay) // 320)  # the end flushes the decoder's delay
    assert len(records) == -(-frames // 2)
    # 1 byte of framing per packet: 0.2 kbps at 40 ms packets
    assert len(stream_bytes) == stream.tell()
    assert size == packed_size(header.codebook_sizes, 2)  # 2 frames x 6 x log2(1000) for v2
    result = CliRunner().invoke(app, ["stream", "decode", "--model", reference], input=stream_bytes)
    assert result.exit_code == 0, result.stderr
    live = np.frombuffer(result.stdout_bytes, "<i2").astype(np.float32) / 32768
    assert len(live) == len(records) * 2 * 320 - model.delay  # whole packets, time-aligned
    file_args = ["roundtrip", str(DATA / "speech_fr.flac"), "-o", str(tmp_path / "f.wav")]
    stages = ["--stages", str(header.n_stages), "--model", reference]
    assert CliRunner().invoke(app, [*file_args, *stages]).exit_code == 0
    offline, _ = sf.read(tmp_path / "f.wav", dtype="float32")
    assert np.abs(live[: len(offline)] - offline).max() < 2 / 32768  # 16-bit rounding


def test_lost_packets_are_concealed_in_place(live):
    reference, stream_bytes = live
    stream = io.BytesIO(stream_bytes)
    header = read_stream_header(stream)
    records = list(read_packets(stream, header))
    coder = TorchCoder(load_model(reference))

    def decode(records):
        with coder.streaming(batch_size=1) as s:
            return list(decode_packets(iter(records), s, header))

    clean = decode(records)
    records[40].codes = None  # marked lost by a relay
    del records[60:63]  # three missing: a gap in the sequence
    out = decode(records)
    assert [lost for _, lost in out].count(True) == 2  # the marked one, the gap as one block
    audio = np.concatenate([a for a, _ in out])
    reference = np.concatenate([a for a, _ in clean])
    assert len(audio) == len(reference)  # time-aligned
    hop, late = 2 * 320, coder.delay  # the output leaves out the decoder's first `delay`
    assert np.abs(audio[: 40 * hop - late] - reference[: 40 * hop - late]).max() == 0  # before
    gap = audio[60 * hop - late : 63 * hop - late]  # 120 ms concealed: faded out by its end
    assert np.abs(gap[-320:]).max() == 0 < np.abs(gap[:320]).max()
    # the decoder recovers: a second after the gap the audio is the clean decoding again
    later = slice(90 * hop, 100 * hop)
    assert np.abs(audio[later] - reference[later]).max() < 0.05 * np.abs(reference[later]).max()


def test_simulated_loss_rate_and_lost_marker(live):
    reference, stream_bytes = live
    lossy = ["stream", "decode", "--loss-rate", "0.2", "--seed", "1", "--model", reference]
    result = CliRunner().invoke(app, lossy, input=stream_bytes)
    assert result.exit_code == 0 and "concealed" in result.stderr
    lost, total = map(int, result.stderr.split()[1::2][:2])
    assert 0.1 < lost / total < 0.3
    clean = CliRunner().invoke(app, ["stream", "decode", "--model", reference], input=stream_bytes)
    assert len(result.stdout_bytes) == len(clean.stdout_bytes)
    assert LOST_FLAG == 0x80
    bad = CliRunner().invoke(app, ["stream", "decode"], input=b"RIFF....")
    assert bad.exit_code == 1 and "not a codec live stream" in bad.stderr


def test_a_stream_header_that_lies_is_one_error(live):
    """Its checksum holds, its fields do not: the token files' own check refuses it."""
    _, stream_bytes = live
    (length,) = struct.unpack_from("<H", stream_bytes, 5)
    body = bytearray(stream_bytes[7 : 7 + length])
    body[-1 - 2 * read_stream_header(io.BytesIO(stream_bytes)).n_stages - 2] = 0  # channels
    lying = stream_bytes[:7] + body + struct.pack("<I", zlib.crc32(body))
    with pytest.raises(TokenFileError, match="live stream has an unreadable header.*channels 0"):
        read_stream_header(io.BytesIO(lying + stream_bytes[7 + length + 4 :]))


def test_a_stream_header_that_does_not_fit_its_model_is_one_error(live):
    """The weights' hash is right, the stages or channels are not: one `error:` line."""
    reference, stream_bytes = live
    stream = io.BytesIO(stream_bytes)
    header = read_stream_header(stream)
    rest = stream.read()
    lies = {"codebook_sizes": [1000] * 13}, {"channels": 2}
    for lie, says in zip(lies, ("does not fit model", "says 2 channels: it has 1"), strict=True):
        lying = stream_header_bytes(dataclasses.replace(header, **lie)) + rest
        result = CliRunner().invoke(app, ["stream", "decode", "--model", reference], input=lying)
        assert result.exit_code == 1 and not result.stdout_bytes
        assert result.stderr.count("error:") == 1 and says in result.stderr

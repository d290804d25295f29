"""`codec encode/decode/roundtrip/info/dump`: through typer's runner and as real processes."""

import hashlib
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from helpers import CODEC
from typer.testing import CliRunner

import codec
from codec.audio import load_audio, save_audio
from codec.cli.app import app
from codec.tokens import TokenReader, packed_size


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny.ckpt"
    codec.build_model("tiny").save(path)
    return path


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)])


def run(*args) -> "CliRunner.Result":
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_keeps_rate_channels_and_length(tiny_ckpt, tmp_path, rate, channels):
    src = tmp_path / "in.wav"
    save_audio(src, tone(1.3, rate, channels), rate)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    assert run("encode", src, "-m", tiny_ckpt).exit_code == 0
    assert (tmp_path / "in.tok").is_file()
    result = run("decode", tmp_path / "in.tok", "-m", tiny_ckpt, "-o", tmp_path / "out.wav")
    assert result.exit_code == 0, result.output
    info = sf.info(tmp_path / "out.wav")
    assert (info.samplerate, info.channels, info.frames) == (rate, channels, int(1.3 * rate))
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before  # the input is never modified


def test_pipes_through_real_processes(tiny_ckpt, tmp_path):
    src = tmp_path / "in.flac"
    save_audio(src, tone(2.0, 22050, 2), 22050)
    encoded = subprocess.run(
        [CODEC, "encode", "-", "-o", "-", "-m", str(tiny_ckpt)],
        input=src.read_bytes(),
        capture_output=True,
        check=True,
    )
    decoded = subprocess.run(
        [CODEC, "decode", "-", "-o", "-", "-m", str(tiny_ckpt)],
        input=encoded.stdout,
        capture_output=True,
        check=True,
    )
    (tmp_path / "out.wav").write_bytes(decoded.stdout)
    info = sf.info(tmp_path / "out.wav")
    assert (info.samplerate, info.channels, info.frames) == (22050, 2, 44100)


def test_directory_batch_keeps_relative_paths_with_worker_processes(tiny_ckpt, tmp_path):
    for rel in ("a.wav", "sub/b.flac", "sub/deeper/c.ogg"):
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        save_audio(tmp_path / "in" / rel, tone(0.5, 16000), 16000)
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    result = subprocess.run(
        [
            CODEC,
            "encode",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "tok"),
            "-m",
            str(tiny_ckpt),
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    made = sorted(str(p.relative_to(tmp_path / "tok")) for p in (tmp_path / "tok").rglob("*.tok"))
    assert made == ["a.tok", "sub/b.tok", "sub/deeper/c.tok"]
    result = run("decode", tmp_path / "tok", "-o", tmp_path / "wav", "-m", tiny_ckpt)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "wav" / "sub" / "deeper" / "c.wav").is_file()


def test_wav_scp_batch_names_outputs_by_utterance(tiny_ckpt, tmp_path):
    lines = []
    for utt in ("spk1-u1", "spk2-u7"):
        save_audio(tmp_path / f"{utt}-audio.wav", tone(0.5, 16000), 16000)
        lines.append(f"{utt} {tmp_path / f'{utt}-audio.wav'}")
    (tmp_path / "wav.scp").write_text("\n".join(lines) + "\n")
    result = run("encode", tmp_path / "wav.scp", "-o", tmp_path / "tok", "-m", tiny_ckpt)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["spk1-u1.tok", "spk2-u7.tok"]


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected message)."""
    (tmp_path / "garbage.wav").write_bytes(b"RIFF....WAVEjunk" * 10)
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    nan = tone(0.5, 16000)
    nan[0, 100] = np.nan
    sf.write(tmp_path / "nan.wav", nan.T, 16000, subtype="FLOAT")
    sf.write(tmp_path / "slow.wav", tone(0.5, 2000).T, 2000)
    sf.write(tmp_path / "wide.wav", np.zeros((800, 17)), 16000)
    return {
        "missing": (tmp_path / "missing.wav", "no such audio file"),
        "unreadable": (tmp_path / "garbage.wav", "cannot read audio"),
        "empty": (tmp_path / "empty.wav", "no audio samples"),
        "nan": (tmp_path / "nan.wav", "NaN or Inf"),
        "rate": (tmp_path / "slow.wav", "sample rate 2000 Hz"),
        "channels": (tmp_path / "wide.wav", "17 channels"),
    }


@pytest.mark.parametrize("case", ["missing", "unreadable", "empty", "nan", "rate", "channels"])
def test_bad_input_gets_one_clear_line(tiny_ckpt, tmp_path, case):
    path, message = bad_inputs(tmp_path)[case]
    result = subprocess.run(
        [CODEC, "encode", str(path), "-m", str(tiny_ckpt)], capture_output=True, text=True
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.stderr
    assert not path.with_suffix(".tok").exists()


def test_a_bad_file_in_a_batch_does_not_stop_the_rest(tiny_ckpt, tmp_path):
    bad, _ = bad_inputs(tmp_path)["nan"]
    good = tmp_path / "good.wav"
    save_audio(good, tone(0.5, 16000), 16000)
    result = run("encode", bad, good, "-o", tmp_path / "out", "-m", tiny_ckpt)
    assert result.exit_code == 1
    assert "NaN or Inf" in result.output and "1 of 2 files failed" in result.output
    assert (tmp_path / "out" / "good.tok").is_file()


def test_existing_outputs_need_force(tiny_ckpt, tmp_path):
    src = tmp_path / "x.wav"
    save_audio(src, tone(0.5, 16000), 16000)
    (tmp_path / "x.tok").write_bytes(b"precious")
    result = run("encode", src, "-m", tiny_ckpt)
    assert result.exit_code == 1 and "exists; pass --force" in result.output
    assert (tmp_path / "x.tok").read_bytes() == b"precious"
    assert run("encode", src, "-m", tiny_ckpt, "--force").exit_code == 0
    assert (tmp_path / "x.tok").read_bytes()[:4] == b"CDCT"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_damaged_packet_is_filled_with_silence_and_reported(tiny_ckpt, tmp_path):
    src = tmp_path / "x.wav"
    save_audio(src, tone(16.0, 16000), 16000)  # 3 whole packets of 5.1 s and a short one
    run("encode", src, "-m", tiny_ckpt)
    intact = run("decode", tmp_path / "x.tok", "-m", tiny_ckpt, "-o", tmp_path / "intact.wav")
    assert intact.exit_code == 0 and "warning" not in intact.output
    data = bytearray((tmp_path / "x.tok").read_bytes())
    header = TokenReader(io.BytesIO(bytes(data))).header
    header_end = 4 + 3 + int.from_bytes(data[5:7], "little") + 4
    packet = 6 + packed_size(header.codebook_sizes, header.frames_per_packet)
    assert len(data) > header_end + 2 * packet + 13  # at least three packets
    data[header_end + packet + 10] ^= 0x20  # inside the second packet
    (tmp_path / "bad.tok").write_bytes(bytes(data))
    result = subprocess.run(
        [CODEC, "decode", str(tmp_path / "bad.tok"), "-m", str(tiny_ckpt)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "1 damaged packet, silence in their place" in result.stderr
    seconds = re.search(r"(\d+\.\d+)-(\d+\.\d+) s", result.stderr).groups()
    start, end = (round(float(t) * 16000) for t in seconds)
    good, _ = sf.read(tmp_path / "intact.wav", dtype="float32")
    bad, _ = sf.read(tmp_path / "bad.wav", dtype="float32")
    assert len(bad) == len(good) and 0 < start < end < len(good)  # length and timing kept
    fade = 160  # 10 ms: the audio fades out into the silence and back in after it
    np.testing.assert_array_equal(bad[: start - fade], good[: start - fade])  # unchanged before
    edge = bad[start - fade : start]
    assert abs(edge[-1]) < 0.01 * np.abs(good).max() and np.abs(edge).max() > 0  # no click
    assert not bad[start:end].any() and bad[end:].any()  # silence, then audio again
    assert abs(bad[end]) <= 0.01 * np.abs(good).max()  # and back in from zero


def test_damaged_and_mismatched_token_files_are_refused(tiny_ckpt, tmp_path):
    src = tmp_path / "x.wav"
    save_audio(src, tone(3.0, 16000), 16000)
    run("encode", src, "-m", tiny_ckpt)
    good = (tmp_path / "x.tok").read_bytes()
    cases = {
        "truncated": good[: len(good) - 30],
        "header checksum mismatch": good[:12] + bytes([good[12] ^ 1]) + good[13:],
        "not a codec token file": b"hello world",
    }
    for message, data in cases.items():
        (tmp_path / "bad.tok").write_bytes(data)
        result = subprocess.run(
            [CODEC, "decode", str(tmp_path / "bad.tok"), "-m", str(tiny_ckpt)],
            capture_output=True,
            text=True,
        )
        assert (
            result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
        )
        assert not (tmp_path / "bad.wav").exists()
    torch.manual_seed(1)
    codec.build_model("tiny").save(tmp_path / "other.ckpt")
    out = tmp_path / "y.wav"
    result = run("decode", tmp_path / "x.tok", "-m", tmp_path / "other.ckpt", "-o", out)
    assert result.exit_code == 1 and "other weights" in result.output
    result = run("decode", tmp_path / "x.tok", "-o", out)
    assert result.exit_code == 1 and "not in the model zoo" in result.output
    assert not out.exists()


@pytest.mark.parametrize("rate", [16000, 44100])
def test_tokens_equal_one_piece_encoding_of_a_long_file(tiny_ckpt, tmp_path, rate):
    rng = np.random.default_rng(0)
    seconds = 75.3
    t = np.arange(int(seconds * rate)) / rate
    wav = (
        0.3 * np.sin(2 * np.pi * 180 * t * (1 + 0.2 * np.sin(t)))
        + 0.02 * rng.standard_normal(t.size)
    )[None]
    save_audio(tmp_path / "long.wav", wav, rate)
    assert run("encode", tmp_path / "long.wav", "-m", tiny_ckpt).exit_code == 0
    assert run("dump", tmp_path / "long.tok", "-o", tmp_path / "codes.npy").exit_code == 0
    streamed = np.load(tmp_path / "codes.npy")
    model = codec.load_model(tiny_ckpt)
    audio, _ = load_audio(tmp_path / "long.wav")
    if rate != 16000:
        audio = soxr.resample(audio.T, rate, 16000, quality="HQ").T.copy()
    with torch.inference_mode():
        whole = model.encode(torch.from_numpy(audio)[None].float()).numpy()
    assert streamed.shape == (1, 2, whole.shape[2])
    assert np.array_equal(streamed, whole)


@pytest.fixture(scope="module")
def default_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "speech16k.ckpt"
    codec.build_model("speech16k").save(path)
    return path


@pytest.mark.parametrize(("kbps", "stages"), [(1.5, 3), (3, 6), (6, 12)])
def test_bitrate_picks_the_most_stages_that_fit(default_ckpt, tmp_path, kbps, stages):
    src = tmp_path / "x.wav"
    save_audio(src, tone(6.0, 16000), 16000)
    assert run("encode", src, "-m", default_ckpt, "--bitrate", kbps).exit_code == 0
    result = run("info", tmp_path / "x.tok")
    assert result.exit_code == 0
    fields = dict(line.split(": ", 1) for line in result.output.strip().splitlines())
    assert fields["stages"].startswith(f"{stages} ")
    nominal = float(fields["bitrate"].split()[0])
    assert 0.9 * kbps <= nominal <= kbps
    size = (tmp_path / "x.tok").stat().st_size
    assert size <= 1.03 * nominal * 1000 * 6.0 / 8 + 1024
    assert fields["size"].startswith(f"{size} bytes")


def test_bitrate_below_one_stage_is_an_error(default_ckpt, tmp_path):
    src = tmp_path / "x.wav"
    save_audio(src, tone(0.5, 16000), 16000)
    result = run("encode", src, "-m", default_ckpt, "--bitrate", 0.3)
    assert result.exit_code == 1 and "below this model's lowest bitrate" in result.output
    assert run("encode", src, "-m", default_ckpt, "--bitrate", 3, "--stages", 2).exit_code == 1


def test_dump_and_roundtrip(tiny_ckpt, tmp_path):
    src = tmp_path / "x.wav"
    save_audio(src, tone(1.0, 16000, 2), 16000)
    run("encode", src, "-m", tiny_ckpt, "--stages", 1)
    assert run("dump", tmp_path / "x.tok", "-o", tmp_path / "c.npy").exit_code == 0
    assert np.load(tmp_path / "c.npy").shape == (2, 1, 50)
    result = run("roundtrip", src, "-o", tmp_path / "r.wav", "-m", tiny_ckpt)
    assert result.exit_code == 0, result.output
    assert "kbps nominal" in result.output and "STOI" in result.output
    assert sf.info(tmp_path / "r.wav").frames == 16000


def test_stdin_needs_an_output_and_every_command_has_an_example():
    assert run("encode", "-", "-m", "x").exit_code == 1
    for command in ("encode", "decode", "roundtrip", "info", "dump", "models", "compile"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Example: codec" in result.output

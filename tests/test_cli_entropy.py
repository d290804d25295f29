"""Entropy-coded token files with the shipped model on real speech: same codes as fixed-rate
files, smaller, byte-identical across thread counts, and a golden file that keeps decoding."""

import io
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import CODEC, DATA, random_chunk_sizes
from test_untrusted_tokens import packet_starts
from typer.testing import CliRunner

import codec
from codec.cli.app import app
from codec.compress import decode_file, encode_file, read_codes
from codec.entropy import EntropyModel
from codec.runtime import flush_length
from codec.tokens import TokenReader

SPEECH = [DATA / "speech_en.flac", DATA / "speech_fr.flac"]
GOLDEN = (
    DATA / "golden_v3.tok"
)  # speech_fr.flac, 12 stages, written when format version 3 was introduced


SHIPPED = "speech16k-mini-v2"  # pinned: these figures are its tables', whatever `default` is


@pytest.fixture(scope="module")
def shipped():
    return codec.load_model(SHIPPED)


def encoded(model, path, n_stages, fixed_rate=False) -> bytes:
    target = io.BytesIO()
    encode_file(model, SHIPPED, path, target, n_stages, fixed_rate=fixed_rate)
    return target.getvalue()


def codes_of(data: bytes, model) -> np.ndarray:
    return TokenReader(io.BytesIO(data), entropy=model.entropy).read_all()


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("path", SPEECH, ids=lambda p: p.stem)
def test_every_stage_count_keeps_the_fixed_rate_codes_in_fewer_bytes(shipped, path):
    for n in range(1, shipped.num_stages + 1):
        coded, fixed = encoded(shipped, path, n), encoded(shipped, path, n, fixed_rate=True)
        assert (coded[4], fixed[4]) == (3, 2)
        np.testing.assert_array_equal(codes_of(coded, shipped), codes_of(fixed, shipped))
        assert len(coded) < 0.97 * len(fixed), n  # 5-18% smaller on these two files


def test_a_file_the_tables_would_enlarge_is_written_fixed_rate():
    """Tables fitted on nothing but code 0 make speech's codes cost more than fixed-rate: the
    encoder writes the smaller format, byte for byte what --fixed-rate writes."""
    model = codec.load_model(SHIPPED)
    zeros = np.zeros((model.num_stages, 500), np.int64)
    model.entropy = EntropyModel.fit(model.quantizer.digit_radices, [zeros])
    assert encoded(model, SPEECH[1], 6) == encoded(model, SPEECH[1], 6, fixed_rate=True)


def test_both_formats_decode_to_the_same_audio(shipped, tmp_path):
    outputs = []
    for fixed_rate in (False, True):
        tokens = io.BytesIO(encoded(shipped, SPEECH[1], 6, fixed_rate))
        out = tmp_path / f"{fixed_rate}.wav"
        decode_file(tokens, out, lambda header: shipped)
        outputs.append(sf.read(out)[0])
    np.testing.assert_array_equal(*outputs)


def test_files_are_byte_identical_with_one_and_two_threads(shipped):
    before = torch.get_num_threads()
    try:
        files = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            files.append(encoded(shipped, SPEECH[0], 12))
    finally:
        torch.set_num_threads(before)
    assert files[0] == files[1]


def test_the_golden_version_3_file_keeps_decoding_to_its_codes():
    header, codes, samples = read_codes(GOLDEN)  # tables from the zoo model it names
    assert header.version == 3 and header.model == "speech16k-mini-v2"
    np.testing.assert_array_equal(codes, np.load(GOLDEN.with_suffix(".codes.npy")))
    assert samples == sf.info(DATA / "speech_fr.flac").frames


def test_info_fixed_rate_dump_and_damage_through_the_command(tmp_path):
    src = tmp_path / "x.flac"
    sf.write(src, np.concatenate([sf.read(p)[0] for p in SPEECH * 2]), 16000)  # 17 s
    assert run("encode", src, "-b", 6, "-m", SHIPPED).exit_code == 0
    fixed_rate = ("--fixed-rate", "-o", tmp_path / "f.tok")
    assert run("encode", src, "-b", 6, "-m", SHIPPED, *fixed_rate).exit_code == 0
    info = dict(line.split(": ", 1) for line in run("info", tmp_path / "x.tok").output.splitlines())
    assert info["format"].startswith("version 3 (entropy-coded")
    nominal, actual = (float(x.split()[0]) for x in info["bitrate"].split(", "))
    assert nominal == pytest.approx(12 * 50 * np.log2(1000) / 1000, abs=1e-3)
    assert actual < 0.95 * nominal
    fixed = dict(
        line.split(": ", 1) for line in run("info", tmp_path / "f.tok").output.splitlines()
    )
    assert fixed["format"] == "version 2 (fixed-rate)" and fixed["frames"] == info["frames"]
    assert run("dump", tmp_path / "x.tok", "-o", tmp_path / "c.npy").exit_code == 0
    assert run("dump", tmp_path / "f.tok", "-o", tmp_path / "d.npy").exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), np.load(tmp_path / "d.npy"))

    data = bytearray((tmp_path / "x.tok").read_bytes())
    data[len(data) // 2] ^= 0x08  # a packet in the middle
    (tmp_path / "bad.tok").write_bytes(bytes(data))
    result = subprocess.run(
        [CODEC, "decode", str(tmp_path / "bad.tok")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "1 damaged packet, silence in their place" in result.stderr
    assert sf.info(tmp_path / "bad.wav").frames == sf.info(src).frames
    assert run("info", tmp_path / "bad.tok").exit_code == 1  # strict readers refuse damage

    data = bytearray((tmp_path / "x.tok").read_bytes())
    for start in packet_starts(bytes(data), 3)[:4]:  # 20 bits over four packets in a row
        for bit in range(5):
            data[start + 12 + 7 * bit] ^= 1 << bit
    (tmp_path / "bad.tok").write_bytes(bytes(data))
    result = subprocess.run(
        [CODEC, "decode", str(tmp_path / "bad.tok"), "--force"], capture_output=True, text=True
    )
    assert "4 damaged packets, silence in their place: 0.00-4.00 s" in result.stderr
    truncated = tmp_path / "cut.tok"
    truncated.write_bytes((tmp_path / "f.tok").read_bytes()[:-20])
    said = [
        subprocess.run([CODEC, *command, str(truncated)], capture_output=True, text=True).stderr
        for command in (["info"], ["decode", "-o", str(tmp_path / "cut.wav")])
    ]
    assert said[0] == said[1] == f"error: {truncated} is truncated (no end record)\n"
    appended = tmp_path / "more.tok"
    appended.write_bytes((tmp_path / "f.tok").read_bytes() + b"\n")
    result = subprocess.run([CODEC, "decode", str(appended)], capture_output=True, text=True)
    assert result.returncode == 0 and "1 byte after the end record skipped" in result.stderr
    assert sf.info(tmp_path / "more.wav").frames == sf.info(src).frames


def test_compile_fits_tables_so_an_older_checkpoint_writes_version_3(tmp_path):
    torch.manual_seed(0)
    codec.build_model("tiny").save(tmp_path / "tiny.ckpt")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "wav.scp").write_text("".join(f"u{i} {p}\n" for i, p in enumerate(SPEECH)))
    src = SPEECH[1]
    result = run("encode", src, "-m", tmp_path / "tiny.ckpt", "-o", tmp_path / "old.tok")
    assert result.exit_code == 0 and "has no entropy tables" in result.output
    assert (tmp_path / "old.tok").read_bytes()[4] == 2
    out = tmp_path / "compiled.ckpt"
    result = run("compile", tmp_path / "tiny.ckpt", "--data", tmp_path / "data", "-o", out)
    assert result.exit_code == 0, result.output
    assert "fitted entropy tables" in result.output
    compiled = codec.load_model(out)
    assert compiled.entropy is not None
    assert run("encode", src, "-m", out, "-o", tmp_path / "new.tok").exit_code == 0
    assert (tmp_path / "new.tok").read_bytes()[4] == 3
    assert run("decode", tmp_path / "new.tok", "-m", out).exit_code == 0
    assert run("decode", tmp_path / "old.tok", "-m", out).exit_code == 0  # same weights
    _, new_codes, _ = read_codes(tmp_path / "new.tok", compiled)
    _, old_codes, _ = read_codes(tmp_path / "old.tok", compiled)
    np.testing.assert_array_equal(new_codes, old_codes)


def test_chunking_changes_real_speech_codes_at_rare_near_ties_at_most(shipped):
    """The guarantee the README states: `codec encode` (fixed one-second chunks) is one
    computation; whole-file and randomly chunked encoding agree with it but for near-ties."""
    rng = np.random.default_rng(0)
    differ = total = 0
    for path in [*SPEECH, DATA / "speech_en2.flac"]:
        cli = codes_of(encoded(shipped, path, 12, fixed_rate=True), shipped)[0]
        assert encoded(shipped, path, 12) == encoded(shipped, path, 12)  # deterministic
        wav = torch.from_numpy(sf.read(path, dtype="float32")[0]).view(1, 1, -1)
        with torch.inference_mode():
            whole = shipped.encode(wav)[0].numpy()
            sizes = random_chunk_sizes(wav.shape[-1], rng, 9000)
            with shipped.streaming(batch_size=1):
                parts = [shipped.encode(c) for c in torch.split(wav, sizes, dim=-1)]
                flush = flush_length(wav.shape[-1], shipped.delay, shipped.hop_length)
                parts.append(shipped.encode(torch.zeros(1, 1, flush)))
        chunked = torch.cat(parts, dim=-1)[0].numpy()
        assert whole.shape == chunked.shape == cli.shape
        differ += (whole != cli).sum() + (chunked != cli).sum()
        total += 2 * cli.size
    assert differ <= 1e-3 * total

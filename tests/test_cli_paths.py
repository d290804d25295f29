"""Hostile or awkward paths: nothing is written outside -o, only regular files are replaced,
a model argument is a zoo name unless it looks like a path, and every failure is one line."""

import os
import signal
import subprocess
import sys
import time

from helpers import CODEC, DATA

SPEECH = str(DATA / "speech_en.flac")


def codec(*args, cwd):
    return subprocess.run([CODEC, *map(str, args)], cwd=cwd, capture_output=True, text=True)


def one_error_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_wav_scp_ids_cannot_climb_out_of_the_output_folder(tmp_path):
    for bad in ("../../escaped", "/tmp/absolute"):
        (tmp_path / "wav.scp").write_text(f"good {SPEECH}\n{bad} {SPEECH}\n")
        line = one_error_line(codec("encode", "wav.scp", "-o", "out", cwd=tmp_path))
        assert "would be written outside out" in line
    assert not (tmp_path.parent / "escaped.tok").exists() and not (tmp_path / "out").exists()


def test_force_replaces_regular_files_only(tmp_path):
    os.mkfifo(tmp_path / "pipe.tok")
    line = one_error_line(codec("encode", SPEECH, "-o", "pipe.tok", "--force", cwd=tmp_path))
    assert "is not a regular file" in line
    assert (tmp_path / "pipe.tok").is_fifo() and os.listdir(tmp_path) == ["pipe.tok"]


def test_an_output_ending_in_a_slash_is_a_folder_made_for_it(tmp_path):
    done = codec("encode", SPEECH, "-o", "new/", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "speech_en.tok").is_file()


def test_a_file_named_like_a_zoo_model_is_not_taken_for_it(tmp_path):
    (tmp_path / "default").write_bytes(b"not a model")
    (tmp_path / "speech16k-frame-v6").write_bytes(b"not a model")
    assert codec("encode", SPEECH, "-o", "x.tok", cwd=tmp_path).returncode == 0
    listed = codec("models", cwd=tmp_path)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    line = one_error_line(codec("encode", SPEECH, "-o", "y.tok", "-m", "./default", cwd=tmp_path))
    assert "default is not a codec model checkpoint" in line


def test_long_names_fail_in_one_line_and_legal_ones_are_written(tmp_path):
    too_long = "a" * 300 + ".wav"
    assert "File name too long" in one_error_line(codec("encode", too_long, cwd=tmp_path))
    longest = "b" * 251 + ".tok"  # 255 bytes: the most a name may have here
    done = codec("encode", SPEECH, "-o", longest, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / longest).is_file()


def test_sigterm_leaves_no_temporary_file(tmp_path):
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    sf.write(tmp_path / "long.wav", 0.1 * rng.standard_normal(16000 * 120), 16000)
    process = subprocess.Popen([CODEC, "encode", "long.wav", "-o", "long.tok"], cwd=tmp_path,
                               stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(name.endswith(".tmp") for name in os.listdir(tmp_path)):
        assert time.monotonic() < deadline and process.poll() is None, "no output was begun"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    code = process.wait(30)
    assert code == 128 + signal.SIGTERM, process.stderr.read().decode()[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["long.wav"]


def test_argument_errors_are_one_line(tmp_path):
    line = one_error_line(codec("encode", SPEECH, "-o", "x.tok", "-s", "13", cwd=tmp_path))
    assert line == "error: --stages 13: the model has 12 stages"
    line = one_error_line(codec("encode", "missing.wav", cwd=tmp_path))
    assert "missing.wav" in line


def test_dumping_an_entropy_coded_file_imports_no_torch(tmp_path):
    """The zoo model's entropy tables come from its exported graphs' folder."""
    long = tmp_path / "long.flac"
    import numpy as np
    import soundfile as sf

    speech, rate = sf.read(SPEECH)
    sf.write(long, np.tile(speech, 8), rate)
    assert codec("encode", long, "-o", "x.tok", cwd=tmp_path).returncode == 0
    assert "entropy-coded" in codec("info", "x.tok", cwd=tmp_path).stdout
    script = (
        "import sys\nfrom codec.cli import app\n"
        "try:\n    app(['dump', 'x.tok', '-o', 'x.npy'])\nexcept SystemExit as e:\n"
        "    assert not e.code, e.code\nassert 'torch' not in sys.modules, 'torch was imported'"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.load(tmp_path / "x.npy").shape[:2] == (1, 12)


def test_the_default_path_writes_the_same_bytes_at_any_thread_count(tmp_path):
    written = []
    for cpus in ("0", "0,1"):
        out = f"x{len(written)}.tok"
        done = subprocess.run(["taskset", "-c", cpus, CODEC, "encode", SPEECH, "-o", out],
                              cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        written.append((tmp_path / out).read_bytes())
    assert written[0] == written[1]


def test_outputs_are_written_in_their_named_format_or_refused(tmp_path):
    assert codec("encode", SPEECH, "-o", "x.tok", "-s", "3", cwd=tmp_path).returncode == 0
    line = one_error_line(codec("decode", "x.tok", "-o", "x.mp3", cwd=tmp_path))
    assert "cannot write .mp3 audio" in line and not (tmp_path / "x.mp3").exists()
    line = one_error_line(codec("roundtrip", SPEECH, "-o", "-", cwd=tmp_path))
    assert "give -o an audio file" in line
    import numpy as np
    import soundfile as sf

    nine = np.tile(sf.read(SPEECH)[0][:16000, None], (1, 9))
    sf.write(tmp_path / "nine.wav", 0.5 * nine, 16000)
    assert codec("encode", "nine.wav", "-o", "nine.tok", "-s", "3", cwd=tmp_path).returncode == 0
    line = one_error_line(codec("decode", "nine.tok", "-o", "nine.flac", cwd=tmp_path))
    assert "FLAC holds at most 8 channels" in line and not (tmp_path / "nine.flac").exists()
    assert codec("decode", "nine.tok", "-o", "out.wav", cwd=tmp_path).returncode == 0
    assert sf.info(tmp_path / "out.wav").channels == 9


def test_a_wav_cut_short_is_coded_with_a_warning(tmp_path):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "full.wav", 0.1 * np.random.default_rng(0).standard_normal(32000), 16000)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: 44 + 1000])  # the header still says 32,000
    done = codec("encode", "cut.wav", "-o", "cut.tok", cwd=tmp_path)
    assert done.returncode == 0
    assert "warning: cut.wav: its header promises 32000 samples, it holds 500" in done.stderr
    whole = codec("encode", "full.wav", "-o", "full.tok", cwd=tmp_path)
    assert whole.returncode == 0 and "warning" not in whole.stderr

"""Getting a corpus and a run to a size-limited GPU machine and back, all on the CPU: shards
in loads, checkpoints in parts, and `tools/gpu_round.py` pack -> remote -> receive -> resume."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DATA, load_script

from codec.data.kaldi import read_data_dir
from codec.data.memory import load_bank
from codec.data.shards import merge_data_dirs, pack_loads
from codec.train.checkpoint import join_parts, split_file

ROUND = Path(__file__).parent.parent / "tools" / "gpu_round.py"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Real speech cut into 14 utterances of two speakers, and a short synthetic one."""
    root = tmp_path_factory.mktemp("round")
    rng = np.random.default_rng(0)
    sf.write(root / "noise.wav", 0.1 * rng.standard_normal(8000), 16000, subtype="PCM_16")
    data = root / "train"
    data.mkdir()
    (data / "wav.scp").write_text(
        f"en {DATA / 'speech_en.flac'}\nen2 {DATA / 'speech_en2.flac'}\n"
        f"noise {root / 'noise.wav'}\n"
    )
    segments, speakers = [], []
    for rec in ("en", "en2"):
        for k in range(7):
            segments.append(f"{rec}-{k} {rec} {0.5 * k:.1f} {0.5 * k + 0.5:.1f}\n")
            speakers.append(f"{rec}-{k} spk_{rec}\n")
    segments.append("noise-0 noise 0 0.5\n")
    speakers.append("noise-0 spk_noise\n")
    (data / "segments").write_text("".join(segments))
    (data / "utt2spk").write_text("".join(speakers))
    return data


def test_flac_loads_hold_every_utterance_exactly_within_their_size(corpus, tmp_path):
    loads = pack_loads(corpus, tmp_path / "packed", 16000, 40_000, shard_seconds=1.0)
    assert len(loads) > 1 and all(load.bytes <= 40_000 for load in loads)
    for load in loads:
        files = [p for p in load.path.iterdir() if p.suffix == ".flac"]
        assert sum(p.stat().st_size for p in files) == load.bytes <= 40_000
    merged = tmp_path / "merged"
    assert merge_data_dirs([load.path for load in loads], merged) == 15
    original, packed = read_data_dir(corpus), read_data_dir(merged)
    assert [u.id for u in packed] == [u.id for u in original]
    a, b = load_bank(original, 16000), load_bank(packed, 16000)
    assert torch.equal(a.audio, b.audio) and (a.lengths == b.lengths).all()
    speakers = (merged / "utt2spk").read_text().splitlines()
    assert "en2-3 spk_en2" in speakers


def test_opus_loads_keep_lengths_and_alignment(corpus, tmp_path):
    (load,) = pack_loads(corpus, tmp_path / "opus", 16000, 10**6, kbps=32, shard_seconds=3.0)
    original = load_bank(read_data_dir(corpus), 16000)
    merge_data_dirs([load.path], tmp_path / "merged")
    packed = load_bank(read_data_dir(tmp_path / "merged"), 16000)
    assert (packed.lengths == original.lengths).all()
    for i in range(len(original.lengths)):
        x, y = original.utterance(i), packed.utterance(i)
        if x.abs().max() > 0.01:  # a lossy copy, but of the same samples, in place
            assert torch.corrcoef(torch.stack([x, y]))[0, 1] > 0.9
    with pytest.raises(ValueError, match="Opus takes"):
        pack_loads(corpus, tmp_path / "bad", 16000, 10**6, kbps=500)


def test_a_split_file_joins_back_and_damage_is_caught(tmp_path):
    source = tmp_path / "step00000007.pt"
    source.write_bytes(np.random.default_rng(0).bytes(10_000))
    parts = split_file(source, tmp_path / "out", 3000)
    assert len(parts) == 4 and all(p.stat().st_size <= 3000 for p in parts)
    stem = tmp_path / "out" / source.name
    assert join_parts(stem, tmp_path / "back.pt").read_bytes() == source.read_bytes()
    damaged = bytearray(parts[1].read_bytes())
    damaged[5] ^= 1
    parts[1].write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="checksum"):
        join_parts(stem, tmp_path / "again.pt")
    parts[2].unlink()
    with pytest.raises(ValueError, match="parts missing"):
        join_parts(stem, tmp_path / "again.pt")


def _round(tmp_path, *args, env=None):
    command = [sys.executable, str(ROUND), "--stage", str(tmp_path / "stage")]
    command += ["--work", str(tmp_path / "work"), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_round_trains_on_the_loads_returns_and_the_next_one_resumes(corpus, tmp_path):
    config = Path(__file__).parent.parent / "codec" / "presets" / "tiny.yaml"
    fast = ["--set", "train.valid_every=100000", "--set", "train.max_steps=100000"]
    # a load size of its own: what fits beside the working tree is the next test's
    packed = _round(
        tmp_path, "pack", "--data", str(corpus), "--config", str(config), "--minutes", "0.02",
        "--no-wheels", "--load-mb", "1", *fast,
    )  # fmt: skip
    assert "in 1 load(s) of FLAC (lossless)" in packed
    assert '"command": "python3 tools/gpu_round.py remote"' in packed
    env = os.environ | {"OUT": str(tmp_path / "out1")}
    trained = _round(tmp_path, "remote", env=env)
    assert "15 utterances to train on" in trained
    back = sorted(p.name for p in (tmp_path / "out1").iterdir())
    assert "model.ckpt" in back and "logs.tar.gz" in back
    assert all((tmp_path / "out1" / name).stat().st_size < 16 << 20 for name in back)
    _round(tmp_path, "receive", str(tmp_path / "out1"), "-o", str(tmp_path / "exp"))
    (first,) = (tmp_path / "exp" / "checkpoints").glob("step*.pt")
    log = (tmp_path / "exp" / "log" / "train.log").read_text()
    assert "budget is spent" in log
    # round two continues the same run: optimizer state and step count carry over
    _round(tmp_path, "pack", "--data", str(corpus), "--resume", str(tmp_path / "exp"),
           "--minutes", "0.02", "--no-wheels", "--load-mb", "1")  # fmt: skip
    env = os.environ | {"OUT": str(tmp_path / "out2")}
    shutil.rmtree(tmp_path / "work")  # a fresh machine: only what travelled is there
    _round(tmp_path, "remote", env=env)
    _round(tmp_path, "receive", str(tmp_path / "out2"), "-o", str(tmp_path / "exp2"))
    (second,) = (tmp_path / "exp2" / "checkpoints").glob("step*.pt")
    a, b = (torch.load(p, weights_only=True) for p in (first, second))
    assert b["step"] > a["step"] and b["elapsed"] > a["elapsed"] >= 1.2
    assert "resumed from" in (tmp_path / "exp2" / "log" / "train.log").read_text()
    assert b["optimizer"]["state"][0]["step"] == b["step"]  # Adam's count ran on, not restarted


def test_a_tree_that_leaves_a_call_no_room_for_audio_is_refused_with_the_reason(
    corpus, tmp_path, monkeypatch
):
    """Loads fill what a device call carries beside the working tree; where the tree leaves
    less than a load's worth, pack says so and what to do, before it packs anything."""
    gpu_round = load_script(ROUND)
    config = Path(__file__).parent.parent / "codec" / "presets" / "tiny.yaml"
    args = argparse.Namespace(
        stage=tmp_path / "stage", data=corpus, config=config, kbps=None, minutes=0.01,
        resume=None, init_from=None, set=[], bench=False, workers=1, wheels=False,
        load_mb=None, shard_seconds=300.0,
    )  # fmt: skip
    room = gpu_round.tree_bytes() + (1 << 20) + gpu_round.MIN_LOAD_BYTES  # + the margin
    monkeypatch.setattr(gpu_round, "CALL_BYTES", room - 4096)
    with pytest.raises(SystemExit, match=r"leave 1\.0 MiB of a .* for training audio: take out"):
        gpu_round.pack(args)
    assert not (tmp_path / "stage" / "shards").exists()
    monkeypatch.setattr(gpu_round, "CALL_BYTES", room + (1 << 20))
    gpu_round.pack(args)
    assert (tmp_path / "stage" / "load1").is_dir()


def test_loads_sent_in_several_calls_meet_on_the_machine_and_a_lost_one_is_named(corpus, tmp_path):
    config = Path(__file__).parent.parent / "codec" / "presets" / "tiny.yaml"
    printed = _round(
        tmp_path, "pack", "--data", str(corpus), "--config", str(config), "--minutes", "0.01",
        "--no-wheels", "--load-mb", "0.06", "--shard-seconds", "1",
        "--set", "train.valid_every=100000",
    )  # fmt: skip
    calls = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert len(calls) >= 2 and all("--stage-only" in c["command"] for c in calls[:-1])
    assert calls[-1]["command"].endswith("remote") and ".device/run" in calls[-1]["carry"]

    def call(number: int, machine: str) -> subprocess.CompletedProcess:
        """The device call `number`: a tree that holds only what that call carries."""
        tree = tmp_path / f"call{number}"
        shutil.rmtree(tree, ignore_errors=True)
        for path in calls[number]["carry"]:
            name = Path(path).name
            shutil.copytree(tmp_path / "stage" / name, tree / name)
        command = [sys.executable, str(ROUND), "--stage", str(tree), "--work", machine]
        command += calls[number]["command"].split()[2:]
        env = os.environ | {"OUT": str(tmp_path / "out")}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)

    cold = call(len(calls) - 1, str(tmp_path / "cold"))  # the earlier loads never arrived
    assert cold.returncode != 0 and "load1" in cold.stderr and "--stage-only" in cold.stderr
    warm = str(tmp_path / "warm")
    for number in range(len(calls)):
        done = call(number, warm)
        assert done.returncode == 0, done.stdout + done.stderr
    assert f"training on {len(calls)} of {len(calls)} loads" in done.stdout
    assert "15 utterances to train on" in done.stdout

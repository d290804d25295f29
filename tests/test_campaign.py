"""`tools/campaign.py`: rounds that resume from the newest weights, here or on a fresh machine."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DATA, load_script

import codec
from codec.audio import save_audio
from codec.zoo import checkpoint_file

CAMPAIGN = Path(__file__).parent.parent / "tools" / "campaign.py"
TINY = ["--config", "tiny-frame", "--minutes", "0.02", "--threads", "1"]
TINY += [f"--set={s}" for s in ("train.batch_size=2", "train.num_workers=0")]
TINY += [f"--set={s}" for s in ("train.entropy_seconds=5", "train.valid_every=1000")]
TINY += ["--set=train.max_steps=1000000"]  # the budget ends each round


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """train/ and dev/ data directories of real and synthetic speech."""
    root = tmp_path_factory.mktemp("campaign_data")
    t = np.arange(16000) / 16000
    save_audio(root / "voiced.wav", 0.3 * np.sin(2 * np.pi * 140 * t)[None], 16000)
    (root / "train").mkdir()
    (root / "train" / "wav.scp").write_text(
        f"voiced {root / 'voiced.wav'}\nreal1 {DATA / 'speech_en.flac'}\n"
    )
    (root / "dev").mkdir()
    (root / "dev" / "wav.scp").write_text(f"real2 {DATA / 'speech_en2.flac'}\n")
    return root


def campaign(*args, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(CAMPAIGN), *map(str, args)], cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def round_of(work: Path, state: Path, corpus: Path) -> dict:
    """One whole round: start it, wait for it, score it on dev; its log entry."""
    campaign("start", "--data", corpus, "--state", state, *TINY, cwd=work)
    campaign("finish", "--dev", corpus / "dev", "--state", state, cwd=work)
    return json.loads((state / "rounds.json").read_text())[-1]


def test_rounds_resume_from_local_weights_then_from_the_committed_ones(tmp_path, corpus):
    work, state = tmp_path / "work", tmp_path / "state"
    work.mkdir()
    first = round_of(work, state, corpus)
    assert first["round"] == 1 and first["init"] is None  # nothing yet: from scratch
    assert first["steps"] > 0 and first["audio_seconds"] > 0 and first["cpu_minutes"] > 0
    assert set(first["dev"]) == {"3", "6", "12"} and 0 < first["dev"]["12"]["stoi"] <= 1
    assert first["config"] == "tiny-frame" and "train.batch_size=2" in first["set"]
    committed = codec.load_model(state / "latest.ckpt")  # a warm start: int8 matrices
    stored = torch.load(state / "latest.ckpt", weights_only=True)["state_dict"]
    assert {v.dtype for v in stored.values() if v.dim() >= 2} == {torch.int8}
    trained = codec.load_model(work / "exp" / "campaign" / "state" / "round1" / "model.ckpt")
    for name, value in committed.state_dict().items():  # within int8's rounding of each row
        row_max = trained.state_dict()[name].reshape(len(value), -1).abs().amax(1).max()
        assert (value - trained.state_dict()[name]).abs().max() <= row_max / 254 + 1e-3, name
    assert committed.config.backbone == "frame" and committed.entropy is None

    second = round_of(work, state, corpus)  # the same machine: round 1's last state, moments too
    checkpoints = work.absolute() / "exp" / "campaign" / "state" / "round1" / "checkpoints"
    assert Path(second["init"]).parent == checkpoints and second["init"].endswith(".pt")
    assert "train.init_optimizer=true" in second["set"]

    shutil.rmtree(work / "exp")  # a fresh machine: only the repository's state is left
    third = round_of(work, state, corpus)
    assert third["round"] == 3 and third["init"] == str(state / "latest.ckpt")
    assert "train.init_optimizer=true" not in third["set"]  # weights only: fresh moments
    log = json.loads((state / "rounds.json").read_text())
    assert [entry["round"] for entry in log] == [1, 2, 3]
    table = campaign("report", "--state", state, cwd=work).splitlines()
    assert len(table) == 2 + 3 and "| 3 | tiny-frame train.batch_size=2 " in table[-1]


def test_the_next_round_continues_from_where_the_last_one_began_to_decay(tmp_path, corpus):
    """On the same machine a round with a stable rate and a final decay is continued from the
    state where its decay began, Adam's moments and all: no new warm-up from its model."""
    work, state = tmp_path / "work", tmp_path / "state"
    work.mkdir()
    steps = ["--minutes", "10", "--set=train.max_steps=4", "--set=train.warmup_steps=1"]
    steps += ["--set=optim.decay_fraction=0.5"]
    for _ in range(2):
        campaign("start", "--data", corpus, "--state", state, *TINY, *steps, cwd=work)
        campaign("finish", "--dev", corpus / "dev", "--state", state, cwd=work)
    first, second = json.loads((state / "rounds.json").read_text())
    continued = (
        work.absolute() / "exp" / "campaign" / "state" / "round1" / "checkpoints" / "decay_start.pt"
    )
    assert first["init"] is None and second["init"] == str(continued)
    assert "train.init_optimizer=true" in second["set"]
    resumed = torch.load(Path(second["exp"], "checkpoints", "decay_start.pt"), weights_only=True)
    adam_steps = {int(v["step"]) for v in resumed["optimizer"]["state"].values()}
    assert resumed["step"] < adam_steps.pop()  # its moments came from round 1


def test_a_round_that_dies_is_reported_not_waited_for_and_the_next_start_runs_it_again(
    tmp_path, corpus
):
    state = tmp_path / "state"
    bad = ["--config", "tiny-frame", "--minutes", "1", "--set=train.no_such_key=1"]
    campaign("start", "--data", corpus, "--state", state, *bad, cwd=tmp_path)
    done = subprocess.run(
        [sys.executable, str(CAMPAIGN), "finish", "--dev", str(corpus / "dev"), "--state", state],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "stopped without a model" in done.stderr
    assert "no_such_key" in done.stderr
    entry = round_of(tmp_path, state, corpus)  # it never began: started again as asked now
    assert entry["round"] == 1 and entry["steps"] > 0 and "train.no_such_key=1" not in entry["set"]


def test_a_round_cut_off_is_continued_from_its_newest_checkpoint(tmp_path, corpus):
    """The machine stopped under a round: the next `start` resumes it, with its own settings,
    for the minutes given; a round still training is left alone."""
    state = tmp_path / "state"
    steps = ["--minutes", "10", "--set=train.checkpoint_every=1", "--set=train.warmup_steps=1"]
    campaign("start", "--data", corpus, "--state", state, *TINY, *steps, cwd=tmp_path)
    exp = tmp_path / "exp" / "campaign" / "state" / "round1"
    pid = json.loads(exp.with_suffix(".json").read_text())["pid"]
    deadline = time.monotonic() + 120
    while len(list((exp / "checkpoints").glob("step*.pt"))) < 2:
        assert time.monotonic() < deadline, exp.with_suffix(".out").read_text()[-2000:]
        time.sleep(0.2)
    again = subprocess.run(
        [sys.executable, str(CAMPAIGN), "start", "--data", corpus, "--state", state],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert again.returncode != 0 and "finish it first" in again.stderr
    os.killpg(pid, signal.SIGKILL)
    running = load_script(CAMPAIGN)._running
    while running(pid):
        time.sleep(0.1)
    cut = torch.load(sorted((exp / "checkpoints").glob("step*.pt"))[-1], weights_only=True)
    resumed = campaign("start", "--data", corpus, "--state", state, "--minutes", "0.02",
                       "--threads", "2", cwd=tmp_path)  # fmt: skip
    assert "cut off after" in resumed
    campaign("finish", "--dev", corpus / "dev", "--state", state, cwd=tmp_path)
    entry = json.loads((state / "rounds.json").read_text())[-1]
    assert entry["round"] == 1 and entry["threads"] == 1  # its own settings, not this start's
    assert entry["steps"] > cut["step"]
    log = (exp / "log" / "train.log").read_text()
    assert f"resumed from step{cut['step']:08d}.pt" in log


def test_a_round_runs_at_the_lowest_priority_in_its_own_session_too():
    """nice alone does not yield to the tests where the kernel shares CPU between sessions
    first (autogroup): the round's session group is niced as well."""
    module = load_script(CAMPAIGN)
    probe = "import os, pathlib; g = pathlib.Path('/proc/self/autogroup'); "
    probe += "print(os.nice(0), g.read_text().split()[-1] if g.exists() else 'none')"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        start_new_session=True, preexec_fn=module.lowest_priority,
    )  # fmt: skip
    nice, group = done.stdout.split()
    assert nice == "19"
    assert group == ("19" if Path("/proc/self/autogroup").exists() else "none")


def test_a_shipped_round_drops_its_copy_and_a_fresh_machine_starts_from_the_zoo(tmp_path):
    module = load_script(CAMPAIGN)
    state = tmp_path / "state"
    state.mkdir()
    (state / "latest.ckpt").write_bytes(b"weights")
    entry = {"round": 1, "exp": str(tmp_path / "gone"), "shipped": None}
    (state / "rounds.json").write_text(json.dumps([entry]))
    with pytest.raises(FileNotFoundError):  # not in the zoo: nothing is recorded or removed
        module.shipped(argparse.Namespace(state=state, name="speech16k-frame-v0"))
    assert (state / "latest.ckpt").is_file()
    module.shipped(argparse.Namespace(state=state, name="speech16k-mini-v2"))
    assert not (state / "latest.ckpt").exists()
    rounds = module.read_log(state)
    assert rounds[-1]["shipped"] == "speech16k-mini-v2"
    weights, moments = module.start_weights(state, rounds)
    assert weights == checkpoint_file("speech16k-mini-v2") and not moments


def test_each_line_is_drawn_against_its_own_cpu_hours(tmp_path):
    """A round scored on dev only counts in its line's hours but draws no point; every line
    given is drawn, v3's and v7's side by side on one figure, and a new line with no round
    scored on held-out speech yet (v8) does not stop the others being drawn."""
    module = load_script(CAMPAIGN)
    scores = {str(n): {"pesq_wb": 1.5 + n / 100, "stoi": 0.9} for n in module.STAGES}
    rounds = [
        {"cpu_minutes": 60, "held_out": scores},
        {"cpu_minutes": 30},
        {"cpu_minutes": 90, "held_out": scores},
    ]
    hours, scored = module.held_out_curve(rounds)
    assert hours == [1.0, 3.0] and scored == [rounds[0], rounds[2]]
    lines = [tmp_path / "v3", tmp_path / "v7", tmp_path / "v8"]
    for line, log in zip(lines, (rounds, rounds[:1], rounds[1:2]), strict=True):
        module.write_log(line, log)
    out = tmp_path / "campaign.png"
    module.plot(argparse.Namespace(lines=lines, out=out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation_curves_are_read_from_the_training_log_and_drawn(tmp_path):
    module = load_script(CAMPAIGN)
    runs = []
    for name, mel in (("a", 0.5), ("b", 0.7)):
        log = tmp_path / name / "log"
        log.mkdir(parents=True)
        lines = [
            "2026-12-05 01:00:00 step 50: loss/mel=0.9 loss/total=2.1",
            f"2026-12-05 01:01:00 step 500: valid/mel_distance={mel} valid/stoi=0.6 "
            "valid/pesq_wb=1.1",
            f"2026-12-05 01:02:00 step 1000: valid/mel_distance={mel - 0.1} valid/stoi=0.7 "
            "valid/pesq_wb=1.2",
        ]
        (log / "train.log").write_text("\n".join(lines) + "\n")
        runs.append(tmp_path / name)
    scores = module.validation(runs[0])
    assert scores["mel_distance"] == [(500, 0.5), (1000, 0.4)]
    assert scores["stoi"] == [(500, 0.6), (1000, 0.7)] and set(scores) == {
        "mel_distance", "stoi", "pesq_wb"
    }  # fmt: skip
    out = tmp_path / "curves.png"
    module.curves(argparse.Namespace(runs=runs, labels=["v7", "v3"], out=out))
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit, match="2 runs and 1 labels"):
        module.curves(argparse.Namespace(runs=runs, labels=["v7"], out=out))


def test_a_line_whose_weights_are_gone_is_not_restarted_silently(tmp_path):
    module = load_script(CAMPAIGN)
    rounds = [{"round": 1, "exp": str(tmp_path / "gone"), "shipped": None}]
    with pytest.raises(SystemExit, match="start a new line"):
        module.start_weights(tmp_path, rounds)
    assert module.start_weights(tmp_path, []) == (None, False)  # a new line: from scratch

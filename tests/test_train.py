"""`codec train`: experiments, overrides, VP compilation, resume after SIGKILL, 2-process DDP."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from helpers import CODEC, DATA
from typer.testing import CliRunner

import codec
from codec.audio import save_audio
from codec.cli.app import app
from codec.train import trainer
from codec.train.checkpoint import model_from_checkpoint
from codec.train.trainer import lr_factor

VP_TINY = ["--set", "model.quantizer.kind=vp", "--set", "model.quantizer.dim=2"]
VP_TINY += ["--set", "model.quantizer.codebook_size=16"]  # a small VP stack for the tiny preset
FAST = [
    "--set",
    "train.num_workers=0",
    "--set",
    "train.batch_size=2",
    "--set",
    "train.valid_every=1000",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A train and a dev data directory: real speech plus synthetic voiced sounds."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(4):
        t = np.arange(16000) / 16000
        wav = 0.3 * np.sin(
            2 * np.pi * (120 + 40 * i) * t * (1 + 0.1 * np.sin(3 * t))
        ) + 0.01 * rng.standard_normal(t.size)
        save_audio(root / f"syn{i}.wav", wav[None], 16000)
        lines.append(f"syn{i} {root / f'syn{i}.wav'}")
    (root / "train").mkdir()
    (root / "train" / "wav.scp").write_text(
        "\n".join(lines + [f"real1 {DATA / 'speech_en.flac'}"]) + "\n"
    )
    (root / "dev").mkdir()
    (root / "dev" / "wav.scp").write_text(f"real2 {DATA / 'speech_en2.flac'}\n")
    return root


def train_args(corpus, out, *extra):
    return [
        "train",
        "-c",
        "tiny",
        "--train-data",
        str(corpus / "train"),
        "--valid-data",
        str(corpus / "dev"),
        "-o",
        str(out),
        *FAST,
        *extra,
    ]


def test_learning_rate_warms_up_then_decays():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(55, 10, 100, 0.1) == pytest.approx(0.55)
    # a wall-clock budget: the schedule follows whichever of steps and time is further along
    assert lr_factor(20, 10, 10**9, 0.1, time_used=0.5) == pytest.approx(0.55)
    assert lr_factor(20, 10, 10**9, 0.1, time_used=1.0) == pytest.approx(0.1)
    assert lr_factor(55, 10, 100, 0.1, time_used=0.1) == pytest.approx(0.55)
    # warm-up, stable, decay: held at 1 until the last fifth of the run, then the same cosine
    assert lr_factor(80, 10, 110, 0.1, decay=0.2) == pytest.approx(1.0)
    assert lr_factor(100, 10, 110, 0.1, decay=0.2) == pytest.approx(0.55)
    assert lr_factor(110, 10, 110, 0.1, decay=0.2) == pytest.approx(0.1)
    assert lr_factor(20, 10, 10**9, 0.1, time_used=0.9, decay=0.2) == pytest.approx(0.55)


def test_a_time_budget_ends_the_run_cleanly_and_a_larger_one_resumes_it(
    corpus, tmp_path, monkeypatch
):
    ticks = iter(range(10**6))  # a clock that moves 0.1 s each time it is read: the same run
    monkeypatch.setattr(trainer, "now", lambda: 0.1 * next(ticks))  # however loaded the CPU is
    out = tmp_path / "budget"
    budget = ["--set", "train.max_steps=1000000", "--set", "train.warmup_steps=1"]
    result = CliRunner().invoke(
        app, train_args(corpus, out, *budget, "--set", "train.max_minutes=0.02")
    )
    assert result.exit_code == 0, result.output
    log = (out / "log" / "train.log").read_text()
    assert "the 0.02-minute budget is spent" in log and (out / "model.ckpt").is_file()
    (first,) = (out / "checkpoints").glob("step*.pt")
    state = torch.load(first, weights_only=True)
    assert 1.2 <= state["elapsed"] < 30 and 1 < state["step"] < 1000000
    # the cosine schedule ran over the budget: the last step's rate is at the floor, 0.1 x 3e-4
    # (within the last step's share of the budget), not near the 3e-4 of a step-based schedule
    assert 3e-5 <= state["optimizer"]["param_groups"][0]["lr"] < 3.5e-5
    resumed = CliRunner().invoke(
        app, train_args(corpus, out, *budget, "--set", "train.max_minutes=0.04", "--resume")
    )
    assert resumed.exit_code == 0, resumed.output
    later = torch.load(max((out / "checkpoints").glob("step*.pt")), weights_only=True)
    assert later["step"] > state["step"] and 2.4 <= later["elapsed"] < 60


def test_training_writes_a_usable_model_config_and_logs(corpus, tmp_path):
    out = tmp_path / "exp"
    result = CliRunner().invoke(
        app, train_args(corpus, out, "--set", "train.max_steps=6", "--set", "optim.lr=1e-3")
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["optim"]["lr"] == 1e-3 and config["train"]["max_steps"] == 6
    log = (out / "log" / "train.log").read_text()
    assert "step 6: checkpoint written" in log and "valid/mel_distance" in log
    assert list((out / "tensorboard").iterdir())
    model = codec.load_model(out / "model.ckpt")
    assert model.encode(torch.zeros(1, 1, 640)).shape == (1, 2, 2)
    assert model.entropy is not None and model.entropy.num_stages == 2  # fitted at the end
    assert f"entropy tables {model.entropy.hash} fitted" in log
    # a training checkpoint gives the same model, built from the experiment's config.yaml
    from_step = model_from_checkpoint(out / "checkpoints" / "step00000006.pt")
    wav = 0.1 * torch.randn(1, 1, 3200)
    with torch.no_grad():
        torch.testing.assert_close(from_step(wav).audio, model(wav).audio)

    again = CliRunner().invoke(app, train_args(corpus, out, "--set", "train.max_steps=6"))
    assert again.exit_code == 1 and "--resume" in again.output and "--overwrite" in again.output
    fresh = CliRunner().invoke(
        app, train_args(corpus, out, "--set", "train.max_steps=2", "--overwrite")
    )
    assert fresh.exit_code == 0, fresh.output
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["max_steps"] == 2


def test_init_from_starts_from_other_weights_with_a_fresh_optimizer(corpus, tmp_path):
    source = tmp_path / "source"
    args = train_args(corpus, source, "--set", "train.max_steps=3", "--set", "optim.lr=1e-2")
    assert CliRunner().invoke(app, args).exit_code == 0
    wav = 0.1 * torch.randn(1, 1, 3200)
    expected = codec.load_model(source / "model.ckpt")(wav).audio
    # lr 0: one step leaves the weights as loaded, so the new model must equal its source
    for start in (source / "model.ckpt", source / "checkpoints" / "step00000003.pt"):
        out = tmp_path / start.stem
        extra = ["--set", "train.max_steps=1", "--set", "optim.lr=0", "--init-from", str(start)]
        result = CliRunner().invoke(app, train_args(corpus, out, *extra))
        assert result.exit_code == 0, result.output
        assert f"weights initialised from {start}" in (out / "log" / "train.log").read_text()
        state = torch.load(out / "checkpoints" / "step00000001.pt", weights_only=True)
        assert state["step"] == 1 and state["scheduler"]["last_epoch"] == 1  # fresh schedule
        got = codec.load_model(out / "model.ckpt")(wav).audio
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    missing = CliRunner().invoke(
        app, train_args(corpus, tmp_path / "x", "--init-from", str(tmp_path / "nope.pt"))
    )
    assert missing.exit_code == 1 and "--init-from: no model checkpoint at" in missing.output


def test_init_modules_copies_the_backbone_around_a_fresh_quantizer_of_another_kind(
    corpus, tmp_path
):
    """`train.init_modules=[encoder,decoder]`: a VP stack on an FSP-trained encoder and decoder
    (a quantizer comparison from one backbone); without it the other kind is refused."""
    source = tmp_path / "source"
    args = train_args(corpus, source, "--set", "train.max_steps=2", "--set", "optim.lr=1e-2")
    assert CliRunner().invoke(app, args).exit_code == 0
    trained = codec.load_model(source / "model.ckpt")
    start = ["--init-from", str(source / "model.ckpt"), "--set", "train.max_steps=1"]
    start += ["--set", "optim.lr=0", *VP_TINY]  # lr 0: the step leaves the weights as loaded
    out = tmp_path / "vp"
    parts = ["--set", "train.init_modules=[encoder,decoder]"]
    result = CliRunner().invoke(app, train_args(corpus, out, *start, *parts))
    assert result.exit_code == 0, result.output
    model = codec.load_model(out / "model.ckpt")
    assert model.config.quantizer.kind == "vp" and trained.config.quantizer.kind == "fsp"
    wav = 0.1 * torch.randn(1, 1, 3200)
    with torch.no_grad():
        latent = trained.encoder(wav)
        torch.testing.assert_close(model.encoder(wav), latent)
        torch.testing.assert_close(model.decoder(latent), trained.decoder(latent))
    refused = CliRunner().invoke(app, train_args(corpus, tmp_path / "x", *start))
    assert refused.exit_code == 1 and "model.quantizer.kind is 'vp'" in refused.output
    wrong = ["--set", "train.init_modules=[encoder,head]"]
    unknown = CliRunner().invoke(app, train_args(corpus, tmp_path / "y", *start, *wrong))
    assert unknown.exit_code == 1 and "['head'] are not parts of the model" in unknown.output


def test_a_run_keeps_the_state_where_its_decay_began_and_a_continuation_its_moments(
    corpus, tmp_path
):
    source = tmp_path / "source"
    schedule = ["--set", "train.warmup_steps=2", "--set", "optim.decay_fraction=0.5"]
    args = train_args(corpus, source, "--set", "train.max_steps=8", "--set", "optim.lr=1e-2")
    assert CliRunner().invoke(app, args + schedule).exit_code == 0
    start = source / "checkpoints" / "decay_start.pt"
    assert "step 5: decay_start.pt written" in (source / "log" / "train.log").read_text()
    saved = torch.load(start, weights_only=True)  # half-way through steps 2-8: the rate is
    assert saved["step"] == 5 and saved["optimizer"]["param_groups"][0]["lr"] == 1e-2  # still 1
    steps = {k: int(v["step"]) for k, v in saved["optimizer"]["state"].items()}
    assert set(steps.values()) == {5}
    for carry, expected in (("true", 6), ("false", 1)):  # Adam's step counts: carried or fresh
        out = tmp_path / f"carry_{carry}"
        extra = ["--set", "train.max_steps=1", "--set", "optim.lr=1e-3", "--init-from", str(start)]
        extra += ["--set", f"train.init_optimizer={carry}"]
        result = CliRunner().invoke(app, train_args(corpus, out, *extra))
        assert result.exit_code == 0, result.output
        state = torch.load(out / "checkpoints" / "step00000001.pt", weights_only=True)
        assert {int(v["step"]) for v in state["optimizer"]["state"].values()} == {expected}
        assert state["optimizer"]["param_groups"][0]["initial_lr"] == 1e-3  # this run's settings
    extra = ["--init-from", str(source / "model.ckpt"), "--set", "train.init_optimizer=true"]
    refused = CliRunner().invoke(app, train_args(corpus, tmp_path / "x", *extra))
    assert refused.exit_code == 1 and "holds no optimizer state" in refused.output


def test_fine_tune_a_zoo_model_by_name(corpus, tmp_path, monkeypatch):
    """`--init-from NAME` with no --config: the zoo model's architecture and the fine-tuning
    preset; the package's model file is left as it was."""
    import dataclasses

    from codec import zoo

    shipped = tmp_path / "models"
    shipped.mkdir()
    torch.manual_seed(0)
    original = codec.build_model("tiny")
    original.save(shipped / "tiny-v1.ckpt")
    before = (shipped / "tiny-v1.ckpt").read_bytes()
    monkeypatch.setattr(zoo, "MODEL_DIR", shipped)
    monkeypatch.setitem(zoo.MODELS, "tiny-v1", "tiny-v1.ckpt")
    monkeypatch.setitem(zoo.ALIASES, "tiny-latest", "tiny-v1")
    data = ["--train-data", str(corpus / "train"), "--valid-data", str(corpus / "dev")]
    steps = ["--set", "train.max_steps=2", "--set", "train.entropy_seconds=5"]
    out = tmp_path / "tuned"
    result = CliRunner().invoke(
        app, ["train", "--init-from", "tiny-latest", *data, "-o", str(out), *FAST, *steps]
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["model"] == dataclasses.asdict(original.config)
    assert config["optim"]["lr"] == 2e-4 and config["train"]["warmup_steps"] == 50  # finetune
    tuned = codec.load_model(out / "model.ckpt")
    assert tuned.config == original.config and tuned.entropy is not None
    loaded = codec.load_model(shipped / "tiny-v1.ckpt").state_dict()
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, loaded[k])]
    assert changed  # it trained, from the zoo model's weights (see the init_from test)
    assert (shipped / "tiny-v1.ckpt").read_bytes() == before
    # an explicit config must describe the same network; the error names the first key
    bad = CliRunner().invoke(
        app,
        ["train", "-c", "speech16k", "--init-from", "tiny-v1", *data, "-o", str(tmp_path / "b")],
    )
    assert bad.exit_code == 1 and "model.channels is 32, the checkpoint's is 4" in bad.output
    unknown = CliRunner().invoke(app, ["train", "--init-from", "nope", *data, "-o", str(out)])
    assert (
        unknown.exit_code == 1
        and "--init-from: no zoo model named 'nope'" in unknown.output
        and "tiny-latest" in unknown.output
    )
    neither = CliRunner().invoke(app, ["train", *data, "-o", str(tmp_path / "c")])
    assert neither.exit_code == 1 and "give --config" in neither.output


def test_adversarial_training_adds_its_losses(corpus, tmp_path):
    args = train_args(
        corpus, tmp_path / "gan", "--set", "train.max_steps=3", "--set", "train.log_every=1"
    )
    args += ["--set", "train.losses.adversarial=1.0", "--set", "train.losses.adversarial_start=1"]
    args += ["--set", "train.discriminator.periods=[2, 3]"]  # a cheaper set, as configured
    args += ["--set", "train.discriminator.stft_channels=8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    log = (tmp_path / "gan" / "log" / "train.log").read_text().splitlines()
    steps = {line.split("step ")[1].split(":")[0]: line for line in log if "loss/total" in line}
    assert "loss/adversarial" not in steps["1"]  # switched on from step 1 (the second step)
    assert "loss/adversarial" in steps["3"] and "loss/feature_matching" in steps["3"]
    state = torch.load(tmp_path / "gan" / "checkpoints" / "step00000003.pt", weights_only=True)
    assert "discriminators" in state and "disc_optimizer" in state
    members = {key.split(".")[1] for key in state["discriminators"]}
    assert members == {"0", "1", "2", "3", "4"}  # 2 periods + the 3 default STFT sizes
    first_stft = state["discriminators"]["members.2.convs.0.parametrizations.weight.original1"]
    assert first_stft.shape[:2] == (8, 2)  # 8 channels from the real and imaginary parts
    # a continuation (train.init_optimizer) carries the discriminators and their moments too
    source = tmp_path / "gan" / "checkpoints" / "step00000003.pt"
    gan = ["--set", "train.losses.adversarial=1.0", "--set", "train.discriminator.periods=[2, 3]"]
    gan += ["--set", "train.discriminator.stft_channels=8", "--set", "optim.discriminator_lr=0"]
    gan += ["--init-from", str(source), "--set", "train.init_optimizer=true"]
    on = train_args(corpus, tmp_path / "on", "--set", "train.max_steps=1", *gan)
    assert CliRunner().invoke(app, on).exit_code == 0
    carried = torch.load(tmp_path / "on" / "checkpoints" / "step00000001.pt", weights_only=True)
    for key, value in state["discriminators"].items():  # a rate of 0 left them as carried
        torch.testing.assert_close(carried["discriminators"][key], value)
    counts = {int(v["step"]) for v in carried["disc_optimizer"]["state"].values()}
    assert counts == {int(v["step"]) + 1 for v in state["disc_optimizer"]["state"].values()}
    # a run that trained without them resumes with them switched on (the campaign's next phase)
    plain = train_args(corpus, tmp_path / "plain", "--set", "train.max_steps=2")
    assert CliRunner().invoke(app, plain).exit_code == 0
    more = train_args(corpus, tmp_path / "plain", "--set", "train.max_steps=4", "--resume")
    result = CliRunner().invoke(app, more + ["--set", "train.losses.adversarial=1.0"])
    assert result.exit_code == 0, result.output
    log = (tmp_path / "plain" / "log" / "train.log").read_text()
    assert "the checkpoint has no discriminators: they start fresh" in log
    state = torch.load(tmp_path / "plain" / "checkpoints" / "step00000004.pt", weights_only=True)
    assert state["step"] == 4 and "discriminators" in state


def test_bad_data_and_config_get_clear_errors(corpus, tmp_path):
    result = CliRunner().invoke(
        app, ["train", "-c", "tiny", "--train-data", str(tmp_path), "-o", str(tmp_path / "e")]
    )
    assert result.exit_code == 1 and "no wav.scp" in result.output
    result = CliRunner().invoke(
        app, train_args(corpus, tmp_path / "e2", "--set", "train.max_stepz=3")
    )
    assert result.exit_code == 1 and "unknown key config.train.max_stepz" in result.output
    result = CliRunner().invoke(
        app, train_args(corpus, tmp_path / "e3", "--set", "optim.decay_fraction=0")
    )
    assert result.exit_code == 1 and "optim.decay_fraction is the share" in result.output


def test_a_vp_model_is_compiled_at_the_end(corpus, tmp_path):
    args = train_args(corpus, tmp_path / "vp", "--set", "train.max_steps=4")
    args += VP_TINY
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    model = codec.load_model(tmp_path / "vp" / "model.ckpt")
    assert all(stage.compiled for stage in model.quantizer.vp_stages)
    assert model.encode(0.1 * torch.randn(1, 1, 3200)).shape == (1, 2, 10)


def test_resume_after_sigkill_ends_with_identical_weights(corpus, tmp_path):
    extra = [
        "--set",
        "train.max_steps=30",
        "--set",
        "train.checkpoint_every=5",
        "--set",
        "train.batch_size=4",
    ]
    whole = subprocess.run(
        [CODEC, *train_args(corpus, tmp_path / "whole", *extra)], capture_output=True, text=True
    )
    assert whole.returncode == 0, whole.stderr

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [CODEC, *train_args(corpus, killed_dir, *extra)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not list((killed_dir / "checkpoints").glob("step*.pt")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (killed_dir / "model.ckpt").exists()  # killed mid-run, not after it finished
    resumed = subprocess.run(
        [CODEC, *train_args(corpus, killed_dir, *extra, "--resume")], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from step" in (killed_dir / "log" / "train.log").read_text()
    a = torch.load(tmp_path / "whole" / "model.ckpt", weights_only=True)["state_dict"]
    b = torch.load(killed_dir / "model.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_process_ddp_keeps_replicas_identical(corpus, tmp_path):
    out = tmp_path / "ddp"
    args = train_args(
        corpus, out, "--set", "train.max_steps=4", "--set", "train.checkpoint_every=2"
    )
    args += ["--set", "train.losses.adversarial=1.0"]  # the discriminators under DDP too
    args += VP_TINY
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        CODEC,
        *args,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = (out / "log" / "train.log").read_text()
    assert "on 2 process(es)" in log
    assert log.count("replicas identical: yes") >= 2 and "replicas identical: NO" not in log
    assert codec.load_model(out / "model.ckpt").quantizer.vp_stages[0].compiled

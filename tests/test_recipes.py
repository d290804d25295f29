"""Recipes: option parsing, run.pl/slurm.pl, data preparation, egs/mini end to end."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codec.audio import save_audio
from codec.data.kaldi import read_data_dir
from codec.data.prepare import prepare_folder

ROOT = Path(__file__).parents[1]
UTILS = ROOT / "recipes" / "utils"
ENV = os.environ | {
    "CODEC_ROOT": str(ROOT),
    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
}


def bash(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script, "script", *args], capture_output=True, text=True, cwd=cwd, env=ENV
    )


OPTIONS = "\n".join(
    [
        "stage=1",
        "stop_stage=7",
        'train_opts=""',
        'help_message="Usage: x"',
        f". {UTILS}/parse_options.sh",
        'echo "$stage|$stop_stage|$train_opts|$*"',
    ]
)


def test_options_in_the_kaldi_convention():
    assert (
        bash(
            OPTIONS, "--stage", "3", "--stop-stage=5", "--train-opts", "--set a=1", "pos"
        ).stdout.strip()
        == "3|5|--set a=1|pos"
    )
    unknown = bash(OPTIONS, "--stgae", "3")
    assert unknown.returncode == 1 and "unknown option --stgae" in unknown.stderr
    help_text = bash(OPTIONS, "--help").stdout
    assert "Usage: x" in help_text and "--stop-stage" in help_text and "--train-opts" in help_text


@pytest.mark.parametrize("corpus", ["mini", "custom", "librispeech", "libritts", "vctk"])
def test_every_recipe_explains_its_options_and_refuses_unknown_ones(corpus):
    run = ROOT / "egs" / corpus / "run.sh"
    help_text = subprocess.run([str(run), "--help"], capture_output=True, text=True, env=ENV)
    assert (
        help_text.returncode == 0
        and "--stop-stage" in help_text.stdout
        and "--local-data-opts" in help_text.stdout
    )
    wrong = subprocess.run(
        [str(run), "--no-such-option", "1"], capture_output=True, text=True, env=ENV
    )
    assert wrong.returncode == 1 and "unknown option --no-such-option" in wrong.stderr


def test_run_pl_runs_jobs_in_parallel_with_one_log_each(tmp_path):
    done = subprocess.run(
        [
            str(UTILS / "run.pl"),
            "JOB=1:3",
            str(tmp_path / "log" / "x.JOB.log"),
            "echo",
            "job",
            "JOB",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    for job in (1, 2, 3):
        log = (tmp_path / "log" / f"x.{job}.log").read_text()
        assert f"job {job}" in log and "exit code 0" in log
    failed = subprocess.run(
        [str(UTILS / "run.pl"), "JOB=1:3", str(tmp_path / "f.JOB.log"), "test", "JOB", "-ne", "2"],
        capture_output=True,
        text=True,
    )
    assert (
        failed.returncode == 1 and "1 job(s) failed" in failed.stderr and "f.2.log" in failed.stderr
    )


def test_slurm_pl_submits_each_job_with_sbatch(tmp_path):
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    record = tmp_path / "calls.txt"
    # a stand-in sbatch: records its arguments, runs the --wrap command into --output
    fake.write_text(
        '#!/usr/bin/env bash\necho "$@" >> ' + str(record) + '\nout=""; cmd=""\n'
        "while [ $# -gt 0 ]; do case $1 in\n"
        "  --output=*) out=${1#--output=};; --wrap) cmd=$2; shift;;\n"
        "esac; shift; done\n"
        'bash -c "$cmd" > "$out" 2>&1\n'
    )
    fake.chmod(0o755)
    env = os.environ | {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    done = subprocess.run(
        [
            str(UTILS / "slurm.pl"),
            "--gpu",
            "2",
            "--mem",
            "8G",
            "JOB=1:2",
            str(tmp_path / "l.JOB.log"),
            "echo",
            "hi",
            "JOB",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    calls = record.read_text().splitlines()
    assert len(calls) == 2 and all(
        "--gres=gpu:2" in c and "--mem=8G" in c and "--wait" in c for c in calls
    )
    assert "hi 2" in (tmp_path / "l.2.log").read_text()


def test_folder_preparation_holds_out_whole_speakers(tmp_path):
    for spk in ("anna", "bob", "carl", "dora"):
        for i in range(3):
            save_audio(tmp_path / "audio" / spk / f"{i}.wav", np.zeros((1, 800)), 16000) if (
                tmp_path / "audio" / spk
            ).mkdir(parents=True, exist_ok=True) is None else None
    counts = prepare_folder(tmp_path / "audio", tmp_path / "data")
    assert sum(counts.values()) == 12
    speakers = {
        name: {u.id.split("-")[0] for u in read_data_dir(tmp_path / "data" / name)}
        for name in counts
    }
    assert speakers["dev"] and speakers["test"]
    assert not (speakers["train"] & speakers["test"]) and not (speakers["train"] & speakers["dev"])
    assert (tmp_path / "data" / "train" / "utt2spk").read_text().split("\n")[0].split()[
        1
    ] in speakers["train"]


def test_mini_recipe_end_to_end_on_one_package(tmp_path):
    outputs = shutil.ignore_patterns("data", "dump", "exp", "downloads")  # of a run made here
    shutil.copytree(ROOT / "egs" / "mini", tmp_path / "mini", symlinks=False, ignore=outputs)
    options = [
        "--local-data-opts", "--packages asterisk-core-sounds-en-g722 --max-files 30",
        "--config", "tiny", "--bitrates", "0.2 0.4", "--nj", "2",
        "--train-opts",
        "--set train.max_steps=8 --set train.num_workers=0 --set train.valid_every=4",
    ]  # fmt: skip
    done = subprocess.run(
        [str(tmp_path / "mini" / "run.sh"), *options], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    mini = tmp_path / "mini"
    for name in ("train", "dev", "test"):
        assert (mini / "dump" / name / "utt2dur").exists() and (
            mini / "dump" / name / ".done"
        ).exists()
    assert (mini / "dump" / "train" / "log" / "format.2.log").exists()
    exp = mini / "exp" / "codec_tiny"
    assert (exp / "model.ckpt").exists() and (exp / "train.sh").read_text().startswith(
        "codec train"
    )
    results = (mini / "exp" / "RESULTS.md").read_text()
    assert "## exp/codec_tiny" in results and "git commit:" in results
    assert "| 0.2 | 0.20 |" in results and "| 0.4 | 0.40 |" in results
    scores = exp / "decode_0.4kbps" / "test" / "scores"
    assert (scores / "summary.json").exists() and (scores / "tokens.json").exists()
    again = subprocess.run(
        [str(mini / "run.sh"), *options, "--stage", "2", "--stop-stage", "6"],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert (
        again.returncode == 0
        and "[stage 3]" not in again.stdout
        and "[stage 5]" not in again.stdout
    )  # sentinels
    # the Asterisk prompts' transcripts, from the package without a codec suffix
    texts = (mini / "data" / "train" / "text").read_text().splitlines()
    assert texts and all(
        line.startswith("asterisk-en-") and len(line.split()) > 1 for line in texts
    )
    # fine-tuning through the recipe: the model's own network, the finetune preset, kept in
    # train.sh so that running it again resumes the same run
    tuned = subprocess.run(
        [str(mini / "run.sh"), *options[:-1], "--set train.max_steps=2 --set train.num_workers=0",
         "--init-from", str(exp / "model.ckpt"), "--stage", "3", "--stop-stage", "3"],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert tuned.returncode == 0, tuned.stdout[-2000:] + tuned.stderr[-3000:]
    command = (mini / "exp" / "codec_finetune_model" / "train.sh").read_text()
    assert f"--init-from {exp / 'model.ckpt'}" in command and "--config" not in command
    assert "lr: 0.0002" in (mini / "exp" / "codec_finetune_model" / "config.yaml").read_text()
    # the quantizer comparison on the same data (stages 1-2 done): two families, two at a
    # time, each on the same wall-clock budget, from the trained model's encoder and decoder
    compare = subprocess.run(
        [str(mini / "run_compare.sh"), "--compare-config", "tiny", "--variants", "fsq fsp",
         "--second-seed", "", "--minutes", "0.05", "--jobs", "2", "--bitrates", "0.4",
         "--nj", "1", "--init-from", str(exp / "model.ckpt")],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert compare.returncode == 0, compare.stdout[-2000:] + compare.stderr[-3000:]
    for tag in ("compare_fsq_s0", "compare_fsp_s0"):
        run = mini / "exp" / f"codec_{tag}"
        assert (run / "model.ckpt").exists() and (mini / "exp" / "compare" / f"{tag}.log").exists()
        command = (run / "train.sh").read_text()
        assert "--set train.max_minutes=0.05" in command
        assert '--set "train.init_modules=[encoder,decoder]"' in command
        assert "weights initialised from" in (run / "log" / "train.log").read_text()
        assert (run / "decode_0.4kbps" / "test" / "scores" / ".done").exists()
    report = (mini / "exp" / "compare" / "RESULTS.md").read_text()
    assert "| fsq_s0 |" in report and "| fsp_s0 |" in report
    assert (mini / "exp" / "compare" / "fsq.png").exists()  # one figure per family

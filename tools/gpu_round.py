#!/usr/bin/env python3
"""One training round on a lent GPU machine: pack here, train there, receive here.

python tools/gpu_round.py pack --data DATA_DIR --config CONF [--kbps 24] [--minutes 9]
                               [--resume EXP | --init-from CKPT] [--set KEY=VALUE ...]
    here: packs DATA_DIR into loads under .device/ (shards of FLAC, or Ogg Opus at --kbps,
    measured against the source by PESQ-WB), fetches the wheels the device lacks, adds the
    checkpoint to continue, and prints the device calls to make, each within its 64 MiB.
python3 tools/gpu_round.py remote [--stage-only]          (on the device, as printed)
    there: keeps the loads that arrive in /tmp/codec-round (they survive while the machine
    stays warm), then trains for the packed budget and leaves in $OUT the checkpoint in
    parts under 16 MiB, model.ckpt and logs.tar.gz.
python tools/gpu_round.py receive FILES_AT -o EXP
    here: rebuilds EXP (checkpoint, model.ckpt, config.yaml, logs) from what came back; the
    next round continues it with `pack --resume EXP`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAGE = Path(".device")  # relative to the repository root, here and on the device (ignored)
WORK = Path("/tmp/codec-round")  # on the device: outlives one call while the machine is warm
CALL_BYTES = 64 << 20  # what travels per device call
RETURN_BYTES = 16 << 20  # the largest file that comes back
MIN_LOAD_BYTES = 1 << 20  # less audio a call than this is not worth a device round
# packages the device's image lacks (its torch, numpy, scipy, numba, yaml, typer, tqdm,
# tensorboard, scikit-learn, joblib, msgpack, lazy-loader, packaging and requests are there)
WHEELS = [
    "soundfile",
    "soxr",
    "librosa",
    "auraloss",
    "audioread",
    "pooch",
    "platformdirs",
    "decorator",
    "cffi",  # soundfile's binding (found missing by a run in a venv holding only the image's)
    "pycparser",
]
DEVICE_PYTHON = "3.12"


def tree_bytes() -> int:
    """Bytes of the working tree that travels without `carry` (tracked + untracked, not
    ignored), counted as git lists it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum(
        (ROOT / p.decode()).stat().st_size for p in listed if p and (ROOT / p.decode()).is_file()
    )


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def fetch_wheels(out: Path) -> None:
    """Wheels for the device's Python (manylinux x86-64), without their dependencies, at the
    versions installed here (what the tests ran with)."""
    from importlib.metadata import PackageNotFoundError, version

    out.mkdir(parents=True, exist_ok=True)
    platforms = [f"manylinux_2_{n}_x86_64" for n in (17, 27, 28)] + ["manylinux2014_x86_64"]
    for name in WHEELS:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            DEVICE_PYTHON,
            "--implementation",
            "cp",
            "-d",
            str(out),
        ]
        try:
            command.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            command.append(name)
        for platform in platforms:
            command += ["--platform", platform]
        command += ["--platform", "any"]
        if subprocess.run(command, capture_output=True).returncode != 0:
            print(f"note: no wheel of {name} for Python {DEVICE_PYTHON}; it may not be needed")


def transcode_quality(data_dir: Path, loads: list[Path], rate: int, count: int = 20) -> str:
    """PESQ-WB of the packed audio against the source, on `count` utterances of 2 s or more."""
    import numpy as np

    from codec.data.kaldi import load_utterance, read_data_dir
    from codec.data.memory import load_bank
    from codec.data.shards import merge_data_dirs
    from codec.eval.metrics import pesq_wb

    merged = loads[0].parent / "check"
    merge_data_dirs(loads, merged)
    packed = read_data_dir(merged)
    chosen = [i for i, u in enumerate(packed) if (u.end or 0) - u.start >= 2.0][::7][:count]
    source = {u.id: u for u in read_data_dir(data_dir)}
    bank = load_bank([packed[i] for i in chosen], rate)
    scores = []
    for k, i in enumerate(chosen):
        ref = load_utterance(source[packed[i].id], rate).mean(axis=0)
        scores.append(pesq_wb(ref, bank.utterance(k).numpy(), rate))
    shutil.rmtree(merged)
    return f"PESQ-WB {np.mean(scores):.2f} (min {np.min(scores):.2f}) on {len(scores)} utterances"


def pack(args: argparse.Namespace) -> None:
    from codec.data.shards import pack_loads
    from codec.train.checkpoint import latest_checkpoint, load_checkpoint
    from codec.train.config import load_experiment, save_experiment

    stage = args.stage
    if stage.exists():
        print(f"replacing the previous round's {stage}")
        shutil.rmtree(stage)
    (stage / "run").mkdir(parents=True)
    minutes_before = 0.0
    if args.resume:
        latest = latest_checkpoint(args.resume / "checkpoints")
        if latest is None:
            sys.exit(f"error: {args.resume}/checkpoints holds no checkpoint to resume")
        shutil.copy(latest, stage / "run" / "resume.pt")
        minutes_before = load_checkpoint(latest).get("elapsed", 0.0) / 60
    elif args.init_from:
        from codec.zoo import checkpoint_file

        shutil.copy(checkpoint_file(args.init_from), stage / "run" / "init.ckpt")
    if not (args.config or args.resume):
        sys.exit("error: give --config (or --resume, which takes the experiment's own)")
    cfg = load_experiment(args.config or args.resume / "config.yaml", args.set)
    # the budget is the run's total: this round adds its minutes to what earlier rounds spent,
    # and the learning-rate schedule stretches over the new total
    cfg.train.max_minutes = minutes_before + args.minutes
    save_experiment(cfg, stage / "run" / "config.yaml")  # resolved: includes and --set applied
    rate = cfg.model.sample_rate
    if args.wheels:
        fetch_wheels(stage / "wheels")
    tree, staged = tree_bytes(), folder_bytes(stage)  # the last call carries wheels and run/ too
    load_bytes = (
        round(args.load_mb * 2**20) if args.load_mb else CALL_BYTES - tree - staged - (1 << 20)
    )
    if not args.load_mb and load_bytes < MIN_LOAD_BYTES:
        sys.exit(
            f"error: the working tree ({tree / 2**20:.1f} MiB) and run/ and wheels "
            f"({staged / 2**20:.1f} MiB) leave {max(load_bytes, 0) / 2**20:.1f} MiB "
            f"of a device call's {CALL_BYTES / 2**20:.1f} MiB for training audio: take out of the "
            "tree what need not travel (untracked files; a campaign line's latest.ckpt once its "
            "round is shipped) or give --load-mb to send smaller loads"
        )
    loads = pack_loads(
        args.data, stage, rate, load_bytes, args.kbps, args.shard_seconds, args.workers
    )
    round_id = time.strftime("%Y%m%d-%H%M%S")
    for load in loads:  # the device keeps loads per round, so a warm machine mixes no rounds
        (load.path / "round").write_text(round_id)
    settings = {"id": round_id, "loads": [load.path.name for load in loads], "bench": args.bench}
    (stage / "run" / "round.json").write_text(json.dumps(settings))
    what = "FLAC (lossless)" if args.kbps is None else f"Ogg Opus at {args.kbps:g} kbps"
    hours = sum(load.seconds for load in loads) / 3600
    print(f"{hours:.2f} h of {args.data} in {len(loads)} load(s) of {what}:")
    for load in loads:
        print(f"  {load.path.name}: {load.bytes / 2**20:.1f} MiB, {load.seconds / 3600:.2f} h")
    if args.kbps is not None:
        print(
            "transcode vs source: " + transcode_quality(args.data, [lo.path for lo in loads], rate)
        )
    extra = (folder_bytes(stage / "wheels") + folder_bytes(stage / "run")) / 2**20
    print(f"the tree itself: {tree / 2**20:.1f} MiB; wheels and run/: {extra:.1f} MiB")
    print("device calls, one right after another (a machine idle for 30 s loses the loads):")
    for k, load in enumerate(loads, 1):
        last = k == len(loads)
        carry = [f"{STAGE}/{load.path.name}"]
        if last:
            carry += [f"{STAGE}/{name}" for name in ("wheels", "run") if (stage / name).is_dir()]
        command = "python3 tools/gpu_round.py remote" + ("" if last else " --stage-only")
        print(json.dumps({"command": command, "carry": carry, "timeout_s": 600}))


def remote(args: argparse.Namespace) -> None:
    """On the device: keep the loads; unless staging only, install the wheels, train, pack
    the results into $OUT."""
    out, work, stage = Path(os.environ.get("OUT", "out")), args.work, args.stage
    for load in sorted(stage.glob("load*")):
        target = work / (load / "round").read_text() / load.name
        if not target.exists():
            shutil.copytree(load, target)
            print(f"{load.name} kept in {target}")
    if args.stage_only:
        return
    run = stage / "run"
    settings = json.loads((run / "round.json").read_text())
    loads = [work / settings["id"] / name for name in settings["loads"]]
    missing = [p.name for p in loads if not p.is_dir()]
    if missing and not args.partial:
        sys.exit(
            f"error: {', '.join(missing)} not on this machine (it went cold between calls?): "
            "send them again with --stage-only, then this call; or add --partial"
        )
    loads = [p for p in loads if p.is_dir()]
    print(f"training on {len(loads)} of {len(settings['loads'])} loads")
    site = work / "site"
    missing = [w for w in ("soundfile", "soxr", "librosa", "auraloss") if not find_spec(w)]
    if missing:  # the device's image lacks them: install the wheels that travelled
        wheels = sorted(map(str, (stage / "wheels").glob("*.whl")))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--target",
                str(site),
                *wheels,
            ],
            check=True,
        )
        sys.path.insert(0, str(site))
    env = os.environ | {"PYTHONPATH": f"{site}:{ROOT}", "PYTHONUNBUFFERED": "1"}
    from codec.data.shards import merge_data_dirs

    data, exp = work / settings["id"] / "train", work / settings["id"] / "exp"
    count = merge_data_dirs(loads, data)
    print(f"{count} utterances to train on")
    train = [
        sys.executable,
        "-m",
        "codec",
        "train",
        "-c",
        str(run / "config.yaml"),
        "--train-data",
        str(data),
        "-o",
        str(exp),
        "--set",
        "train.data=memory",
        "--set",
        f"train.num_workers={os.cpu_count()}",
    ]
    if (run / "resume.pt").is_file():
        from codec.train.checkpoint import checkpoint_path, load_checkpoint

        step = load_checkpoint(run / "resume.pt")["step"]
        (exp / "checkpoints").mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "resume.pt", checkpoint_path(exp / "checkpoints", step))
        train.append("--resume")
    elif (run / "init.ckpt").is_file():
        train += ["--init-from", str(run / "init.ckpt")]
    out.mkdir(parents=True, exist_ok=True)
    if settings["bench"]:
        bench = [
            sys.executable,
            str(ROOT / "bench" / "train_throughput.py"),
            "--preset",
            str(run / "config.yaml"),
            "--data",
            str(data),
            "--json",
            str(exp.parent / "bench.json"),  # beside the experiment: the trainer makes it
        ]
        subprocess.run(bench, env=env)
    done = subprocess.run(train, env=env)
    finish(exp, out)
    sys.exit(done.returncode)


def finish(exp: Path, out: Path) -> None:
    """$OUT: the newest checkpoint in parts under 16 MiB, model.ckpt, logs.tar.gz."""
    from codec.train.checkpoint import latest_checkpoint, split_file

    latest = latest_checkpoint(exp / "checkpoints")
    if latest is not None:
        split_file(latest, out, RETURN_BYTES - (1 << 20))
    if (exp / "model.ckpt").is_file():
        shutil.copy(exp / "model.ckpt", out / "model.ckpt")
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        for path in (exp / "config.yaml", exp / "log", exp.parent / "bench.json"):
            if path.exists():
                tar.add(path, arcname=path.name)


def receive(args: argparse.Namespace) -> None:
    from codec.train.checkpoint import checkpoint_path, join_parts, load_checkpoint

    back, exp = args.files_at, args.out
    if exp.exists() and any(exp.iterdir()) and not args.force:
        sys.exit(f"error: {exp} exists; give another -o, or --force to add to it")
    (exp / "checkpoints").mkdir(parents=True, exist_ok=True)
    (stem,) = [p.with_suffix("") for p in back.glob("*.sha256")] or [None]
    if stem is not None:
        tmp = join_parts(stem, exp / "checkpoints" / "joined.tmp")
        step = load_checkpoint(tmp)["step"]
        tmp.replace(checkpoint_path(exp / "checkpoints", step))
        print(f"checkpoint of step {step}")
    if (back / "model.ckpt").is_file():
        shutil.copy(back / "model.ckpt", exp / "model.ckpt")
    with tarfile.open(back / "logs.tar.gz") as tar:
        tar.extractall(exp, filter="data")
    print(f"{exp}: " + ", ".join(sorted(p.name for p in exp.iterdir())))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage", type=Path, default=ROOT / STAGE, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=WORK, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack", help="here: the loads, wheels and run settings under .device/")
    p.add_argument("--data", type=Path, required=True, help="Kaldi data directory to train on")
    p.add_argument("--config", type=Path, help="the experiment's YAML (not with --resume)")
    p.add_argument("--kbps", type=float, help="Ogg Opus at this bitrate (default: FLAC)")
    p.add_argument("--minutes", type=float, default=9.0, help="training budget on the device")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--resume", type=Path, help="continue this experiment (optimizer too)")
    src.add_argument("--init-from", help="start from these weights (a checkpoint or zoo name)")
    p.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    p.add_argument("--bench", action="store_true", help="time bench/train_throughput.py first")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--no-wheels", dest="wheels", action="store_false", help="skip the wheels")
    p.add_argument("--load-mb", type=float, help="MiB of audio per load (default: what fits)")
    p.add_argument("--shard-seconds", type=float, default=300.0, help="audio per shard file")
    r = sub.add_parser("remote", help="there: keep the loads, train, fill $OUT")
    r.add_argument("--stage-only", action="store_true", help="keep the loads and stop")
    r.add_argument("--partial", action="store_true", help="train on the loads that are there")
    v = sub.add_parser("receive", help="here: rebuild the experiment from what came back")
    v.add_argument("files_at", type=Path)
    v.add_argument("-o", "--out", type=Path, required=True)
    v.add_argument("--force", action="store_true")
    args = parser.parse_args()
    {"pack": pack, "remote": remote, "receive": receive}[args.verb](args)


if __name__ == "__main__":
    main()

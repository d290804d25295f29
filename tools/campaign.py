"""The CPU campaign: the default model trained round after round in a machine's idle CPU.

Usage: python tools/campaign.py start --data DATA [--minutes 100] [--threads 1] [--exp DIR]
                                       [--config egs/mini/conf/v7.yaml] [--set KEY=VALUE ...]
       python tools/campaign.py finish --dev DATA/dev [--held-out DIR] [--exp DIR]
       python tools/campaign.py shipped NAME
       python tools/campaign.py report
(each takes --state DIR: where one line's log and weights are kept, egs/mini/campaign/v7)
       python tools/campaign.py plot [--lines DIR ...] [--out PNG]
       python tools/campaign.py curves EXP... --out PNG [--labels NAME ...]

A campaign line is one network design trained round after round: egs/mini/campaign/v3 holds
the rounds of v3.yaml's network (v3-v6, 18.4 CPU-hours), egs/mini/campaign/v7 those of v7.yaml's,
the line the rounds now continue.

Run it from a work directory that holds DATA (egs/mini/local/data.sh's train/ and dev/) and the
rounds' experiment directories (--exp, default exp/campaign/LINE: exp/campaign/v7).

`start` resumes the campaign wherever it stands. Each round is one `codec train` run of
egs/mini/conf/v7.yaml with a wall-clock budget: warm-up, a stable learning rate, and a decay over
the round's last fifth (optim.decay_fraction), so no round needs to know how many follow. Round
N + 1 continues round N from where its decay began (weights and AdamW moments, kept in round N's
experiment directory) when that is on this machine: round N's decay was a branch, for scoring and
shipping. Else it starts from the newest round's last checkpoint (its moments too), from the
campaign's committed weights on a fresh machine (the line's latest.ckpt, a warm start: only the
repository is needed) with a fresh AdamW warmed up again, or from scratch. It runs in the
background at the lowest priority (nice 19, its session's scheduling group too: see
`lowest_priority`), on the OMP threads given, and `start` returns at once. A round cut off before
its end (its machine stopped) is continued by the next `start` from its newest checkpoint.

`finish` waits for the round's model, scores it on dev (and, with --held-out, on held-out speech)
at 3, 6 and 12 stages, appends the round to the log (the line's rounds.json: start
weights, config and --set overrides, CPU minutes, steps, audio-seconds, scores) and writes its
weights to latest.ckpt as a warm start (int8, 5 MB: the repository must still travel to a GPU
machine in one 64 MiB call); commit both. `plot` draws every line's held-out quality against its
cumulative CPU-hours (a log axis), with the classical codecs as horizontal lines
(docs/campaign.png); `report` prints one line's log as a Markdown table. Ship a round that beats
the default on held-out speech with tools/ship_model.py, from the round's own model.ckpt (full
precision, on the machine that trained it), and record that with `shipped NAME`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINES = ROOT / "egs" / "mini" / "campaign"  # one folder a line
STATE = LINES / "v7"
PLOT = ROOT / "docs" / "campaign.png"
CONFIG = ROOT / "egs" / "mini" / "conf" / "v7.yaml"
STAGES = [3, 6, 12]
METRICS = ("pesq_wb", "stoi", "mel_distance", "pitch")
# held-out French, codec bench of all 125 files (docs/models.md): what the plot is drawn against
REFERENCES = {
    "Opus 6 kbps": (2.13, 0.911),
    "Opus 8 kbps": (2.88, 0.955),
    "Codec2 3200": (1.27, 0.882),
    "v2 at 6 kbps": (1.61, 0.897),
}


def read_log(state: Path) -> list[dict]:
    log = state / "rounds.json"
    return json.loads(log.read_text()) if log.is_file() else []


def write_log(state: Path, rounds: list[dict]) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "rounds.json").write_text(json.dumps(rounds, indent=1) + "\n")


def experiments(args: argparse.Namespace) -> Path:
    """Where a line's rounds run: --exp, else exp/campaign/LINE (the state folder's name)."""
    return args.exp or Path("exp") / "campaign" / args.state.name


def start_weights(state: Path, rounds: list[dict]) -> tuple[Path | None, bool]:
    """Where the next round starts, and whether it carries the optimizer's moments. On the
    machine of the newest round: its state where its learning rate began to decay (that round's
    decay was a branch for scoring and shipping), else its last training checkpoint (the end of
    its decay; its moments spare the next warm-up a cold start). Elsewhere the committed weights
    (latest.ckpt, or the zoo model the newest round shipped as), with fresh moments; for a line
    with no rounds, None (from scratch). A line whose weights are nowhere is an error, not a
    silent restart that its log would count as a continuation."""
    from codec.train.checkpoint import DECAY_START, latest_checkpoint

    if rounds:
        checkpoints = Path(rounds[-1]["exp"]) / "checkpoints"
        if (checkpoints / DECAY_START).is_file():
            return checkpoints / DECAY_START, True
        if checkpoints.is_dir() and (last := latest_checkpoint(checkpoints)) is not None:
            return last, True
    weights = state / "latest.ckpt"
    if weights.is_file():
        return weights, False
    if rounds and rounds[-1]["shipped"]:  # its weights are in the zoo (`shipped` removed the copy)
        from codec.zoo import checkpoint_file

        return checkpoint_file(rounds[-1]["shipped"]), False
    if rounds:
        raise SystemExit(
            f"{state} logs {len(rounds)} round(s), but their weights are neither on this machine "
            f"({rounds[-1]['exp']}) nor committed ({weights}): start a new line (--state) instead"
        )
    return None, False


def lowest_priority() -> None:
    """Run in the round's process before it starts: nice 19, and nice 19 for its session's
    scheduling group. With Linux's autogroup on (most desktop and many server kernels), CPU time
    is shared between sessions first and a process's nice counts only within its session, so a
    niced trainer in a session of its own would still take a full share from the tests and
    tools run beside it."""
    os.nice(19 - os.nice(0))
    with contextlib.suppress(OSError):  # no autogroup on this kernel: the nice is what counts
        Path("/proc/self/autogroup").write_text("19")


def start(args: argparse.Namespace) -> None:
    rounds = read_log(args.state)
    number = len(rounds) + 1
    exp = (experiments(args) / f"round{number}").absolute()
    pending = exp.with_suffix(".json")
    if pending.exists() and (exp / "config.yaml").is_file():
        entry, command = cut_off_round(exp, json.loads(pending.read_text()), args.minutes)
    else:  # a new round, or one that stopped before its training began (a bad --set, say)
        init, carry = start_weights(args.state, rounds)
        sets = [*args.set, "train.init_optimizer=true"] if carry else args.set
        entry = {"round": number, "exp": str(exp), "init": init and str(init)}
        entry |= {"threads": args.threads, "config": Path(args.config).name, "set": sets}
        command = ["-c", str(args.config), *(["--overwrite"] if pending.exists() else [])]
        command += [item for pair in sets for item in ("--set", pair)]
        command += ["--set", f"train.max_minutes={args.minutes}"]
        print(f"round {number}: {args.minutes:g} minutes on {args.threads} thread(s) from "
              f"{init or 'scratch'}")  # fmt: skip
    command = [
        sys.executable, "-m", "codec", "train", *command, "-o", str(exp),
        "--train-data", str(args.data / "train"), "--valid-data", str(args.data / "dev"),
    ]  # fmt: skip
    if entry["init"] is not None:
        command += ["--init-from", entry["init"]]
    exp.parent.mkdir(parents=True, exist_ok=True)
    threads = str(entry["threads"])
    env = os.environ | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    with open(exp.with_suffix(".out"), "a") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            preexec_fn=lowest_priority,
        )  # fmt: skip
    pending.write_text(json.dumps(entry | {"pid": process.pid}) + "\n")
    print(f"output: {exp.with_suffix('.out')}; then: python tools/campaign.py finish --dev ...")


def cut_off_round(exp: Path, entry: dict, minutes: float) -> tuple[dict, list[str]]:
    """A round started earlier: if it was cut off before its end (its machine stopped, or the
    session that ran it), its `codec train` arguments to continue it with its own settings
    (config.yaml) from its newest checkpoint for `minutes` more, or to run it again from its
    start weights when it saved none."""
    from codec.train.checkpoint import latest_checkpoint, load_checkpoint

    if _running(entry["pid"]) or (exp / "model.ckpt").is_file():
        raise SystemExit(f"round {entry['round']} was started ({exp}): finish it first")
    command = ["-c", str(exp / "config.yaml")]
    if (last := latest_checkpoint(exp / "checkpoints")) is None:
        print(f"round {entry['round']} was cut off before its first checkpoint: run again")
        return entry, [*command, "--overwrite", "--set", f"train.max_minutes={minutes}"]
    done = load_checkpoint(last)["elapsed"] / 60
    print(f"round {entry['round']} was cut off after {done:.0f} minutes: continued from "
          f"{last.name} for {minutes:g} minutes more on {entry['threads']} thread(s)")  # fmt: skip
    return entry, [*command, "--resume", "--set", f"train.max_minutes={done + minutes}"]


def finish(args: argparse.Namespace) -> None:
    import torch

    from codec.eval.stages import quality_by_stages, scored_files
    from codec.train.checkpoint import latest_checkpoint, load_checkpoint
    from codec.train.config import load_experiment
    from codec.zoo import load_model

    rounds = read_log(args.state)
    exp = (experiments(args) / f"round{len(rounds) + 1}").absolute()
    if not exp.with_suffix(".json").is_file():
        raise SystemExit(f"round {len(rounds) + 1} was not started ({exp}): run `start` first")
    entry = json.loads(exp.with_suffix(".json").read_text())
    while not (exp / "model.ckpt").is_file():
        if not _running(entry["pid"]):
            tail = exp.with_suffix(".out").read_text()[-2000:]
            raise SystemExit(f"round {entry['round']} stopped without a model:\n{tail}")
        time.sleep(1)
    entry.pop("pid")
    state = load_checkpoint(latest_checkpoint(exp / "checkpoints"))
    train = load_experiment(exp / "config.yaml").train
    entry |= {
        "cpu_minutes": round(state["elapsed"] / 60 * entry["threads"], 3),
        "steps": state["step"],
        "audio_seconds": round(state["step"] * train.batch_size * train.segment_seconds),
        "shipped": None,
    }
    torch.set_num_threads(1)
    model = load_model(exp / "model.ckpt")
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        for name, path in (("dev", args.dev), ("held_out", args.held_out)):
            if path is not None:
                files = scored_files(path, args.every)
                means = quality_by_stages(model, files, STAGES, METRICS, pool)
                entry[name] = {n: {k: round(v, 4) for k, v in m.items()} for n, m in means.items()}
    write_log(args.state, [*rounds, entry])
    model.save(args.state / "latest.ckpt", warm_start=True)
    print(json.dumps(entry, indent=1))
    print(f"wrote {args.state}/rounds.json and latest.ckpt: commit them")


def _running(pid: int) -> bool:
    """Whether process `pid` (the round's trainer, started by `start`) is still running; a
    zombie (ended, not yet reaped by an init that does not reap) counts as ended."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or the pid reused by another user
        return False
    stat = Path(f"/proc/{pid}/stat")  # Linux: the state letter follows the command's ")"
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def shipped(args: argparse.Namespace) -> None:
    rounds = read_log(args.state)
    if not rounds:
        raise SystemExit("no round logged yet")
    from codec.zoo import checkpoint_file

    checkpoint_file(args.name)  # the zoo must have it: a fresh machine's next round starts there
    rounds[-1]["shipped"] = args.name
    write_log(args.state, rounds)
    # the zoo model holds the round's weights: the copy would only weigh on the repository
    (args.state / "latest.ckpt").unlink(missing_ok=True)
    print(f"round {rounds[-1]['round']} shipped as {args.name}; its latest.ckpt removed")


def report(args: argparse.Namespace) -> None:
    from codec.eval.report import markdown_table

    rows, hours = [], 0.0
    for entry in read_log(args.state):
        hours += entry["cpu_minutes"] / 60
        training = " ".join([entry["config"], *entry["set"]])
        cells = [str(entry["round"]), training, f"{entry['cpu_minutes']:.0f}", f"{hours:.2f}"]
        cells += [f"{entry['steps']:,}", f"{entry['audio_seconds']:,}"]
        for name in ("dev", "held_out"):
            scores = entry.get(name, {})
            for metric, fmt in (("pesq_wb", ".2f"), ("stoi", ".3f"), ("mel_distance", ".3f")):
                values = [scores[str(n)][metric] for n in STAGES if str(n) in scores]
                cells.append(" / ".join(f"{v:{fmt}}" for v in values))
            f0 = scores.get(str(STAGES[-1]), {})
            cells.append(
                f"{f0['f0_rmse_cents']:.0f}, {100 * f0['voicing_error']:.0f}%" if f0 else ""
            )
        rows.append(cells)
    stages = " / ".join(map(str, STAGES))
    header = ["round", "training", "CPU-min", "CPU-h in all", "steps", "audio-s"]
    for name in ("dev", "held-out"):
        header += [
            f"{name} PESQ-WB {stages}",
            f"STOI {stages}",
            f"mel {stages}",
            "F0 cents, voicing",
        ]
    print(markdown_table(header, rows), end="")


def held_out_curve(rounds: list[dict]) -> tuple[list[float], list[dict]]:
    """The cumulative CPU-hours at the end of each round scored on held-out speech, and those
    rounds (a round scored on dev only still counts in the hours)."""
    hours, scored, total = [], [], 0.0
    for entry in rounds:
        total += entry["cpu_minutes"] / 60
        if "held_out" in entry:
            hours.append(total)
            scored.append(entry)
    return hours, scored


def plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    lines = args.lines or sorted(p.parent for p in LINES.glob("*/rounds.json"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    curves = [held_out_curve(read_log(line)) for line in lines]
    every_hour = [1.0, *(h for hours, _ in curves for h in hours)]
    styles = ("o:", "s-", "^--", "d-.")
    for axis, (metric, index) in zip(axes, (("pesq_wb", 0), ("stoi", 1)), strict=True):
        for style, line, (hours, rounds) in zip(styles, lines, curves, strict=False):
            for color, n in zip(("C0", "C1", "C2"), STAGES, strict=True):
                values = [r["held_out"][str(n)][metric] for r in rounds]
                label = f"{line.name}, {n} stages"
                axis.plot(hours, values, style, color=color, label=label, markersize=4)
        for name, values in REFERENCES.items():
            axis.axhline(values[index], linestyle="--", color="grey", linewidth=0.8)
            axis.text(0.01, values[index], name, fontsize=8, transform=axis.get_yaxis_transform())
        # a log axis: quality grows about linearly in doublings of CPU-hours, so a line's
        # slope here is its gain a doubling and its extension where more rounds would take it
        axis.set_xscale("log", base=2)
        axis.set_xlim(min(every_hour) / 1.5, 2 * max(every_hour))
        axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.set_xlabel("cumulative CPU-hours of the line (thread-hours, log scale)")
        axis.set_title(f"held-out French: {metric}")
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


def validation(exp: Path) -> dict[str, list[tuple[int, float]]]:
    """A run's validation scores from its train.log: metric -> [(step, value)]."""
    found: dict[str, list[tuple[int, float]]] = {}
    for line in (exp / "log" / "train.log").read_text().splitlines():
        if ": valid/" not in line:
            continue
        step = int(line.split(" step ", 1)[1].split(":", 1)[0])
        for key, value in (item.split("=") for item in line.split(": ", 1)[1].split()):
            found.setdefault(key.removeprefix("valid/"), []).append((step, float(value)))
    return found


def curves(args: argparse.Namespace) -> None:
    """Validation mel distance, STOI and PESQ-WB over the steps of rounds side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("mel_distance", "stoi", "pesq_wb")
    fig, axes = plt.subplots(1, len(metrics), figsize=(13, 4))
    labels = args.labels or [run.parent.name for run in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit(f"{len(args.runs)} runs and {len(labels)} labels: give one a run")
    for exp, label in zip(args.runs, labels, strict=True):
        scores = validation(exp)
        for axis, metric in zip(axes, metrics, strict=True):
            steps, values = zip(*scores[metric], strict=True)
            axis.plot(steps, values, "o-", label=label, markersize=3)
            axis.set_title(f"validation {metric} (12 stages)")
            axis.set_xlabel("step")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="start the next round in the background")
    begin.add_argument("--data", type=Path, required=True, help="directory with train/ and dev/")
    begin.add_argument("--minutes", type=float, default=100.0)
    begin.add_argument(
        "--threads", type=int, default=1,
        help="OMP threads (1: two threads are 1.5x faster alone but stall beside any other work, "
        "docs/models.md)",
    )  # fmt: skip
    begin.add_argument("--exp", type=Path, help="rounds' folder (exp/campaign/LINE)")
    begin.add_argument("--config", default=str(CONFIG), help="preset name or YAML file")
    begin.add_argument("--set", action="append", default=[], help="KEY=VALUE for codec train")
    end = commands.add_parser("finish", help="score the round and log it")
    end.add_argument("--dev", type=Path, required=True)
    end.add_argument("--held-out", type=Path)
    end.add_argument("--every", type=int, default=1, help="score every n-th file")
    end.add_argument("--exp", type=Path, help="rounds' folder (exp/campaign/LINE)")
    ship = commands.add_parser("shipped", help="record that the last round was shipped")
    ship.add_argument("name", help="its zoo name")
    drawing = commands.add_parser("plot", help="docs/campaign.png from the lines' logs")
    drawing.add_argument("--lines", type=Path, nargs="+", help=f"state folders (all in {LINES})")
    drawing.add_argument("--out", type=Path, default=PLOT)
    drawn = commands.add_parser("curves", help="validation curves of rounds side by side")
    drawn.add_argument("runs", type=Path, nargs="+", help="rounds' experiment directories")
    drawn.add_argument("--labels", nargs="+", help="one a run (default: each line's name)")
    drawn.add_argument("--out", type=Path, required=True)
    table = commands.add_parser("report", help="the log as a Markdown table")
    for command in (begin, end, ship, table):
        command.add_argument("--state", type=Path, default=STATE, help="the line's log and weights")
    args = parser.parse_args()
    actions = {"start": start, "finish": finish, "shipped": shipped, "plot": plot,
               "curves": curves, "report": report}  # fmt: skip
    actions[args.command](args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Usage: compare_report.py EXP_DIR... [--test-set test] [--plots DIR] [--reference vq]

The quantizer comparison of egs/mini/run_compare.sh as Markdown: quality at each bitrate for
every run; per family (runs `<family>_s<seed>`) the mean over seeds, and the seed noise the
verdicts are measured against (per metric, the largest difference between two seeds of one
family); each run's difference from the reference family's run of the same seed (same crops:
what a seed does to every family cancels); per-stage token usage; step time and training
stability (mel loss, gradient-norm spikes, batch code perplexity, VQ restarts, VP acceptance),
read from each experiment's scores and TensorBoard logs. `--plots DIR` draws one figure per
family, DIR/<family>.png: training and validation mel loss, gradient norm and code perplexity
over the steps, every seed.
"""

import argparse
import json
import re
from pathlib import Path

import numpy as np
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from codec.eval.report import markdown_table

# summary.json key -> column; higher is better for all but the last two
QUALITY = {"pesq_wb": "PESQ-WB", "stoi": "STOI", "estoi": "ESTOI",
           "mel_distance": "mel distance", "f0_rmse_cents": "F0 error (cents)"}  # fmt: skip
SPIKE_FACTOR = 3.0  # a gradient-norm spike: a logged norm above this many times the run's median


def scalars(exp: Path) -> dict[str, list]:
    events = EventAccumulator(str(exp / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def series(logs: dict[str, list], tag: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of one scalar (empty arrays if the run did not log it)."""
    events = logs.get(tag, [])
    return np.array([e.step for e in events]), np.array([e.value for e in events])


def per_stage(logs: dict[str, list], suffix: str) -> np.ndarray:
    """`[stages, logged steps]`: `quantizer/stage*/<suffix>` of every stage."""
    rows = [[e.value for e in events] for tag, events in sorted(logs.items())
            if re.fullmatch(rf"quantizer/stage\d+/{suffix}", tag)]  # fmt: skip
    return np.array(rows) if rows else np.zeros((0, 0))


def run_name(exp: Path) -> str:
    return exp.name.removeprefix("codec_compare_")


def family(run: str) -> str:
    return re.sub(r"_s\d+$", "", run)


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def decodes(exp: Path) -> list[Path]:
    """The run's `decode_<kbps>kbps` folders, lowest bitrate first."""
    return sorted(exp.glob("decode_*kbps"), key=lambda p: float(p.name[7:-4]))


def quality_of(exp: Path, test_set: str) -> dict[str, dict[str, float]]:
    """kbps -> metric -> mean over the test set, from stage 6's summary.json."""
    result = {}
    for decode in decodes(exp):
        summary = json.loads((decode / test_set / "scores" / "summary.json").read_text())
        result[decode.name[7:-4]] = {
            m: np.nan if summary.get(m, {}).get("mean") is None else summary[m]["mean"]
            for m in QUALITY
        }
    return result


def stability_of(logs: dict[str, list], warmup: int) -> dict[str, float]:
    """For one run, after its `warmup` steps if it ran longer (a fresh quantizer starts far
    off): final and worst training mel loss, gradient-norm median / max / spikes, the lowest
    and the last batch perplexity (mean over stages); over the whole run, VQ restarts and VP
    acceptance."""
    steps, mel = series(logs, "loss/mel")
    _, norms = series(logs, "grad_norm")
    stages = per_stage(logs, "perplexity")
    perplexity = stages.mean(axis=0) if stages.size else np.zeros(0)
    settled = steps > warmup if (steps > warmup).any() else steps >= 0  # a run shorter: all
    mel, norms = mel[settled], norms[settled[: norms.size]]
    perplexity = perplexity[settled[: perplexity.size]] if perplexity.size else perplexity
    median = float(np.median(norms)) if norms.size else np.nan
    acceptance = per_stage(logs, "acceptance")
    return {
        "final_mel": float(mel[-1]),
        "worst_mel": float(mel.max()),
        "grad_median": median,
        "grad_max": float(norms.max()) if norms.size else np.nan,
        "spikes": int((norms > SPIKE_FACTOR * median).sum()) if norms.size else 0,
        "perplexity_min": float(perplexity.min()) if perplexity.size else np.nan,
        "perplexity_last": float(perplexity[-1]) if perplexity.size else np.nan,
        "restarts": float(per_stage(logs, "dead_codes").sum()),
        "acceptance": float(acceptance.mean()) if acceptance.size else np.nan,
    }


def seed_noise(quality: dict[str, dict]) -> dict[tuple[str, str], float]:
    """(kbps, metric) -> the largest |difference| between two seeds of one family."""
    noise: dict[tuple[str, str], float] = {}
    by_family: dict[str, list[dict]] = {}
    for run, scores in quality.items():
        by_family.setdefault(family(run), []).append(scores)
    for runs in by_family.values():
        for kbps in runs[0]:
            for metric in QUALITY:
                values = [r[kbps][metric] for r in runs if kbps in r]
                if len(values) > 1 and not np.isnan(values).any():
                    spread = float(np.max(values) - np.min(values))
                    noise[kbps, metric] = max(noise.get((kbps, metric), 0.0), spread)
    return noise


def paired(quality: dict[str, dict], reference: str) -> list[list[str]]:
    """Table rows: every run minus the `reference` family's run of the same seed, per bitrate
    and metric (signed: higher minus higher is better for PESQ, STOI, ESTOI)."""
    rows = []
    for run, by_kbps in quality.items():
        base = quality.get(f"{reference}{run[len(family(run)) :]}")
        if family(run) == reference or base is None:
            continue
        for kbps, scores in by_kbps.items():
            rows.append([run, kbps] + [f"{scores[m] - base[kbps][m]:+.3f}" for m in QUALITY])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("exps", nargs="+", type=Path)
    parser.add_argument("--test-set", default="test")
    parser.add_argument("--plots", type=Path, help="folder for one figure per family")
    parser.add_argument("--reference", default="vq", help="family the paired table subtracts")
    args = parser.parse_args()

    quality, usage, stability, curves = {}, [], [], {}
    for exp in sorted(args.exps):
        run = run_name(exp)
        logs = scalars(exp)
        config = yaml.safe_load((exp / "config.yaml").read_text())
        train = config["train"]
        audio_per_step = train["batch_size"] * train["segment_seconds"]
        seconds_per_step = audio_per_step / logs["throughput/audio_seconds_per_second"][-1].value
        quality[run] = quality_of(exp, args.test_set)
        curves[run] = logs
        last = decodes(exp)[-1]
        tokens = json.loads((last / args.test_set / "scores" / "tokens.json").read_text())
        for stage in tokens["stages"]:
            usage.append([run, str(stage["stage"]), f"{stage['utilisation']:.3f}",
                          f"{stage['perplexity_ratio']:.3f}"])  # fmt: skip
        s = stability_of(logs, train["warmup_steps"])
        stability.append(
            [run, str(int(series(logs, "loss/mel")[0][-1])), f"{seconds_per_step:.2f}",
             fmt(s["final_mel"]), fmt(s["worst_mel"]), fmt(s["grad_median"], 2),
             fmt(s["grad_max"], 2), str(s["spikes"]), fmt(s["perplexity_min"], 0),
             fmt(s["perplexity_last"], 0),
             fmt(s["restarts"], 0) if s["restarts"] else "-", fmt(s["acceptance"], 2)]
        )  # fmt: skip

    print("## Quantizer comparison (egs/mini/run_compare.sh)\n")
    print("### Quality on the held-out test set, every run\n")
    rows = [[run, kbps] + [fmt(v) for v in scores.values()]
            for run, by_kbps in quality.items() for kbps, scores in by_kbps.items()]  # fmt: skip
    print(markdown_table(["run", "kbps", *QUALITY.values()], rows))
    noise = seed_noise(quality)
    print("### Per family: mean over seeds (seeds)\n")
    rows = []
    families = sorted({family(run) for run in quality})
    for name in families:
        runs = [scores for run, scores in quality.items() if family(run) == name]
        for kbps in runs[0]:
            means = [np.nanmean([r[kbps][m] for r in runs]) for m in QUALITY]
            rows.append([name, kbps, str(len(runs))] + [fmt(v) for v in means])
    for kbps in sorted({k for k, _ in noise}, key=float):
        rows.append(["seed noise", kbps, "-"] + [fmt(noise.get((kbps, m))) for m in QUALITY])
    print(markdown_table(["family", "kbps", "seeds", *QUALITY.values()], rows))
    print(
        "Seed noise: per metric and bitrate, the largest difference between two seeds of\n"
        "one family. A difference between families smaller than it is within seed noise.\n"
    )
    if args.reference in families:
        print(f"### Paired by seed: each run minus {args.reference} of the same seed\n")
        print(markdown_table(["run", "kbps", *QUALITY.values()], paired(quality, args.reference)))
        print(
            "Runs of one seed draw the same crops in the same order, so what a seed does to\n"
            "every family alike cancels here; a family ahead on every seed is ahead beyond it.\n"
        )
    print("### Token usage per stage (all stages, test set)\n")
    print(markdown_table(["run", "stage", "utilisation", "perplexity/K"], usage))
    print("### Training: steps, seconds per step, stability\n")
    header = ["run", "steps", "s/step", "final mel loss", "worst mel loss", "grad norm median",
              "grad norm max", f"spikes (>{SPIKE_FACTOR:g}x median)", "batch perplexity min",
              "batch perplexity last", "VQ restarts", "VP acceptance"]  # fmt: skip
    print(markdown_table(header, stability))
    print("After the warm-up (`train.warmup_steps`), logged every `train.log_every` steps, of\n"
          "that step's batch: mel loss, gradient norm (before clipping), code perplexity (mean\n"
          "over stages; a batch of 8 x 1 s holds 400 frames, so at most 400: a collapse shows\n"
          "as a fall); over the whole run, VQ codes restarted at the logged steps.\n")  # fmt: skip
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        for name in families:
            path = args.plots / f"{name}.png"
            plot_family(name, {r: logs for r, logs in curves.items() if family(r) == name}, path)
            print(f"![{name}]({path})\n")


def plot_family(name: str, runs: dict[str, dict], path: Path) -> None:
    """Training and validation mel loss, gradient norm and batch code perplexity (VQ: codes
    restarted too; VP: its acceptance) over the steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, grad_ax, codes_ax) = plt.subplots(1, 3, figsize=(15, 4))
    accept_ax = None
    for (run, logs), colour in zip(sorted(runs.items()), ("C0", "C1", "C2", "C3"), strict=False):
        steps, mel = series(logs, "loss/mel")
        loss_ax.plot(steps, mel, color=colour, alpha=0.6, label=f"{run} train")
        loss_ax.plot(*series(logs, "valid/mel_distance"), "o-", color=colour, label=f"{run} valid")
        grad_ax.semilogy(*series(logs, "grad_norm"), color=colour, label=run)
        perplexity = per_stage(logs, "perplexity")
        if perplexity.size:
            mean = perplexity.mean(axis=0)
            codes_ax.plot(steps[: mean.size], mean, color=colour, label=f"{run} perplexity")
        restarts = per_stage(logs, "dead_codes")
        if restarts.size:
            total = restarts.sum(axis=0)
            codes_ax.plot(steps[: total.size], total, "--", color=colour, label=f"{run} restarted")
        acceptance = per_stage(logs, "acceptance")
        if acceptance.size:  # VP codes nothing while it trains: its MH acceptance instead
            accept_ax = accept_ax or codes_ax.twinx()
            mean = acceptance.mean(axis=0)
            accept_ax.plot(steps[: mean.size], mean, ":", color=colour, label=f"{run} acceptance")
            accept_ax.set(ylabel="VP Metropolis-Hastings acceptance", ylim=(0, 1.05))
            accept_ax.legend(fontsize=7, loc="lower right")
    loss_ax.set(xlabel="step", ylabel="mel loss", title=f"{name}: reconstruction")
    grad_ax.set(xlabel="step", ylabel="gradient norm (before clipping)", title="gradient norm")
    codes_ax.set(xlabel="step", ylabel="codes", title="codes: batch perplexity, VQ restarts")
    for ax in (loss_ax, grad_ax, codes_ax):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()

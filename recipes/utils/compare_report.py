#!/usr/bin/env python3
"""Usage: compare_report.py EXP_DIR... [--test-set test] [--plot curves.png]

The quantizer comparison of egs/mini/run_compare.sh as Markdown: quality at each bitrate,
per-stage token usage, step time and training stability (final and worst mel loss, VQ dead
codes, VP acceptance), read from each experiment's scores and TensorBoard logs; and a PNG of
the training curves (mel loss for every run, dead codes for VQ).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from codec.eval.report import markdown_table


def scalars(exp: Path) -> dict[str, list]:
    events = EventAccumulator(str(exp / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def summed(logs: dict[str, list], suffix: str) -> np.ndarray:
    """Per logged step, the sum over stages of `quantizer/stage*/<suffix>`."""
    series = [
        np.array([e.value for e in events]) for tag, events in logs.items() if tag.endswith(suffix)
    ]
    return np.sum(series, axis=0) if series else np.array([])


def run_name(exp: Path) -> str:
    return exp.name.removeprefix("codec_compare_")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("exps", nargs="+", type=Path)
    parser.add_argument("--test-set", default="test")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    quality, usage, stability, curves = [], [], [], {}
    for exp in sorted(args.exps):
        logs = scalars(exp)
        mel = logs["loss/mel"]
        steps = [e.step for e in mel]
        train = yaml.safe_load((exp / "config.yaml").read_text())["train"]
        audio_per_step = train["batch_size"] * train["segment_seconds"]
        seconds_per_step = audio_per_step / logs["throughput/audio_seconds_per_second"][-1].value
        curves[run_name(exp)] = (steps, [e.value for e in mel], summed(logs, "dead_codes"))
        decodes = sorted(exp.glob("decode_*kbps"), key=lambda p: float(p.name[7:-4]))
        for decode in decodes:
            scores = decode / args.test_set / "scores"
            summary = json.loads((scores / "summary.json").read_text())
            cells = [summary[m]["mean"] for m in ("pesq_wb", "stoi", "estoi", "mel_distance")]
            quality.append(
                [run_name(exp), decode.name[7:-4]]
                + ["n/a" if v is None else f"{v:.3f}" for v in cells]
            )
        tokens = json.loads((decodes[-1] / args.test_set / "scores" / "tokens.json").read_text())
        for stage in tokens["stages"]:
            usage.append(
                [
                    run_name(exp),
                    str(stage["stage"]),
                    f"{stage['utilisation']:.3f}",
                    f"{stage['perplexity_ratio']:.3f}",
                ]
            )
        dead = summed(logs, "dead_codes")
        acceptance = summed(logs, "acceptance") / max(
            1, sum(t.endswith("acceptance") for t in logs)
        )
        stability.append(
            [
                run_name(exp),
                str(steps[-1]),
                f"{seconds_per_step:.2f}",
                f"{mel[-1].value:.3f}",
                f"{max(e.value for e in mel):.3f}",
                f"{int(dead.max())}" if dead.size else "-",
                f"{acceptance.mean():.2f}" if acceptance.size else "-",
            ]
        )
    print("## Quantizer comparison (egs/mini/run_compare.sh)\n")
    print("### Quality on the held-out test set\n")
    print(markdown_table(["run", "kbps", "PESQ-WB", "STOI", "ESTOI", "mel distance"], quality))
    print("### Token usage per stage (all stages, test set)\n")
    print(markdown_table(["run", "stage", "utilisation", "perplexity/K"], usage))
    print("### Training: steps, seconds per step, stability\n")
    header = [
        "run",
        "steps",
        "s/step",
        "final mel loss",
        "worst mel loss",
        "VQ dead codes (max)",
        "VP acceptance",
    ]
    print(markdown_table(header, stability))
    if args.plot:
        plot(curves, args.plot)
        print(f"Curves: {args.plot}\n")


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, dead_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, (steps, mel, dead) in curves.items():
        loss_ax.plot(steps, mel, label=name)
        if dead.size:
            dead_ax.plot(steps[: dead.size], dead, label=name)
    loss_ax.set(xlabel="step", ylabel="training mel loss", title="Reconstruction loss")
    dead_ax.set(xlabel="step", ylabel="codes restarted (all stages)", title="VQ dead codes")
    for ax in (loss_ax, dead_ax):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

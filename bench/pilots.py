"""Training runs compared at equal CPU time: quality at several bitrates, and learning speed.

Usage: python bench/pilots.py EXP_OR_CHECKPOINT... --data NAME=DIR_OR_WAV_SCP [--data ...]
                              [--stages 3,6,12] [--every 1] [--metrics pesq_wb,stoi,...]
                              [--jobs 2] [--out table.md]

Each run (an experiment directory, scored with its model.ckpt; a model.ckpt; or a training
checkpoint EXP/checkpoints/stepN.pt) codes every
file of each data set (every `--every`-th file; clips of 1-20 s) offline at each stage count,
and the reconstructions are scored in `--jobs` processes. For an experiment directory the table
also gives its steps, training wall time and audio-seconds per second (from its newest training
checkpoint and config). Prints one Markdown table (means over files) and writes it to --out.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from codec.eval.report import markdown_table
from codec.eval.stages import quality_by_stages, scored_files
from codec.train.checkpoint import latest_checkpoint, load_checkpoint, model_from_checkpoint
from codec.train.config import load_experiment
from codec.zoo import load_model


def training_figures(exp: Path) -> dict[str, str]:
    """Steps, wall minutes and audio-seconds per second of an experiment's newest checkpoint."""
    newest = latest_checkpoint(exp / "checkpoints")
    if newest is None or not (exp / "config.yaml").is_file():
        return {}
    state = load_checkpoint(newest)
    train = load_experiment(exp / "config.yaml").train
    seconds = state["step"] * train.batch_size * train.segment_seconds
    return {
        "steps": f"{state['step']}",
        "minutes": f"{state['elapsed'] / 60:.0f}",
        "audio-s/s": f"{seconds / state['elapsed']:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="experiment directories or checkpoints")
    parser.add_argument("--data", action="append", required=True, help="NAME=DIR or wav.scp")
    parser.add_argument("--stages", default="3,6,12")
    parser.add_argument("--every", type=int, default=1, help="score every n-th file")
    parser.add_argument("--metrics", default="pesq_wb,stoi,mel_distance,pitch")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    metrics = tuple(args.metrics.split(","))
    stages = [int(s) for s in args.stages.split(",")]
    sets = []
    for spec in args.data:
        name, _, path = spec.rpartition("=")
        sets.append((name or Path(path).name, scored_files(Path(path), args.every)))
    rows = []
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        for run in map(Path, args.runs):
            if run.parent.name == "checkpoints":  # a training checkpoint, mid-run
                model = model_from_checkpoint(run)
            else:
                model = load_model(run / "model.ckpt" if run.is_dir() else run)
            figures = training_figures(run) if run.is_dir() else {}
            for set_name, files in sets:
                means = quality_by_stages(model, files, stages, metrics, pool)
                for n, values in means.items():
                    rows.append(
                        {"run": run.name, "data": set_name, "files": str(len(files))}
                        | {"stages": str(n), "kbps": f"{model.bitrate(n) / 1000:.2f}"}
                        | figures
                        | {k: f"{v:.3f}" for k, v in values.items()}
                    )
                print(f"{run.name} on {set_name}: done", flush=True)
    header = list(dict.fromkeys(k for row in rows for k in row))
    table = markdown_table(header, [[row.get(k, "") for k in header] for row in rows])
    print(table)
    if args.out:
        args.out.write_text(table)


if __name__ == "__main__":
    main()

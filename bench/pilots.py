"""Training runs compared at equal CPU time: quality at several bitrates, and learning speed.

Usage: python bench/pilots.py EXP_OR_CHECKPOINT... --data NAME=DIR_OR_WAV_SCP [--data ...]
                              [--stages 3,6,12] [--every 1] [--metrics pesq_wb,stoi,...]
                              [--jobs 2] [--out table.md]

Each run (an experiment directory, scored with its model.ckpt, or a checkpoint file) codes every
file of each data set (every `--every`-th file; clips of 1-20 s) offline at each stage count,
and the reconstructions are scored in `--jobs` processes. For an experiment directory the table
also gives its steps, training wall time and audio-seconds per second (from its newest training
checkpoint and config). Prints one Markdown table (means over files) and writes it to --out.
"""

from __future__ import annotations

import argparse
import math
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from codec.audio import find_files, load_audio
from codec.data.kaldi import read_wav_scp
from codec.eval.metrics import score, value_names
from codec.eval.report import markdown_table
from codec.train.checkpoint import latest_checkpoint, load_checkpoint
from codec.train.config import load_experiment
from codec.zoo import load_model

RATE = 16000


def data_files(spec: str, every: int) -> tuple[str, list[Path]]:
    """`NAME=PATH` -> the name and every `every`-th audio file of 1-20 s under PATH."""
    name, _, path = spec.rpartition("=")
    path = Path(path)
    kaldi = path.is_file() or (path / "wav.scp").is_file()
    files = sorted(read_wav_scp(path).values()) if kaldi else find_files(path)
    usable = [f for f in files if 1.0 <= sf.info(f).duration <= 20.0]
    return name or path.name, usable[::every]


def training_figures(exp: Path) -> dict[str, str]:
    """Steps, wall minutes and audio-seconds per second of an experiment's newest checkpoint."""
    newest = latest_checkpoint(exp / "checkpoints")
    if newest is None or not (exp / "config.yaml").is_file():
        return {"steps": "", "minutes": "", "audio-s/s": ""}
    state = load_checkpoint(newest)
    train = load_experiment(exp / "config.yaml").train
    seconds = state["step"] * train.batch_size * train.segment_seconds
    return {
        "steps": f"{state['step']}",
        "minutes": f"{state['elapsed'] / 60:.0f}",
        "audio-s/s": f"{seconds / state['elapsed']:.1f}",
    }


def _score(ref: np.ndarray, hyp: np.ndarray, metrics: tuple[str, ...]) -> dict[str, float]:
    return score(ref, hyp, RATE, metrics=metrics).values


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
    names = value_names(metrics)
    stages = [int(s) for s in args.stages.split(",")]
    sets = [data_files(spec, args.every) for spec in args.data]
    rows = []
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        for run in map(Path, args.runs):
            model = load_model(run / "model.ckpt" if run.is_dir() else run)
            figures = training_figures(run) if run.is_dir() else {}
            for set_name, files in sets:
                jobs = {n: [] for n in stages}
                for file in files:
                    ref = load_audio(file, RATE)[0].mean(axis=0)
                    with torch.inference_mode():
                        codes = model.encode(torch.from_numpy(ref).view(1, 1, -1))
                        for n in stages:
                            hyp = model.decode(codes[:, :n]).view(-1)[: len(ref)].numpy()
                            jobs[n].append(pool.submit(_score, ref, hyp, metrics))
                for n in stages:
                    values = [job.result() for job in jobs[n]]
                    means = {k: np.nanmean([v.get(k, math.nan) for v in values]) for k in names}
                    rows.append(
                        {"run": run.name, "data": set_name, "files": len(files), "stages": n}
                        | figures
                        | {k: f"{v:.3f}" for k, v in means.items()}
                        | {"kbps": f"{model.bitrate(n) / 1000:.2f}"}
                    )
                print(f"{run.name} on {set_name}: done", flush=True)
    header = list(rows[0])
    table = markdown_table(header, [[str(row.get(k, "")) for k in header] for row in rows])
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()

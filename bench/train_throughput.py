"""Training throughput: audio-seconds per second, and where a step's time goes.

Usage: python bench/train_throughput.py [--preset P ...] [--set KEY=VALUE ...] [--data DIR]
                                        [--steps 20] [--warmup 3] [--device cpu|cuda]
                                        [--threads N] [--json FILE]

Each preset (name or YAML file; several may be given, e.g. the same one twice with different
`--set`s is done with two runs) trains through the real trainer (`codec.train.trainer`) on
`--data` (a Kaldi data directory) or on a minute of synthetic voiced audio. After `--warmup`
steps, `--steps` steps are timed twice: once as training runs (the throughput figure), once
with the device synchronised around each phase (data, forward, losses, discriminator,
backward, optimizer), for the shares. Examples:

  python bench/train_throughput.py --preset egs/mini/conf/mini.yaml          # CPU baseline
  python bench/train_throughput.py --preset egs/mini/conf/mini.yaml --set train.data=disk
  python bench/train_throughput.py --preset egs/mini/conf/default_model_gpu.yaml --device cuda \\
      --set train.batch_size=256 --set train.amp=true --set train.losses.adversarial=1
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from codec.audio import save_audio
from codec.train.config import load_experiment
from codec.train.trainer import Trainer, prepare_experiment_dir


def synthetic_corpus(root: Path, seconds: int = 60, rate: int = 16000) -> Path:
    """`root/train`: voiced sweeps with noise, six files of `seconds / 6`."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        t = np.arange(seconds // 6 * rate) / rate
        f0 = 110 + 60 * np.sin(2 * np.pi * 0.3 * t + i)
        voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 12))
        wav = 0.1 * voiced * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
        save_audio(root / f"syn{i}.flac", wav[None], rate)
        lines.append(f"syn{i} {root / f'syn{i}.flac'}\n")
    (root / "train").mkdir()
    (root / "train" / "wav.scp").write_text("".join(lines))
    return root / "train"


def measure(trainer: Trainer, steps: int, warmup: int) -> dict:
    """Throughput over `steps` steps after `warmup`, then the phase shares over as many."""
    batches = trainer.batches(0)
    rate = trainer.cfg.model.sample_rate

    def run(n: int) -> float:
        audio = 0.0
        for _ in range(n):
            with trainer.timer("data"):
                wav = next(batches)
            trainer.train_step(wav)
            trainer.step += 1
            audio += wav.shape[0] * wav.shape[-1] / rate
        return audio

    run(warmup)
    trainer.timer._sync()
    start = time.perf_counter()
    audio = run(steps)
    trainer.timer._sync()
    wall = time.perf_counter() - start
    trainer.timer.enabled = True
    run(steps)
    phases = dict(trainer.timer.totals)
    timed = sum(phases.values())
    return {
        "audio_seconds_per_second": audio / wall,
        "step_seconds": wall / steps,
        "shares": {k: v / timed for k, v in phases.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="preset name or YAML (repeatable)")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--data", type=Path, help="Kaldi data directory (default: synthetic)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the trainer takes CUDA whenever it sees it
    presets = args.preset or ["egs/mini/conf/mini.yaml"]
    where = f"{args.device}" + (f", {args.threads} threads" if args.device == "cpu" else "")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or synthetic_corpus(Path(tmp))
        for preset in presets:
            cfg = load_experiment(preset, args.sets + ["train.valid_every=1000000"])
            out = Path(tmp) / f"exp{len(results)}"
            prepare_experiment_dir(out, resume=False, overwrite=False)
            figures = measure(Trainer(cfg, data, None, out), args.steps, args.warmup)
            batch = f"{cfg.train.batch_size} x {cfg.train.segment_seconds:g} s"
            results.append({"preset": preset, "batch": batch, "data": cfg.train.data} | figures)
    print(f"training throughput on {where}; overrides: {' '.join(args.sets) or 'none'}")
    phases = sorted({p for r in results for p in r["shares"]}, key=PHASES.index)
    print("| preset | batch | audio-s/s | s/step | " + " | ".join(phases) + " |")
    print("|---|---|---|---|" + "---|" * len(phases))
    for r in results:
        shares = " | ".join(f"{100 * r['shares'].get(p, 0):.0f}%" for p in phases)
        row = f"{r['audio_seconds_per_second']:.1f} | {r['step_seconds']:.3f}"
        print(f"| {r['preset']} | {r['batch']} | {row} | {shares} |")
    if args.json:
        args.json.write_text(json.dumps({"device": where, "sets": args.sets, "runs": results}))


PHASES = ["data", "forward", "losses", "discriminator", "backward", "optimizer"]

if __name__ == "__main__":
    main()

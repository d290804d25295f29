"""Copy a trained model into the package as a versioned zoo model (int8 weights, entropy tables).

Usage: python tools/ship_model.py CHECKPOINT NAME [--data TRAIN_DATA_DIR] [--precision int8]

CHECKPOINT is a `model.ckpt` written by `codec train`, or one of its training checkpoints
(EXP/checkpoints/stepN.pt, built with EXP/config.yaml). With --data (the Kaldi data directory
the model was trained on), the entropy-coding tables are fitted on its codes, at the shipped
weights; without it the checkpoint's own tables are kept (`codec train` fits them at its
end), and a checkpoint without tables is refused: a shipped model writes entropy-coded files.

Weights are stored in int8 with a scale per row (--precision; fp16 takes twice the room): on
the frame codec as good as fp32 (docs/models.md, "How models are stored"), and the package
and repository stay small. Writes codec/models/NAME.ckpt and prints its size and how far the
stored precision moves the output on the demo sample. Then register NAME in codec/zoo.py (and
point `default` at it) and describe it in docs/models.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import codec
from codec.audio import load_audio
from codec.data.kaldi import read_data_dir, sample_audio
from codec.train.checkpoint import model_from_checkpoint
from codec.zoo import MODEL_DIR

SAMPLE = Path(__file__).parents[1] / "tests" / "data" / "speech_fr.flac"
LIMIT_MB = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="model.ckpt or EXP/checkpoints/stepN.pt")
    parser.add_argument("name", help="versioned zoo name, e.g. speech16k-mini-v1")
    parser.add_argument("--data", type=Path, help="training data dir to fit the entropy tables")
    parser.add_argument(
        "--data-seconds", type=float, default=30000.0, help="audio of --data to use at most"
    )
    parser.add_argument("--precision", choices=["int8", "fp16"], default="int8")
    args = parser.parse_args()

    if args.checkpoint.parent.name == "checkpoints":
        model = model_from_checkpoint(args.checkpoint)
    else:
        model = codec.load_model(args.checkpoint)
    model.name = args.name
    target = MODEL_DIR / f"{args.name}.ckpt"
    MODEL_DIR.mkdir(exist_ok=True)
    model.save(target, args.precision)
    shipped = codec.load_model(target)
    if args.data is not None:
        rate, utterances = shipped.sample_rate, read_data_dir(args.data)
        audio = sample_audio(utterances, rate, args.data_seconds)
        shipped.fit_entropy(torch.from_numpy(wav)[:, None] for wav in audio)
        shipped.save(target, args.precision)
        print(f"fitted entropy tables {shipped.entropy.hash} on {args.data}")
    elif shipped.entropy is None:
        target.unlink()
        raise SystemExit(f"{args.checkpoint} has no entropy tables: pass --data TRAIN_DATA_DIR")
    size_mb = target.stat().st_size / 1e6
    if size_mb > LIMIT_MB:
        target.unlink()
        raise SystemExit(f"{target} would be {size_mb:.1f} MB, over the {LIMIT_MB:.0f} MB limit")
    wav = torch.from_numpy(load_audio(SAMPLE, model.sample_rate)[0][:1]).float()[None]
    with torch.inference_mode():
        full, stored = model(wav).audio, shipped(wav).audio
    change = 20 * torch.log10((stored - full).norm() / full.norm()).item()
    print(
        f"wrote {target} ({size_mb:.2f} MB); {args.precision} changes the output by {change:.1f} dB"
    )


if __name__ == "__main__":
    main()

"""`codec train`: train a codec on Kaldi data directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codec.cli.app import app, fail


@app.command()
def train(
    config: Annotated[str, typer.Option("--config", "-c", help="Preset name or YAML file.")],
    train_data: Annotated[
        Path, typer.Option("--train-data", help="Kaldi data directory to train on.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Experiment directory.")],
    valid_data: Annotated[
        Path | None, typer.Option("--valid-data", help="Kaldi data directory for validation.")
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: --set optim.lr=3e-4")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Start again in an existing experiment directory.")
    ] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            "--init-from",
            help="Start from the weights of this checkpoint (training checkpoint or model.ckpt) "
            "with a fresh optimizer: fine-tuning. Ignored once the run has checkpoints of its own.",
        ),
    ] = None,
) -> None:
    """Train a codec; the final model is OUT/model.ckpt, ready for `codec encode --model`.

    The resolved config is saved as OUT/config.yaml; checkpoints go to OUT/checkpoints, logs to
    OUT/log and OUT/tensorboard. Several GPUs or nodes: run it under torchrun.

    Example: codec train -c speech16k --train-data data/train --valid-data data/dev -o exp/run1
    """
    from codec.train.config import load_experiment
    from codec.train.trainer import train as run_training

    if resume and overwrite:
        fail("give --resume or --overwrite, not both")
    try:
        cfg = load_experiment(config, sets or [])
        path = run_training(cfg, train_data, valid_data, out, resume, overwrite, init_from)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        fail(str(error))
    typer.echo(f"final model: {path}")

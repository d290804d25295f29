"""`codec train`: train a codec on Kaldi data directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codec.cli.app import app, fail


@app.command()
def train(
    train_data: Annotated[
        Path, typer.Option("--train-data", help="Kaldi data directory to train on.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Experiment directory.")],
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            help="Preset name or YAML file. May be left out with --init-from: the model then "
            "comes from the checkpoint and training options from the `finetune` preset.",
        ),
    ] = None,
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
        str | None,
        typer.Option(
            "--init-from",
            help="Fine-tune: start from this model's weights with a fresh optimizer; a zoo name "
            "(`default`, see `codec models`) or a checkpoint (model.ckpt or a training "
            "checkpoint). Ignored once the run has checkpoints of its own.",
        ),
    ] = None,
) -> None:
    """Train a codec, or fine-tune a trained one on your speech; the final model is
    OUT/model.ckpt (entropy-coding tables fitted on the training data), ready for
    `codec encode --model`.

    The resolved config is saved as OUT/config.yaml; checkpoints go to OUT/checkpoints, logs to
    OUT/log and OUT/tensorboard. Several GPUs or nodes: run it under torchrun.

    Examples: codec train --init-from default --train-data data/train -o exp/finetune
              codec train -c speech16k --train-data data/train --valid-data data/dev -o exp/run1
    """
    from codec.train.config import load_experiment
    from codec.train.finetune import fine_tuning_experiment, init_checkpoint
    from codec.train.trainer import train as run_training

    if resume and overwrite:
        fail("give --resume or --overwrite, not both")
    if config is None and init_from is None:
        fail("give --config (a preset such as speech16k, or a YAML file), or --init-from MODEL "
             "to fine-tune a trained model")  # fmt: skip
    try:
        start = init_checkpoint(init_from) if init_from is not None else None
        if start is not None:
            cfg = fine_tuning_experiment(start, config, sets or [])
        else:
            cfg = load_experiment(config, sets or [])
        path = run_training(cfg, train_data, valid_data, out, resume, overwrite, start)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        fail(str(error))
    typer.echo(f"final model: {path}")

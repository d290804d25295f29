"""Fine-tuning: a run that starts from a trained model (a zoo name or a checkpoint file) keeps
that model's architecture; its training options come from the `finetune` preset or a config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from codec.config import ModelConfig, apply_overrides, from_dict, load_preset
from codec.train.checkpoint import load_checkpoint
from codec.train.config import ExperimentConfig, load_experiment, parse_sets

FINETUNE_PRESET = "finetune"
# model keys that only shape training, not the weights: they may differ from the checkpoint's
TRAINING_ONLY = ("quantizer.quantize_rate", "quantizer.norm_loss", "quantizer.dropout",
                 "quantizer.refine_loss", "quantizer.vp.", "quantizer.vq.")  # fmt: skip


def init_checkpoint(name_or_path: str | Path) -> Path:
    """The file behind `--init-from`: a checkpoint path, or a zoo model's name (`default`)."""
    from codec.zoo import checkpoint_file

    try:
        return checkpoint_file(name_or_path)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"--init-from: {error}") from None


def checkpoint_model(path: Path) -> ModelConfig:
    """The model configuration a checkpoint was trained with: stored in a `model.ckpt`, or the
    experiment's `config.yaml` for a training checkpoint `EXP/checkpoints/stepN.pt`."""
    state = load_checkpoint(path)
    if isinstance(state, dict) and "config" in state:
        return from_dict(ModelConfig, state["config"])
    experiment = path.parent.parent / "config.yaml"
    if isinstance(state, dict) and "model" in state and experiment.is_file():
        return from_dict(ModelConfig, yaml.safe_load(experiment.read_text())["model"])
    raise ValueError(f"{path} holds no model configuration: give a model.ckpt or a checkpoint "
                     "inside its experiment directory")  # fmt: skip


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def architecture_mismatch(
    model: ModelConfig, source: ModelConfig, fresh_quantizer: bool = False
) -> tuple[str, Any, Any] | None:
    """The first model key (dotted) whose value differs from the checkpoint's, with both
    values; keys that only shape training are ignored, and with `fresh_quantizer` (a run that
    copies the encoder and decoder only) every quantizer key."""
    ignored = ("quantizer.",) if fresh_quantizer else TRAINING_ONLY
    mine, theirs = _flat(dataclasses.asdict(model)), _flat(dataclasses.asdict(source))
    for key, value in mine.items():
        if not key.startswith(ignored) and value != theirs.get(key):
            return key, value, theirs.get(key)
    return None


def fine_tuning_experiment(
    init: Path, config: str | Path | None = None, sets: list[str] | None = None
) -> ExperimentConfig:
    """The configuration of a run starting from checkpoint `init`: without `config`, the
    checkpoint's model and the `finetune` preset's training options; `--set` overrides either.
    ValueError naming the first mismatching key if the model is not the checkpoint's."""
    source = checkpoint_model(init)
    if config is None:
        data = {**load_preset(FINETUNE_PRESET), "model": dataclasses.asdict(source)}
        experiment = from_dict(ExperimentConfig, apply_overrides(data, parse_sets(sets or [])),
                               where="config")  # fmt: skip
    else:
        experiment = load_experiment(config, sets)
    parts = experiment.train.init_modules
    wrong = architecture_mismatch(
        experiment.model, source, bool(parts) and "quantizer" not in parts
    )
    if wrong is not None:
        key, mine, theirs = wrong
        given = f"--config {config}" if config is not None else "--set"
        raise ValueError(
            f"{given} does not match the architecture of {init}: model.{key} is {mine!r}, the "
            f"checkpoint's is {theirs!r} (leave --config out to take the model from the checkpoint)"
        )
    return experiment

"""Training checkpoints: written atomically every N steps, the newest few kept, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from codec.model import CodecModel
from codec.train.config import load_experiment

PATTERN = "step*.pt"


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step{step:08d}.pt"


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write `state` for `step` (temp file, then rename) and delete all but the `keep` newest."""
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, step)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    for old in sorted(directory.glob(PATTERN))[:-keep]:
        old.unlink()
    return path


def latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(directory.glob(PATTERN))
    return found[-1] if found else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint` (no code is executed: weights_only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def model_from_checkpoint(path: Path) -> CodecModel:
    """The model of a training checkpoint `EXP/checkpoints/stepN.pt`, built from `EXP/config.yaml`,
    in inference form (weight norm folded, eval mode), as `codec train` would have saved it."""
    config = path.parent.parent / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{path} is not inside an experiment directory (no {config})")
    model = CodecModel(load_experiment(config).model, name=path.parent.parent.name)
    model.load_state_dict(load_checkpoint(path)["model"])
    model.set_weight_norm(False)
    return model.eval()

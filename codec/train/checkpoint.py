"""Training checkpoints: written atomically every N steps, the newest few kept, resumable."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from codec.model import CodecModel
from codec.train.config import load_experiment

PATTERN = "step*.pt"
DECAY_START = "decay_start.pt"  # a run's state where its learning rate began to decay


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step{step:08d}.pt"


def save_checkpoint(
    directory: Path, step: int, state: dict[str, Any], keep: int, name: str | None = None
) -> Path:
    """Write `state` for `step` (temp file, then rename) and delete all but the `keep` newest;
    with `name`, to that file instead, outside the rotation (`DECAY_START`)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name if name else checkpoint_path(directory, step)
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


def split_file(path: Path, out_dir: Path, max_bytes: int) -> list[Path]:
    """Cut `path` into `out_dir/<name>.000`, `.001`, ... of at most `max_bytes` each, beside a
    `<name>.sha256` that `join_parts` checks: a checkpoint carried through a size-limited copy."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = path.read_bytes()
    parts = []
    for k, start in enumerate(range(0, max(1, len(data)), max_bytes)):
        part = out_dir / f"{path.name}.{k:03d}"
        part.write_bytes(data[start : start + max_bytes])
        parts.append(part)
    digest = hashlib.sha256(data).hexdigest()
    (out_dir / f"{path.name}.sha256").write_text(f"{digest} {len(data)} {len(parts)}\n")
    return parts


def join_parts(stem: Path, target: Path) -> Path:
    """Rebuild the file that `split_file` cut into `stem.000`, ... (`stem.sha256` beside them)
    at `target`; raises ValueError when a part is missing or the bytes differ."""
    digest, size, count = stem.with_name(f"{stem.name}.sha256").read_text().split()
    parts = [stem.with_name(f"{stem.name}.{k:03d}") for k in range(int(count))]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise ValueError(f"{stem}: parts missing: {', '.join(missing)}")
    data = b"".join(p.read_bytes() for p in parts)
    if len(data) != int(size) or hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"{stem}: the joined parts do not match their checksum")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target

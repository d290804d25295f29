"""Named, versioned models shipped in the package, and `load_model` that resolves them."""

from __future__ import annotations

from pathlib import Path

from codec.model import CodecModel

MODEL_DIR = Path(__file__).parent / "models"

# name -> checkpoint file under codec/models/; aliases map to a versioned name. A new version
# gets a new name; token files record the versioned name, so they decode after `default` moves.
# docs/models.md describes each model (data, training, quality).
MODELS: dict[str, str] = {
    "speech16k-mini-v1": "speech16k-mini-v1.ckpt",
    "speech16k-mini-v2": "speech16k-mini-v2.ckpt",
}
ALIASES: dict[str, str] = {"default": "speech16k-mini-v2"}


def resolve(name: str) -> str:
    """The versioned name behind `name` (an alias such as `default`, or a name itself)."""
    return ALIASES.get(name, name)


def load_model(name_or_path: str | Path) -> CodecModel:
    """A checkpoint file, or a model of the zoo by name (`codec models` lists them)."""
    path = Path(name_or_path)
    if path.is_file():
        return CodecModel.load(path)
    name = resolve(str(name_or_path))
    if name in MODELS:
        model = CodecModel.load(MODEL_DIR / MODELS[name])
        model.name = name
        return model
    known = ", ".join(sorted(MODELS) + sorted(ALIASES)) or "none shipped yet"
    raise FileNotFoundError(
        f"no model file or zoo model named {str(name_or_path)!r} (zoo: {known}); "
        "give the path of a checkpoint written by CodecModel.save"
    )


def model_label(reference: str | Path) -> str:
    """How a token file names its model: the versioned zoo name, or the checkpoint's file name."""
    path = Path(reference)
    return path.name if path.is_file() else resolve(str(reference))

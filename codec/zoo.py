"""Named, versioned models shipped in the package: `load_model` resolves a name or a file to a
torch model, `load_onnx` to its exported graphs (exported once, then cached; no torch needed
after that)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codec.model import CodecModel
    from codec.runtime import OnnxCodec

MODEL_DIR = Path(__file__).parent / "models"
PACKAGE_LIMIT_MB = 30.0  # the models under codec/models/, in all

# name -> checkpoint file under codec/models/; aliases map to a versioned name. A new version
# gets a new name; token files record the versioned name, so they decode after `default` moves.
# docs/models.md describes each model (data, training, quality).
MODELS: dict[str, str] = {
    "speech16k-mini-v2": "speech16k-mini-v2.ckpt",
    "speech16k-frame-v6": "speech16k-frame-v6.ckpt",
    "speech16k-frame-v7": "speech16k-frame-v7.ckpt",
}
ALIASES: dict[str, str] = {"default": "speech16k-frame-v7"}
# Older versions that no longer fit the package, name -> checkpoint file in the archive package
# (tools/models-archive), where their token files find them. The archive stores them
# xz-compressed (a fifth smaller); each is unpacked into the cache on first use.
ARCHIVED: dict[str, str] = {
    "speech16k-mini-v1": "speech16k-mini-v1.ckpt.xz",
    "speech16k-frame-v3": "speech16k-frame-v3.ckpt.xz",
    "speech16k-frame-v4": "speech16k-frame-v4.ckpt.xz",
    "speech16k-frame-v5": "speech16k-frame-v5.ckpt.xz",
}
ARCHIVE_HINT = "pip install tools/models-archive (from the codec repository; `make install` does)"


def resolve(name: str) -> str:
    """The versioned name behind `name` (an alias such as `default`, or a name itself)."""
    return ALIASES.get(name, name)


def is_path(reference: str | Path) -> bool:
    """Whether a model argument names a file or folder rather than a zoo model: a Path, or text
    with a directory separator or a `.ckpt` suffix. So a file in the working folder named
    `default` or like a zoo model is never taken for one (`./default` names the file)."""
    text = str(reference)
    return isinstance(reference, Path) or "/" in text or os.sep in text or text.endswith(".ckpt")


def load_model(name_or_path: str | Path) -> CodecModel:
    """A checkpoint file, or a model of the zoo by name (`codec models` lists them)."""
    from codec.model import CodecModel

    model = CodecModel.load(checkpoint_file(name_or_path))
    if not is_path(name_or_path):
        model.name = resolve(str(name_or_path))
    return model


def model_label(reference: str | Path) -> str:
    """How a token file names its model: the versioned zoo name, or the checkpoint's file name."""
    return Path(reference).name if is_path(reference) else resolve(str(reference))


def checkpoint_file(name_or_path: str | Path) -> Path:
    """The checkpoint file behind a zoo name or a path."""
    path = Path(name_or_path)
    if is_path(name_or_path):
        if path.is_file():
            return path
        raise FileNotFoundError(f"no model checkpoint at {path}")
    name = resolve(str(name_or_path))
    if name in MODELS:
        return MODEL_DIR / MODELS[name]
    if name in ARCHIVED:
        return unpacked(archive_dir(name) / ARCHIVED[name])
    known = ", ".join(sorted(MODELS) + sorted(ALIASES) + sorted(ARCHIVED)) or "none shipped yet"
    raise FileNotFoundError(
        f"no zoo model named {str(name_or_path)!r} (zoo: {known}); a checkpoint is named by "
        f"a path with a folder or a .ckpt suffix (./{name_or_path})"
    )


def archive_dir(name: str) -> Path:
    """Where the archived models' checkpoints lie: the installed archive package."""
    try:
        import codec_models_archive
    except ImportError:
        raise FileNotFoundError(
            f"model {name!r} no longer ships inside the codec package (it keeps its models under "
            f"{PACKAGE_LIMIT_MB:g} MB) but in the models archive: {ARCHIVE_HINT}"
        ) from None
    return codec_models_archive.MODEL_DIR


def unpacked(packed: Path) -> Path:
    """The checkpoint inside an xz-compressed one (`NAME.ckpt.xz`), unpacked once into the cache
    under a hash of the compressed file (xz checks its own integrity while unpacking)."""
    import lzma
    import tempfile

    name = packed.name.removesuffix(".xz")
    target = cache_dir() / "models" / f"{Path(name).stem}-{file_digest(packed)}{Path(name).suffix}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
        try:
            with lzma.open(packed) as source, os.fdopen(handle, "wb") as sink:
                while block := source.read(1 << 20):
                    sink.write(block)
            os.replace(staging, target)  # atomic: a reader never sees half a checkpoint
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
    return target


def file_digest(file: Path) -> str:
    """A short SHA-256 of a file's bytes, read in blocks (the weights need not sit in memory)."""
    digest = hashlib.sha256()
    with open(file, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """Where codec caches exported models (onnx/) and unpacked archived ones (models/):
    $CODEC_CACHE, else ~/.cache/codec (XDG)."""
    if "CODEC_CACHE" in os.environ:
        return Path(os.environ["CODEC_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "codec"


class ExportError(RuntimeError):
    """The torch-free runtime cannot run this model: its export to ONNX failed."""


def load_onnx(name_or_path: str | Path, threads: int = 1) -> OnnxCodec:
    """The exported graphs of a model: a directory written by `codec export`, or a zoo name or
    checkpoint, exported on first use (with torch) into the cache under a hash of its file
    (`make install` exports the zoo's models). ExportError if the model cannot be exported."""
    import shutil
    import tempfile

    from codec.runtime import OnnxCodec

    path = Path(name_or_path)
    if is_path(name_or_path) and path.is_dir():
        return OnnxCodec(path, threads)
    file = checkpoint_file(name_or_path)
    cached = cache_dir() / "onnx" / f"{file.stem}-{file_digest(file)}"
    if not (cached / "manifest.json").is_file():
        from codec.export import export_model

        model = load_model(name_or_path)  # not a checkpoint: its own error, not an ExportError
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=cached.parent))
        try:
            export_model(model, model_label(name_or_path), staging)
        except Exception as error:  # noqa: BLE001  (the exporter fails in many ways)
            shutil.rmtree(staging, ignore_errors=True)
            raise ExportError(f"{type(error).__name__}: {str(error)[:200]}") from error
        try:
            staging.rename(cached)
        except OSError:  # another process exported it first
            shutil.rmtree(staging, ignore_errors=True)
    return OnnxCodec(cached, threads, keep_optimised=True)


def prepare_runtime() -> list[str]:
    """Export every model shipped in the package into the cache, with onnxruntime's optimised
    graphs (`make install` runs it), so that no `codec encode` or `decode` pays for either.
    Returns their names."""
    for name in sorted(MODELS):
        runtime = load_onnx(name)
        for frames in runtime.chunk_frames:
            for part in ("encoder", "decoder"):
                runtime.session(part, frames)
    return sorted(MODELS)

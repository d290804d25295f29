"""`codec info`, `codec dump`, `codec models`: look inside token files and the model zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codec.cli.app import app, fail
from codec.cli.jobs import atomic_output


def _read_tokens(path: Path):
    """The header, codes `[channels, n_q, frames]` and sample count of a token file."""
    from codec.tokens import TokenFileError, TokenReader

    if not path.is_file():
        fail(f"no such token file: {path}")
    try:
        with open(path, "rb") as stream:
            reader = TokenReader(stream, str(path))
            codes = reader.read_all()
    except TokenFileError as error:
        fail(str(error))
    return reader.header, codes, reader.num_samples


@app.command()
def info(path: Annotated[Path, typer.Argument(help="Token file.")]) -> None:
    """Show a token file's model, stages, bitrate, duration and size.

    Example: codec info speech.tok
    """
    header, codes, num_samples = _read_tokens(path)
    seconds = num_samples / header.original_sample_rate
    size = path.stat().st_size
    sizes = ", ".join(str(k) for k in header.codebook_sizes)
    lines = [
        f"file: {path}",
        f"model: {header.model} (weights {header.model_hash})",
        f"stages: {header.n_stages} (codes per stage: {sizes})",
        f"bitrate: {header.bitrate / 1000:.3f} kbps",
        f"duration: {seconds:.3f} s ({num_samples} samples at {header.original_sample_rate} Hz, "
        f"{header.channels} channel{'s' if header.channels > 1 else ''})",
        f"frames: {codes.shape[2]} at {header.frame_rate:g} frames/s",
        f"size: {size} bytes ({8 * size / max(seconds, 1e-9) / 1000:.3f} kbps actual)",
    ]
    typer.echo("\n".join(lines))


@app.command()
def dump(
    path: Annotated[Path, typer.Argument(help="Token file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .npy file.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Write a token file's integer codes as a NumPy array [channels, n_q, frames].

    Example: codec dump speech.tok -o speech_codes.npy
    """
    import numpy as np

    _, codes, _ = _read_tokens(path)
    try:
        with atomic_output(str(out), force) as stream:
            np.save(stream, codes)
    except FileExistsError as error:
        fail(str(error))
    typer.echo(f"{out}: int64 codes of shape {list(codes.shape)} [channels, n_q, frames]")


@app.command()
def models() -> None:
    """List the models shipped in the zoo, with their aliases and bitrates.

    Example: codec models
    """
    from codec.zoo import ALIASES, MODELS, load_model

    if not MODELS:
        typer.echo("no models are shipped yet; pass --model with a checkpoint file")
        return
    for name in sorted(MODELS):
        model = load_model(name)
        aliases = [alias for alias, target in ALIASES.items() if target == name]
        rates = ", ".join(f"{model.bitrate(n) / 1000:.2f}" for n in range(1, model.num_stages + 1))
        alias_text = f" (alias: {', '.join(aliases)})" if aliases else ""
        typer.echo(f"{name}{alias_text}: {model.num_stages} stages, kbps {rates}")

"""`codec info`, `codec dump`, `codec models`: look inside token files and the model zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codec.cli.app import app, fail
from codec.cli.jobs import atomic_output


def _check_file(path: Path) -> None:
    if not path.is_file():
        fail(f"no such token file: {path}")


@app.command()
def info(path: Annotated[Path, typer.Argument(help="Token file.")]) -> None:
    """Show a token file's model, stages, format, nominal and actual bitrate, duration, size.

    The nominal bitrate is what the stages' codes carry at the fixed rate; the actual one is the
    whole file's size over its duration. Reads and checks every record; needs no model, not
    even for entropy-coded files.

    Example: codec info speech.tok
    """
    from codec.tokens import TokenFileError, TokenReader

    _check_file(path)
    try:
        with open(path, "rb") as stream:
            reader = TokenReader(stream, str(path))
            frames = reader.count_frames()
    except TokenFileError as error:
        fail(str(error))
    header, num_samples = reader.header, reader.num_samples
    seconds = num_samples / header.original_sample_rate
    size = path.stat().st_size
    actual = 8 * size / max(seconds, 1e-9) / 1000
    nominal = header.bitrate / 1000
    coding = "fixed-rate" if header.version < 3 else f"entropy-coded, tables {header.entropy_hash}"
    sizes = ", ".join(str(k) for k in header.codebook_sizes)
    lines = [
        f"file: {path}",
        f"format: version {header.version} ({coding})",
        f"model: {header.model} (weights {header.model_hash})",
        f"stages: {header.n_stages} (codes per stage: {sizes})",
        f"bitrate: {nominal:.3f} kbps nominal, {actual:.3f} kbps actual "
        f"({100 * (actual / nominal - 1):+.1f}%)",
        f"duration: {seconds:.3f} s ({num_samples} samples at {header.original_sample_rate} Hz, "
        f"{header.channels} channel{'s' if header.channels > 1 else ''})",
        f"frames: {frames} at {header.frame_rate:g} frames/s",
        f"size: {size} bytes",
    ]
    typer.echo("\n".join(lines))


@app.command()
def dump(
    path: Annotated[Path, typer.Argument(help="Token file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .npy file.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Checkpoint whose tables read an entropy-coded file not from the zoo.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Write a token file's integer codes as a NumPy array [channels, n_q, frames].

    Example: codec dump speech.tok -o speech_codes.npy
    """
    import numpy as np

    from codec.compress import read_codes
    from codec.tokens import TokenFileError
    from codec.zoo import load_model

    _check_file(path)
    try:
        _, codes, _ = read_codes(path, load_model(model) if model else None)
    except (TokenFileError, FileNotFoundError, ValueError) as error:
        fail(str(error))
    try:
        with atomic_output(str(out), force) as stream:
            np.save(stream, codes)
    except FileExistsError as error:
        fail(str(error))
    typer.echo(f"{out}: int64 codes of shape {list(codes.shape)} [channels, n_q, frames]")


@app.command()
def models() -> None:
    """List the models shipped in the zoo, with their aliases, backbone, latency and bitrates,
    and the archived older versions (installed or not).

    Example: codec models
    """
    from codec.model_card import read_card
    from codec.zoo import ALIASES, ARCHIVE_HINT, ARCHIVED, MODELS, checkpoint_file

    if not MODELS:
        typer.echo("no models are shipped yet; pass --model with a checkpoint file")
        return
    for name in sorted(MODELS) + sorted(ARCHIVED):
        try:
            card = read_card(checkpoint_file(name))
        except FileNotFoundError:
            if name not in ARCHIVED:
                raise
            typer.echo(f"{name} (archived): not installed; {ARCHIVE_HINT}")
            continue
        aliases = [alias for alias, target in ALIASES.items() if target == name]
        notes = [f"alias: {', '.join(aliases)}"] if aliases else []
        notes += ["archived"] if name in ARCHIVED else []
        stages = card.config.quantizer.n_stages
        rates = ", ".join(f"{card.bitrate(n) / 1000:.2f}" for n in range(1, stages + 1))
        note_text = f" ({'; '.join(notes)})" if notes else ""
        design = f"{card.config.backbone} backbone, {card.latency_ms:g} ms latency"
        typer.echo(f"{name}{note_text}: {design}, {stages} stages, kbps {rates}")

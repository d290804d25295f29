"""The typer application, its version option, and how commands report a failure."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

import codec

app = typer.Typer(
    name="codec",
    help="Streaming neural speech codec: compress speech to tokens and back.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",  # docstring paragraphs reflow to the terminal width
)


def fail(message: str) -> NoReturn:
    """Print one line `error: ...` on stderr and exit with status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"codec {codec.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Streaming neural speech codec: compress speech to tokens and back.

    Example: codec compile exp/vp/model.ckpt --data data/train -o exp/vp/compiled.ckpt
    """

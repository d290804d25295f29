"""The `codec` command: a thin typer app over the library."""

from __future__ import annotations

from typing import Annotated

import typer

import codec

app = typer.Typer(
    name="codec",
    help="Streaming neural speech codec: compress speech to tokens and back.",
    no_args_is_help=True,
    add_completion=False,
)


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

    Example: codec --version
    """


def main() -> None:
    """Console-script entry point."""
    app()

"""The `codec` command: a thin typer app over the library, one module per command group."""

from __future__ import annotations

from codec.cli import (  # noqa: F401  (they register their commands)
    codebooks,
    coding,
    deploy,
    evaluate,
    inspect,
    training,
)
from codec.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()

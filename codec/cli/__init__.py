"""The `codec` command: a thin typer app over the library, one module per command group."""

from __future__ import annotations

from codec.cli import codebooks, coding, evaluate, inspect, training  # noqa: F401  (they register their commands)
from codec.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()

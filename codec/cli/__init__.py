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
    """Console-script entry point. SIGTERM ends the command as SIGINT does, through its clean-up
    (no hidden temporary file is left); an operating-system error no command reports itself
    (a name too long, say) is one `error:` line, not a traceback."""
    import signal
    import sys

    from codec.cli.jobs import stop_on

    stop_on(signal.SIGTERM)
    try:
        app()
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        print(f"error: {error.strerror or error}{where}", file=sys.stderr)
        sys.exit(1)

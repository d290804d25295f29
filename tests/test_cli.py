"""The `codec` command: version and help, in-process and as a real subprocess."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import codec
from codec.cli.app import app


def test_version_in_process():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"codec {codec.__version__}"


def test_version_as_a_console_script():
    script = Path(sys.executable).with_name("codec")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"codec {codec.__version__}"


def test_import_codec_does_not_import_torch():
    code = "import sys, codec; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("args", [["--help"], ["encode", "--help"], ["bench", "--help"]])
def test_help_does_not_import_torch(args):
    """`codec --help` stays fast (well under a second) because torch is imported lazily."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['codec', *{args!r}]\n"
        "try:\n    runpy.run_module('codec', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('torch imported:', 'torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "Usage" in result.stdout and "torch imported: False" in result.stdout

"""Usage errors from the command line are one line on stderr with exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

ITB = [str(Path(sys.executable).with_name("itb"))]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["candidacy"], "Missing argument"),
        (["pump", "run", "spec.toml", "--days", "x"], "--days"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args: list[str], needle: str) -> None:
    proc = subprocess.run([*ITB, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]


def test_bare_itb_prints_help() -> None:
    proc = subprocess.run(ITB, capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "Not a medical device" in proc.stdout

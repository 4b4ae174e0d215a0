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


def test_no_flag_in_any_help_carries_a_type_tag(capsys: pytest.CaptureFixture[str]) -> None:
    """An on/off flag takes no value: its help line shows no ``<bool>`` (every command,
    run in-process)."""
    from itb.entrypoints.cli.main import _command, run

    def leaves(cmd: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        subs = getattr(cmd, "commands", {})
        out = [path]
        for name, sub in subs.items():
            out += leaves(sub, (*path, name))
        return out

    paths = leaves(_command())
    assert len(paths) > 40
    for path in paths:
        capsys.readouterr()
        assert run([*path, "--help"]) == 0, path
        text = capsys.readouterr().out
        assert "--help" in text, path
        assert "<bool>" not in text, path

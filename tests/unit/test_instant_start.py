"""The command line starts without loading the heavy libraries.

``itb --help``, building the Typer command tree and ``itb refill check --help`` must not
import the plotting, PDF, numerical or cluster libraries: those load inside the commands
that use them (``itb.bootstrap`` and every CLI module import them in function bodies).
Each check runs in a fresh interpreter, so what other tests imported does not count.
This is a behaviour check, not a timer (timings live in bench/results/startup.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# never loaded by start-up, the command tree or the help
HEAVY = ("matplotlib", "scipy", "reportlab", "dask", "distributed", "numba")
# kept out of the import, the command tree and ``itb --help`` as well (a sub-command's help
# loads pydantic all the same: Typer's own parameter handling imports it)
MEDIUM = ("numpy", "sqlalchemy", "pydantic", "fastapi", "uvicorn", "jinja2")

_PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    import typer.main
    import itb.entrypoints.cli.main as cli

    argv = json.loads(sys.argv[1])
    out = io.StringIO()
    if argv is None:
        typer.main.get_command(cli.app)
        code = 0
    else:
        with contextlib.redirect_stdout(out):
            code = cli.run(argv)
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"code": code, "loaded": loaded, "out": out.getvalue()}))
    """
)


def _loaded_by(argv: list[str] | None) -> tuple[int, set[str], str]:
    """In a fresh interpreter: import the CLI and build its command tree (``argv`` None) or
    run ``argv``; return the exit code, the top-level packages in ``sys.modules`` and
    what was printed."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return int(result["code"]), set(result["loaded"]), str(result["out"])


@pytest.mark.parametrize(
    ("argv", "banned"),
    [
        pytest.param(None, HEAVY + MEDIUM, id="import-and-command-tree"),
        pytest.param(["--help"], HEAVY + MEDIUM, id="itb-help"),
        pytest.param(["refill", "check", "--help"], HEAVY, id="refill-check-help"),
    ],
)
def test_start_up_does_not_load_heavy_libraries(
    argv: list[str] | None, banned: tuple[str, ...]
) -> None:
    code, loaded, out = _loaded_by(argv)
    assert code == 0
    if argv is not None:
        assert "Usage" in out
    assert sorted(loaded.intersection(banned)) == []


def test_the_probe_sees_what_a_command_loads(tmp_path: Path) -> None:
    """The check is not vacuous: a command that plots loads matplotlib when it runs."""
    png = tmp_path / "patient.png"
    code, loaded, _ = _loaded_by(
        ["patient", "plot", "--out", str(png), "--dose-mcg-per-day", "300", "--hours", "2"]
    )
    assert code == 0
    assert png.is_file()
    assert {"matplotlib", "numpy"} <= loaded

"""Running a benchmark's timed snippet on an earlier checkout's code (``--before-src``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def commit_of(src: Path) -> str:
    """The commit a checkout's ``src`` directory is at (what "before" was)."""
    done = subprocess.run(
        ["git", "-C", str(src), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()[:80] if done.returncode == 0 else "unknown"


def seconds_on(src: Path, code: str, *args: str) -> float:
    """Run ``code`` (which prints its timed seconds last) in a fresh interpreter with the
    ``itb`` of ``src``; return those seconds."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])

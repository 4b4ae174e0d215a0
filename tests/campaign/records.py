"""The campaign's counts: one JSON line per case, written by whichever pytest process ran it,
summed into one line at the end of the session (:func:`summary_line`).

The records go to the directory named by ``ITB_CAMPAIGN_RECORDS`` (the controlling pytest
process makes it in ``pytest_configure`` and every xdist worker inherits it; a single
process without it keeps them in memory only).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["ENV", "record", "summary_line"]

ENV = "ITB_CAMPAIGN_RECORDS"


def record(rows: Iterable[Mapping[str, Any]], name: str) -> None:
    """Append the rows of one batch (``name``: unique per batch and process)."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    path = Path(folder) / f"{name}-{os.getpid()}.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def _rows(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def summary_line(folder: str | None) -> str | None:
    """One line: cases, by command and by outcome, failures, slowest case and total time."""
    if not folder or not Path(folder).is_dir():
        return None
    rows = _rows(Path(folder))
    if not rows:
        return None
    by_command = Counter(r["command"] for r in rows)
    by_outcome = Counter(r["outcome"] for r in rows)
    failed = sum(1 for r in rows if r["problems"])
    slowest = max(rows, key=lambda r: r["seconds"])
    total = sum(r["seconds"] for r in rows)
    commands = ", ".join(f"{c} {n}" for c, n in sorted(by_command.items()))
    outcomes = ", ".join(f"{o} {n}" for o, n in sorted(by_outcome.items()))
    return (
        f"bad-input campaign: {len(rows)} cases ({outcomes}); {failed} broke the promise; "
        f"by command: {commands}; {total:.1f} s in the cases, slowest "
        f"{slowest['seconds']:.2f} s ({slowest['id'][:80]})"
    )

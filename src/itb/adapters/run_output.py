"""Writing run results to a directory, atomically: a temporary sibling, renamed at the end.

A failed run or a failed write leaves no partial output: the files are
written into ``.<name>.tmp-*`` beside the target and only then renamed into
place. An existing target is replaced only when an earlier itb run wrote it
(it holds the marker file), so ``--out .`` can never wipe a user's folder.
Commands check the target with :func:`itb.adapters.output_paths.check_output_dir`
before they run; :func:`write_output_dir` checks it again.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from itb.adapters.output_paths import MARKER, check_output_dir
from itb.services.pump_run import PumpRunResult, result_to_dict

__all__ = ["MARKER", "write_output_dir", "write_pump_run", "write_pump_run_files"]


def write_output_dir(out_dir: Path, fill: Callable[[Path], None], *, field: str = "--out") -> Path:
    """Create ``out_dir`` atomically: ``fill(tmp)`` writes into a temporary sibling first.

    Raises:
        InvalidValue: ``out_dir`` cannot be written (it exists and was not written by
            itb, a parent is a file, a name is too long ...), named as ``field``.
    """
    out_dir = check_output_dir(out_dir, field=field)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name[:40]}.tmp-", dir=out_dir.parent))
    old: Path | None = None
    try:
        fill(tmp)
        (tmp / MARKER).write_text("written by itb; this directory is replaced on the next run\n")
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name[:40]}.old-", dir=out_dir.parent))
            old.rmdir()
            out_dir.rename(old)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not out_dir.exists():
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out_dir


def _csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _dict_rows(items: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = list(items[0]) if items else []
    return header, [[item[k] for k in header] for item in items]


def write_pump_run_files(
    result: PumpRunResult, directory: Path, *, provenance: Mapping[str, Any] | None = None
) -> None:
    """Write one run's files into an existing ``directory``.

    Files: summary.json (the ``--json`` object), alarms.csv, events.csv,
    refills.csv, daily_delivery.csv (mcg to the CSF per day) and
    delivery_segments.csv (exact constant-rate pieces).
    """
    data = result_to_dict(result)
    if provenance is not None:
        data["provenance"] = dict(provenance)
    (directory / "summary.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for name, key, fallback in (
        ("alarms.csv", "alarms", ["time", "t_h", "kind", "critical", "action"]),
        ("events.csv", "events", ["time", "t_h", "kind", "detail", "reason"]),
        ("refills.csv", "refills", ["time", "t_h", "expected_ml", "withdrawn_ml", "verdict"]),
    ):
        header, rows = _dict_rows(data[key])
        _csv(directory / name, header or fallback, rows)
    _csv(
        directory / "daily_delivery.csv",
        ["day", "delivered_mcg"],
        [[i, round(v, 6)] for i, v in enumerate(result.daily_delivered_mcg)],
    )
    _csv(
        directory / "delivery_segments.csv",
        ["t0_h", "t1_h", "rate_mcg_per_h"],
        [[s.t0_h, s.t1_h, s.rate_mcg_per_h] for s in result.delivery],
    )


def write_pump_run(
    result: PumpRunResult, out_dir: Path, *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write a run's files to ``out_dir`` atomically; return the directory."""
    return write_output_dir(
        out_dir, lambda tmp: write_pump_run_files(result, tmp, provenance=provenance)
    )

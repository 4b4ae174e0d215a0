"""Shared output helpers for the clinical-workflow commands (JSON and Rich)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from itb.domain.clinical.reasons import Reason
from itb.domain.errors import InvalidValue

__all__ = [
    "DISCLAIMER",
    "console",
    "echo_json",
    "flags",
    "jsonable",
    "reason_dict",
    "reasons_table",
]

DISCLAIMER = "Simulation and decision support only: not a medical device, not clinical advice."

_OUTCOME_STYLE = {
    "not_candidate": "bold red",
    "needs_review": "yellow",
    "note": "cyan",
    "responder": "green",
    "non_responder": "yellow",
}


@contextmanager
def flags(**names: str) -> Iterator[None]:
    """Name refused values as the user typed them: ``flags(days="--days")`` turns a service's
    ``days = ... is not allowed`` into ``--days = ... is not allowed`` (same error class)."""
    try:
        yield
    except InvalidValue as exc:
        if exc.field in names:
            raise exc.renamed(names[exc.field]) from None
        raise


def console() -> Console:
    """A console for people (wide enough that source tags stay on one line)."""
    return Console(width=120, highlight=False)


def jsonable(obj: Any) -> Any:
    """Convert dataclasses, enums, dates and tuples to JSON-ready values."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def echo_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON on stdout."""
    typer.echo(json.dumps(jsonable(payload), indent=2, ensure_ascii=False))


def reason_dict(reason: Reason) -> dict[str, str]:
    """A reason as a JSON object."""
    return {
        "rule": reason.rule,
        "outcome": reason.outcome,
        "text": reason.text,
        "source": reason.source,
        "status": reason.status,
    }


def reasons_table(reasons: Iterable[Reason], *, title: str = "Reasons") -> Table:
    """A Rich table of reasons with their sources."""
    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Reason", ratio=3)
    table.add_column("Source", ratio=2)
    for r in reasons:
        status = "" if r.status == "confirmed" else " (assumed)"
        style = _OUTCOME_STYLE.get(r.outcome)
        table.add_row(
            f"[{style}]{r.outcome}[/]" if style else escape(r.outcome),
            escape(r.text),
            escape(r.source + status),
        )
    return table


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Change one value of the file before it is checked, e.g. patient.weight_kg=80 "
        "(repeatable; PATH: its keys joined by dots, [n] for a list item).",
    ),
]
"""``--set PATH=VALUE`` (repeatable) on an input file's TOML."""

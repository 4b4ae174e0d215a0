"""``itb candidacy RECORD.toml``: is this person a candidate for an ITB screening trial?"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from itb.adapters.datafiles import load_data_table, read_toml_file
from itb.domain.clinical.candidacy import (
    CandidacyAssessment,
    Verdict,
    assess_candidacy,
    parse_candidacy_rules,
)
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli.clinical_common import (
    DISCLAIMER,
    console,
    echo_json,
    reason_dict,
    reasons_table,
)
from itb.services.clinical_inputs import RecordLimits, parse_candidacy_record
from itb.services.toml_fields import MAX_YEAR, MIN_YEAR

__all__ = ["candidacy", "register"]

_VERDICT_STYLE = {
    Verdict.CANDIDATE: "bold green",
    Verdict.NOT_CANDIDATE: "bold red",
    Verdict.NEEDS_REVIEW: "bold yellow",
}


def _parse_on(on: str | None) -> date | None:
    if on is None:
        return None
    allowed = f"a date like 2026-03-01, in the years {MIN_YEAR} to {MAX_YEAR}"
    try:
        out = date.fromisoformat(on)
    except ValueError:
        raise InvalidValue("--on", on, allowed) from None
    if not MIN_YEAR <= out.year <= MAX_YEAR:
        raise InvalidValue("--on", on, allowed)
    return out


def candidacy(
    record_file: Annotated[
        Path,
        typer.Argument(metavar="RECORD.toml", help="Candidacy record (docs/clinical-workflow.md)."),
    ],
    on: Annotated[
        str | None,
        typer.Option(
            "--on", help="Assessment date YYYY-MM-DD (default: the file's assessed_on, else today)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Assess candidacy for an ITB screening trial: candidate, not a candidate, or needs review.

    Every reason names its rule and its source tags.
    """
    given_on = _parse_on(on)
    table = read_toml_file(record_file, field="RECORD.toml")
    data = load_data_table("candidacy")
    record, file_on = parse_candidacy_record(table, RecordLimits.from_table(data))
    assessed_on = given_on or file_on or date.today()
    rules = parse_candidacy_rules(data)
    result = assess_candidacy(record, rules, assessed_on=assessed_on)
    if as_json:
        echo_json(_payload(result))
        return
    out = console()
    style = _VERDICT_STYLE[result.verdict]
    lines = [f"[{style}]{result.verdict.label.upper()}[/]", f"assessed on {result.assessed_on}"]
    if result.reassess_on_or_after:
        lines.append(f"reassess on or after {result.reassess_on_or_after}")
    out.print(Panel("\n".join(lines), title="ITB candidacy", expand=False))
    out.print(reasons_table(result.reasons))
    out.print(f"[dim]{DISCLAIMER}[/]")


def _payload(result: CandidacyAssessment) -> dict[str, object]:
    return {
        "verdict": result.verdict.value,
        "verdict_label": result.verdict.label,
        "assessed_on": result.assessed_on.isoformat(),
        "reassess_on_or_after": (
            result.reassess_on_or_after.isoformat() if result.reassess_on_or_after else None
        ),
        "reasons": [reason_dict(r) for r in result.reasons],
        "disclaimer": DISCLAIMER,
    }


def register(app: typer.Typer) -> None:
    """Add ``itb candidacy`` to ``app``."""
    app.command("candidacy")(candidacy)

"""``itb triage --sign ...``: what to do about signs reported by a patient or caregiver."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.triage import (
    TriageGuide,
    TriageResult,
    Urgency,
    parse_triage_guide,
    triage,
)
from itb.entrypoints.cli.clinical_common import (
    DISCLAIMER,
    console,
    echo_json,
    flags,
    reason_dict,
)

__all__ = ["register", "triage_command"]

_STYLE = {
    Urgency.EMERGENCY: "bold white on red",
    Urgency.CALL_TODAY: "bold black on yellow",
    Urgency.NEXT_VISIT: "bold black on green",
}


def triage_command(
    sign: Annotated[
        list[str] | None,
        typer.Option(
            "--sign",
            "-s",
            help="A sign, repeatable: --sign itching --sign fever (see --list-signs).",
        ),
    ] = None,
    list_signs: Annotated[
        bool, typer.Option("--list-signs", help="List the signs that can be reported.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Triage reported signs: likely causes, how urgent, and what to do, with sources.

    For people with an ITB pump and their caregivers. In doubt, or if signs get
    worse, treat it as an emergency.
    """
    guide = parse_triage_guide(load_data_table("triage"))
    if list_signs:
        _list_signs(guide, as_json)
        return
    with flags(sign="--sign"):
        result = triage(guide, sign or [])
    if as_json:
        echo_json(_payload(result))
        return
    _show(guide, result)


def _list_signs(guide: TriageGuide, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "signs": [
                    {
                        "sign": s.key,
                        "label": s.label,
                        "aliases": list(s.aliases),
                        "urgency_alone": s.urgency.value,
                        "causes": list(s.causes),
                        "source": s.source,
                        "status": s.status,
                    }
                    for s in guide.signs.values()
                ]
            }
        )
        return
    table = Table(title="Signs that can be reported (itb triage --sign SIGN)")
    table.add_column("Sign", no_wrap=True)
    table.add_column("What it means")
    table.add_column("Also accepted", overflow="fold")
    table.add_column("On its own")
    for s in guide.signs.values():
        table.add_row(
            s.key, escape(s.label), ", ".join(s.aliases), guide.urgencies[s.urgency].label
        )
    console().print(table)


def _payload(result: TriageResult) -> dict[str, object]:
    return {
        "signs": list(result.signs),
        "urgency": result.urgency.value,
        "urgency_label": result.urgency_label,
        "causes": [
            {
                "cause": c.cause,
                "label": c.label,
                "signs": list(c.signs),
                "source": c.source,
                "status": c.status,
            }
            for c in result.causes
        ],
        "actions": list(result.actions),
        "reasons": [reason_dict(r) for r in result.reasons],
        "disclaimer": DISCLAIMER,
    }


def _show(guide: TriageGuide, result: TriageResult) -> None:
    out = console()
    actions = "\n".join(f"{i}. {escape(a)}" for i, a in enumerate(result.actions, start=1))
    out.print(
        Panel(
            actions,
            title=f"[{_STYLE[result.urgency]}] {result.urgency_label.upper()} [/]",
            title_align="left",
            expand=True,
        )
    )
    causes = Table(title="Likely causes", expand=True)
    causes.add_column("Cause")
    causes.add_column("Because of")
    causes.add_column("Source")
    for c in result.causes:
        causes.add_row(
            escape(c.label),
            escape(", ".join(guide.signs[s].label.lower() for s in c.signs)),
            escape(c.source),
        )
    out.print(causes)
    reasons = Table(title="Reasons", expand=True)
    reasons.add_column("Urgency", no_wrap=True)
    reasons.add_column("Reason", ratio=3)
    reasons.add_column("Source", ratio=2)
    for r in result.reasons:
        label = guide.urgencies[Urgency(r.outcome)].label
        reasons.add_row(
            label,
            escape(r.text),
            escape(r.source + ("" if r.status == "confirmed" else " (assumed)")),
        )
    out.print(reasons)
    out.print(f"[dim]{DISCLAIMER}[/]")


def register(app: typer.Typer) -> None:
    """Add ``itb triage`` to ``app``."""
    app.command("triage")(triage_command)

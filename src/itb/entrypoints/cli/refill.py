"""``itb refill``: plan the next refill of a pump spec's pump; judge a refill discrepancy."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from itb import bootstrap
from itb.domain.clinical.reasons import Reason
from itb.domain.errors import InvalidValue
from itb.domain.pump import Verdict
from itb.entrypoints.cli.clinical_common import (
    DISCLAIMER,
    console,
    echo_json,
    flags,
    reasons_table,
)
from itb.services.limits import PUMP_MAX_YEAR, PUMP_MIN_YEAR

__all__ = ["check", "plan", "refill_app", "register"]

refill_app = typer.Typer(
    name="refill",
    help="Refills: plan the next refill (date, fill volume, bridge bolus); judge a discrepancy.",
    no_args_is_help=True,
)


def _holiday(text: str) -> date:
    allowed = f"a date YYYY-MM-DD in the years {PUMP_MIN_YEAR} to {PUMP_MAX_YEAR}"
    try:
        out = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidValue("--holiday", text, allowed) from None
    if not PUMP_MIN_YEAR <= out.year <= PUMP_MAX_YEAR:
        raise InvalidValue("--holiday", text, allowed)
    return out


def _num(value: float | None, fmt: str = ".1f", unit: str = "") -> str:
    return "—" if value is None else f"{value:{fmt}}{unit}"


def _plan_panel(p: dict[str, Any]) -> Panel:
    t = Table(show_header=False, box=None, expand=False)
    t.add_column("quantity", style="bold")
    t.add_column("value")
    rows: list[tuple[str, str]] = [
        ("pump", f"{p['preset_label']} [{p['preset']}]"),
        ("planned at", p["planned_at"]),
        ("prescription", p["prescription"]),
        (
            "reservoir (calculated)",
            f"{p['reservoir_calculated_ml']:.2f} mL at {p['concentration_mcg_per_ml']:g} mcg/mL",
        ),
        (
            "days to low-reservoir alarm",
            f"{_num(p['days_to_low_reservoir_alarm'])} "
            f"({p['low_reservoir_alarm_ml']:g} mL on {p['low_reservoir_alarm_date'] or '—'})",
        ),
        (
            "days to empty-reservoir alarm",
            f"{_num(p['days_to_empty_alarm'])} ({p['empty_reservoir_alarm_ml']:g} mL)",
        ),
        (
            "days to empty (0 mL)",
            f"{_num(p['days_to_empty'])} (on {p['empty_date'] or '—'}; earliest within the "
            f"pump's rated accuracy: {(p['earliest_dry_at'] or '—')[:10]})",
        ),
        ("drug stability limit", f"{p['stability_limit_date']} (filled {p['last_fill_at']})"),
        (
            "REFILL BY",
            f"[bold]{p['refill_by_date']}[/] (margin {p['margin_days']} days)"
            + ("  [bold red]OVERDUE[/]" if p["overdue"] else ""),
        ),
        (
            "expected residual at the visit",
            f"{p['residual_at_refill_ml']:.2f} mL "
            f"({p['residual_at_refill_min_ml']:.2f} mL with every allowed patient bolus)",
        ),
        (
            "fill volume",
            f"[bold]{p['fill_volume_ml']:g} mL[/] at {p['fill_concentration_mcg_per_ml']:g} mcg/mL"
            + (" (limited by drug stability)" if p["fill_limited_by_stability"] else ""),
        ),
        ("next low-reservoir alarm after the refill", p["next_low_reservoir_alarm_date"] or "—"),
    ]
    b = p["bridge_bolus"]
    if b is not None:
        rows.append(
            (
                "bridge bolus",
                f"{b['volume_ml']:.3f} mL at {b['rate_ml_per_h']:.4f} mL/h for "
                f"{b['duration_h']:.1f} h (keeps {b['dose_mcg_per_day']:g} mcg/day), then "
                f"{b['rate_after_ml_per_day']:.4g} mL/day",
            )
        )
    for k, v in rows:
        t.add_row(escape(k), v if k in ("REFILL BY", "fill volume") else escape(str(v)))
    title = "Refill plan" + (f": {escape(p['name'])}" if p["name"] else "")
    return Panel(t, title=title, title_align="left")


@refill_app.command("plan")
def plan(
    spec_file: Annotated[
        Path, typer.Argument(metavar="SPEC.toml", help="Pump spec (docs/pump-spec.md).")
    ],
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="DATE",
            help="Plan for the pump as it stands at this local date (YYYY-MM-DD) or date-time "
            "(YYYY-MM-DDTHH:MM); events up to then are applied. Default: the implant.",
        ),
    ] = None,
    margin_days: Annotated[
        int | None,
        typer.Option("--margin-days", help="Days before the alarm date (default 5; 3-5 usual)."),
    ] = None,
    holiday: Annotated[
        list[str] | None,
        typer.Option("--holiday", metavar="DATE", help="Clinic closed on this date (repeat)."),
    ] = None,
    travel_risk: Annotated[
        bool,
        typer.Option("--travel-risk", help="Travel or weather risks a missed visit: a week early."),
    ] = False,
    new_concentration: Annotated[
        float | None,
        typer.Option(
            "--new-concentration",
            metavar="C",
            help="Fill with this concentration (mcg/mL): adds the bridge bolus.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Plan the next refill: alarm and empty dates, refill-by date, fill volume, bridge bolus."""
    from itb.services.pump_at import parse_when
    from itb.services.refill_plan import plan_refill_for_spec

    spec = bootstrap.load_pump_spec(spec_file)
    with flags(
        at="--at", margin_days="--margin-days", new_concentration_mcg_per_ml="--new-concentration"
    ):
        when = None if at is None else parse_when(at, field="at")
        holidays = [_holiday(h) for h in holiday or []]
        result = plan_refill_for_spec(
            spec,
            bootstrap.catalog(),
            at=when,
            margin_days=margin_days,
            holidays=holidays,
            travel_risk=travel_risk,
            new_concentration_mcg_per_ml=new_concentration,
        )
    if as_json:
        echo_json(result)
        return
    out = console()
    out.print(_plan_panel(result))
    out.print(reasons_table(Reason(**r) for r in result["reasons"]))
    out.print(f"[dim]{DISCLAIMER}[/]")


@refill_app.command("check")
def check(
    expected_ml: Annotated[
        float,
        typer.Option("--expected-ml", help="Residual the pump expects (calculated), mL."),
    ],
    withdrawn_ml: Annotated[
        float, typer.Option("--withdrawn-ml", help="Residual withdrawn from the reservoir, mL.")
    ],
    programmed_since_fill_ml: Annotated[
        float | None,
        typer.Option(
            "--programmed-since-fill-ml",
            help="Volume programmed since the last fill, mL (sets the allowed difference).",
        ),
    ] = None,
    pump: Annotated[
        str,
        typer.Option(
            "--pump",
            metavar="PRESET",
            help="The pump model (itb pump presets): its rated accuracy band sets the allowed "
            "difference. Default: synchromed_ii_20, the pump baclofen is labelled for.",
        ),
    ] = "synchromed_ii_20",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Judge the difference between the expected and the withdrawn residual, and what to do."""
    from itb.services.refill_plan import check_refill, discrepancy_to_dict

    cat = bootstrap.catalog()
    with flags(
        expected_ml="--expected-ml",
        withdrawn_ml="--withdrawn-ml",
        programmed_since_fill_ml="--programmed-since-fill-ml",
        pump="--pump",
    ):
        d = check_refill(
            cat,
            expected_ml=expected_ml,
            withdrawn_ml=withdrawn_ml,
            pump=pump,
            programmed_since_fill_ml=programmed_since_fill_ml,
        )
    band = cat.presets[pump].accuracy_band_pct
    tolerance = cat.refill_tolerance
    if as_json:
        echo_json(discrepancy_to_dict(d, tolerance, band))
        return
    style = "green" if d.verdict is Verdict.WITHIN_TOLERANCE else "bold red"
    t = Table(show_header=False, box=None)
    t.add_column("quantity", style="bold")
    t.add_column("value")
    t.add_row("expected", f"{d.expected_ml:.2f} mL")
    t.add_row("withdrawn", f"{d.withdrawn_ml:.2f} mL")
    t.add_row("difference", f"{d.difference_ml:+.2f} mL (allowed ±{d.allowed_ml:.2f} mL)")
    if d.implied_rate_error_pct is not None:
        t.add_row("implied delivery error", f"{d.implied_rate_error_pct:+.1f} % of programmed")
    t.add_row("verdict", f"[{style}]{escape(d.verdict.value)}[/]")
    if d.causes:
        t.add_row("possible causes", escape("; ".join(d.causes)))
    if d.watch:
        t.add_row("watch the patient for", escape(" and ".join(d.watch)))
    t.add_row("what to do", escape(d.advice))
    t.add_row(
        "tolerance",
        f"{band:g} % (the {pump} pump's rated accuracy) of the programmed volume since the "
        f"fill, at least {tolerance.syringe_reading_ml:g} mL ([D45][D46][D42])",
    )
    out = console()
    out.print(Panel(t, title="Refill discrepancy", title_align="left"))
    out.print(f"[dim]{DISCLAIMER}[/]")


def register(app: typer.Typer) -> None:
    """Add ``itb refill`` to the app."""
    app.add_typer(refill_app)

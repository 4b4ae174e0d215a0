"""Plain-text highlights of a pump run: what a person should notice first.

Used by ``itb demo`` (screen and summary.md); pure functions of a
:class:`~itb.services.pump_run.PumpRunResult`.
"""

from __future__ import annotations

from itb.domain.units import HOURS_PER_DAY
from itb.services.pump_run import PumpRunResult

__all__ = ["highlights"]

_MAX_GAPS = 3


def _day(t_h: float) -> str:
    return f"day {t_h / HOURS_PER_DAY:.1f}"


def highlights(r: PumpRunResult) -> list[str]:
    """The run's key facts, one sentence each."""
    lines = [
        f"Delivered to the CSF: {r.delivered_mcg:,.0f} mcg over {r.days:g} days "
        f"(mean {r.delivered_mcg / r.days:,.1f} mcg/day).",
        f"Reservoir at the end: {r.reservoir_calculated_ml:.2f} mL calculated by the pump, "
        f"{r.reservoir_actual_ml:.2f} mL really there.",
    ]
    b = r.battery
    if b.eri_t_h is not None and b.eos_t_h is not None:
        same = (
            " — as the battery model predicted at implant"
            if b.predicted_eri_t_h is not None and abs(b.predicted_eri_t_h - b.eri_t_h) < 1e-6
            else f" (predicted at implant: {b.predicted_eri_time})"
        )
        lines.append(
            f"Battery: elective replacement indicator {b.eri_time} ({_day(b.eri_t_h)}){same}; "
            f"end of service {b.eos_time}, {(b.eos_t_h - b.eri_t_h) / HOURS_PER_DAY:g} days "
            "later: the pump stopped."
        )
    for a in r.alarms:
        if a.action == "raised":
            tone = "critical, two-tone" if a.critical else "non-critical"
            lines.append(f"Alarm {a.kind} ({tone}) at {a.time} ({_day(a.t_h)}).")
    raised_low = [a for a in r.alarms if a.kind == "low_reservoir" and a.action == "raised"]
    gaps = sorted(r.no_delivery, key=lambda g: -g.duration_h)[:_MAX_GAPS]
    for g in sorted(gaps, key=lambda g: g.start_t_h):
        why = " (priming the catheter)" if g.start_t_h == 0.0 else ""
        lines.append(
            f"No drug reached the CSF from {g.start} to {g.end} ({g.duration_h:.1f} h){why}."
        )
        for a in raised_low:
            if g.start_t_h < a.t_h <= g.end_t_h:
                lines.append(
                    f"The reservoir ran dry {(a.t_h - g.start_t_h) / HOURS_PER_DAY:.1f} days "
                    "BEFORE the low-reservoir alarm: the alarm follows the calculated volume."
                )
    previous_conc = r.initial_concentration_mcg_per_ml
    for x in r.refills:
        if x.verdict != "within tolerance":
            lines.append(
                f"Refill {x.time}: {x.verdict} (expected {x.expected_ml:.2f} mL, withdrawn "
                f"{x.withdrawn_ml:.2f} mL). {x.advice}"
            )
        if x.concentration_mcg_per_ml != previous_conc:
            d = int(x.t_h // HOURS_PER_DAY)
            days = r.daily_delivered_mcg[max(0, d - 1) : d + 3]
            lines.append(
                f"Concentration change at {x.time}: daily dose to the CSF on days "
                f"{max(0, d - 1)}..{max(0, d - 1) + len(days) - 1}: "
                + ", ".join(f"{v:.0f}" for v in days)
                + " mcg."
            )
        previous_conc = x.concentration_mcg_per_ml
    for e in r.events:
        if e.kind == "access_port_injection":
            lines.append(f"Catheter access port at {e.time}: {e.detail}.")
        if "HAZARD" in e.detail:
            lines.append(f"{e.time}: {e.detail}.")
    lines.extend(f"Warning: {w}" for w in r.warnings)
    return lines

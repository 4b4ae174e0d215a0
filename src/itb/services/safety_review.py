"""Use case ``itb program check``: stage a dose change on a pump spec's pump and check it.

The pump is built from the spec as it stands at ``at`` (:mod:`itb.services.pump_at`);
a programming session stages the new program (simple continuous, or flex steps
checked against the intended daily dose) at the concentration the pump holds,
keeping its patient-bolus settings; the safety checks
(:mod:`itb.domain.clinical.safety`) report the findings, the second-person
verification rule and the side-by-side review. Nothing is committed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from itb.domain.clinical.drug_library import DrugLibrary, parse_drug_library, population_for
from itb.domain.clinical.safety import (
    ActionKind,
    Finding,
    SafetyChecks,
    check_change,
    parse_safety_rules,
    stage_checked,
)
from itb.domain.errors import InvalidValue
from itb.domain.pump import Continuous, Flex, FlexStep, Prescription, ProgrammingSession, Pump
from itb.domain.pump.programs import Program
from itb.domain.units import HOURS_PER_DAY
from itb.services.pump_at import pump_at
from itb.services.pump_run import PumpCatalog, WallClock, _Step
from itb.services.pump_spec import AccessPortEvent, PumpSpec, RefillEvent, ReprogramEvent

__all__ = ["audit_spec", "flex_every_day", "parse_flex_step", "program_check"]

_STEP = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)=([0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")


def parse_flex_step(text: str) -> tuple[float, float]:
    """``"06:30=12.5"`` -> (6.5 h, 12.5 mcg/h).

    Raises:
        InvalidValue: not ``HH:MM=RATE`` with a rate in mcg/h >= 0.
    """
    m = _STEP.match(text.strip())
    if m is None:
        raise InvalidValue(
            "--flex-step", text, "HH:MM=RATE with the rate in mcg/h >= 0, e.g. 06:00=12.5"
        )
    return int(m.group(1)) + int(m.group(2)) / 60.0, float(m.group(3))


def flex_every_day(steps: Sequence[tuple[float, float]]) -> Flex:
    """The same day program every day; before the first step the last step's rate runs on
    (as in the pump spec's flex format)."""
    ordered = sorted(steps)
    starts = [s for s, _ in ordered]
    if len(set(starts)) != len(starts):
        raise InvalidValue("--flex-step", [f"{s:g} h" for s in starts], "distinct start times")
    out = [FlexStep(s, r) for s, r in ordered]
    if out[0].start_h > 0.0:
        out.insert(0, FlexStep(0.0, ordered[-1][1]))
    return Flex.every_day(tuple(out))


def _population(
    library: DrugLibrary, origin: str, age_years: float | None, notes: list[str]
) -> str:
    if origin not in ("spinal", "cerebral"):
        raise InvalidValue("--origin", origin, "spinal or cerebral")
    if age_years is None:
        population = f"adult_{origin}"
        notes.append(f"age not given: adult limits used ({population})")
        return population
    return population_for(library, age_years=age_years, origin=origin)


def audit_spec(
    spec: PumpSpec,
    catalog: PumpCatalog,
    *,
    rules_table: Mapping[str, Any],
    library_table: Mapping[str, Any],
    origin: str = "spinal",
    age_years: float | None = None,
    days: float | None = None,
) -> dict[str, Any]:
    """Run the spec and check every reprogram, refill reprogramming and catheter access
    port injection with drug against the pump as it stood just before it; JSON-ready.

    The run itself is not changed: a spec records what was done, mistakes included.
    """
    library = parse_drug_library(library_table)
    rules = parse_safety_rules(rules_table)
    notes: list[str] = []
    population = _population(library, origin, age_years, notes)
    run_days = days if days is not None else spec.days
    if run_days is None or not run_days > 0:
        raise InvalidValue("days", run_days, "a number of days > 0 (--days, or days in the spec)")
    rows: list[dict[str, Any]] = []

    def check(step: _Step, pump: Pump, clock: WallClock) -> None:
        ev = step.event
        findings: list[Finding] = []
        if isinstance(ev, ReprogramEvent) and step.prescription is not None:
            findings = check_change(
                pump,
                SafetyChecks(rules, library, population),
                prescription=step.prescription,
            )
            if ev.unfinished:
                info = rules.rules["update_incomplete"]
                findings.append(
                    Finding(
                        "block",
                        "update_incomplete",
                        "session",
                        "session = update begun and not completed leaves the pump stopped; "
                        "allowed: complete the update",
                        info.source,
                        info.status,
                    )
                )
        elif isinstance(ev, RefillEvent) and step.prescription is not None:
            findings = check_change(
                pump,
                SafetyChecks(
                    rules,
                    library,
                    population,
                    action=ActionKind.REFILL_RESERVOIR,
                    held_concentration_mcg_per_ml=ev.concentration_mcg_per_ml,
                ),
                prescription=step.prescription,
            )
        elif isinstance(ev, AccessPortEvent) and ev.concentration_mcg_per_ml > 0:
            findings = check_change(
                pump,
                SafetyChecks(rules, library, population, action=ActionKind.REFILL_ACCESS_PORT),
            )
        else:
            return
        rows.append(
            {
                "time": clock.iso(step.t_h),
                "event": step.index,
                "kind": step.action,
                "findings": [asdict(f) for f in findings],
                "blocked": any(f.severity == "block" for f in findings),
            }
        )

    pump_at(spec, catalog, until_h=run_days * HOURS_PER_DAY, before_event=check)
    return {
        "name": spec.name,
        "population": population,
        "checked_events": rows,
        "blocked_events": sum(1 for r in rows if r["blocked"]),
        "notes": notes,
    }


def program_check(
    spec: PumpSpec,
    catalog: PumpCatalog,
    *,
    rules_table: Mapping[str, Any],
    library_table: Mapping[str, Any],
    dose_mcg_per_day: float,
    flex_steps: Sequence[tuple[float, float]] = (),
    origin: str = "spinal",
    age_years: float | None = None,
    at: datetime | date | None = None,
    concentration_mcg_per_ml: float | None = None,
    override_reason: str | None = None,
) -> dict[str, Any]:
    """Stage the change on the spec's pump at ``at`` and check it; JSON-ready dict.

    Raises:
        InvalidValue: bad dose, origin, age, flex steps, date or spec (one line).
    """
    if not dose_mcg_per_day >= 0.0 or dose_mcg_per_day == float("inf"):
        raise InvalidValue("--dose-mcg-per-day", dose_mcg_per_day, "a number of mcg/day >= 0")
    library = parse_drug_library(library_table)
    notes: list[str] = []
    population = _population(library, origin, age_years, notes)
    state = pump_at(spec, catalog, at)
    pump = state.pump
    program: Program
    intended: float | None = None
    if flex_steps:
        program = flex_every_day(flex_steps)
        intended = dose_mcg_per_day
        notes.append(
            f"flex program mean {program.daily_dose_mcg():.4g} mcg/day checked against the "
            f"intended {dose_mcg_per_day:g} mcg/day"
        )
    else:
        program = Continuous(dose_mcg_per_day)
    held = pump.labelled_concentration_mcg_per_ml
    conc = held if concentration_mcg_per_ml is None else concentration_mcg_per_ml
    proposed = Prescription(program, conc, pump.prescription.patient_bolus)
    checks = SafetyChecks(
        parse_safety_rules(rules_table),
        library,
        population,
        intended_dose_mcg_per_day=intended,
    )
    session = ProgrammingSession(pump, pump.t_h, reason="itb program check")
    review = stage_checked(
        session,
        checks,
        prescription=proposed,
        reason="dose change (checked, not committed)",
        override_reason=override_reason,
    )
    session.abandon(pump.t_h)
    old_mean = pump.prescription.program.daily_dose_mcg()
    return {
        "name": spec.name,
        "preset": pump.preset.key,
        "preset_label": pump.preset.label,
        "at": state.clock.iso(state.t_h),
        "population": population,
        "current": {
            "prescription": pump.prescription.describe(),
            "daily_dose_mcg_per_day": old_mean,
            "concentration_mcg_per_ml": held,
        },
        "proposed": {
            "prescription": proposed.describe(),
            "daily_dose_mcg_per_day": program.daily_dose_mcg(),
            "mean_rate_mcg_per_h": program.daily_dose_mcg() / HOURS_PER_DAY,
            "concentration_mcg_per_ml": conc,
        },
        "blocked": review.blocked,
        "needs_override_reason": review.needs_override_reason,
        "verification_required": review.verification_required,
        "findings": [asdict(f) for f in review.findings],
        "verification": [asdict(r) for r in review.verification],
        "review": [asdict(r) for r in review.rows]
        or [
            {
                "field": "prescription",
                "old": pump.prescription.describe(),
                "new": proposed.describe(),
                "reason": "not staged: refused by the pump",
            }
        ],
        "notes": notes,
    }

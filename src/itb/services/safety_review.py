"""Use cases ``program check`` and ``program audit``: a change checked before it is committed.

``program_check`` builds the pump of a spec as it stands at a date
(:mod:`itb.services.pump_at`), stages the proposed program at the concentration
the pump holds (keeping its patient-bolus settings) in a programming session,
and returns the safety checks' findings, the second-person verification rule
and the side-by-side review (:mod:`itb.domain.clinical.safety`). Nothing is
committed. ``audit_spec`` replays a whole spec and checks every
reprogramming, refill reprogramming and access-port injection of drug against
the pump as it stood just before it.

Both take primitives and the catalog, return typed frozen results, and name
errors after their own parameters (``dose_mcg_per_day``, ``at``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from itb.domain.clinical.drug_library import population_for
from itb.domain.clinical.safety import (
    ActionKind,
    Finding,
    SafetyChecks,
    SafetyReview,
    check_change,
    stage_checked,
)
from itb.domain.errors import InvalidValue
from itb.domain.pump import (
    ChangeRow,
    Continuous,
    Flex,
    FlexStep,
    Prescription,
    ProgrammingSession,
    Pump,
)
from itb.domain.pump.commands import InjectAccessPort, Refill, Reprogram
from itb.domain.pump.programs import Program
from itb.domain.units import require_finite
from itb.services.catalog import Catalog
from itb.services.pump_at import pump_at
from itb.services.pump_plan import PlannedCommand, run_length_h
from itb.services.pump_spec import PumpSpec
from itb.services.wall_clock import WallClock

__all__ = [
    "AuditResult",
    "AuditRow",
    "ProgramCheck",
    "ProgramSide",
    "audit_spec",
    "flex_every_day",
    "parse_flex_step",
    "program_check",
]

_STEP = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)=([0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")


def parse_flex_step(text: str, *, field: str = "flex_step") -> tuple[float, float]:
    """``"06:30=12.5"`` -> (6.5 h, 12.5 mcg/h).

    Raises:
        InvalidValue: not ``HH:MM=RATE`` with a rate in mcg/h >= 0.
    """
    m = _STEP.match(text.strip())
    if m is None:
        raise InvalidValue(field, text, "HH:MM=RATE with the rate in mcg/h >= 0, e.g. 06:00=12.5")
    return int(m.group(1)) + int(m.group(2)) / 60.0, float(m.group(3))


def flex_every_day(steps: Sequence[tuple[float, float]], *, field: str = "flex_step") -> Flex:
    """The same day program every day; before the first step the last step's rate runs on
    (as in the pump spec's flex format)."""
    ordered = sorted(steps)
    starts = [s for s, _ in ordered]
    if len(set(starts)) != len(starts):
        raise InvalidValue(field, [f"{s:g} h" for s in starts], "distinct start times")
    out = [FlexStep(s, r) for s, r in ordered]
    if out[0].start_h > 0.0:
        out.insert(0, FlexStep(0.0, ordered[-1][1]))
    return Flex.every_day(tuple(out))


def _population(
    catalog: Catalog, spec: PumpSpec, origin: str | None, age_years: float | None
) -> tuple[str, tuple[str, ...]]:
    """The library population: from origin and age when given, else the spec's patient."""
    if origin is None and age_years is None and spec.patient is not None:
        return spec.patient.population, ()
    origin = "spinal" if origin is None else origin
    if origin not in ("spinal", "cerebral"):
        raise InvalidValue("origin", origin, "spinal or cerebral")
    if age_years is None:
        population = f"adult_{origin}"
        return population, (f"age not given: adult limits used ({population})",)
    require_finite("age_years", age_years)
    if not 0 < age_years <= 120:
        raise InvalidValue("age_years", age_years, "an age in years, > 0 and <= 120")
    return population_for(catalog.library, age_years=age_years, origin=origin), ()


@dataclass(frozen=True, slots=True)
class ProgramSide:
    """One side of the review: the prescription, its daily dose and concentration."""

    prescription: str
    daily_dose_mcg_per_day: float
    concentration_mcg_per_ml: float


@dataclass(frozen=True, slots=True)
class ProgramCheck:
    """A proposed change checked on the pump as it stands (nothing committed).

    Attributes:
        name, preset, preset_label: the spec and its pump.
        at: the local date-time of the pump's state.
        population: the drug library's population checked against.
        current, proposed: the two sides.
        review: findings, verification reasons and old/new rows.
        notes: how the check was made.
    """

    name: str
    preset: str
    preset_label: str
    at: str
    population: str
    current: ProgramSide
    proposed: ProgramSide
    review: SafetyReview
    notes: tuple[str, ...]

    @property
    def blocked(self) -> bool:
        """True when the change cannot be committed."""
        return self.review.blocked

    @property
    def rows(self) -> tuple[ChangeRow, ...]:
        """Old and new side by side (what would have been staged)."""
        if self.review.rows:
            return self.review.rows
        return (
            ChangeRow(
                "prescription",
                self.current.prescription,
                self.proposed.prescription,
                "not staged: refused by the pump",
            ),
        )


def program_check(
    spec: PumpSpec,
    catalog: Catalog,
    *,
    dose_mcg_per_day: float,
    flex_steps: Sequence[tuple[float, float]] = (),
    origin: str | None = None,
    age_years: float | None = None,
    at: datetime | date | None = None,
    concentration_mcg_per_ml: float | None = None,
    override_reason: str | None = None,
) -> ProgramCheck:
    """Stage the change on the spec's pump at ``at`` and check it.

    Raises:
        InvalidValue: bad dose, origin, age, flex steps, date or spec (one line, naming
            this function's parameter).
    """
    require_finite("dose_mcg_per_day", dose_mcg_per_day)
    if dose_mcg_per_day < 0.0:
        raise InvalidValue("dose_mcg_per_day", dose_mcg_per_day, "a number of mcg/day >= 0")
    if concentration_mcg_per_ml is not None:
        require_finite("concentration_mcg_per_ml", concentration_mcg_per_ml)
        if concentration_mcg_per_ml <= 0:
            raise InvalidValue("concentration_mcg_per_ml", concentration_mcg_per_ml, "> 0")
    population, pop_notes = _population(catalog, spec, origin, age_years)
    notes = list(pop_notes)
    state = pump_at(spec, catalog, at)
    pump = state.pump
    pump.guard = catalog.guard(population, declared_hazard=spec.declared_hazard)
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
        catalog.safety, catalog.library, population, intended_dose_mcg_per_day=intended
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
    return ProgramCheck(
        name=spec.name,
        preset=pump.preset.key,
        preset_label=pump.preset.label,
        at=state.clock.iso(state.t_h),
        population=population,
        current=ProgramSide(
            pump.prescription.describe(), pump.prescription.program.daily_dose_mcg(), held
        ),
        proposed=ProgramSide(proposed.describe(), program.daily_dose_mcg(), conc),
        review=review,
        notes=tuple(notes),
    )


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One checked command of an audited spec."""

    time: str
    event: int | None
    kind: str
    findings: tuple[Finding, ...]

    @property
    def blocked(self) -> bool:
        """True when a block finding exists."""
        return any(f.severity == "block" for f in self.findings)


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Every checked command of a spec, with its findings."""

    name: str
    population: str
    rows: tuple[AuditRow, ...]
    notes: tuple[str, ...]

    @property
    def blocked_events(self) -> int:
        """How many checked commands would have been blocked."""
        return sum(1 for r in self.rows if r.blocked)


def audit_spec(
    spec: PumpSpec,
    catalog: Catalog,
    *,
    origin: str | None = None,
    age_years: float | None = None,
    days: float | None = None,
) -> AuditResult:
    """Replay the spec and check every reprogramming, refill reprogramming and catheter
    access-port injection with drug against the pump as it stood just before it.

    The run itself is not changed: a spec records what was done. A change the drug
    library refuses is refused here too (the pump enforces it), unless the spec
    declares the hazard it models.
    """
    population, pop_notes = _population(catalog, spec, origin, age_years)
    _, end_h = run_length_h(spec, days)
    rules = catalog.safety
    clock = WallClock(spec.pump.implanted_at, spec.pump.timezone)
    rows: list[AuditRow] = []

    def check(step: PlannedCommand, pump: Pump) -> None:
        cmd = step.command
        findings: list[Finding] = []
        if isinstance(cmd, Reprogram) and cmd.prescription is not None:
            findings = check_change(
                pump,
                SafetyChecks(rules, catalog.library, population),
                prescription=cmd.prescription,
            )
            if cmd.unfinished:
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
        elif isinstance(cmd, Refill) and cmd.prescription is not None:
            findings = check_change(
                pump,
                SafetyChecks(
                    rules,
                    catalog.library,
                    population,
                    action=ActionKind.REFILL_RESERVOIR,
                    held_concentration_mcg_per_ml=cmd.concentration_mcg_per_ml,
                ),
                prescription=cmd.prescription,
            )
        elif isinstance(cmd, InjectAccessPort) and cmd.concentration_mcg_per_ml > 0:
            findings = check_change(
                pump,
                SafetyChecks(
                    rules, catalog.library, population, action=ActionKind.REFILL_ACCESS_PORT
                ),
            )
        else:
            return
        rows.append(AuditRow(clock.iso(step.t_h), step.index, step.kind, tuple(findings)))

    pump_at(spec, catalog, until_h=end_h, before_command=check)
    return AuditResult(spec.name, population, tuple(rows), pop_notes)

"""The drug library held by the pump itself: every path that programs it gets the same verdict.

A :class:`DoseGuard` binds the drug library (:mod:`itb.domain.clinical.drug_library`)
to one patient's population. A pump carries one (``Pump(..., guard=...)``) and
asks it before a prescription or a bolus is staged or a patient-bolus setting
is programmed, so a pump run, an audit, a scenario, the simulated clinic and
the clinic registry all meet the same limits:

- **hard limits** refuse (:class:`~itb.domain.errors.HardLimitExceeded`);
- **soft limits** need an explicit, recorded override reason
  (:class:`~itb.domain.errors.SoftLimitNeedsReason` without one);
- a simulation that deliberately models a hazard (an overdose, a mix-up)
  declares it (``declared_hazard``): hard and soft limits are then reported,
  never silently passed, and the pump logs each one as a declared hazard.

What is checked, for a prescription at the concentration it names:

- the concentration: one the library allows in this pump kind;
- every day's dose plus the most the patient can add by patient boluses in
  24 h: the daily hard and soft maxima, and the soft minimum;
- the highest rate any part of the program runs at, as mcg/day (a flex step
  or a periodic bolus's basal): never faster than the daily hard maximum, the
  per-hour vs per-day mix-up of the ISMP case [D56];
- each periodic bolus and each patient bolus: the bolus limits;
- the change from the pump's present program: the increase and decrease limits
  per adjustment (from the titration rules, [C12][C13]).

Without a known population (``population=None``), only the widest hard limits
of any population are applied, and the verdict says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from itb.domain.clinical.drug_library import (
    DrugLibrary,
    LibraryDecision,
    LimitCheck,
    check_bolus_against_library,
    check_dose_against_library,
)
from itb.domain.errors import HardLimitExceeded, SoftLimitNeedsReason
from itb.domain.pump.prescription import PatientBolusSettings, Prescription
from itb.domain.pump.programs import WEEKDAYS, Continuous, Flex, PeriodicBolus, Program, Stopped
from itb.domain.units import HOURS_PER_DAY

__all__ = ["DoseGuard", "GuardVerdict", "widest_population"]


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """An allowed change: the soft limits passed with a reason, and declared hazards.

    Attributes:
        overridden: soft limits passed on the strength of the override reason.
        override_reason: the recorded reason (None when nothing needed it).
        hazards: limits passed because the run declares a hazard, one line each.
        notes: how the check was made (e.g. the widest hard limits only).
    """

    overridden: tuple[LimitCheck, ...] = ()
    override_reason: str | None = None
    hazards: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def log_lines(self) -> tuple[str, ...]:
        """Declared hazards and soft limits passed with a reason, one line each."""
        lines = [f"HAZARD (declared): {h}" for h in self.hazards]
        lines += [
            f"soft limit passed with a recorded reason: {c.field} = {c.value:.4g} "
            f"({c.kind} {c.bound} {c.limit.value:g} {c.limit.unit}); reason: {self.override_reason}"
            for c in self.overridden
        ]
        return tuple(lines)

    def merged(self, other: GuardVerdict) -> GuardVerdict:
        """Both verdicts' findings together."""
        return GuardVerdict(
            self.overridden + other.overridden,
            self.override_reason or other.override_reason,
            self.hazards + other.hazards,
            tuple(dict.fromkeys(self.notes + other.notes)),
        )


def widest_population(library: DrugLibrary) -> str:
    """The population with the highest daily hard maximum (used when none is known)."""
    return max(
        library.populations.values(), key=lambda p: p.daily_dose_hard_max_mcg_per_day.value
    ).key


def _day_doses(program: Program) -> tuple[float, ...]:
    if isinstance(program, Flex):
        return tuple(program.daily_dose_mcg(d) for d in range(len(WEEKDAYS)))
    return (program.daily_dose_mcg(),)


def _fastest_basal_mcg_per_day(program: Program) -> tuple[str, float] | None:
    """The fastest part of the program that is not a bolus, as (field, mcg/day)."""
    match program:
        case Flex():
            best: tuple[str, float] | None = None
            for d, steps in enumerate(program.days):
                for step in steps:
                    per_day = step.rate_mcg_per_h * HOURS_PER_DAY
                    if best is None or per_day > best[1]:
                        hhmm = f"{int(step.start_h):02d}:{round(step.start_h % 1 * 60):02d}"
                        best = (f"flex {WEEKDAYS[d]} {hhmm} rate_mcg_per_h x 24", per_day)
            return best
        case PeriodicBolus():
            return ("basal_mcg_per_day", program.basal_mcg_per_day)
        case Continuous() | Stopped():
            return None


@dataclass(frozen=True, slots=True)
class DoseGuard:
    """The drug library for one patient, enforced by the pump.

    Attributes:
        library: the drug library.
        population: ``adult_spinal``, ``adult_cerebral``, ``child`` (see
            ``population_for``), or None when not known (widest hard limits only).
        declared_hazard: what a simulation deliberately models (e.g. "a 10x
            concentration mix-up"); limits are then reported instead of refusing.
    """

    library: DrugLibrary
    population: str | None
    declared_hazard: str | None = None

    def __post_init__(self) -> None:
        if self.population is not None:
            self.library.limits(self.population)

    # ------------------------------------------------------------ internals

    @property
    def _checked_population(self) -> str:
        return self.population if self.population is not None else widest_population(self.library)

    def notes_for_run(self) -> tuple[str, ...]:
        """What a run's output should say about how its doses were checked."""
        out = list(self._notes())
        if self.declared_hazard is not None:
            out.append(
                f"this run declares a modelled hazard ({self.declared_hazard}): drug-library "
                "limits it passes are reported, not refused"
            )
        return tuple(out)

    def _notes(self) -> tuple[str, ...]:
        if self.population is not None:
            return ()
        return (
            "population not given: checked against the widest hard limits of any population "
            f"({widest_population(self.library)}); soft limits not checked",
        )

    def _run(self, field: str, check: object) -> GuardVerdict:
        """Turn one library decision (or its refusal) into a verdict; ``check`` is a thunk."""
        assert callable(check)
        try:
            decision: LibraryDecision = check()
        except HardLimitExceeded as exc:
            if self.declared_hazard is None:
                raise _named(exc, field) from None
            return GuardVerdict(hazards=(f"{_named(exc, field)}",))
        except SoftLimitNeedsReason as exc:
            if self.population is None:
                return GuardVerdict()
            if self.declared_hazard is None:
                raise _named_soft(exc, field) from None
            return GuardVerdict(hazards=(f"{_named_soft(exc, field)}",))
        overridden = decision.overridden if self.population is not None else ()
        return GuardVerdict(overridden, decision.override_reason if overridden else None)

    def _dose(
        self,
        field: str,
        concentration: float,
        pump_kind: str,
        dose: float,
        previous: float | None,
        override_reason: str | None,
    ) -> GuardVerdict:
        reason = override_reason if self.population is not None else None
        return self._run(
            field,
            lambda: check_dose_against_library(
                self.library,
                self._checked_population,
                concentration,
                pump_kind,
                dose,
                reason if self.population is not None else "widest hard limits only",
                previous_dose_mcg_per_day=previous,
            ),
        )

    def _bolus(
        self,
        field: str,
        concentration: float,
        pump_kind: str | None,
        bolus_mcg: float,
        override_reason: str | None,
    ) -> GuardVerdict:
        return self._run(
            field,
            lambda: check_bolus_against_library(
                self.library,
                self._checked_population,
                concentration,
                pump_kind,
                bolus_mcg,
                override_reason if self.population is not None else "widest hard limits only",
            ),
        )

    # ------------------------------------------------------------- checks

    def check_concentration(self, concentration_mcg_per_ml: float, pump_kind: str) -> None:
        """A concentration this pump kind may hold.

        Raises:
            HardLimitExceeded: not allowed in this pump kind.
        """
        self.library.require_pump_concentration(concentration_mcg_per_ml, pump_kind)

    def check_prescription(
        self,
        prescription: Prescription,
        *,
        pump_kind: str,
        previous: Prescription | None = None,
        override_reason: str | None = None,
    ) -> GuardVerdict:
        """Check a prescription (and its change from ``previous``) against the library.

        Raises:
            HardLimitExceeded: a hard limit (unless a hazard is declared).
            SoftLimitNeedsReason: a soft limit without an override reason.
        """
        program = prescription.program
        conc = prescription.concentration_mcg_per_ml
        self.check_concentration(conc, pump_kind)
        verdict = GuardVerdict(notes=self._notes())
        if isinstance(program, Stopped):
            return verdict
        days = _day_doses(program)
        pb = prescription.patient_bolus
        extra = 0.0 if pb is None else pb.max_extra_mcg_per_day
        previous_dose = None
        if previous is not None and not isinstance(previous.program, Stopped):
            old = max(_day_doses(previous.program))
            previous_dose = old if old > 0 else None
        field = _dose_field(program) if extra == 0.0 else "daily dose + patient boluses"
        verdict = verdict.merged(
            self._dose(field, conc, pump_kind, max(days) + extra, None, override_reason)
        )
        if previous_dose is not None:
            verdict = verdict.merged(
                self._change(conc, pump_kind, program, max(days), previous_dose, override_reason)
            )
        low = min(days)
        if 0 < low < max(days):
            verdict = verdict.merged(
                self._dose(_dose_field(program), conc, pump_kind, low, None, override_reason)
            )
        fastest = _fastest_basal_mcg_per_day(program)
        if fastest is not None and fastest[1] > max(days):
            verdict = verdict.merged(self._rate(fastest, conc, pump_kind))
        if isinstance(program, PeriodicBolus) and program.bolus_mcg > 0:
            verdict = verdict.merged(
                self._bolus("bolus_mcg", conc, pump_kind, program.bolus_mcg, override_reason)
            )
        if pb is not None:
            verdict = verdict.merged(self.check_patient_bolus(pb, conc, pump_kind, override_reason))
        return verdict

    def _change(
        self,
        conc: float,
        pump_kind: str,
        program: Program,
        dose: float,
        previous_dose: float,
        override_reason: str | None,
    ) -> GuardVerdict:
        """The size of the change only (the dose itself is checked apart)."""
        field = _dose_field(program)

        def check() -> LibraryDecision:
            return check_dose_against_library(
                self.library,
                self._checked_population,
                conc,
                pump_kind,
                dose,
                override_reason if self.population is not None else "widest hard limits only",
                previous_dose_mcg_per_day=previous_dose,
            )

        try:
            return self._run(field, check)
        except HardLimitExceeded as exc:
            if exc.field.startswith("dose_increase") or exc.field.startswith("dose_decrease"):
                raise
            # A hard limit on the dose itself was already reported by the dose check.
            return GuardVerdict()

    def _rate(self, fastest: tuple[str, float], conc: float, pump_kind: str) -> GuardVerdict:
        field, per_day = fastest
        limits = self.library.limits(self._checked_population)
        hard = limits.daily_dose_hard_max_mcg_per_day
        if per_day <= hard.value:
            return GuardVerdict()
        exc = HardLimitExceeded(
            field,
            round(per_day, 2),
            f"<= {hard.value:g} mcg/day: no part of a program may run faster than the daily "
            f"hard maximum ({self._checked_population}; {hard.source}; a per-hour vs per-day "
            "mix-up [D56])",
        )
        if self.declared_hazard is None:
            raise exc
        return GuardVerdict(hazards=(str(exc),))

    def check_patient_bolus(
        self,
        settings: PatientBolusSettings,
        concentration_mcg_per_ml: float,
        pump_kind: str,
        override_reason: str | None = None,
    ) -> GuardVerdict:
        """A patient bolus's dose against the bolus limits."""
        return self._bolus(
            "patient_bolus.dose_mcg",
            concentration_mcg_per_ml,
            pump_kind,
            settings.dose_mcg,
            override_reason,
        )

    def check_bolus(
        self,
        bolus_mcg: float,
        concentration_mcg_per_ml: float,
        pump_kind: str,
        override_reason: str | None = None,
    ) -> GuardVerdict:
        """A clinician's single bolus against the bolus limits.

        Raises:
            HardLimitExceeded, SoftLimitNeedsReason: as for :meth:`check_prescription`.
        """
        return self._bolus(
            "dose_mcg", concentration_mcg_per_ml, pump_kind, bolus_mcg, override_reason
        )


def _dose_field(program: Program) -> str:
    match program:
        case Continuous():
            return "dose_mcg_per_day"
        case Flex():
            return "flex daily dose"
        case PeriodicBolus():
            return "periodic daily dose"
        case Stopped():
            return "dose_mcg_per_day"


def _named(exc: HardLimitExceeded, field: str) -> HardLimitExceeded:
    if exc.field == "dose_mcg_per_day" and field != "dose_mcg_per_day":
        return HardLimitExceeded(field, exc.value, exc.allowed)
    if exc.field == "bolus_mcg" and field != "bolus_mcg":
        return HardLimitExceeded(field, exc.value, exc.allowed)
    return exc


def _named_soft(exc: SoftLimitNeedsReason, field: str) -> SoftLimitNeedsReason:
    if exc.field in ("dose_mcg_per_day", "bolus_mcg") and field != exc.field:
        return SoftLimitNeedsReason(field, exc.value, exc.limit)
    return exc

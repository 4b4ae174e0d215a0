"""The simulated clinic: implant, label titration, refills, check-ups, battery, troubleshooting.

The clinic acts only on what a real clinic could know, through a
:class:`ClinicPort` the engine provides:

- an interrogation (:class:`ClinicReading`): the pump's *calculated* reservoir,
  its program, whether it runs, the alarms raised since the last reading and
  the battery forecast the programmer shows;
- an examination (:class:`Exam`): MAS and PSFS scored by the clinician and
  the signs the patient reports (from the patient's observation), never
  concentrations or the model's hidden indices;
- at a refill, the residual it withdraws and the discrepancy verdict;
- a catheter study (when it orders one), which finds a catheter fault if
  there is one (what a dye study or CAP aspiration would show);
- a work-up of the signs of a complication (wound, fever, headache on
  standing), or of a refill that fails, which finds the complication; what it
  does then (treat, revise the pocket, or explant with a bridge and implant a
  new pump later) is :mod:`itb.domain.clinical.complications`' data.

It never sees the true reservoir, the true accuracy factor or the patient's
parameters. Dose decisions come from the label titration planner
(:func:`itb.domain.clinical.titration.plan_next_step`).

The protocol is an assumption documented in docs/scenarios.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from itb.domain.clinical.care import TreatmentGoal, assess, choose_concentration, refill_day
from itb.domain.clinical.complications import (
    Bridge,
    ComplicationKind,
    ComplicationRules,
    Treatment,
    bridge_rate_mcg_per_h,
    oral_bridge_mg_per_day,
)
from itb.domain.clinical.titration import (
    Assessment,
    Phase,
    TitrationRules,
    initial_daily_dose,
    plan_next_step,
)
from itb.domain.errors import InvalidValue, ITBError, SeptumUnreachable
from itb.domain.pump import (
    Continuous,
    FaultKind,
    Flex,
    FlexStep,
    Prescription,
    RefillReport,
    Verdict,
)
from itb.domain.units import HOURS_PER_DAY
from itb.simulation.events import Priority

__all__ = [
    "Clinic",
    "ClinicPort",
    "ClinicProtocol",
    "ClinicReading",
    "ClinicRecord",
    "ComplicationRecord",
    "Diagnosis",
    "DoseChange",
    "Exam",
    "FlexPlan",
    "RefillRecord",
    "StartPlan",
]


@dataclass(frozen=True, slots=True)
class FlexPlan:
    """A day/night flex program: a lower rate by day keeps tone for standing and transfers.

    Attributes:
        day_start_h: local hour the day rate starts (0-24).
        night_start_h: local hour the night rate starts (after ``day_start_h``).
        day_rate_factor: day rate / mean rate (< 1 keeps tone by day); the night
            rate makes the daily total equal the titrated dose.
    """

    day_start_h: float
    night_start_h: float
    day_rate_factor: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.day_start_h < self.night_start_h < HOURS_PER_DAY:
            raise InvalidValue(
                "protocol.flex.night_start",
                self.night_start_h,
                f"after day_start ({self.day_start_h:g} h) and before 24:00",
            )
        day_h = self.night_start_h - self.day_start_h
        limit = HOURS_PER_DAY / day_h
        if not 0.0 < self.day_rate_factor < limit:
            raise InvalidValue(
                "protocol.flex.day_rate_factor",
                self.day_rate_factor,
                f"> 0 and < {limit:.3g} (the night rate must stay positive)",
            )

    def rates_mcg_per_h(self, dose_mcg_per_day: float) -> tuple[float, float]:
        """``(day_rate, night_rate)`` giving ``dose_mcg_per_day`` in total, mcg/h."""
        day_h = self.night_start_h - self.day_start_h
        mean = dose_mcg_per_day / HOURS_PER_DAY
        day = mean * self.day_rate_factor
        night = (dose_mcg_per_day - day * day_h) / (HOURS_PER_DAY - day_h)
        return day, night

    def is_day(self, local_hour: float) -> bool:
        """True when ``local_hour`` (0-24) falls in the day window."""
        return self.day_start_h <= local_hour < self.night_start_h


@dataclass(frozen=True, slots=True)
class StartPlan:
    """How therapy starts at implant.

    ``screening``: the effective screening bolus and how long its effect
    lasted start the label titration (8-hour rule). ``established``: a patient
    on a stable dose for ``established_days`` (pump already in place; the run
    starts at a refill with a new pump model) goes straight to maintenance.
    """

    kind: Literal["screening", "established"]
    effective_dose_mcg: float = 0.0
    effect_duration_h: float = 0.0
    dose_mcg_per_day: float = 0.0
    established_days: float = 0.0


@dataclass(frozen=True, slots=True)
class ClinicProtocol:
    """The clinic's rules (every duration in its unit).

    No field has a code default: the scenario service fills them from the
    scenario file and, where it is silent, from the reviewed protocol defaults
    (``protocol.toml``).

    Attributes:
        start: how therapy starts.
        goal_mas: the clinic increases the dose while MAS is above this, points.
        therapeutic_mas_low, therapeutic_mas_high: the therapeutic band of MAS
            (with no withdrawal or overdose sign), points.
        inpatient_titration_days: daily titration visits after implant, days.
        titration_visit_every_days: titration visits after discharge, days.
        max_titration_days: titration visits stop after this even if the goal was not
            reached (maintenance check-ups follow), days.
        checkup_every_days: maintenance check-ups, days (90-183).
        refill_margin_days: refill this many days before the forecast low-reservoir alarm.
        low_reservoir_alarm_ml: alarm volume programmed at implant (None: pump default), mL.
        battery_replacement_days_before_eri: plan the replacement this long before
            the programmer's predicted ERI, days.
        symptom_check_every_h: the patient/caregiver checks for signs this often, h.
        symptom_check_offset_h: first check this long after implant, h.
        symptom_response_h: from a reported sign (or alarm) to the urgent visit, h.
        patient_reports_alarms: the patient hears pump alarms and calls the clinic.
        urgent_cooldown_h: after an urgent visit the patient calls again for the same
            signs only after this, h.
        residual_check_after_h: an urgent visit for withdrawal signs withdraws the
            residual to compare when the last fill is older than this, h.
        unexplained_window_h: withdrawal signs again within this of an unexplained
            episode: the dose goes up, h.
        revision_delay_h: from a decision to operate (catheter revision, pump
            replacement) to the operation, h.
        post_mri_check_h: the pump is interrogated this long after an MRI ends, h.
        post_procedure_watch_h: the patient is watched this long after a procedure at
            the pump, h.
        priming_duration_h: priming bolus at implant or pump replacement, h.
        flex: day/night flex program (None: simple continuous).
        min_refill_interval_days: when the refill interval at the present dose would be
            shorter, a refill moves to a stronger product concentration (with a
            bridge bolus), days; None: never on its own.
        product_concentrations_mcg_per_ml: the baclofen strengths the clinic can fill, mcg/mL.
        dose_hard_max_mcg_per_day: the drug library's hard maximum for the patient's
            population: titration proposals never pass it, mcg/day.
        soft_limit_reason: the reason the clinician records when a dose by the label
            rules passes a drug-library soft limit.
        complications: what each complication shows and how the clinic treats it.
        bridge: how the clinic carries therapy over while a pump is out.
    """

    start: StartPlan
    goal_mas: float
    therapeutic_mas_low: float
    therapeutic_mas_high: float
    inpatient_titration_days: int
    titration_visit_every_days: float
    max_titration_days: float
    checkup_every_days: float
    refill_margin_days: float
    low_reservoir_alarm_ml: float | None
    battery_replacement_days_before_eri: float
    symptom_check_every_h: float
    symptom_check_offset_h: float
    symptom_response_h: float
    patient_reports_alarms: bool
    urgent_cooldown_h: float
    residual_check_after_h: float
    unexplained_window_h: float
    revision_delay_h: float
    post_mri_check_h: float
    post_procedure_watch_h: float
    priming_duration_h: float
    flex: FlexPlan | None
    min_refill_interval_days: float | None
    product_concentrations_mcg_per_ml: tuple[float, ...]
    dose_hard_max_mcg_per_day: float
    soft_limit_reason: str
    complications: ComplicationRules
    bridge: Bridge

    @property
    def goal(self) -> TreatmentGoal:
        """The treatment goal the clinic titrates to."""
        return TreatmentGoal(self.goal_mas, self.therapeutic_mas_low)

    def override_reason(self, prescription: Prescription) -> str:
        """The reason recorded with a dose by the label rules (used only where a drug-library
        soft limit needs one)."""
        return self.soft_limit_reason


@dataclass(frozen=True, slots=True)
class ClinicReading:
    """What an interrogation shows: the pump's own (calculated) view, never the truth.

    Attributes:
        t_h: time, h.
        reservoir_calculated_ml: the pump's calculated reservoir, mL.
        daily_dose_mcg: programmed daily dose, mcg/day.
        concentration_mcg_per_ml: labelled concentration of the drug filled, mcg/mL.
        running: the motor runs.
        stop_reason: why not, if not.
        alarms_raised: alarm kinds raised since the last interrogation, in order.
        eri_reached: the elective replacement indicator is set.
        predicted_eri_t_h: the programmer's ERI forecast, h (None: no battery).
    """

    t_h: float
    reservoir_calculated_ml: float
    daily_dose_mcg: float
    concentration_mcg_per_ml: float
    running: bool
    stop_reason: str
    alarms_raised: tuple[str, ...]
    eri_reached: bool
    predicted_eri_t_h: float | None


@dataclass(frozen=True, slots=True)
class Exam:
    """What the clinician scores and the patient reports (no concentrations)."""

    t_h: float
    mas: float
    psfs: float
    withdrawal_signs: tuple[str, ...]
    overdose_signs: tuple[str, ...]
    adverse_reactions: tuple[str, ...]
    complication_signs: tuple[str, ...] = ()
    """Signs of a complication of the implanted system (triage sign keys)."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What a work-up finds: a complication, and whether the pump has to come out."""

    kind: ComplicationKind
    explant: bool


class ClinicPort(Protocol):
    """What the engine lets the clinic do and see."""

    def interrogate(self, t_h: float) -> ClinicReading:
        """Read the pump (clears sounding alarms, ends a post-MRI hold)."""
        ...

    def sounding_alarms(self) -> tuple[str, ...]:
        """Alarms the pump is sounding now (what the patient hears)."""
        ...

    def examine(self, t_h: float) -> Exam:
        """Score spasticity and ask about signs."""
        ...

    def implant(
        self, t_h: float, concentration_mcg_per_ml: float, prescription: Prescription, reason: str
    ) -> None:
        """Implant a new pump (first implant or replacement): fill, program, prime."""
        ...

    def refill(
        self,
        t_h: float,
        *,
        concentration_mcg_per_ml: float,
        prescription: Prescription | None,
        bridge_bolus: bool,
        reason: str,
    ) -> RefillReport:
        """Withdraw the residual, judge it, fill the reservoir, reprogram if asked."""
        ...

    def program(self, t_h: float, prescription: Prescription, reason: str) -> None:
        """A programming session with a new prescription."""
        ...

    def calculated_reaches_t_h(self, target_ml: float) -> float | None:
        """When the calculated reservoir falls to ``target_ml`` (programmer forecast), h."""
        ...

    def predicted_eri_t_h(self) -> float | None:
        """The programmer's battery forecast (ERI), h; None for a pump without battery."""
        ...

    def catheter_study(self, t_h: float) -> tuple[FaultKind, ...]:
        """A dye study / CAP aspiration: the catheter faults it finds."""
        ...

    def revise_catheter(self, t_h: float, kinds: tuple[FaultKind, ...]) -> None:
        """Surgical catheter revision: repairs ``kinds``."""
        ...

    def diagnose(self, t_h: float, *, at_refill: bool = False) -> tuple[Diagnosis, ...]:
        """Work up a complication's signs (or a failed refill): what is found."""
        ...

    def resolve_complication(self, t_h: float, kind: ComplicationKind) -> None:
        """The complication is over (treated or healed)."""
        ...

    def explant(self, t_h: float, reason: str) -> None:
        """Take the pump and catheter out."""
        ...

    def set_bridge(self, t_h: float, rate_mcg_per_h: float) -> None:
        """Start or stop a bridge at this intrathecal-equivalent rate, mcg/h (0: stop)."""
        ...

    def revise_pocket(self, t_h: float) -> None:
        """Revise the pump pocket (turn a flipped pump back, cover an erosion)."""
        ...

    @property
    def pump_implanted(self) -> bool:
        """A pump is in place."""
        ...

    @property
    def reservoir_capacity_ml(self) -> float:
        """Reservoir size of the implanted pump model, mL."""
        ...

    @property
    def programmable(self) -> bool:
        """False for a constant-flow pump (dose set by the concentration)."""
        ...

    @property
    def nominal_flow_ml_per_day(self) -> float:
        """A constant-flow pump's labelled flow, mL/day."""
        ...

    @property
    def low_reservoir_alarm_ml(self) -> float:
        """The programmed low-reservoir alarm volume, mL."""
        ...

    @property
    def low_residual_volume_ml(self) -> float:
        """The reservoir volume below which the implanted pump kind under-delivers, mL
        ([C101]; 0 for a kind with no such effect)."""
        ...

    @property
    def pump_clock_offset_h(self) -> float:
        """Pump clock (hours since Monday 00:00 local) minus run time, h."""
        ...

    def schedule(
        self, t_h: float, priority: Priority, name: str, action: Callable[[float], None]
    ) -> int:
        """Schedule ``action(t_h)``; returns a handle for :meth:`cancel`."""
        ...

    def cancel(self, handle: int) -> None:
        """Cancel a scheduled action (no-op if it already ran)."""
        ...

    def note(self, t_h: float, actor: str, kind: str, detail: str) -> None:
        """Write a line to the course timeline (with the patient's state at ``t_h``)."""
        ...


@dataclass(frozen=True, slots=True)
class DoseChange:
    """A dose decision."""

    t_h: float
    dose_mcg_per_day: float
    previous_mcg_per_day: float
    reason: str


@dataclass(frozen=True, slots=True)
class RefillRecord:
    """A refill as the clinic saw it."""

    t_h: float
    kind: str
    expected_ml: float
    withdrawn_ml: float
    verdict: str
    flagged: bool
    concentration_mcg_per_ml: float
    bridge_bolus: bool


@dataclass(frozen=True, slots=True)
class ComplicationRecord:
    """A complication as the clinic found and treated it."""

    t_h: float
    kind: str
    treatment: str
    explant: bool


@dataclass
class ClinicRecord:
    """What the clinic did (read by the metrics)."""

    initial_dose_mcg_per_day: float = 0.0
    titration_end_t_h: float | None = None
    dose_changes: list[DoseChange] = field(default_factory=list)
    refills: list[RefillRecord] = field(default_factory=list)
    urgent_visits: list[tuple[float, str]] = field(default_factory=list)
    pump_replacements: list[tuple[float, str]] = field(default_factory=list)
    catheter_revisions: list[tuple[float, str]] = field(default_factory=list)
    battery_replacement_t_h: float | None = None
    missed_refills: list[float] = field(default_factory=list)
    refused_changes: list[tuple[float, str]] = field(default_factory=list)
    complications: list[ComplicationRecord] = field(default_factory=list)
    explants: list[tuple[float, str]] = field(default_factory=list)
    """When a pump came out, and the bridge given (``none``, ``oral``, ``intrathecal``)."""
    reimplants: list[float] = field(default_factory=list)
    failed_refills: list[float] = field(default_factory=list)


class Clinic:
    """The simulated clinic team for one patient.

    Args:
        port: the engine's view of the world.
        protocol: the clinic's rules.
        rules: label titration rules.
        origin: ``"spinal"`` or ``"cerebral"`` (known from the diagnosis).
        age_years: the patient's age, years.
        concentration_mcg_per_ml: the drug filled at implant, mcg/mL.
        max_days_in_pump: drug stability limit between refills, days.
    """

    def __init__(
        self,
        port: ClinicPort,
        protocol: ClinicProtocol,
        rules: TitrationRules,
        *,
        origin: str,
        age_years: float,
        concentration_mcg_per_ml: float,
        max_days_in_pump: float,
    ) -> None:
        self.port = port
        self.protocol = protocol
        self.rules = rules
        self.origin = origin
        self.age_years = age_years
        self.concentration = concentration_mcg_per_ml
        self.max_days_in_pump = max_days_in_pump
        self.record = ClinicRecord()
        self.phase = Phase.TITRATION
        self.dose = 0.0
        self.last_change_t_h = 0.0
        self.last_fill_t_h = 0.0
        self.refill_handle: int | None = None
        self.replacement_handle: int | None = None
        self.pending_refill_concentration: float | None = None
        self.missed: list[float | None] = []
        self.urgent_pending = False
        self.operation_pending = False
        self.last_urgent_t_h: float | None = None
        self.unexplained_withdrawal_t_h: float | None = None
        self.late_refill_pending = False
        self.refill_rate_factor = 1.0
        """Learned from a less-than-expected discrepancy: refills come sooner."""
        self.explanted = False
        """The pump is out (between an explant and the new pump)."""
        self.failed_refill_t_h = -math.inf
        """When a refill last failed (a pocket revision then refills)."""
        self.treating: dict[ComplicationKind, tuple[str, ...]] = {}
        """Complications found and under treatment, with their signs (not news any more)."""

    # ----------------------------------------------------------------- helpers

    def prescription(self, dose_mcg_per_day: float) -> Prescription:
        """The prescription for ``dose_mcg_per_day`` at the drug in the pump."""
        flex = self.protocol.flex
        if flex is None:
            return Prescription(Continuous(dose_mcg_per_day), self.concentration)
        day, night = flex.rates_mcg_per_h(dose_mcg_per_day)
        steps: list[FlexStep] = []
        if flex.day_start_h > 0.0:
            steps.append(FlexStep(0.0, night))
        steps.append(FlexStep(flex.day_start_h, day))
        steps.append(FlexStep(flex.night_start_h, night))
        # The pump clock counts from Monday 00:00 local at the implant; flex starts are local.
        return Prescription(Flex(days=tuple(tuple(steps) for _ in range(7))), self.concentration)

    def _note(self, t_h: float, kind: str, detail: str) -> None:
        self.port.note(t_h, "clinic", kind, detail)

    def _set_dose(self, t_h: float, dose: float, reason: str) -> None:
        previous = self.dose
        if not self.port.programmable:
            # A constant-flow pump's dose changes with the concentration at the next refill.
            concentration = dose / self.port.nominal_flow_ml_per_day
            self.pending_refill_concentration = concentration
            self._note(
                t_h,
                "dose_change_planned",
                f"{previous:.0f} -> {dose:.0f} mcg/day at the next refill "
                f"({concentration:.0f} mcg/mL, fixed-flow pump): {reason}",
            )
            self.dose = dose
            self.last_change_t_h = t_h
            self.record.dose_changes.append(DoseChange(t_h, dose, previous, reason))
            return
        try:
            self.port.program(t_h, self.prescription(dose), reason)
        except ITBError as exc:
            self.record.refused_changes.append((t_h, str(exc)))
            self._note(t_h, "dose_change_refused", f"{dose:.0f} mcg/day refused: {exc}")
            return
        self.dose = dose
        self.last_change_t_h = t_h
        self.record.dose_changes.append(DoseChange(t_h, dose, previous, reason))
        self._note(t_h, "dose_change", f"{previous:.0f} -> {dose:.0f} mcg/day: {reason}")
        self._plan_refill(t_h)

    def _assess(self, exam: Exam) -> Assessment:
        return assess(exam.mas, bool(exam.overdose_signs), self.protocol.goal)

    def _plan_step(self, t_h: float, exam: Exam, phase: Phase) -> Assessment:
        assessment = self._assess(exam)
        step = plan_next_step(
            self.rules,
            origin=self.origin,
            age_years=self.age_years,
            phase=phase,
            current_dose_mcg_per_day=self.dose,
            assessment=assessment,
            hours_since_implant=t_h,
            hours_since_last_change=min(t_h - self.last_change_t_h, t_h),
            max_dose_mcg_per_day=self.protocol.dose_hard_max_mcg_per_day,
        )
        if step.dose_mcg_per_day != self.dose:
            self._set_dose(
                t_h, step.dose_mcg_per_day, f"MAS {exam.mas:.2f}; {step.reason} [{step.source}]"
            )
        return assessment

    # ------------------------------------------------------------------- start

    def start(self, t_h: float) -> None:
        """Implant (or take over an established patient) and plan the first visits."""
        p = self.protocol
        start = p.start
        if start.kind == "screening":
            step = initial_daily_dose(
                self.rules,
                start.effective_dose_mcg,
                start.effect_duration_h,
                origin=self.origin,
                age_years=self.age_years,
            )
            self.dose = step.dose_mcg_per_day
            reason = f"implant; {step.reason} [{step.source}]"
        else:
            self.dose = start.dose_mcg_per_day
            self.phase = Phase.MAINTENANCE
            self.record.titration_end_t_h = t_h
            reason = f"established patient on {self.dose:g} mcg/day"
        if not self.port.programmable:
            self.concentration = self.dose / self.port.nominal_flow_ml_per_day
        self.record.initial_dose_mcg_per_day = self.dose
        self.port.implant(t_h, self.concentration, self.prescription(self.dose), reason)
        self.last_fill_t_h = t_h
        self.last_change_t_h = t_h
        self._plan_refill(t_h)
        self._plan_battery(t_h)
        if self.phase is Phase.TITRATION:
            self.port.schedule(
                t_h + self.rules.no_increase_h.value,
                Priority.CLINIC,
                "titration_visit",
                self.titration_visit,
            )
        else:
            self._schedule_checkup(t_h)
        self.port.schedule(
            t_h + p.symptom_check_offset_h, Priority.PATIENT, "symptom_check", self.symptom_check
        )

    # --------------------------------------------------------------- planning

    def _plan_refill(self, t_h: float) -> None:
        """Next refill: margin days before the forecast low-reservoir alarm, within stability."""
        p = self.protocol
        if self.late_refill_pending or self.explanted:
            return  # the booked late refill stands; or there is no pump to refill
        if self.refill_handle is not None:
            self.port.cancel(self.refill_handle)
            self.refill_handle = None
        # Visits fall on whole days after implant (same time of day), at least a day ahead.
        day = refill_day(
            now_h=t_h,
            last_fill_h=self.last_fill_t_h,
            low_alarm_t_h=self.port.calculated_reaches_t_h(self.port.low_reservoir_alarm_ml),
            margin_days=p.refill_margin_days,
            max_days_in_pump=self.max_days_in_pump,
            rate_factor=self.refill_rate_factor,
        )
        self.refill_handle = self.port.schedule(
            day * HOURS_PER_DAY, Priority.CLINIC, "refill", self.planned_refill
        )

    def _plan_battery(self, t_h: float) -> None:
        if self.explanted:
            return
        reading_eri = self.port.predicted_eri_t_h()
        if reading_eri is None:
            return
        if self.replacement_handle is not None:
            self.port.cancel(self.replacement_handle)
        target = reading_eri - self.protocol.battery_replacement_days_before_eri * HOURS_PER_DAY
        day = max(math.floor(target / HOURS_PER_DAY), math.floor(t_h / HOURS_PER_DAY) + 1)
        self.replacement_handle = self.port.schedule(
            day * HOURS_PER_DAY, Priority.CLINIC, "battery_replacement", self.battery_replacement
        )

    def _schedule_checkup(self, t_h: float) -> None:
        self.port.schedule(
            t_h + self.protocol.checkup_every_days * HOURS_PER_DAY,
            Priority.CLINIC,
            "checkup",
            self.checkup,
        )

    # ------------------------------------------------------------------ visits

    def _reading_actions(self, t_h: float, reading: ClinicReading) -> bool:
        """React to what the interrogation shows; True if the pump itself needs action."""
        alarms = set(reading.alarms_raised)
        if "motor_stall" in alarms or "memory_error_critical" in alarms:
            self._operate(t_h, "replace_pump", "pump alarm: " + ", ".join(sorted(alarms)))
            return True
        if "end_of_service" in alarms or "elective_replacement_indicator" in alarms:
            if self.replacement_handle is not None:
                self.port.cancel(self.replacement_handle)
            self.replacement_handle = self.port.schedule(
                t_h + self.protocol.revision_delay_h,
                Priority.CLINIC,
                "battery_replacement",
                self.battery_replacement,
            )
            self._note(t_h, "battery_replacement_planned", "ERI seen at interrogation")
        if alarms & {"low_reservoir", "empty_reservoir"} or (
            reading.reservoir_calculated_ml <= self.port.low_reservoir_alarm_ml
        ):
            self.do_refill(t_h, "refill (reservoir low at interrogation)")
            return True
        return False

    def _visit_assessment(self, t_h: float, phase: Phase) -> tuple[ClinicReading, Exam, Assessment]:
        """A visit's common start: interrogate, act on the reading, examine, then either
        troubleshoot withdrawal or assess and step the dose by the label rules."""
        reading = self.port.interrogate(t_h)
        self._reading_actions(t_h, reading)
        exam = self.port.examine(t_h)
        if exam.withdrawal_signs:
            self._troubleshoot(t_h, exam)
            return reading, exam, Assessment.INADEQUATE
        return reading, exam, self._plan_step(t_h, exam, phase)

    def titration_visit(self, t_h: float) -> None:
        """Titration: assess and step the dose by the label rules, until the goal is met."""
        if self.phase is not Phase.TITRATION:
            return
        if self.explanted:
            # no pump to titrate: the visits go on once the new pump is in
            self.port.schedule(
                t_h + HOURS_PER_DAY, Priority.CLINIC, "titration_visit", self.titration_visit
            )
            return
        _, exam, assessment = self._visit_assessment(t_h, Phase.TITRATION)
        self._note(
            t_h,
            "titration_visit",
            f"MAS {exam.mas:.2f}, PSFS {exam.psfs:.2f}: {assessment.value}; "
            f"dose {self.dose:.0f} mcg/day",
        )
        days = t_h / HOURS_PER_DAY
        if assessment is Assessment.ADEQUATE or days >= self.protocol.max_titration_days:
            self.phase = Phase.MAINTENANCE
            self.record.titration_end_t_h = t_h
            self._note(t_h, "titration_end", f"goal reached on {self.dose:.0f} mcg/day")
            self._schedule_checkup(t_h)
            return
        inpatient_end = self.protocol.inpatient_titration_days * HOURS_PER_DAY
        gap = (
            HOURS_PER_DAY
            if t_h + HOURS_PER_DAY <= inpatient_end + 1e-9
            else self.protocol.titration_visit_every_days * HOURS_PER_DAY
        )
        self.port.schedule(t_h + gap, Priority.CLINIC, "titration_visit", self.titration_visit)

    def checkup(self, t_h: float) -> None:
        """Maintenance check-up: interrogate, examine, adjust, plan the battery."""
        if self.explanted:
            self._note(t_h, "checkup", "pump out (explanted): no interrogation or dose change")
            self._schedule_checkup(t_h)
            return
        reading, exam, assessment = self._visit_assessment(t_h, Phase.MAINTENANCE)
        self._note(
            t_h,
            "checkup",
            f"MAS {exam.mas:.2f}, PSFS {exam.psfs:.2f}: {assessment.value}; "
            f"dose {self.dose:.0f} mcg/day; reservoir {reading.reservoir_calculated_ml:.1f} mL "
            "(calculated)",
        )
        self._plan_battery(t_h)
        self._schedule_checkup(t_h)

    def planned_refill(self, t_h: float) -> None:
        """A planned refill visit (unless the scenario says the patient misses it)."""
        self.refill_handle = None
        if self.missed:
            late = self.missed.pop(0)
            self.record.missed_refills.append(t_h)
            if late is None:
                self._note(t_h, "refill_missed", "planned refill missed; no new date")
            else:
                self._note(t_h, "refill_missed", f"planned refill missed; comes {late:g} days late")
                self.late_refill_pending = True
                self.refill_handle = self.port.schedule(
                    t_h + late * HOURS_PER_DAY, Priority.CLINIC, "refill", self.late_refill
                )
            return
        self.do_refill(t_h, "planned refill")
        self._assess_at_refill(t_h)

    def late_refill(self, t_h: float) -> None:
        """The late refill visit."""
        self.refill_handle = None
        self.late_refill_pending = False
        self.do_refill(t_h, "late refill")
        self._assess_at_refill(t_h)

    def _assess_at_refill(self, t_h: float) -> None:
        """A refill visit is also a clinical review: the dose is adjusted by the same rules."""
        if self.phase is not Phase.MAINTENANCE or self.operation_pending:
            return
        exam = self.port.examine(t_h)
        if exam.withdrawal_signs:
            self._troubleshoot(t_h, exam)
            return
        self._plan_step(t_h, exam, Phase.MAINTENANCE)

    def do_refill(self, t_h: float, kind: str) -> None:
        """Refill at the present concentration (or the planned new one for a fixed-flow pump)."""
        if self.explanted:
            return
        if self.late_refill_pending:
            # Refilled earlier than the booked late visit (urgent): that booking is void.
            self.late_refill_pending = False
        new_conc = self.pending_refill_concentration
        self.pending_refill_concentration = None
        if new_conc is not None and new_conc != self.concentration:
            self._refill(t_h, kind, new_conc, bridge_bolus=False)
            return
        stronger = self._stronger_concentration()
        if stronger is not None:
            self._refill(
                t_h,
                f"{kind}, stronger concentration for a refill interval of at least "
                f"{self.protocol.min_refill_interval_days:g} days",
                stronger,
                bridge_bolus=True,
            )
            return
        self._refill(t_h, kind, self.concentration, bridge_bolus=False)

    def _stronger_concentration(self) -> float | None:
        """The stronger product to refill with (the domain's rule), or None."""
        p = self.protocol
        if not self.port.programmable:
            return None
        return choose_concentration(
            dose_mcg_per_day=self.dose,
            concentration_mcg_per_ml=self.concentration,
            strengths_mcg_per_ml=p.product_concentrations_mcg_per_ml,
            usable_ml=self.port.reservoir_capacity_ml - self.port.low_reservoir_alarm_ml,
            margin_days=p.refill_margin_days,
            min_interval_days=p.min_refill_interval_days,
        )

    def _refill(self, t_h: float, kind: str, concentration: float, *, bridge_bolus: bool) -> None:
        changing = concentration != self.concentration
        old = self.concentration
        self.concentration = concentration
        rx = self.prescription(self.dose) if changing and self.port.programmable else None
        try:
            report = self.port.refill(
                t_h,
                concentration_mcg_per_ml=concentration,
                prescription=rx,
                bridge_bolus=bridge_bolus,
                reason=kind,
            )
        except SeptumUnreachable as exc:
            self.concentration = old
            self._refill_failed(t_h, kind, exc)
            return
        except ITBError as exc:
            self.concentration = old
            self.record.refused_changes.append((t_h, str(exc)))
            self._note(t_h, "refill_refused", str(exc))
            return
        self.last_fill_t_h = t_h
        d = report.discrepancy
        flagged = d.verdict is not Verdict.WITHIN_TOLERANCE
        self.record.refills.append(
            RefillRecord(
                t_h,
                kind,
                d.expected_ml,
                d.withdrawn_ml,
                d.verdict.value,
                flagged,
                concentration,
                bridge_bolus,
            )
        )
        detail = (
            f"{kind}: withdrew {d.withdrawn_ml:.2f} mL (expected {d.expected_ml:.2f}); "
            f"{d.verdict.value}; filled {report.fill_volume_ml:g} mL at {concentration:g} mcg/mL"
        )
        if changing:
            detail += f" (was {old:g}; bridge bolus {'yes' if bridge_bolus else 'no'})"
        self._note(t_h, "refill", detail)
        over = d.verdict is Verdict.LESS_THAN_EXPECTED or (
            d.verdict is Verdict.FOUND_EMPTY and -d.difference_ml > d.allowed_ml
        )
        if over:
            if d.implied_rate_error_pct is not None:
                self.refill_rate_factor = max(
                    self.refill_rate_factor, 1.0 + d.implied_rate_error_pct / 100.0
                )
            self._note(t_h, "discrepancy_flagged", d.advice)
            self._operate(t_h, "replace_pump", "suspected over-infusion (refill discrepancy)")
        elif d.verdict is Verdict.FOUND_EMPTY:
            self._note(t_h, "discrepancy_flagged", d.advice)
        elif d.verdict is Verdict.MORE_THAN_EXPECTED:
            self._note(t_h, "discrepancy_flagged", d.advice)
            self._catheter_workup(t_h, "more withdrawn than expected")
        self._plan_refill(t_h)

    def concentration_change(self, t_h: float, concentration: float, bridge_bolus: bool) -> None:
        """Refill now with a new concentration, same daily dose, with or without a bridge bolus."""
        self._refill(t_h, "concentration change refill", concentration, bridge_bolus=bridge_bolus)

    def missed_refill(self, late_by_days: float | None) -> None:
        """The scenario says the next planned refill is missed (or late)."""
        self.missed.append(late_by_days)

    # ------------------------------------------------------- patient-initiated

    def symptom_check(self, t_h: float) -> None:
        """The patient (or caregiver) checks daily; new signs or alarms bring an urgent visit."""
        p = self.protocol
        self.port.schedule(
            t_h + p.symptom_check_every_h, Priority.PATIENT, "symptom_check", self.symptom_check
        )
        exam = self.port.examine(t_h)
        known = {s for signs in self.treating.values() for s in signs}
        news = tuple(s for s in exam.complication_signs if s not in known)
        signs = exam.withdrawal_signs + exam.overdose_signs + _words(news)
        alarms = self.port.sounding_alarms() if p.patient_reports_alarms else ()
        if not signs and not alarms:
            return
        what = "; ".join(
            x
            for x in (
                ("signs: " + ", ".join(signs)) if signs else "",
                ("alarm: " + ", ".join(alarms)) if alarms else "",
            )
            if x
        )
        self.port.note(t_h, "patient", "reports", what)
        if self.urgent_pending or self.operation_pending:
            return
        if (
            self.last_urgent_t_h is not None
            and t_h - self.last_urgent_t_h < p.urgent_cooldown_h
            and not alarms
        ):
            return
        self.urgent_pending = True
        self.port.schedule(
            t_h + p.symptom_response_h,
            Priority.CLINIC,
            "urgent_visit",
            lambda t: self.urgent_visit(t, what),
        )

    def urgent_visit(self, t_h: float, why: str) -> None:
        """Interrogate, examine, and act: refill, troubleshoot or adjust the dose."""
        self.urgent_pending = False
        self.last_urgent_t_h = t_h
        self.record.urgent_visits.append((t_h, why))
        if self.explanted:
            exam = self.port.examine(t_h)
            self._note(
                t_h,
                "urgent_visit",
                f"{why}; pump out (explanted), bridge: {self.protocol.bridge.value}; "
                "supportive care until the new pump",
            )
            if exam.complication_signs:
                self._complication_workup(t_h)
            return
        reading = self.port.interrogate(t_h)
        self._note(
            t_h,
            "urgent_visit",
            f"{why}; pump {'running' if reading.running else 'STOPPED: ' + reading.stop_reason}; "
            f"reservoir {reading.reservoir_calculated_ml:.1f} mL (calculated); alarms since last "
            f"reading: {', '.join(reading.alarms_raised) or 'none'}",
        )
        handled = self._reading_actions(t_h, reading)
        exam = self.port.examine(t_h)
        if exam.complication_signs and self._complication_workup(t_h):
            return
        if exam.withdrawal_signs:
            if not handled:
                self._withdrawal_workup(t_h, exam)
            return
        if exam.overdose_signs:
            step = plan_next_step(
                self.rules,
                origin=self.origin,
                age_years=self.age_years,
                phase=self.phase,
                current_dose_mcg_per_day=self.dose,
                assessment=Assessment.SIDE_EFFECTS,
                hours_since_implant=t_h,
                hours_since_last_change=min(t_h - self.last_change_t_h, t_h),
                max_dose_mcg_per_day=self.protocol.dose_hard_max_mcg_per_day,
            )
            self._set_dose(t_h, step.dose_mcg_per_day, f"overdose signs; {step.reason}")

    def after_procedure(self, t_h: float) -> None:
        """The patient is watched in the clinic after a procedure at the pump."""
        exam = self.port.examine(t_h)
        signs = exam.overdose_signs + exam.withdrawal_signs
        if not signs:
            self._note(t_h, "observation", "watched after the procedure: no new signs")
            return
        self.last_urgent_t_h = t_h
        self.record.urgent_visits.append((t_h, "signs after a procedure"))
        self._note(
            t_h,
            "observation",
            f"signs after the procedure: {', '.join(signs)}; admitted for monitoring and "
            "supportive care (an acute bolus: the pump dose is not changed)",
        )

    def _withdrawal_workup(self, t_h: float, exam: Exam) -> None:
        """Withdrawal signs and the pump reports nothing: residual, catheter, then the dose."""
        if t_h - self.last_fill_t_h >= self.protocol.residual_check_after_h:
            # Troubleshooting starts with the reservoir: withdraw and compare ([D58]).
            self.do_refill(t_h, "refill to check the residual (withdrawal signs)")
        if self.operation_pending:
            return
        last = self.record.refills[-1] if self.record.refills else None
        low = self.port.low_residual_volume_ml
        if last is not None and last.t_h == t_h and 0.0 < last.withdrawn_ml < low:
            # a nearly empty reservoir under-delivers [C101]: the refill was the treatment
            self._note(
                t_h,
                "observe",
                f"withdrawal signs with {last.withdrawn_ml:.2f} mL left, below the {low:g} mL "
                "at which this pump delivers less than programmed [C101]: the refill is the "
                "treatment (no catheter study); refill earlier or raise the low-reservoir alarm",
            )
            return
        if self._catheter_workup(t_h, "withdrawal signs, pump and residual as expected"):
            return
        recent = self.unexplained_withdrawal_t_h
        if recent is not None and t_h - recent <= self.protocol.unexplained_window_h:
            step = plan_next_step(
                self.rules,
                origin=self.origin,
                age_years=self.age_years,
                phase=Phase.MAINTENANCE,
                current_dose_mcg_per_day=self.dose,
                assessment=Assessment.INADEQUATE,
                hours_since_implant=t_h,
                hours_since_last_change=min(t_h - self.last_change_t_h, t_h),
                max_dose_mcg_per_day=self.protocol.dose_hard_max_mcg_per_day,
            )
            self.unexplained_withdrawal_t_h = None
            if step.dose_mcg_per_day != self.dose:
                self._set_dose(
                    t_h,
                    step.dose_mcg_per_day,
                    f"withdrawal signs persist with no device cause ({', '.join(exam.withdrawal_signs)}); "
                    f"{step.reason}",
                )
            return
        self.unexplained_withdrawal_t_h = t_h
        self._note(t_h, "observe", "no device cause found: same dose, recheck if the signs persist")

    def _troubleshoot(self, t_h: float, exam: Exam) -> None:
        if not self.urgent_pending and not self.operation_pending:
            self.urgent_visit(
                t_h, "withdrawal signs at a visit: " + ", ".join(exam.withdrawal_signs)
            )

    def _catheter_workup(self, t_h: float, why: str) -> bool:
        """Order a catheter study; plan a revision if it finds a fault (True)."""
        found = self.port.catheter_study(t_h)
        if found:
            kinds = ", ".join(k.value for k in found)
            self._note(t_h, "catheter_study", f"{why}: study finds {kinds}")
            self._operate(t_h, "revise_catheter", f"catheter {kinds}", found)
            return True
        self._note(t_h, "catheter_study", f"{why}: catheter study normal")
        return False

    # -------------------------------------------------------------- operations

    def _operate(
        self,
        t_h: float,
        what: str,
        why: str,
        kinds: tuple[FaultKind, ...] = (),
        *,
        delay_h: float | None = None,
    ) -> None:
        if self.operation_pending:
            return
        self.operation_pending = True
        self._note(t_h, "operation_planned", f"{what.replace('_', ' ')} ({why})")

        def run(t: float) -> None:
            self.operation_pending = False
            # Signs resolving after the operation are expected: no new call for a while.
            self.last_urgent_t_h = t
            if self.explanted:
                return  # the system came out meanwhile
            match what:
                case "revise_catheter":
                    self.port.revise_catheter(t, kinds)
                    self.record.catheter_revisions.append((t, why))
                    self._note(t, "catheter_revision", f"catheter revised ({why})")
                case "explant":
                    self._explant(t, why)
                case "revise_pocket":
                    self.port.revise_pocket(t)
                    self.treating.pop(ComplicationKind.PUMP_FLIP, None)
                    self.treating.pop(ComplicationKind.SKIN_EROSION, None)
                    self._note(t, "pocket_revision", f"pump pocket revised ({why})")
                    if self.last_fill_t_h < self.failed_refill_t_h:
                        self.do_refill(t, "refill after the pocket revision")
                case _:
                    self._replace(t, why)

        delay = self.protocol.revision_delay_h if delay_h is None else delay_h
        self.port.schedule(t_h + delay, Priority.CLINIC, what, run)

    # ----------------------------------------------------------- complications

    def _complication_workup(self, t_h: float, *, at_refill: bool = False) -> bool:
        """Work up a complication's signs (or a failed refill) and act on what is found.

        Returns:
            True when something was found (the visit's other work waits for it).
        """
        found = self.port.diagnose(t_h, at_refill=at_refill)
        for d in found:
            spec = self.protocol.complications.spec(d.kind)
            self.treating[d.kind] = spec.signs
            treatment = Treatment.EXPLANT if d.explant else spec.treatment
            self.record.complications.append(
                ComplicationRecord(t_h, d.kind.value, treatment.value, d.explant)
            )
            resolves_h = spec.resolves_days.value * HOURS_PER_DAY
            if d.explant:
                self._note(
                    t_h,
                    "complication_found",
                    f"{spec.label}: {spec.treatment.value.replace('_', ' ')} and the pump "
                    "comes out (explant)",
                )
                self._operate(t_h, "explant", spec.label)
                self._resolve_after(t_h + self.protocol.revision_delay_h + resolves_h, d.kind)
            elif spec.treatment is Treatment.POCKET_REVISION:
                self._note(t_h, "complication_found", f"{spec.label}: pocket revision")
                self._operate(
                    t_h,
                    "revise_pocket",
                    spec.label,
                    delay_h=resolves_h if at_refill else None,
                )
            else:
                self._note(
                    t_h,
                    "complication_found",
                    f"{spec.label}: {spec.treatment.value.replace('_', ' ')} "
                    f"({spec.resolves_days.value:g} days)",
                )
                self._resolve_after(t_h + resolves_h, d.kind)
        return bool(found)

    def _resolve_after(self, t_h: float, kind: ComplicationKind) -> None:
        def resolve(t: float) -> None:
            self.treating.pop(kind, None)
            self.port.resolve_complication(t, kind)

        self.port.schedule(t_h, Priority.CLINIC, "complication_resolved", resolve)

    def _refill_failed(self, t_h: float, kind: str, exc: ITBError) -> None:
        """A refill that cannot be done: the pump is worked up (a turned pump is revised)."""
        self.failed_refill_t_h = t_h
        self.record.failed_refills.append(t_h)
        self._note(t_h, "refill_failed", f"{kind}: {exc}")
        self._complication_workup(t_h, at_refill=True)

    def _explant(self, t_h: float, why: str) -> None:
        """The pump comes out; the bridge starts; the new pump is booked."""
        self.port.explant(t_h, why)
        self.explanted = True
        for handle in (self.refill_handle, self.replacement_handle):
            if handle is not None:
                self.port.cancel(handle)
        self.refill_handle = self.replacement_handle = None
        self.late_refill_pending = False
        rules = self.protocol.complications.bridging
        bridge = self.protocol.bridge
        rate = bridge_rate_mcg_per_h(rules, bridge, self.dose)
        self.port.set_bridge(t_h, rate)
        self.record.explants.append((t_h, bridge.value))
        match bridge:
            case Bridge.ORAL:
                what = (
                    f"oral baclofen {oral_bridge_mg_per_day(rules, self.dose):.0f} mg/day for "
                    f"the pump's {self.dose:.0f} mcg/day"
                )
            case Bridge.INTRATHECAL:
                what = f"intrathecal baclofen {self.dose:.0f} mcg/day by a temporary catheter"
            case Bridge.NONE:
                what = "none: intrathecal baclofen stops abruptly"
        self._note(t_h, "bridge", what)
        self.port.schedule(
            t_h + rules.reimplant_after_days.value * HOURS_PER_DAY,
            Priority.CLINIC,
            "reimplant",
            self._reimplant,
        )

    def _reimplant(self, t_h: float) -> None:
        """A new pump once the complication is over, at the dose before the explant."""
        self.port.set_bridge(t_h, 0.0)
        self.explanted = False
        self.port.implant(
            t_h,
            self.concentration,
            self.prescription(self.dose),
            f"re-implant after explant, at the previous {self.dose:.0f} mcg/day",
        )
        self.record.reimplants.append(t_h)
        self.last_fill_t_h = t_h
        self.last_change_t_h = t_h
        self.refill_rate_factor = 1.0
        self._plan_refill(t_h)
        self._plan_battery(t_h)

    def _replace(self, t_h: float, why: str) -> None:
        self.port.implant(
            t_h, self.concentration, self.prescription(self.dose), f"pump replaced: {why}"
        )
        self.record.pump_replacements.append((t_h, why))
        self.last_fill_t_h = t_h
        self.refill_rate_factor = 1.0
        self._note(t_h, "pump_replacement", f"new pump implanted ({why})")
        self._plan_refill(t_h)
        self._plan_battery(t_h)

    def battery_replacement(self, t_h: float) -> None:
        """Planned pump replacement before the battery's ERI."""
        self.replacement_handle = None
        if self.explanted:
            return
        self.record.battery_replacement_t_h = t_h
        self._replace(t_h, "battery: planned before the predicted ERI")


def _words(keys: tuple[str, ...]) -> tuple[str, ...]:
    """Sign keys as the patient says them (``headache_on_standing`` -> ``headache on standing``)."""
    return tuple(k.replace("_", " ") for k in keys)

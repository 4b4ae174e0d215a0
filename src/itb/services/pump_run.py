"""Run a pump spec: plan it in the domain's command vocabulary, replay it, report.

:func:`run_pump` takes a validated :class:`~itb.services.pump_spec.PumpSpec`
and the catalog. It first plans the whole run (:func:`itb.services.pump_plan.plan`:
every event occurrence becomes a domain command, checked against the pump
preset and the drug library before anything runs), then replays the plan
through the one :class:`~itb.simulation.engine.Environment`, advancing the
pump exactly from command to command, and returns plain frozen data: no I/O,
no printing. A command the pump refuses at its time raises and nothing is
returned.

Pump clock: hours since Monday 00:00 of the patient's local wall time at the
moment it was set (implant, ``set_clock`` events, or ``set_clock = true`` on
a refill or reprogram). A DST change moves the wall clock but not the pump's,
so flex steps shift by an hour in local time until the clock is set again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from itb.domain.delivery import DeliverySegment
from itb.domain.pump import CRITICAL, Pump
from itb.domain.pump.commands import Applied, InjectAccessPort, Refill
from itb.domain.units import HOURS_PER_DAY
from itb.services.catalog import Catalog
from itb.services.pump_check import check_spec
from itb.services.pump_plan import PlannedCommand, PumpPlan, build_pump, plan, replay, run_length_h
from itb.services.pump_spec import PumpSpec
from itb.services.wall_clock import WallClock

__all__ = [
    "AlarmRow",
    "BatteryReport",
    "DrugBalance",
    "EventRow",
    "GapRow",
    "PatientBolusRow",
    "PumpRunResult",
    "RefillRow",
    "result_to_dict",
    "run_pump",
]

_GAP_MIN_H = 1.0
"""Periods without delivery to the CSF shorter than this (hours) are not reported."""
_GAP_WARN_H = 24.0
"""A period without delivery at least this long (hours) is also a warning."""


# ----------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """An alarm raised or cleared."""

    time: str
    t_h: float
    kind: str
    critical: bool
    action: str


@dataclass(frozen=True, slots=True)
class EventRow:
    """One entry of the pump's event log."""

    time: str
    t_h: float
    kind: str
    detail: str
    reason: str


@dataclass(frozen=True, slots=True)
class RefillRow:
    """What the clinician sees after a refill."""

    time: str
    t_h: float
    expected_ml: float
    withdrawn_ml: float
    difference_ml: float
    allowed_ml: float
    verdict: str
    watch: tuple[str, ...]
    """What to watch the patient for now (``overdose``, ``withdrawal``)."""
    advice: str
    fill_volume_ml: float
    concentration_mcg_per_ml: float
    low_reservoir_alarm_time: str | None
    empty_alarm_time: str | None
    """When the calculated reservoir reaches the empty-reservoir *alarm* volume."""
    empty_time: str | None
    """When the calculated reservoir reaches 0 mL, as programmed."""
    earliest_dry_time: str | None
    """The earliest it could really be empty, at the top of the rated accuracy band."""


@dataclass(frozen=True, slots=True)
class PatientBolusRow:
    """A patient's bolus request and the pump's answer."""

    time: str
    t_h: float
    accepted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class GapRow:
    """A period of at least an hour in which no drug reached the CSF."""

    start: str
    end: str
    start_t_h: float
    end_t_h: float
    duration_h: float


@dataclass(frozen=True, slots=True)
class BatteryReport:
    """Battery milestones: reached in the run, and predicted by the battery model at implant."""

    used_fraction: float
    eri_time: str | None
    eri_t_h: float | None
    eos_time: str | None
    eos_t_h: float | None
    predicted_eri_time: str | None
    predicted_eri_t_h: float | None
    predicted_eos_time: str | None
    predicted_eos_t_h: float | None


@dataclass(frozen=True, slots=True)
class DrugBalance:
    """Baclofen in and out since implant, mcg; ``error_mcg`` is 0 up to rounding."""

    filled_mcg: float
    pocket_mcg: float
    access_port_mcg: float
    delivered_csf_mcg: float
    lost_tissue_mcg: float
    withdrawn_mcg: float
    in_reservoir_mcg: float
    in_dead_space_mcg: float
    error_mcg: float


@dataclass(frozen=True, slots=True)
class PumpRunResult:
    """Everything a pump run produced."""

    name: str
    preset: str
    preset_label: str
    timezone: str
    implanted_at: str
    ended_at: str
    days: float
    t_end_h: float
    reservoir_calculated_ml: float
    reservoir_actual_ml: float
    delivered_mcg: float
    initial_concentration_mcg_per_ml: float
    final: Mapping[str, Any]
    alarms: tuple[AlarmRow, ...]
    events: tuple[EventRow, ...]
    refills: tuple[RefillRow, ...]
    patient_boluses: tuple[PatientBolusRow, ...]
    no_delivery: tuple[GapRow, ...]
    battery: BatteryReport
    drug_balance: DrugBalance
    daily_delivered_mcg: tuple[float, ...]
    """Drug reaching the CSF in each 24 h since implant, mcg."""
    delivery: tuple[DeliverySegment, ...] = field(repr=False)
    events_not_reached: int
    warnings: tuple[str, ...]
    population: str | None = None
    """The drug library's population the run was checked against (None: widest limits)."""
    declared_hazard: str | None = None
    """What the run deliberately models, if anything (its limits were reported, not refused)."""


# --------------------------------------------------------------------- running


class _Collect:
    """Gathers a replay's refills, patient boluses, warnings and delivery."""

    def __init__(self, p: PumpPlan, catalog: Catalog) -> None:
        self.plan = p
        self.catalog = catalog
        self.segments: list[DeliverySegment] = []
        self.refills: list[RefillRow] = []
        self.boluses: list[PatientBolusRow] = []
        self.warnings: list[str] = []
        self.last_fill_t_h = 0.0

    def before(self, step: PlannedCommand, pump: Pump) -> None:
        clock = self.plan.clock
        if isinstance(step.command, Refill):
            age_days = (step.t_h - self.last_fill_t_h) / HOURS_PER_DAY
            max_days = self.catalog.drugs.max_days_in_pump
            if age_days > max_days:
                self.warnings.append(
                    f"{clock.iso(step.t_h)}: the drug had been in the pump {age_days:.0f} days, "
                    f"longer than its {max_days:g}-day stability"
                )
            self.last_fill_t_h = step.t_h
            if step.command.into_pocket or (
                step.command.true_concentration_mcg_per_ml is not None
                and step.command.true_concentration_mcg_per_ml
                != step.command.concentration_mcg_per_ml
            ):
                what = "pocket fill" if step.command.into_pocket else "compounding error"
                self.warnings.append(
                    f"{clock.iso(step.t_h)}: {step.where} models a {what} (declared hazard)"
                )
        if isinstance(step.command, InjectAccessPort):
            self.warnings.append(
                f"{clock.iso(step.t_h)}: {step.where} injects into the catheter access port: the "
                "catheter's drug is flushed straight into the CSF (modelled hazard)"
            )

    def after(self, step: PlannedCommand, applied: Applied) -> None:
        clock = self.plan.clock
        if applied.refill is not None:
            report = applied.refill
            d = report.discrepancy
            self.refills.append(
                RefillRow(
                    time=clock.iso(step.t_h),
                    t_h=step.t_h,
                    expected_ml=d.expected_ml,
                    withdrawn_ml=d.withdrawn_ml,
                    difference_ml=d.difference_ml,
                    allowed_ml=d.allowed_ml,
                    verdict=d.verdict.value,
                    watch=d.watch,
                    advice=d.advice,
                    fill_volume_ml=report.fill_volume_ml,
                    concentration_mcg_per_ml=report.concentration_mcg_per_ml,
                    low_reservoir_alarm_time=_iso(clock, report.low_reservoir_alarm_t_h),
                    empty_alarm_time=_iso(clock, report.empty_alarm_t_h),
                    empty_time=_iso(clock, report.empty_t_h),
                    earliest_dry_time=_iso(clock, report.earliest_dry_t_h),
                )
            )
        if applied.patient_bolus is not None:
            o = applied.patient_bolus
            self.boluses.append(PatientBolusRow(clock.iso(o.t_h), o.t_h, o.accepted, o.reason))


def _iso(clock: WallClock, t_h: float | None) -> str | None:
    return None if t_h is None else clock.iso(t_h)


def _end_warnings(pump: Pump, p: PumpPlan, gaps: Sequence[GapRow]) -> list[str]:
    """Every way the run leaves the patient without drug, or the pump stopped or alarming."""
    out: list[str] = []
    clock = p.clock
    if pump.reservoir_actual_ml <= 0.0 < pump.reservoir_calculated_ml:
        out.append(
            "the reservoir is empty but the pump's calculated volume is "
            f"{pump.reservoir_calculated_ml:.2f} mL: it runs dry without knowing"
        )
    if not pump.running:
        reasons = "; ".join(sorted(r.value for r in pump.stop_reasons))
        since = pump.stopped_since_t_h
        when = "" if since is None else f" since {clock.iso(since)}"
        out.append(f"the pump is STOPPED at the end of the run{when}: {reasons}")
    critical = pump.critical_alarms()
    if critical:
        out.append(f"critical alarms active at the end of the run: {', '.join(critical)}")
    long_gaps = [g for g in gaps if g.duration_h >= _GAP_WARN_H]
    if long_gaps:
        total = sum(g.duration_h for g in long_gaps)
        last = long_gaps[-1]
        out.append(
            f"no drug reached the CSF for {total:.0f} h in {len(long_gaps)} period(s) of a day or "
            f"more (the last from {last.start} to {last.end}): the patient goes without baclofen"
        )
    return out


def run_pump(spec: PumpSpec, catalog: Catalog, *, days: float | None = None) -> PumpRunResult:
    """Run ``spec`` for ``days`` (default: the spec's ``days``) and report.

    Raises:
        InvalidValue, NotAllowedForPump, ConcentrationMismatch, HardLimitExceeded,
            SoftLimitNeedsReason: found while planning, before anything runs; the message
            names the spec field.
        PumpStateError: an event the pump refuses at its time (e.g. a bolus while
            another runs); nothing is returned.
    """
    run_days, end_h = run_length_h(spec, days)
    check_spec(spec, catalog)
    p = plan(spec, catalog, end_h=end_h)
    pump = build_pump(p)
    collect = _Collect(p, catalog)
    predicted: tuple[float, float] | None = None

    def before(step: PlannedCommand, pump_now: Pump) -> None:
        collect.before(step, pump_now)

    def after(step: PlannedCommand, applied: Applied) -> None:
        nonlocal predicted
        collect.after(step, applied)
        if step.index is None and predicted is None and step.where == "prescription":
            predicted = pump.predicted_eri_eos_t_h()

    replay(
        p,
        pump,
        catalog,
        until_h=end_h,
        emit=collect.segments.append,
        before=before,
        after=after,
    )
    if predicted is None:
        # No programming at implant: the battery forecast of the first fill's state.
        predicted = _predicted_at_implant(p, catalog)
    warnings = list(p.guard.notes_for_run())
    warnings += [
        f"declared hazard: {line}"
        for e in pump.log.of_kind("declared_hazard")
        for line in (e.detail,)
    ]
    warnings += collect.warnings
    if p.not_reached:
        warnings.append(
            f"{p.not_reached} event(s) fall after the end of the run and were not applied"
        )
    collect.segments.sort(key=lambda s: s.t0_h)
    gaps = _gaps(collect.segments, end_h, p.clock)
    warnings += _end_warnings(pump, p, gaps)
    return _result(
        spec,
        pump,
        p.clock,
        run_days,
        end_h,
        predicted,
        collect.segments,
        collect.refills,
        collect.boluses,
        p.not_reached,
        warnings,
        gaps,
        p,
    )


def _predicted_at_implant(p: PumpPlan, catalog: Catalog) -> tuple[float, float] | None:
    pump = build_pump(p)
    first = p.commands[0]
    replay(
        PumpPlan(p.spec, p.preset, p.catheter, p.clock, p.guard, 0.0, (first,), 0),
        pump,
        catalog,
        until_h=0.0,
    )
    return pump.predicted_eri_eos_t_h()


# -------------------------------------------------------------------- results


def _daily(segments: Sequence[DeliverySegment], end_h: float) -> tuple[float, ...]:
    n = max(1, math.ceil(end_h / HOURS_PER_DAY - 1e-9))
    out = [0.0] * n
    for s in segments:
        t0, t1 = s.t0_h, s.t1_h
        while t0 < t1:
            day = min(int(t0 // HOURS_PER_DAY), n - 1)
            cut = t1 if day == n - 1 else min(t1, (day + 1) * HOURS_PER_DAY)
            out[day] += s.rate_mcg_per_h * (cut - t0)
            t0 = cut
    return tuple(out)


def _gaps(
    segments: Sequence[DeliverySegment], end_h: float, clock: WallClock
) -> tuple[GapRow, ...]:
    gaps: list[GapRow] = []
    covered_to = 0.0
    for s in sorted(segments, key=lambda s: s.t0_h):
        if s.rate_mcg_per_h <= 0.0:
            continue
        if s.t0_h - covered_to >= _GAP_MIN_H:
            gaps.append(_gap(covered_to, s.t0_h, clock))
        covered_to = max(covered_to, s.t1_h)
    if end_h - covered_to >= _GAP_MIN_H:
        gaps.append(_gap(covered_to, end_h, clock))
    return tuple(gaps)


def _gap(a: float, b: float, clock: WallClock) -> GapRow:
    return GapRow(clock.iso(a), clock.iso(b), a, b, b - a)


def _result(
    spec: PumpSpec,
    pump: Pump,
    clock: WallClock,
    run_days: float,
    end_h: float,
    predicted: tuple[float, float] | None,
    segments: list[DeliverySegment],
    refills: list[RefillRow],
    boluses: list[PatientBolusRow],
    not_reached: int,
    warnings: list[str],
    gaps: tuple[GapRow, ...],
    p: PumpPlan,
) -> PumpRunResult:
    def iso_or_none(t: float | None) -> str | None:
        return None if t is None else clock.iso(t)

    ld = pump.ledger
    status: dict[str, Any] = {
        k: list(v) if isinstance(v, tuple) else v for k, v in asdict(pump.status()).items()
    }
    for key in ("eri_t_h", "eos_t_h"):
        status[key.replace("_t_h", "_time")] = iso_or_none(status[key])
    status["time"] = clock.iso(pump.t_h)
    segments.sort(key=lambda s: s.t0_h)
    return PumpRunResult(
        name=spec.name,
        preset=pump.preset.key,
        preset_label=pump.preset.label,
        timezone=spec.pump.timezone,
        implanted_at=clock.iso(0.0),
        ended_at=clock.iso(end_h),
        days=run_days,
        t_end_h=end_h,
        reservoir_calculated_ml=pump.reservoir_calculated_ml,
        reservoir_actual_ml=pump.reservoir_actual_ml,
        delivered_mcg=ld.delivered_csf_mcg,
        initial_concentration_mcg_per_ml=spec.fill.concentration_mcg_per_ml,
        final=status,
        alarms=tuple(
            AlarmRow(clock.iso(a.t_h), a.t_h, a.kind.value, a.kind in CRITICAL, a.action)
            for a in pump.alarm_log
        ),
        events=tuple(
            EventRow(clock.iso(e.t_h), e.t_h, e.kind, e.detail, e.reason) for e in pump.log
        ),
        refills=tuple(refills),
        patient_boluses=tuple(boluses),
        no_delivery=gaps,
        battery=BatteryReport(
            used_fraction=pump.battery_used,
            eri_time=iso_or_none(pump.eri_t_h),
            eri_t_h=pump.eri_t_h,
            eos_time=iso_or_none(pump.eos_t_h),
            eos_t_h=pump.eos_t_h,
            predicted_eri_time=None if predicted is None else clock.iso(predicted[0]),
            predicted_eri_t_h=None if predicted is None else predicted[0],
            predicted_eos_time=None if predicted is None else clock.iso(predicted[1]),
            predicted_eos_t_h=None if predicted is None else predicted[1],
        ),
        drug_balance=DrugBalance(
            filled_mcg=ld.filled_mcg,
            pocket_mcg=ld.pocket_mcg,
            access_port_mcg=ld.access_port_mcg,
            delivered_csf_mcg=ld.delivered_csf_mcg,
            lost_tissue_mcg=ld.lost_tissue_mcg,
            withdrawn_mcg=ld.withdrawn_mcg,
            in_reservoir_mcg=pump.reservoir_actual_ml * pump.reservoir_concentration_mcg_per_ml,
            in_dead_space_mcg=pump.dead_space.mass_mcg,
            error_mcg=pump.balance_error_mcg(),
        ),
        daily_delivered_mcg=_daily(segments, end_h),
        delivery=tuple(segments),
        events_not_reached=not_reached,
        warnings=tuple(warnings),
        population=p.guard.population,
        declared_hazard=p.guard.declared_hazard,
    )


def result_to_dict(result: PumpRunResult, *, include_series: bool = False) -> dict[str, Any]:
    """The result as JSON-ready data; ``include_series`` adds daily totals and segments."""
    out: dict[str, Any] = {
        "name": result.name,
        "preset": result.preset,
        "preset_label": result.preset_label,
        "timezone": result.timezone,
        "implanted_at": result.implanted_at,
        "ended_at": result.ended_at,
        "days": result.days,
        "reservoir_calculated_ml": result.reservoir_calculated_ml,
        "reservoir_actual_ml": result.reservoir_actual_ml,
        "delivered_mcg": result.delivered_mcg,
        "initial_concentration_mcg_per_ml": result.initial_concentration_mcg_per_ml,
        "final": dict(result.final),
        "battery": asdict(result.battery),
        "drug_balance": asdict(result.drug_balance),
        "alarms": [asdict(a) for a in result.alarms],
        "refills": [asdict(r) for r in result.refills],
        "patient_boluses": [asdict(b) for b in result.patient_boluses],
        "no_delivery": [asdict(g) for g in result.no_delivery],
        "events": [asdict(e) for e in result.events],
        "events_not_reached": result.events_not_reached,
        "population": result.population,
        "declared_hazard": result.declared_hazard,
        "warnings": list(result.warnings),
    }
    if include_series:
        out["daily_delivered_mcg"] = list(result.daily_delivered_mcg)
        out["delivery"] = [[s.t0_h, s.t1_h, s.rate_mcg_per_h] for s in result.delivery]
    return out

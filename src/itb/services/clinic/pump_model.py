"""The registry's model of each implanted pump: the command log replayed by the domain.

The registry never stores a pump's settings as columns. Each implant keeps its
command log (:class:`~itb.domain.clinic.records.CommandEntry`); "the pump
now" is the domain's :class:`~itb.domain.pump.Pump` built new at the implant
and given every command at its time, then moved to now. The model is the
clinic's view: the pump runs exactly as programmed at its rated accuracy and
knows no hidden fault, so its reservoir is the *calculated* reservoir a
programmer shows, and its dates are the programmer's dates.

Replaying years of commands for every screen would be slow, so the model after
the last command is kept as a :class:`~itb.domain.clinic.records.PumpSnapshot`
(its state and forecast); a snapshot of another layout is rebuilt by replay.

Model time is hours after the implant instant (``t_h``); registry times are
aware UTC date-times. A command is applied with the drug library of the
patient's population on the day it was given (a child turns into an adult).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itb.domain.clinic.forecast import delivery_profile
from itb.domain.clinic.records import CommandEntry, ImplantRecord, PatientRecord, PumpSnapshot
from itb.domain.clinical.dose_guard import DoseGuard
from itb.domain.clinical.drug_library import population_for
from itb.domain.errors import InvalidValue
from itb.domain.pump import Pump
from itb.domain.pump.codec import (
    STATE_VERSION,
    command_from_data,
    pump_state,
    restore_pump,
)
from itb.domain.pump.commands import Applied, Authorship, FillAtImplant, PumpCommand, Refill, apply
from itb.domain.pump.presets import PumpPreset
from itb.domain.pump.refill import reservoir_forecast
from itb.services.catalog import Catalog
from itb.services.wall_clock import WallClock

__all__ = ["ModelContext", "PumpModel"]

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class ModelContext:
    """What the model of one implant needs: its patient and implant, the catalog's parts."""

    patient: PatientRecord
    implant: ImplantRecord
    preset: PumpPreset
    clock: WallClock

    def t_h(self, at: datetime) -> float:
        """Hours after the implant of an aware date-time."""
        return (at - self.implant.implanted_at).total_seconds() / SECONDS_PER_HOUR

    def at(self, t_h: float) -> datetime:
        """The aware UTC date-time ``t_h`` hours after the implant."""
        return (self.implant.implanted_at + timedelta(hours=t_h)).astimezone(UTC)


class PumpModel:
    """Builds, replays and forecasts the registry's pump models."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # ---------------------------------------------------------------- context

    def context(self, patient: PatientRecord, implant: ImplantRecord) -> ModelContext:
        """The model context of an implant."""
        preset = self.catalog.preset(implant.pump_preset, field="pump_preset")
        return ModelContext(
            patient, implant, preset, WallClock(implant.implanted_at, patient.timezone)
        )

    def guard(self, ctx: ModelContext, at: datetime) -> DoseGuard:
        """The drug library of the patient's population on ``at``."""
        population = population_for(
            self.catalog.library,
            age_years=ctx.patient.age_years(at.date()),
            origin=ctx.patient.origin,
        )
        return self.catalog.guard(population)

    def new_pump(self, ctx: ModelContext) -> Pump:
        """The implant's pump, new and empty, at the implant instant, delivering exactly as
        programmed (the clinic knows no better: a pump's error shows only as a refill
        discrepancy)."""
        catheter = self.catalog.catheter(
            ctx.implant.catheter_family, ctx.implant.catheter_length_cm, field="catheter"
        )
        return Pump(
            ctx.preset,
            catheter,
            t_h=0.0,
            accuracy_factor=1.0,
            pump_clock_offset_h=ctx.clock.pump_clock_offset_h(0.0),
            guard=self.guard(ctx, ctx.implant.implanted_at),
        )

    # ---------------------------------------------------------------- commands

    def apply(
        self, ctx: ModelContext, pump: Pump, command: PumpCommand, at: datetime, by: Authorship
    ) -> Applied:
        """Move the model to ``at`` and apply ``command`` with the library of that day.

        Raises:
            InvalidValue: ``at`` is before the model's present time.
            ITBError: the pump or the drug library refuses the command (nothing changed).
        """
        t_h = ctx.t_h(at)
        if t_h < pump.t_h - 1e-9:
            raise InvalidValue(
                "at",
                at.isoformat(timespec="minutes"),
                f"on or after {ctx.at(pump.t_h).isoformat(timespec='minutes')} "
                "(the pump's last recorded command)",
            )
        pump.advance_to(max(t_h, pump.t_h))
        pump.guard = self.guard(ctx, at)
        return apply(pump, command, pump.t_h, tolerance=self.catalog.refill_tolerance, by=by)

    def replay(self, ctx: ModelContext, entries: Iterable[CommandEntry]) -> tuple[Pump, int]:
        """The model after every entry, and the last entry's ``seq`` (0: none)."""
        pump = self.new_pump(ctx)
        seq = 0
        for e in entries:
            by = Authorship(e.entered_by, e.role, e.reason, e.verified_by, e.override_reason)
            self.apply(ctx, pump, command_from_data(e.command, where=f"command {e.seq}"), e.at, by)
            seq = e.seq
        return pump, seq

    def restore(self, ctx: ModelContext, snapshot: PumpSnapshot) -> Pump | None:
        """The model of a snapshot (None: a snapshot of another layout; replay instead)."""
        if snapshot.state.get("version") != STATE_VERSION:
            return None
        catheter = self.catalog.catheter(
            ctx.implant.catheter_family, ctx.implant.catheter_length_cm, field="catheter"
        )
        return restore_pump(
            snapshot.state, ctx.preset, catheter, guard=self.guard(ctx, snapshot.at)
        )

    def at_time(self, ctx: ModelContext, pump: Pump, at: datetime) -> Pump:
        """Move the model to ``at`` (no earlier than its present time)."""
        t_h = ctx.t_h(at)
        if t_h > pump.t_h:
            pump.advance_to(t_h)
        return pump

    # ---------------------------------------------------------------- snapshot

    def snapshot(
        self, ctx: ModelContext, pump: Pump, *, seq: int, last_fill_at: datetime | None
    ) -> PumpSnapshot:
        """The model after command ``seq``: its state and the programmer's dates."""
        f = reservoir_forecast(pump)
        profile = delivery_profile(pump)
        eri = pump.predicted_eri_eos_t_h()
        stability = (
            None
            if last_fill_at is None
            else last_fill_at + timedelta(days=self.catalog.drugs.max_days_in_pump)
        )
        program = pump.prescription.program
        dose = program.daily_dose_mcg() if ctx.preset.programmable else None
        if not ctx.preset.programmable:
            dose = ctx.preset.nominal_flow_ml_per_day * pump.labelled_concentration_mcg_per_ml

        def when(t_h: float | None) -> datetime | None:
            return None if t_h is None else ctx.at(t_h)

        return PumpSnapshot(
            implant_id=ctx.implant.id,
            seq=seq,
            at=ctx.at(pump.t_h),
            state=pump_state(pump),
            reservoir_calculated_ml=pump.reservoir_calculated_ml,
            concentration_mcg_per_ml=pump.labelled_concentration_mcg_per_ml,
            dose_mcg_per_day=dose,
            low_alarm_at=when(f.low_alarm_t_h),
            empty_at=when(f.empty_t_h),
            earliest_dry_at=when(f.earliest_dry_t_h),
            stability_until=stability,
            eri_at=when(pump.eri_t_h if pump.eri_t_h is not None else (eri[0] if eri else None)),
            eri_reached=pump.eri_t_h is not None and pump.eri_t_h <= pump.t_h,
            running=pump.running,
            stop_reason="; ".join(sorted(r.value for r in pump.stop_reasons)),
            active_alarms=tuple(sorted(a.value for a in pump.active_alarms)),
            critical_alarms=pump.critical_alarms(),
            last_fill_at=last_fill_at,
            profile=None if profile is None else profile.to_data(),
        )

    @staticmethod
    def is_fill(command: PumpCommand) -> bool:
        """A command that puts new drug in the reservoir (the stability clock restarts)."""
        return isinstance(command, (FillAtImplant, Refill))

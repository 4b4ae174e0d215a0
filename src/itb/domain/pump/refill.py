"""Refill: withdraw the residual, judge the discrepancy, fill, reprogram, forecast.

Procedure ([D58]): interrogate; remove all old drug; a difference between
expected and actual residual suggests a system problem; fill; program the new
reservoir volume; the programmer gives the new low-reservoir alarm date.

The verdict reads the difference in both directions, with the causes each
direction can have and the patient watch each needs:

- **less withdrawn than expected**: more drug left the reservoir than was
  programmed: over-infusion beyond the pump's rated band ([D45][D46]), an
  earlier pocket fill (the last fill went under the skin, so the reservoir
  held less than recorded, [D39][D40]), or a leak at the reservoir; watch for
  overdose (over-infusion, drug absorbed from the pocket) *and* withdrawal
  (a pocket fill or a leak leaves the patient short);
- **more withdrawn than expected**: less drug left than programmed:
  under-delivery (catheter occlusion or kink, a motor stall or stop, [D95]
  [D26]) or CSF drawn back into the reservoir ([D18]); watch for withdrawal;
- **found empty**: never "within tolerance": the patient may have gone
  without drug since the reservoir ran dry; watch for withdrawal.

The allowed difference is the pump's rated accuracy band (its preset) of the
volume programmed since the last fill, never less than the syringe-reading
floor ([D42]).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from itb.domain.errors import ConcentrationMismatch, InvalidValue
from itb.domain.provenance import sourced
from itb.domain.pump.prescription import Bolus, Prescription
from itb.domain.pump.pump import Pump, Withdrawal
from itb.domain.pump.session import ChangeRow, ProgrammingSession
from itb.domain.units import HOURS_PER_DAY, HOURS_PER_YEAR, require_non_negative

__all__ = [
    "FORECAST_HORIZON_H",
    "Discrepancy",
    "DiscrepancyTolerance",
    "RefillReport",
    "ReservoirForecast",
    "Verdict",
    "Watch",
    "calculated_volume_at",
    "judge_discrepancy",
    "judge_residual",
    "parse_discrepancy_tolerance",
    "perform_refill",
    "reservoir_forecast",
    "time_calculated_volume_reaches",
]

FORECAST_HORIZON_H = 3 * HOURS_PER_YEAR
"""How far ahead the programmer's dates are walked, h (later: beyond the forecast)."""
"""Programmer forecasts look this far ahead (longer than any reservoir lasts), h."""


class Verdict(StrEnum):
    """What a refill discrepancy means."""

    WITHIN_TOLERANCE = "within tolerance"
    LESS_THAN_EXPECTED = "less withdrawn than expected"
    MORE_THAN_EXPECTED = "more withdrawn than expected"
    FOUND_EMPTY = "reservoir found empty"


Watch = Literal["overdose", "withdrawal"]
"""What the patient is watched for after a discrepancy."""


@dataclass(frozen=True, slots=True)
class DiscrepancyTolerance:
    """The floor of a refill discrepancy: syringe-read residuals are imprecise ([D42]).

    The rated accuracy band that scales with the volume comes from the pump's
    preset (``accuracy_band_pct``), so each pump model is judged by its own band.
    """

    syringe_reading_ml: float
    """Differences up to this are syringe-reading imprecision, mL."""


def parse_discrepancy_tolerance(table: Mapping[str, Any]) -> DiscrepancyTolerance:
    """Parse ``refill.toml``'s ``[discrepancy]`` table."""
    d = table["discrepancy"]
    return DiscrepancyTolerance(
        syringe_reading_ml=sourced(d, "syringe_reading_ml", where="refill.discrepancy").value,
    )


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """Expected vs withdrawn residual, its size, its verdict, causes, watch and advice.

    Attributes:
        expected_ml: the pump's calculated residual, mL.
        withdrawn_ml: the residual withdrawn, mL.
        difference_ml: withdrawn - expected, mL.
        difference_pct_of_expected: the difference as % of the expected (None at 0).
        implied_rate_error_pct: how much faster than programmed the pump ran since the
            last fill, % (None without the programmed volume).
        allowed_ml: the difference allowed (rated band of the volume programmed since
            the fill, at least the syringe floor), mL.
        verdict: the verdict.
        causes: what this direction of difference can mean, with sources.
        watch: what to watch the patient for now.
        advice: the clinical follow-up, in words.
        programmed_since_fill_ml: volume programmed since the last fill, mL (None: not
            given).
        filled_ml: the calculated volume the last fill left, mL (None: not given); what
            the pump really used is this minus the withdrawn residual.
    """

    expected_ml: float
    withdrawn_ml: float
    difference_ml: float
    difference_pct_of_expected: float | None
    implied_rate_error_pct: float | None
    allowed_ml: float
    verdict: Verdict
    causes: tuple[str, ...]
    watch: tuple[Watch, ...]
    advice: str
    programmed_since_fill_ml: float | None
    filled_ml: float | None


_LESS_CAUSES = (
    "over-infusion: the pump delivered more than programmed, beyond its rated band [D45][D46]",
    "an earlier pocket fill: drug injected under the skin, not into the reservoir [D39][D40]",
    "a leak at the reservoir or its septum",
)
_MORE_CAUSES = (
    "under-delivery: a catheter occlusion or kink [D95]",
    "a motor stall, or the pump stopped for a time [D26][D24]",
    "CSF drawn back into the reservoir (seen after hyperbaric exposure) [D18]",
)
_EMPTY_CAUSES = (
    "the reservoir ran dry before the refill: a late refill, or a pump that delivered more "
    "than programmed [D45][D46]",
    "an earlier pocket fill or a leak, so the reservoir held less than recorded [D39][D40]",
)


def judge_discrepancy(
    expected_ml: float,
    withdrawn_ml: float,
    tolerance: DiscrepancyTolerance,
    programmed_since_fill_ml: float | None = None,
    *,
    accuracy_band_pct: float,
    calculated_empty_for_h: float | None = None,
    filled_ml: float | None = None,
) -> Discrepancy:
    """Judge a residual discrepancy.

    Args:
        expected_ml: the calculated residual, mL.
        withdrawn_ml: the residual withdrawn, mL.
        tolerance: the syringe-reading floor.
        programmed_since_fill_ml: volume programmed since the last fill, mL (the
            band applies to it; without it, to the expected residual).
        accuracy_band_pct: the pump's rated accuracy band, %.
        calculated_empty_for_h: how long the pump's calculated reservoir has read
            empty, h (an expected-empty reservoir is still a finding).
        filled_ml: the calculated volume the last fill left, mL (kept with the verdict).
    """
    require_non_negative("expected_ml", expected_ml)
    require_non_negative("withdrawn_ml", withdrawn_ml)
    require_non_negative("accuracy_band_pct", accuracy_band_pct)
    base = programmed_since_fill_ml if programmed_since_fill_ml is not None else expected_ml
    allowed = max(accuracy_band_pct / 100.0 * base, tolerance.syringe_reading_ml)
    diff = withdrawn_ml - expected_ml
    pct = 100.0 * diff / expected_ml if expected_ml > 0 else None
    implied = (
        100.0 * (expected_ml - withdrawn_ml) / programmed_since_fill_ml
        if programmed_since_fill_ml
        else None
    )
    causes: tuple[str, ...]
    watch: tuple[Watch, ...]
    if withdrawn_ml == 0.0 and (expected_ml > 0.0 or calculated_empty_for_h is not None):
        # An empty reservoir hides how long it has been empty: never "within tolerance".
        verdict = Verdict.FOUND_EMPTY
        causes, watch = _EMPTY_CAUSES, ("withdrawal",)
        if expected_ml <= tolerance.syringe_reading_ml and calculated_empty_for_h is not None:
            advice = (
                "The reservoir was empty, as the pump calculated: its calculated volume has "
                f"read empty for {calculated_empty_for_h / HOURS_PER_DAY:.1f} days, so the "
                "patient has had no drug for at least that long. Check now for withdrawal signs "
                "and treat them; refill, and find out why the refill came late."
            )
        else:
            advice = (
                "The reservoir was empty although drug was expected: it ran dry at an unknown "
                "time, so the patient may have gone without drug. Check now for withdrawal "
                "signs; suspect over-infusion, an earlier pocket fill or a leak; interrogate the "
                "pump and contact the manufacturer [D45][D46]."
            )
    elif abs(diff) <= allowed:
        verdict = Verdict.WITHIN_TOLERANCE
        causes, watch = (), ()
        advice = "No action: within the pump's rated accuracy and syringe reading."
    elif diff < 0:
        verdict = Verdict.LESS_THAN_EXPECTED
        causes, watch = _LESS_CAUSES, ("overdose", "withdrawal")
        advice = (
            "More drug left the reservoir than programmed: over-infusion, an earlier pocket "
            "fill, or a leak. Check the patient now for overdose signs (over-infusion, drug "
            "absorbed from the pocket) and for withdrawal signs (a pocket fill or a leak leaves "
            "the patient short); interrogate and log the event, contact the manufacturer, "
            "consider a rotor study, and shorten the next refill interval [D45][D46][D39]."
        )
    else:
        verdict = Verdict.MORE_THAN_EXPECTED
        causes, watch = _MORE_CAUSES, ("withdrawal",)
        advice = (
            "Less drug left the reservoir than programmed: under-delivery (catheter occlusion "
            "or kink, a motor stall or stop) or CSF drawn back into the reservoir. Check the "
            "patient now for withdrawal signs; interrogate the pump for stall events, and "
            "investigate the catheter (rotor study, CAP aspiration, imaging) [D95][D18]."
        )
    return Discrepancy(
        expected_ml, withdrawn_ml, diff, pct, implied, allowed, verdict, causes, watch, advice,
        programmed_since_fill_ml, filled_ml,
    )  # fmt: skip


def _with_patient_boluses(
    pieces: Iterable[tuple[float, float, float]], prescription: Prescription
) -> Iterator[tuple[float, float, float]]:
    pb = prescription.patient_bolus
    extra = (
        0.0
        if pb is None
        else pb.max_extra_mcg_per_day / prescription.concentration_mcg_per_ml / HOURS_PER_DAY
    )
    return ((a, b, r + extra) for a, b, r in pieces)


def time_calculated_volume_reaches(
    pump: Pump,
    target_ml: float,
    *,
    include_max_patient_boluses: bool = True,
    horizon_h: float = FORECAST_HORIZON_H,
) -> float | None:
    """When (hours) the pump's calculated reservoir falls to ``target_ml``, if within the horizon.

    Walks the present program exactly; with ``include_max_patient_boluses``
    every allowed patient bolus is assumed taken (as the Prometra controller
    does for its refill date, [D73]).
    """
    return _times_calculated_volume_reaches(
        pump,
        (target_ml,),
        include_max_patient_boluses=include_max_patient_boluses,
        horizon_h=horizon_h,
    )[0]


def _times_calculated_volume_reaches(
    pump: Pump,
    targets_ml: tuple[float, ...],
    *,
    include_max_patient_boluses: bool = True,
    horizon_h: float = FORECAST_HORIZON_H,
) -> list[float | None]:
    """:func:`time_calculated_volume_reaches` for several targets in one walk of the
    program (each answer is the one a walk of its own would give)."""
    volume = pump.reservoir_calculated_ml
    out: list[float | None] = [pump.t_h if volume <= tgt else None for tgt in targets_ml]
    pending = [i for i, tgt in enumerate(targets_ml) if volume > tgt]
    if not pending or not pump.running:
        return out
    pieces = pump.forecast_commanded(pump.t_h, pump.t_h + horizon_h)
    if include_max_patient_boluses:
        pieces = _with_patient_boluses(pieces, pump.prescription)
    for t0, t1, rate in pieces:
        used = rate * (t1 - t0)
        if rate > 0.0:
            left = volume - used
            for i in [i for i in pending if left <= targets_ml[i]]:
                out[i] = t0 + (volume - targets_ml[i]) / rate
                pending.remove(i)
            if not pending:
                break
        volume -= used
    return out


def calculated_volume_at(
    pump: Pump, t_h: float, *, include_max_patient_boluses: bool = False
) -> float:
    """The calculated reservoir volume (mL) expected at a future time ``t_h``."""
    if t_h < pump.t_h:
        raise InvalidValue("t_h", t_h, f">= the pump's present time {pump.t_h:g}")
    if not pump.running:
        return pump.reservoir_calculated_ml
    pieces = pump.forecast_commanded(pump.t_h, t_h)
    if include_max_patient_boluses:
        pieces = _with_patient_boluses(pieces, pump.prescription)
    used = math.fsum(r * (b - a) for a, b, r in pieces)
    return max(0.0, pump.reservoir_calculated_ml - used)


@dataclass(frozen=True, slots=True)
class RefillReport:
    """What the clinician sees after a refill.

    Attributes:
        t_h: when, h.
        withdrawal: expected and withdrawn residual.
        discrepancy: the verdict on them.
        fill_volume_ml, concentration_mcg_per_ml: what was filled.
        changes: programming changes made at the refill.
        low_reservoir_alarm_t_h: when the calculated reservoir reaches the
            low-reservoir alarm volume (every allowed patient bolus taken), h.
        empty_alarm_t_h: when it reaches the empty-reservoir alarm volume, h.
        empty_t_h: when it reaches 0 mL (calculated, as programmed), h.
        earliest_dry_t_h: the earliest the reservoir could really be empty, the
            pump running at the top of its rated accuracy band, h.
    """

    t_h: float
    withdrawal: Withdrawal
    discrepancy: Discrepancy
    fill_volume_ml: float
    concentration_mcg_per_ml: float
    changes: tuple[ChangeRow, ...]
    low_reservoir_alarm_t_h: float | None
    empty_alarm_t_h: float | None
    empty_t_h: float | None
    earliest_dry_t_h: float | None

    def reforecast(self, pump: Pump) -> RefillReport:
        """The same report with the forecast dates recomputed from the pump as it is now."""
        low, empty_alarm, empty, earliest = _forecast(pump)
        return replace(
            self,
            low_reservoir_alarm_t_h=low,
            empty_alarm_t_h=empty_alarm,
            empty_t_h=empty,
            earliest_dry_t_h=earliest,
        )


@dataclass(frozen=True, slots=True)
class ReservoirForecast:
    """When the calculated reservoir reaches its alarm volumes and empty, h (None: not
    within the forecast horizon, or the pump is stopped).

    Attributes:
        low_alarm_t_h: the low-reservoir alarm volume (every allowed patient bolus taken).
        empty_alarm_t_h: the empty-reservoir alarm volume.
        empty_t_h: 0 mL, as programmed.
        earliest_dry_t_h: the earliest it could really be empty, the pump running at the
            top of its rated accuracy band.
    """

    low_alarm_t_h: float | None
    empty_alarm_t_h: float | None
    empty_t_h: float | None
    earliest_dry_t_h: float | None


def reservoir_forecast(pump: Pump) -> ReservoirForecast:
    """The programmer's reservoir dates for ``pump`` as it is now."""
    return ReservoirForecast(*_forecast(pump))


def _forecast(pump: Pump) -> tuple[float | None, float | None, float | None, float | None]:
    """Low-reservoir alarm, empty alarm, empty and earliest-dry times (h) from now."""
    low, empty_alarm, empty = _times_calculated_volume_reaches(
        pump, (pump.low_reservoir_alarm_ml, pump.preset.empty_reservoir_alarm_ml, 0.0)
    )
    earliest = (
        None
        if empty is None
        else pump.t_h + (empty - pump.t_h) / (1.0 + pump.preset.accuracy_band_pct / 100.0)
    )
    return low, empty_alarm, empty, earliest


def judge_residual(pump: Pump, withdrawn_ml: float, tolerance: DiscrepancyTolerance) -> Discrepancy:
    """The verdict on a residual withdrawn now from ``pump`` (before the withdrawal is
    applied): against the pump's calculated residual, allowed the pump's rated band of
    what it was programmed to deliver since the last fill (at least the syringe floor).

    The one judgement of a withdrawn residual: the pump's own refill procedure and the
    clinic registry (a residual a nurse typed in) both use it.
    """
    empty_since = pump.calculated_empty_since_t_h
    return judge_discrepancy(
        pump.reservoir_calculated_ml,
        withdrawn_ml,
        tolerance,
        pump.ledger.commanded_ml - pump.commanded_at_last_fill_ml,
        accuracy_band_pct=pump.preset.accuracy_band_pct,
        calculated_empty_for_h=None if empty_since is None else pump.t_h - empty_since,
        filled_ml=pump.calculated_at_last_fill_ml,
    )


def perform_refill(
    pump: Pump,
    t_h: float,
    *,
    fill_volume_ml: float,
    concentration_mcg_per_ml: float,
    tolerance: DiscrepancyTolerance,
    new_prescription: Prescription | None = None,
    bridge_bolus: bool = False,
    true_concentration_mcg_per_ml: float | None = None,
    into_pocket: bool = False,
    clinician: str = "",
    verified_by: str | None = None,
    override_reason: str | None = None,
    reason: str = "scheduled refill",
) -> RefillReport:
    """The whole refill: interrogate, withdraw, judge, fill, reprogram, forecast.

    A concentration change needs ``new_prescription`` at the new concentration;
    ``bridge_bolus`` then pushes the old drug out of the dead space at the
    present dose rate so that the daily dose stays continuous.

    Everything that can be refused is checked first: a refused refill changes
    nothing (no alarm acknowledged, nothing withdrawn).

    Raises:
        InvalidValue, ReservoirOverfill, ConcentrationMismatch, DoseOutOfRange,
        HardLimitExceeded, SoftLimitNeedsReason, NotAllowedForPump: nothing is changed.
    """
    pump.require_now(t_h)
    old_conc = pump.reservoir_concentration_mcg_per_ml or pump.labelled_concentration_mcg_per_ml
    changing = concentration_mcg_per_ml != pump.labelled_concentration_mcg_per_ml
    pump.check_fill(
        fill_volume_ml,
        concentration_mcg_per_ml,
        true_concentration_mcg_per_ml=true_concentration_mcg_per_ml,
        into_pocket=into_pocket,
        after_withdrawal=True,
    )
    if changing and new_prescription is None and pump.preset.programmable:
        raise InvalidValue(
            "prescription",
            None,
            f"a prescription at {concentration_mcg_per_ml:g} mcg/mL when the concentration changes",
        )
    if new_prescription is not None and (
        new_prescription.concentration_mcg_per_ml != concentration_mcg_per_ml
    ):
        raise ConcentrationMismatch(
            new_prescription.concentration_mcg_per_ml, concentration_mcg_per_ml
        )
    if new_prescription is not None:
        pump.validate_prescription(
            new_prescription,
            held_concentration_mcg_per_ml=concentration_mcg_per_ml,
            override_reason=override_reason,
        )
    dose_before = pump.prescription.program.daily_dose_mcg()
    bridge = (
        Bolus.bridge(pump.dead_space_ml, old_conc, dose_before)
        if bridge_bolus and changing and dose_before > 0 and pump.preset.programmable
        else None
    )
    if bridge is not None:
        pump.validate_bolus(bridge)
    # Everything that can be refused has been checked: from here the refill runs through.
    pump.interrogate(t_h)
    discrepancy = judge_residual(pump, pump.reservoir_actual_ml, tolerance)
    withdrawal = pump.withdraw_residual(t_h)
    pump.fill(
        t_h,
        fill_volume_ml,
        concentration_mcg_per_ml,
        true_concentration_mcg_per_ml=true_concentration_mcg_per_ml,
        into_pocket=into_pocket,
        reason=reason,
    )
    changes: tuple[ChangeRow, ...] = ()
    if pump.preset.programmable and (new_prescription is not None or bridge is not None):
        session = ProgrammingSession(pump, t_h, clinician=clinician, reason=reason)
        if new_prescription is not None:
            session.stage_prescription(new_prescription, reason, override_reason=override_reason)
        if bridge is not None:
            session.stage_bolus(
                bridge,
                "bridge bolus: keep the daily dose continuous across the concentration change",
            )
        if verified_by:
            session.verify(verified_by)
        changes = tuple(session.commit(t_h))
    low, empty_alarm, empty, earliest = _forecast(pump)
    return RefillReport(
        t_h=t_h,
        withdrawal=withdrawal,
        discrepancy=discrepancy,
        fill_volume_ml=fill_volume_ml,
        concentration_mcg_per_ml=concentration_mcg_per_ml,
        changes=changes,
        low_reservoir_alarm_t_h=low,
        empty_alarm_t_h=empty_alarm,
        empty_t_h=empty,
        earliest_dry_t_h=earliest,
    )

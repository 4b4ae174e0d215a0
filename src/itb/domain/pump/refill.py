"""Refill: withdraw the residual, judge the discrepancy, fill, reprogram, forecast.

Procedure ([D58]): interrogate; remove all old drug; a difference
between expected and actual residual suggests a system problem; fill; program
the new reservoir volume; the programmer gives the new low-reservoir alarm
date. Less withdrawn than expected may mean over-infusion (beyond the rated
14.5 %, [D45][D46]) or a leak; more than expected may mean under-delivery
(occlusion, stall) or a pocket fill.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from itb.domain.errors import ConcentrationMismatch, InvalidValue, ReservoirOverfill
from itb.domain.provenance import sourced
from itb.domain.pump.prescription import Bolus, Prescription
from itb.domain.pump.pump import Pump, Withdrawal
from itb.domain.pump.session import ChangeRow, ProgrammingSession
from itb.domain.units import HOURS_PER_DAY, require_non_negative

__all__ = [
    "Discrepancy",
    "DiscrepancyTolerance",
    "RefillReport",
    "Verdict",
    "calculated_volume_at",
    "judge_discrepancy",
    "parse_discrepancy_tolerance",
    "perform_refill",
    "time_calculated_volume_reaches",
]


class Verdict(StrEnum):
    """What a refill discrepancy means."""

    WITHIN_TOLERANCE = "within tolerance"
    LESS_THAN_EXPECTED = "less withdrawn than expected"
    MORE_THAN_EXPECTED = "more withdrawn than expected"
    FOUND_EMPTY = "reservoir found empty"


@dataclass(frozen=True, slots=True)
class DiscrepancyTolerance:
    """Tolerance for a refill discrepancy."""

    rate_tolerance_pct: float
    """Allowed difference as % of the programmed volume delivered since the last fill."""
    syringe_reading_ml: float
    """Differences up to this are syringe-reading imprecision, mL."""


def parse_discrepancy_tolerance(table: Mapping[str, Any]) -> DiscrepancyTolerance:
    """Parse ``refill.toml``'s ``[discrepancy]`` table."""
    d = table["discrepancy"]
    return DiscrepancyTolerance(
        rate_tolerance_pct=sourced(d, "rate_tolerance_pct", where="refill.discrepancy").value,
        syringe_reading_ml=sourced(d, "syringe_reading_ml", where="refill.discrepancy").value,
    )


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """Expected vs withdrawn residual, its size and its verdict with advice."""

    expected_ml: float
    withdrawn_ml: float
    difference_ml: float
    difference_pct_of_expected: float | None
    implied_rate_error_pct: float | None
    allowed_ml: float
    verdict: Verdict
    advice: str


def judge_discrepancy(
    expected_ml: float,
    withdrawn_ml: float,
    tolerance: DiscrepancyTolerance,
    programmed_since_fill_ml: float | None = None,
) -> Discrepancy:
    """Judge a residual discrepancy.

    The allowed difference is ``rate_tolerance_pct`` of the programmed volume
    since the last fill (or of the expected residual when that is unknown), and
    never less than the syringe-reading floor.
    """
    require_non_negative("expected_ml", expected_ml)
    require_non_negative("withdrawn_ml", withdrawn_ml)
    base = programmed_since_fill_ml if programmed_since_fill_ml is not None else expected_ml
    allowed = max(tolerance.rate_tolerance_pct / 100.0 * base, tolerance.syringe_reading_ml)
    diff = withdrawn_ml - expected_ml
    pct = 100.0 * diff / expected_ml if expected_ml > 0 else None
    implied = (
        100.0 * (expected_ml - withdrawn_ml) / programmed_since_fill_ml
        if programmed_since_fill_ml
        else None
    )
    if withdrawn_ml == 0.0 and expected_ml > tolerance.syringe_reading_ml:
        # An empty reservoir hides how long it has been empty: never "within tolerance".
        verdict = Verdict.FOUND_EMPTY
        advice = (
            "The reservoir was empty although drug was expected: it ran dry at an unknown time, "
            "so the patient may have gone without drug. Check now for withdrawal signs, "
            "suspect over-infusion or a leak, interrogate the pump and contact the manufacturer "
            "([D45][D46])."
        )
    elif abs(diff) <= allowed:
        verdict = Verdict.WITHIN_TOLERANCE
        advice = "No action: within the pump's rated accuracy and syringe reading."
    elif diff < 0:
        verdict = Verdict.LESS_THAN_EXPECTED
        advice = (
            "Possible over-infusion (pump delivering more than programmed) or leak: "
            "check the patient for overdose signs, interrogate and log the event, contact the "
            "manufacturer, and consider a rotor study; shorten the next refill interval "
            "([D45][D46])."
        )
    else:
        verdict = Verdict.MORE_THAN_EXPECTED
        advice = (
            "Possible under-delivery (catheter occlusion or kink, motor stall) or a previous "
            "pocket fill: check the patient for withdrawal signs, interrogate the pump for stall "
            "events, and investigate the catheter (rotor study, CAP aspiration, imaging; "
            "[D95])."
        )
    return Discrepancy(expected_ml, withdrawn_ml, diff, pct, implied, allowed, verdict, advice)


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
    horizon_h: float = 3 * 365.25 * HOURS_PER_DAY,
) -> float | None:
    """When (hours) the pump's calculated reservoir falls to ``target_ml``, if within the horizon.

    Walks the present program exactly; with ``include_max_patient_boluses``
    every allowed patient bolus is assumed taken (as the Prometra controller
    does for its refill date, [D73]).
    """
    volume = pump.reservoir_calculated_ml
    if volume <= target_ml:
        return pump.t_h
    pieces = pump.forecast_commanded(pump.t_h, pump.t_h + horizon_h)
    if include_max_patient_boluses:
        pieces = _with_patient_boluses(pieces, pump.prescription)
    if not pump.running:
        return None
    for t0, t1, rate in pieces:
        used = rate * (t1 - t0)
        if rate > 0.0 and volume - used <= target_ml:
            return t0 + (volume - target_ml) / rate
        volume -= used
    return None


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
    """What the clinician sees after a refill."""

    t_h: float
    withdrawal: Withdrawal
    discrepancy: Discrepancy
    fill_volume_ml: float
    concentration_mcg_per_ml: float
    changes: tuple[ChangeRow, ...]
    low_reservoir_alarm_t_h: float | None
    empty_alarm_t_h: float | None


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
    reason: str = "scheduled refill",
) -> RefillReport:
    """The whole refill: interrogate, withdraw, judge, fill, reprogram, forecast.

    A concentration change needs ``new_prescription`` at the new concentration;
    ``bridge_bolus`` then pushes the old drug out of the dead space at the
    present dose rate so that the daily dose stays continuous.

    Raises:
        ReservoirOverfill, ConcentrationMismatch, DoseOutOfRange: nothing is changed
            when the fill or the program is refused.
    """
    pump.interrogate(t_h)
    programmed_since_fill = pump.ledger.commanded_ml - pump.commanded_at_last_fill_ml
    old_conc = pump.reservoir_concentration_mcg_per_ml or pump.labelled_concentration_mcg_per_ml
    changing = concentration_mcg_per_ml != pump.labelled_concentration_mcg_per_ml
    if changing and new_prescription is None and pump.preset.programmable:
        raise InvalidValue(
            "new_prescription",
            None,
            f"a prescription at {concentration_mcg_per_ml:g} mcg/mL when the concentration changes",
        )
    if new_prescription is not None and (
        new_prescription.concentration_mcg_per_ml != concentration_mcg_per_ml
    ):
        raise ConcentrationMismatch(
            new_prescription.concentration_mcg_per_ml, concentration_mcg_per_ml
        )
    if fill_volume_ml > pump.preset.reservoir_ml:
        raise ReservoirOverfill(
            "fill volume_ml", fill_volume_ml, f"<= {pump.preset.reservoir_ml:g} (reservoir)"
        )
    if new_prescription is not None:
        pump.validate_prescription(
            new_prescription, held_concentration_mcg_per_ml=concentration_mcg_per_ml
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
    withdrawal = pump.withdraw_residual(t_h)
    discrepancy = judge_discrepancy(
        withdrawal.expected_ml, withdrawal.withdrawn_ml, tolerance, programmed_since_fill
    )
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
            session.stage_prescription(new_prescription, reason)
        if bridge is not None:
            session.stage_bolus(
                bridge,
                "bridge bolus: keep the daily dose continuous across the concentration change",
            )
        changes = tuple(session.commit(t_h))
    low = time_calculated_volume_reaches(pump, pump.low_reservoir_alarm_ml)
    empty = time_calculated_volume_reaches(pump, pump.preset.empty_reservoir_alarm_ml)
    return RefillReport(
        t_h,
        withdrawal,
        discrepancy,
        fill_volume_ml,
        concentration_mcg_per_ml,
        changes,
        low,
        empty,
    )

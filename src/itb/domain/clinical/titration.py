"""Label titration rules after implant, as a planner proposing the next dose step.

Rules (numbers in ``itb/data/titration.toml``):

- initial daily dose: 2 x the effective screening dose per 24 h, or 1 x if its
  effect lasted more than 8 h [C12][C13][C15][C17];
- no increase in the first 24 h after implant [C12]; at most one change per 24 h;
- titration steps: spinal 10-30 %, cerebral and children 5-15 % per day [C12][C13][C17];
- maintenance increases: spinal 10-40 %, cerebral (and children) 5-20 % [C12][C13];
- decrease by 10-20 % for side effects [C12][C13].

Every call returns a :class:`TitrationStep` with the proposed dose, the allowed
range, the reason and its source; bad input raises :class:`InvalidValue`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from itb.domain.errors import HardLimitExceeded, InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.units import require_non_negative, require_positive

__all__ = [
    "Action",
    "Assessment",
    "Phase",
    "RuleGroup",
    "StepRange",
    "TitrationRules",
    "TitrationStep",
    "initial_daily_dose",
    "parse_titration_rules",
    "plan_next_step",
    "rule_group",
]

RuleGroup = Literal["spinal", "cerebral", "pediatric"]


class Phase(StrEnum):
    """Where the patient is in the course after implant."""

    TITRATION = "titration"
    MAINTENANCE = "maintenance"


class Assessment(StrEnum):
    """The clinician's assessment of the present dose."""

    INADEQUATE = "inadequate"
    ADEQUATE = "adequate"
    SIDE_EFFECTS = "side_effects"


class Action(StrEnum):
    """What the planner proposes."""

    START = "start"
    INCREASE = "increase"
    HOLD = "hold"
    DECREASE = "decrease"


@dataclass(frozen=True, slots=True)
class StepRange:
    """An allowed range of fractional change with the usual (default) step."""

    low: Sourced
    high: Sourced
    default: Sourced

    def contains(self, fraction: float) -> bool:
        """True if ``fraction`` is inside [low, high] (with a rounding allowance)."""
        eps = 1e-12
        return self.low.value - eps <= fraction <= self.high.value + eps

    @property
    def text(self) -> str:
        """``"10-30 %"``."""
        return f"{self.low.value * 100:g}-{self.high.value * 100:g} %"


@dataclass(frozen=True, slots=True)
class TitrationRules:
    """The reviewed titration numbers (see ``titration.toml``)."""

    multiplier_short_effect: Sourced
    multiplier_long_effect: Sourced
    long_effect_h: Sourced
    no_increase_h: Sourced
    min_interval_h: Sourced
    pediatric_age_below_years: Sourced
    titration_increase: Mapping[str, StepRange]
    """Keyed by rule group: spinal, cerebral, pediatric."""
    maintenance_increase: Mapping[str, StepRange]
    """Keyed by rule group (children follow the cerebral maintenance rules)."""
    decrease: StepRange


def _range(table: Mapping[str, Any], where: str, prefix: str, kind: str) -> StepRange:
    return StepRange(
        low=sourced(table, f"{prefix}min_{kind}", where=where),
        high=sourced(table, f"{prefix}max_{kind}", where=where),
        default=sourced(table, f"{prefix}default_{kind}", where=where),
    )


def _table(table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    sub = table.get(key)
    if not isinstance(sub, Mapping):
        raise InvalidValue(key, sub, "a [table] in titration.toml")
    return sub


def parse_titration_rules(table: Mapping[str, Any]) -> TitrationRules:
    """Parse ``titration.toml`` (as loaded by ``load_data_table("titration")``).

    Raises:
        InvalidValue: a missing or malformed entry, or a range with low > high or a
            default outside it.
    """
    initial = _table(table, "initial")
    titration = _table(table, "titration")
    maintenance = _table(table, "maintenance")
    t_ranges: dict[str, StepRange] = {
        g: _range(titration, "titration", f"{g}_", "increase")
        for g in ("spinal", "cerebral", "pediatric")
    }
    m_cerebral = _range(maintenance, "maintenance", "cerebral_", "increase")
    m_ranges: dict[str, StepRange] = {
        "spinal": _range(maintenance, "maintenance", "spinal_", "increase"),
        "cerebral": m_cerebral,
        # Label: maintenance rules for cerebral origin also apply to children [C12][C13].
        "pediatric": m_cerebral,
    }
    decrease = _range(maintenance, "maintenance", "", "decrease")
    for name, r in [
        *((f"titration.{g}", r) for g, r in t_ranges.items()),
        *((f"maintenance.{g}", r) for g, r in m_ranges.items()),
        ("maintenance.decrease", decrease),
    ]:
        if not 0.0 < r.low.value <= r.high.value < 1.0 or not r.contains(r.default.value):
            raise InvalidValue(name, r.text, "0 < low <= default <= high < 1")
    return TitrationRules(
        multiplier_short_effect=sourced(initial, "multiplier_short_effect", where="initial"),
        multiplier_long_effect=sourced(initial, "multiplier_long_effect", where="initial"),
        long_effect_h=sourced(initial, "long_effect_h", where="initial"),
        no_increase_h=sourced(initial, "no_increase_h", where="initial"),
        min_interval_h=sourced(titration, "min_interval_h", where="titration"),
        pediatric_age_below_years=sourced(
            titration, "pediatric_age_below_years", where="titration"
        ),
        titration_increase=t_ranges,
        maintenance_increase=m_ranges,
        decrease=decrease,
    )


@dataclass(frozen=True, slots=True)
class TitrationStep:
    """The planner's proposal.

    Attributes:
        action: start, increase, hold or decrease.
        dose_mcg_per_day: proposed daily dose, mcg/day.
        previous_dose_mcg_per_day: the dose it replaces (0 at start), mcg/day.
        change_fraction: proposed change as a fraction of the previous dose (0 for hold/start).
        allowed_min_mcg_per_day, allowed_max_mcg_per_day: the range the rule allows now, mcg/day.
        rule_group: spinal, cerebral or pediatric rules.
        reason: one sentence saying why.
        source: source tags of the rule.
        status: ``"confirmed"`` or ``"assumed"`` (the weakest number used).
    """

    action: Action
    dose_mcg_per_day: float
    previous_dose_mcg_per_day: float
    change_fraction: float
    allowed_min_mcg_per_day: float
    allowed_max_mcg_per_day: float
    rule_group: RuleGroup
    reason: str
    source: str
    status: str

    @property
    def rate_mcg_per_h(self) -> float:
        """The proposed dose as an hourly rate (daily dose / 24) [C15]."""
        return self.dose_mcg_per_day / 24.0


def rule_group(rules: TitrationRules, origin: str, age_years: float) -> RuleGroup:
    """Which rules apply: children (under the paediatric age) first, then origin.

    Raises:
        InvalidValue: unknown origin or impossible age.
    """
    if origin not in ("spinal", "cerebral"):
        raise InvalidValue("origin", origin, "spinal or cerebral")
    require_positive("age_years", age_years)
    if age_years < rules.pediatric_age_below_years.value:
        return "pediatric"
    return "spinal" if origin == "spinal" else "cerebral"


def _status(*numbers: Sourced) -> str:
    return "assumed" if any(n.assumed for n in numbers) else "confirmed"


def initial_daily_dose(
    rules: TitrationRules,
    effective_screening_dose_mcg: float,
    effect_duration_h: float,
    *,
    origin: str = "spinal",
    age_years: float = 40.0,
) -> TitrationStep:
    """The starting daily dose after implant (the "8-hour rule").

    Args:
        rules: parsed titration rules.
        effective_screening_dose_mcg: the screening bolus that gave a positive response, mcg.
        effect_duration_h: how long that bolus's effect lasted, h.
        origin: ``"spinal"`` or ``"cerebral"`` (recorded in the result).
        age_years: age, years (recorded through the rule group).
    """
    dose = require_positive("effective_screening_dose_mcg", effective_screening_dose_mcg)
    duration = require_non_negative("effect_duration_h", effect_duration_h)
    group = rule_group(rules, origin, age_years)
    long_effect = duration > rules.long_effect_h.value
    mult = rules.multiplier_long_effect if long_effect else rules.multiplier_short_effect
    daily = dose * mult.value
    if long_effect:
        reason = (
            f"screening effect lasted {duration:g} h (> {rules.long_effect_h.value:g} h): start at "
            f"{mult.value:g} x the {dose:g} mcg screening dose per 24 h"
        )
    else:
        reason = (
            f"screening effect lasted {duration:g} h (<= {rules.long_effect_h.value:g} h): start at "
            f"{mult.value:g} x the {dose:g} mcg screening dose per 24 h"
        )
    return TitrationStep(
        action=Action.START,
        dose_mcg_per_day=daily,
        previous_dose_mcg_per_day=0.0,
        change_fraction=0.0,
        allowed_min_mcg_per_day=daily,
        allowed_max_mcg_per_day=daily,
        rule_group=group,
        reason=reason + "; no increase in the first 24 h",
        source=f"{mult.source}; {rules.no_increase_h.source}",
        status=_status(mult, rules.long_effect_h, rules.no_increase_h),
    )


def plan_next_step(
    rules: TitrationRules,
    *,
    origin: str,
    age_years: float,
    phase: Phase,
    current_dose_mcg_per_day: float,
    assessment: Assessment,
    hours_since_implant: float,
    hours_since_last_change: float,
    requested_change_fraction: float | None = None,
    max_dose_mcg_per_day: float | None = None,
) -> TitrationStep:
    """Propose the next dose step under the label rules.

    A proposal never passes ``max_dose_mcg_per_day`` (the drug library's hard maximum for
    the patient's population): an increase stops there, and a present dose above it is
    refused as input.

    Args:
        rules: parsed titration rules.
        origin: ``"spinal"`` or ``"cerebral"``.
        age_years: age, years (children follow the paediatric steps).
        phase: titration (daily steps) or maintenance.
        current_dose_mcg_per_day: present daily dose, mcg/day (> 0).
        assessment: inadequate, adequate, or side effects.
        hours_since_implant: h since the pump started.
        hours_since_last_change: h since the dose last changed.
        requested_change_fraction: a step the clinician wants (positive fraction,
            e.g. 0.25); default: the usual step of the applicable range.
        max_dose_mcg_per_day: the drug library's hard maximum daily dose, mcg/day.

    Raises:
        InvalidValue: bad input, or a requested step outside the allowed range
            (the message names the allowed range).
    """
    dose = require_positive("current_dose_mcg_per_day", current_dose_mcg_per_day)
    if max_dose_mcg_per_day is not None and dose > max_dose_mcg_per_day:
        raise HardLimitExceeded(
            "current_dose_mcg_per_day",
            dose,
            f"<= {max_dose_mcg_per_day:g} mcg/day (the drug library's hard maximum)",
        )
    since_implant = require_non_negative("hours_since_implant", hours_since_implant)
    since_change = require_non_negative("hours_since_last_change", hours_since_last_change)
    if since_change > since_implant:
        raise InvalidValue(
            "hours_since_last_change", since_change, f"<= hours_since_implant ({since_implant:g})"
        )
    phase = Phase(phase)
    assessment = Assessment(assessment)
    group = rule_group(rules, origin, age_years)

    def hold(reason: str, source: str, status: str) -> TitrationStep:
        return TitrationStep(
            Action.HOLD, dose, dose, 0.0, dose, dose, group, reason, source, status
        )

    if assessment is Assessment.ADEQUATE:
        return hold(
            "response adequate: keep the lowest dose that works (and keep some tone)",
            "[C10]",
            "confirmed",
        )
    if assessment is Assessment.SIDE_EFFECTS:
        r = rules.decrease
        fraction = (
            r.default.value if requested_change_fraction is None else requested_change_fraction
        )
        if not r.contains(fraction):
            raise InvalidValue("requested_change_fraction", fraction, f"{r.text} decrease")
        new = dose * (1.0 - fraction)
        return TitrationStep(
            Action.DECREASE,
            new,
            dose,
            -fraction,
            dose * (1.0 - r.high.value),
            dose * (1.0 - r.low.value),
            group,
            f"side effects: decrease by {fraction * 100:g} % (allowed {r.text})",
            r.low.source,
            _status(r.low, r.high, r.default)
            if requested_change_fraction is None
            else _status(r.low, r.high),
        )
    # Inadequate response: increase, unless too early.
    if since_implant < rules.no_increase_h.value:
        return hold(
            f"no dose increase in the first {rules.no_increase_h.value:g} h after implant "
            f"({since_implant:g} h so far)",
            rules.no_increase_h.source,
            _status(rules.no_increase_h),
        )
    if since_change < rules.min_interval_h.value:
        return hold(
            f"at most one change per {rules.min_interval_h.value:g} h "
            f"(last change {since_change:g} h ago)",
            rules.min_interval_h.source,
            _status(rules.min_interval_h),
        )
    ranges = rules.titration_increase if phase is Phase.TITRATION else rules.maintenance_increase
    r = ranges[group]
    fraction = r.default.value if requested_change_fraction is None else requested_change_fraction
    if not r.contains(fraction):
        raise InvalidValue(
            "requested_change_fraction", fraction, f"{r.text} increase ({group} {phase.value})"
        )
    new = dose * (1.0 + fraction)
    cap = math.inf if max_dose_mcg_per_day is None else max_dose_mcg_per_day
    if dose >= cap:
        return hold(
            f"response inadequate, but the dose is at the drug library's hard maximum "
            f"({cap:g} mcg/day): review the diagnosis and the delivery system",
            "drug library hard limit (drug_library.toml)",
            "assumed",
        )
    capped = new > cap
    if capped:
        new = cap
        fraction = cap / dose - 1.0
    return TitrationStep(
        Action.INCREASE,
        new,
        dose,
        fraction,
        dose * (1.0 + r.low.value),
        min(dose * (1.0 + r.high.value), cap),
        group,
        f"response inadequate: increase by {fraction * 100:.4g} % ({group} {phase.value} "
        f"range {r.text})"
        + (f"; stopped at the drug library's hard maximum {cap:g} mcg/day" if capped else ""),
        r.high.source,
        _status(r.low, r.high, r.default)
        if requested_change_fraction is None
        else _status(r.low, r.high),
    )

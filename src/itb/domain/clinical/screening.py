"""Screening (trial) dose protocol: a planner and a recorder.

**Planner.** Given the boluses given so far (dose, time, outcome), what comes
next: the next dose and the earliest time for it (at least 24 h after the
previous bolus), observation of a pending bolus, a positive screen, or "not a
candidate for a pump" after no response to the last dose of the sequence
(100 mcg). :func:`check_next_bolus` refuses a dose that is not the next one in
the protocol or that comes earlier than 24 h after the previous bolus.

**Recorder.** Plain timed observations after one bolus (hours after the bolus;
the baseline at ``t_after_h <= 0``), each with a Modified Ashworth (MAS) and/or
Penn Spasm Frequency Scale (PSFS) score, give: responder or not (by a response
criterion kept as data with its source), onset, peak time, and how long the
effect was seen.

Times are hours (``t_h``) on the caller's time base; no clock is read here.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from itb.domain.clinical.reasons import Reason, RuleInfo, parse_rule, require_keys
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.units import require_finite, require_non_negative

__all__ = [
    "MEASURES",
    "BolusAssessment",
    "GivenBolus",
    "Observation",
    "ResponseCriterion",
    "ScreeningProtocol",
    "ScreeningStep",
    "assess_bolus",
    "check_next_bolus",
    "parse_screening_protocol",
    "plan_next_step",
]

Measure = Literal["mas", "psfs"]
MEASURES: tuple[Measure, ...] = ("mas", "psfs")
Outcome = Literal["responder", "non_responder", "pending"]
StepKind = Literal["give_dose", "observe", "responder", "not_a_candidate"]

_TIME_DECIMALS = 9
"""Time gaps (h) are compared after rounding to this many decimals (3.6 µs; float noise
only), so 24 h computed as a difference of two float times still counts as 24 h."""

_SCORE_DECIMALS = 6
"""Falls in score are compared after rounding to this many decimals (float noise only)."""

_RULES = ("responder", "non_responder_final", "next_dose", "observe", "monitoring")
_RULE_OUTCOMES = ("responder", "not_candidate", "give_dose", "observe", "note")


@dataclass(frozen=True, slots=True)
class ResponseCriterion:
    """What counts as a response: a fall of at least ``min_drop`` in any listed measure."""

    key: str
    label: str
    min_drop: Mapping[str, Sourced]
    """Measure (``"mas"`` / ``"psfs"``) -> minimum fall from baseline, points."""

    @property
    def source(self) -> str:
        """The sources of every threshold, joined."""
        return "; ".join(dict.fromkeys(s.source for s in self.min_drop.values()))

    @property
    def status(self) -> Literal["confirmed", "assumed"]:
        """``assumed`` if any threshold is assumed."""
        return "assumed" if any(s.assumed for s in self.min_drop.values()) else "confirmed"


@dataclass(frozen=True, slots=True)
class ScreeningProtocol:
    """The protocol's numbers, dose sequences, criteria and rule sources."""

    concentration_mcg_per_ml: Sourced
    min_interval_h: Sourced
    observation_min_h: Sourced
    observation_max_h: Sourced
    monitoring_window_h: Sourced
    monitoring_min_measurements: Sourced
    sequences: Mapping[str, tuple[Sourced, ...]]
    sequence_labels: Mapping[str, str]
    criteria: Mapping[str, ResponseCriterion]
    default_criterion: str
    scale_max: Mapping[str, Sourced]
    rules: Mapping[str, RuleInfo]

    def sequence(self, reduced_start: bool) -> tuple[Sourced, ...]:
        """Doses in order: the reduced (25 mcg) start or the standard one."""
        return self.sequences["reduced" if reduced_start else "standard"]

    def criterion(self, key: str | None = None) -> ResponseCriterion:
        """A response criterion by key (default: the data's default).

        Raises:
            InvalidValue: unknown criterion.
        """
        k = self.default_criterion if key is None else key
        if k not in self.criteria:
            raise InvalidValue("criterion", k, ", ".join(self.criteria))
        return self.criteria[k]


def parse_screening_protocol(table: Mapping[str, Any]) -> ScreeningProtocol:
    """Parse ``itb/data/screening.toml``.

    Raises:
        InvalidValue: a number, sequence, criterion or rule is missing or malformed.
    """
    require_keys(table, ("protocol", "sequences", "criteria", "scales", "rules"), where="screening")
    p = table["protocol"]
    w = "screening.protocol"
    sequences: dict[str, tuple[Sourced, ...]] = {}
    labels: dict[str, str] = {}
    for name in ("standard", "reduced"):
        seq = table["sequences"].get(name)
        where = f"screening.sequences.{name}"
        if not isinstance(seq, Mapping):
            raise InvalidValue(where, seq, "a table of dose_N_mcg")
        n_doses = sum(1 for k in seq if k.startswith("dose_"))
        doses = tuple(sourced(seq, f"dose_{i}_mcg", where=where) for i in range(1, n_doses + 1))
        if not doses or any(b.value <= a.value for a, b in itertools.pairwise(doses)):
            raise InvalidValue(
                where, [d.value for d in doses], "rising doses dose_1_mcg, dose_2_mcg, ..."
            )
        sequences[name] = doses
        labels[name] = str(seq.get("label", name))
    criteria: dict[str, ResponseCriterion] = {}
    crit_table = table["criteria"]
    for key, entry in crit_table.items():
        if key == "default":
            continue
        where = f"screening.criteria.{key}"
        drops: dict[str, Sourced] = {
            m: sourced(entry, f"{m}_min_drop", where=where)
            for m in MEASURES
            if f"{m}_min_drop" in entry
        }
        if not drops or any(d.value <= 0 for d in drops.values()):
            raise InvalidValue(where, sorted(entry), "mas_min_drop and/or psfs_min_drop > 0")
        criteria[key] = ResponseCriterion(key, str(entry.get("label", key)), drops)
    default = crit_table.get("default")
    if default not in criteria:
        raise InvalidValue("screening.criteria.default", default, ", ".join(criteria))
    return ScreeningProtocol(
        concentration_mcg_per_ml=sourced(p, "concentration_mcg_per_ml", where=w),
        min_interval_h=sourced(p, "min_interval_h", where=w),
        observation_min_h=sourced(p, "observation_min_h", where=w),
        observation_max_h=sourced(p, "observation_max_h", where=w),
        monitoring_window_h=sourced(p, "monitoring_window_h", where=w),
        monitoring_min_measurements=sourced(p, "monitoring_min_measurements", where=w),
        sequences=sequences,
        sequence_labels=labels,
        criteria=criteria,
        default_criterion=str(default),
        scale_max={
            m: sourced(table["scales"], f"{m}_max", where="screening.scales") for m in MEASURES
        },
        rules={
            r: parse_rule(table["rules"], r, outcomes=_RULE_OUTCOMES, where="screening.rules")
            for r in _RULES
        },
    )


# ---------------------------------------------------------------- recorder


@dataclass(frozen=True, slots=True)
class Observation:
    """One timed observation around a bolus.

    Attributes:
        t_after_h: hours after the bolus; ``<= 0`` is a baseline.
        mas: Modified Ashworth score (mean over the muscles examined), points, or ``None``.
        psfs: Penn Spasm Frequency Scale score, 0-4, or ``None``.
    """

    t_after_h: float
    mas: float | None = None
    psfs: float | None = None

    def __post_init__(self) -> None:
        require_finite("t_after_h", self.t_after_h)
        if self.mas is None and self.psfs is None:
            raise InvalidValue(
                "observation", f"t_after_h={self.t_after_h:g}", "a mas and/or psfs score"
            )
        for m in MEASURES:
            v = getattr(self, m)
            if v is not None:
                require_non_negative(m, v)

    def score(self, measure: str) -> float | None:
        """The score for ``measure`` (``"mas"`` / ``"psfs"``)."""
        value: float | None = getattr(self, measure)
        return value


@dataclass(frozen=True, slots=True)
class BolusAssessment:
    """What the observations after one bolus show.

    Attributes:
        outcome: ``responder``, ``non_responder``, or ``pending`` (not observed long enough).
        baseline: measure -> baseline score (last observation at ``t_after_h <= 0``).
        peak_time_h: hours after the bolus of the largest fall (relative to the criterion);
            ``None`` if no fall.
        peak_drop: measure -> fall from baseline at the peak, points.
        onset_h: first observation meeting the criterion, h after the bolus.
        last_response_h: last observation meeting the criterion, h after the bolus (the
            effect lasted at least this long).
        effect_duration_h: ``last_response_h - onset_h``: span over which the response was
            observed.
        still_effective_at_last_observation: the last observation still met the criterion,
            so the effect lasted longer than observed.
        observed_until_h: time of the last observation after the bolus.
        reasons: why, with sources.
    """

    outcome: Outcome
    criterion: str
    baseline: Mapping[str, float]
    peak_time_h: float | None
    peak_drop: Mapping[str, float]
    onset_h: float | None
    last_response_h: float | None
    effect_duration_h: float | None
    still_effective_at_last_observation: bool
    observed_until_h: float | None
    reasons: tuple[Reason, ...]


def assess_bolus(
    protocol: ScreeningProtocol,
    observations: Sequence[Observation],
    *,
    criterion: str | None = None,
) -> BolusAssessment:
    """Assess one screening bolus from timed observations.

    Args:
        protocol: the protocol (:func:`parse_screening_protocol`).
        observations: in any order; at least one baseline (``t_after_h <= 0``) scoring a
            measure of the criterion.
        criterion: a key of ``protocol.criteria`` (default: the data's default).

    Raises:
        InvalidValue: no baseline for the criterion's measures, or a score above its scale.
    """
    crit = protocol.criterion(criterion)
    for o in observations:
        for m in MEASURES:
            v = o.score(m)
            if v is not None and v > protocol.scale_max[m].value:
                raise InvalidValue(m, v, f"0 to {protocol.scale_max[m].value:g}")
    obs = sorted(observations, key=lambda o: o.t_after_h)
    baseline: dict[str, float] = {}
    for o in obs:
        if o.t_after_h <= 0:
            for measure in crit.min_drop:
                v = o.score(measure)
                if v is not None:
                    baseline[measure] = v
    if not baseline:
        raise InvalidValue(
            "observations",
            "no baseline",
            f"an observation at t_after_h <= 0 scoring {' or '.join(crit.min_drop)}",
        )
    after = [o for o in obs if o.t_after_h > 0]

    def drops(o: Observation) -> dict[str, float]:
        d: dict[str, float] = {}
        for m, base in baseline.items():
            v = o.score(m)
            if v is not None:
                # scores are recorded to a few decimals; rounding keeps 2.9 -> 1.9 a fall of 1
                d[m] = round(base - v, _SCORE_DECIMALS)
        return d

    def strength(o: Observation) -> float:
        # fall as a fraction of the criterion's threshold; >= 1 means a response
        return max((d / crit.min_drop[m].value for m, d in drops(o).items()), default=float("-inf"))

    meeting = [o for o in after if strength(o) >= 1.0]
    peak = max(after, key=strength, default=None)  # max() keeps the earliest on ties
    peak_has_fall = peak is not None and strength(peak) > 0
    rules = protocol.rules
    reasons: list[Reason] = []
    observed_until = after[-1].t_after_h if after else None
    thresholds = " or ".join(f"{m.upper()} >= {s.value:g} points" for m, s in crit.min_drop.items())
    if meeting:
        outcome: Outcome = "responder"
        reasons.append(
            Reason(
                "responder",
                "responder",
                f"Response: fall of {thresholds} from baseline first seen "
                f"{meeting[0].t_after_h:g} h after the bolus ({crit.label}).",
                crit.source,
                crit.status,
            )
        )
    elif observed_until is not None and observed_until >= protocol.observation_min_h.value:
        outcome = "non_responder"
        reasons.append(
            Reason(
                "no_response",
                "non_responder",
                f"No fall of {thresholds} in {observed_until:g} h of observation ({crit.label}).",
                crit.source,
                crit.status,
            )
        )
    else:
        outcome = "pending"
        reasons.append(
            Reason.of(
                rules["observe"],
                f"No response yet and observed only {observed_until or 0:g} h: keep observing "
                f"for {protocol.observation_min_h.value:g}-{protocol.observation_max_h.value:g} h "
                "after the bolus.",
            )
        )
    window = protocol.monitoring_window_h.value
    need = int(protocol.monitoring_min_measurements.value)
    early = sum(1 for o in after if o.t_after_h <= window)
    if early < need:
        reasons.append(
            Reason.of(
                rules["monitoring"],
                f"Spasticity was measured {early} time(s) within {window:g} h of the bolus; "
                f"the expert panel measures it at least {need} times.",
            )
        )
    return BolusAssessment(
        outcome=outcome,
        criterion=crit.key,
        baseline=baseline,
        peak_time_h=peak.t_after_h if peak is not None and peak_has_fall else None,
        peak_drop=drops(peak) if peak is not None and peak_has_fall else {},
        onset_h=meeting[0].t_after_h if meeting else None,
        last_response_h=meeting[-1].t_after_h if meeting else None,
        effect_duration_h=(meeting[-1].t_after_h - meeting[0].t_after_h) if meeting else None,
        still_effective_at_last_observation=bool(meeting) and meeting[-1] is after[-1],
        observed_until_h=observed_until,
        reasons=tuple(reasons),
    )


# ----------------------------------------------------------------- planner


@dataclass(frozen=True, slots=True)
class GivenBolus:
    """A screening bolus already given.

    Attributes:
        dose_mcg: the dose, mcg.
        given_at_h: when, hours on the caller's time base.
        outcome: ``responder``, ``non_responder`` or ``pending`` (see :func:`assess_bolus`).
    """

    dose_mcg: float
    given_at_h: float
    outcome: Outcome = "pending"

    def __post_init__(self) -> None:
        require_finite("given_at_h", self.given_at_h)
        if self.outcome not in ("responder", "non_responder", "pending"):
            raise InvalidValue("outcome", self.outcome, "responder, non_responder or pending")


@dataclass(frozen=True, slots=True)
class ScreeningStep:
    """What to do next.

    Attributes:
        kind: ``give_dose``, ``observe``, ``responder`` or ``not_a_candidate``.
        dose_mcg: the dose to give (``give_dose``), or the dose observed / that worked.
        earliest_at_h: earliest time for the dose (``None``: any time, first dose).
        observe_from_h, observe_until_h: the observation window (``observe``).
        dose_number: 1-based position of ``dose_mcg`` in the sequence.
        reasons: why, with sources.
    """

    kind: StepKind
    text: str
    dose_mcg: float | None = None
    earliest_at_h: float | None = None
    observe_from_h: float | None = None
    observe_until_h: float | None = None
    dose_number: int | None = None
    reasons: tuple[Reason, ...] = ()


def _validate_history(
    protocol: ScreeningProtocol, history: Sequence[GivenBolus], doses: tuple[Sourced, ...]
) -> None:
    if len(history) > len(doses):
        raise InvalidValue("boluses", len(history), f"at most {len(doses)} screening boluses")
    gap = protocol.min_interval_h.value
    for i, b in enumerate(history):
        if b.dose_mcg != doses[i].value:
            raise InvalidValue(
                f"boluses[{i + 1}].dose_mcg",
                b.dose_mcg,
                f"{doses[i].value:g} (dose {i + 1} of the protocol)",
            )
        if i > 0:
            prev = history[i - 1]
            if prev.outcome != "non_responder":
                raise InvalidValue(
                    f"boluses[{i + 1}]",
                    f"after a {prev.outcome} bolus",
                    "a further bolus only after a non-response",
                )
            if round(b.given_at_h - prev.given_at_h, _TIME_DECIMALS) < gap:
                raise InvalidValue(
                    f"boluses[{i + 1}].given_at_h",
                    b.given_at_h,
                    f">= {prev.given_at_h + gap:g} ({gap:g} h after the previous bolus)",
                )


def plan_next_step(
    protocol: ScreeningProtocol, history: Sequence[GivenBolus], *, reduced_start: bool = False
) -> ScreeningStep:
    """The next step of the screening protocol.

    Args:
        protocol: the protocol.
        history: boluses given so far, in order.
        reduced_start: start at 25 mcg (very small children, or people who rely on their
            tone for mobility; [C18]).

    Raises:
        InvalidValue: the history does not follow the protocol (wrong dose, less than 24 h
            apart, a bolus after a response or before the previous one was assessed).
    """
    doses = protocol.sequence(reduced_start)
    _validate_history(protocol, history, doses)
    rules = protocol.rules
    if not history:
        first = doses[0]
        return ScreeningStep(
            kind="give_dose",
            text=f"Give the first screening bolus: {first.value:g} mcg "
            f"({first.value / protocol.concentration_mcg_per_ml.value:g} mL of "
            f"{protocol.concentration_mcg_per_ml.value:g} mcg/mL), then observe "
            f"{protocol.observation_min_h.value:g}-{protocol.observation_max_h.value:g} h.",
            dose_mcg=first.value,
            dose_number=1,
            reasons=(
                Reason.of(
                    rules["next_dose"],
                    f"{protocol.sequence_labels['reduced' if reduced_start else 'standard']}; source of this dose: {first.source}.",
                ),
            ),
        )
    last, n = history[-1], len(history)
    if last.outcome == "pending":
        return ScreeningStep(
            kind="observe",
            text=f"Observe the {last.dose_mcg:g} mcg bolus for "
            f"{protocol.observation_min_h.value:g}-{protocol.observation_max_h.value:g} h and "
            "record the outcome before planning another dose.",
            dose_mcg=last.dose_mcg,
            observe_from_h=last.given_at_h,
            observe_until_h=last.given_at_h + protocol.observation_max_h.value,
            dose_number=n,
            reasons=(Reason.of(rules["observe"], "Each bolus is observed for 4-8 h."),),
        )
    if last.outcome == "responder":
        return ScreeningStep(
            kind="responder",
            text=f"Positive screening response to {last.dose_mcg:g} mcg: the person may be "
            "considered for an implanted pump.",
            dose_mcg=last.dose_mcg,
            dose_number=n,
            reasons=(
                Reason.of(
                    rules["responder"],
                    "A positive response to a screening dose is required before implant.",
                ),
            ),
        )
    if n == len(doses):
        return ScreeningStep(
            kind="not_a_candidate",
            text=f"No response to {last.dose_mcg:g} mcg, the last screening dose: not a "
            "candidate for a pump.",
            dose_mcg=last.dose_mcg,
            dose_number=n,
            reasons=(
                Reason.of(
                    rules["non_responder_final"],
                    f"A person who does not respond to {last.dose_mcg:g} mcg should not be "
                    "considered for a pump.",
                ),
            ),
        )
    nxt = doses[n]
    earliest = last.given_at_h + protocol.min_interval_h.value
    return ScreeningStep(
        kind="give_dose",
        text=f"No response to {last.dose_mcg:g} mcg: give {nxt.value:g} mcg "
        f"({nxt.value / protocol.concentration_mcg_per_ml.value:g} mL of "
        f"{protocol.concentration_mcg_per_ml.value:g} mcg/mL) no earlier than "
        f"{protocol.min_interval_h.value:g} h after the previous bolus.",
        dose_mcg=nxt.value,
        earliest_at_h=earliest,
        dose_number=n + 1,
        reasons=(
            Reason.of(
                rules["next_dose"],
                f"Next dose {nxt.value:g} mcg at least {protocol.min_interval_h.value:g} h "
                f"after the previous one (dose source: {nxt.source}"
                f"{'; assumed' if nxt.assumed else ''}).",
            ),
        ),
    )


def check_next_bolus(
    protocol: ScreeningProtocol,
    history: Sequence[GivenBolus],
    dose_mcg: float,
    at_h: float,
    *,
    reduced_start: bool = False,
) -> ScreeningStep:
    """Refuse a proposed bolus that the protocol does not allow; else return the step.

    Raises:
        InvalidValue: no further dose is due (observe first, already a responder, or not a
            candidate), the dose is not the next one, or it is earlier than 24 h after the
            previous bolus.
    """
    require_finite("at_h", at_h)
    step = plan_next_step(protocol, history, reduced_start=reduced_start)
    if step.kind != "give_dose":
        raise InvalidValue("dose_mcg", dose_mcg, f"no screening dose now: {step.text}")
    assert step.dose_mcg is not None
    if dose_mcg != step.dose_mcg:
        raise InvalidValue("dose_mcg", dose_mcg, f"{step.dose_mcg:g} (next dose of the protocol)")
    if step.earliest_at_h is not None and round(at_h - step.earliest_at_h, _TIME_DECIMALS) < 0.0:
        raise InvalidValue(
            "given_at_h",
            at_h,
            f">= {step.earliest_at_h:g} ({protocol.min_interval_h.value:g} h after the previous "
            "bolus)",
        )
    return step

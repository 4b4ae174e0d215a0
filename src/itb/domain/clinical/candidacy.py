"""Candidacy for an ITB screening trial.

From a structured record, a verdict of *candidate* (for a screening trial),
*not a candidate* or *needs review*, each with every reason that fired and the
source of its rule. Thresholds (age, TBI wait, implant depth) and each rule's
outcome come from ``itb/data/candidacy.toml`` through :func:`parse_candidacy_rules`.

Verdict: any ``not_candidate`` reason wins; otherwise any ``needs_review``;
otherwise ``candidate``. ``note`` reasons never change the verdict. A candidate
is a candidate for the *screening trial*: a positive screening response is still
required before a pump is implanted [C4][C5].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Literal

from itb.domain.clinical.reasons import Reason, RuleInfo, parse_rule, require_keys
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.units import require_non_negative

__all__ = [
    "ACTIVE_ISSUES",
    "CAUSES",
    "CAUSE_ORIGINS",
    "ORAL_BACLOFEN",
    "ORIGINS",
    "RELATIVE_CONTRAINDICATIONS",
    "RISK_GROUPS",
    "CandidacyAssessment",
    "CandidacyRecord",
    "CandidacyRules",
    "OralBaclofen",
    "Origin",
    "Verdict",
    "assess_candidacy",
    "check_cause_fits",
    "parse_candidacy_rules",
]

Origin = Literal["spinal", "cerebral"]
ORIGINS: tuple[Origin, ...] = ("spinal", "cerebral")

CAUSES: dict[str, str] = {
    "spinal_cord_injury": "spinal cord injury",
    "multiple_sclerosis": "multiple sclerosis",
    "cerebral_palsy": "cerebral palsy",
    "traumatic_brain_injury": "traumatic brain injury",
    "stroke": "stroke",
    "anoxic_brain_injury": "anoxic brain injury",
    "other": "other",
}
"""Cause of spasticity (vocabulary of the record, not a clinical threshold)."""

CAUSE_ORIGINS: dict[str, str | None] = {
    "spinal_cord_injury": "spinal",
    "multiple_sclerosis": "spinal",
    "cerebral_palsy": "cerebral",
    "traumatic_brain_injury": "cerebral",
    "stroke": "cerebral",
    "anoxic_brain_injury": "cerebral",
    "other": None,
}
"""The origin each cause belongs to (the label's spinal and cerebral groups [C4][C5]);
``other`` may be either."""


def check_cause_fits(
    cause: str,
    *,
    origin: str | None = None,
    sci_at_or_above_t6: bool = False,
    where: str = "",
    t6_field: str = "risk.sci_at_or_above_t6",
) -> None:
    """A patient's cause, origin and risk flags must tell one story.

    Raises:
        InvalidValue: an origin the cause does not belong to, or a spinal cord injury at
            T6 or above for a patient whose cause is not a spinal cord injury (the field
            named as ``where`` + ``origin`` / ``risk``).
    """
    belongs = CAUSE_ORIGINS.get(cause)
    if origin is not None and belongs is not None and origin != belongs:
        raise InvalidValue(
            f"{where}origin", origin, f"{belongs} when cause is {cause} (its label group)"
        )
    if sci_at_or_above_t6 and cause != "spinal_cord_injury":
        raise InvalidValue(
            f"{where}{t6_field}",
            True,
            f"false when cause is {cause} (only a spinal cord injury has a level)",
        )


OralBaclofen = Literal[
    "unresponsive", "intolerable_side_effects", "responsive", "not_tried", "unknown"
]
ORAL_BACLOFEN: dict[str, str] = {
    "unresponsive": "no adequate response to oral baclofen",
    "intolerable_side_effects": "intolerable CNS side effects at effective oral doses",
    "responsive": "responds to and tolerates oral baclofen",
    "not_tried": "oral baclofen not tried",
    "unknown": "oral baclofen history unknown",
}

ACTIVE_ISSUES: dict[str, str] = {
    "ms_exacerbation": "MS exacerbation",
    "urinary_tract_infection": "active urinary tract infection",
    "non_healing_wound": "non-healing wound",
    "other_active_medical_issue": "other active medical issue",
}
RELATIVE_CONTRAINDICATIONS: dict[str, str] = {
    "unrealistic_goals": "unrealistic goals",
    "unmanaged_mental_health_or_psychosocial": (
        "unmanageable mental health or psychosocial problems affecting adherence"
    ),
    "financial_burden": "financial burden",
}
RISK_GROUPS: dict[str, str] = {
    "sci_t6_or_above": "spinal cord injury at T6 or above",
    "communication_difficulties": "communication difficulties",
    "previous_withdrawal": "previous withdrawal from oral or intrathecal baclofen",
}

_OUTCOMES = ("not_candidate", "needs_review", "note")
_RULE_IDS = (
    "min_age",
    "tbi_wait",
    "tbi_date_unknown",
    "oral_baclofen_spinal",
    "oral_baclofen_cerebral",
    "oral_baclofen_unknown",
    "oral_baclofen_not_tried_cerebral",
    "hypersensitivity",
    "body_size",
    "body_size_unknown",
    "implant_depth",
    "implant_depth_unknown",
    "spinal_anomalies",
    "active_infection",
    "active_issues",
    "relative_contraindications",
    "follow_up",
    "risk_groups",
    "ms_sensitivity",
    "screening_required",
)


class Verdict(StrEnum):
    """Candidacy verdict."""

    CANDIDATE = "candidate"
    NOT_CANDIDATE = "not_candidate"
    NEEDS_REVIEW = "needs_review"

    @property
    def label(self) -> str:
        """Plain wording for people."""
        return {
            Verdict.CANDIDATE: "candidate for a screening trial",
            Verdict.NOT_CANDIDATE: "not a candidate",
            Verdict.NEEDS_REVIEW: "needs review",
        }[self]


@dataclass(frozen=True, slots=True)
class CandidacyRules:
    """Thresholds and rule outcomes from ``candidacy.toml``."""

    min_age_years: Sourced
    tbi_wait_days: Sourced
    max_implant_depth_cm: Sourced
    rules: Mapping[str, RuleInfo]


def parse_candidacy_rules(table: Mapping[str, Any]) -> CandidacyRules:
    """Parse the candidacy data table (see ``itb/data/candidacy.toml``).

    Raises:
        InvalidValue: a threshold or rule is missing or malformed.
    """
    require_keys(table, ("thresholds", "rules"), where="candidacy")
    thresholds, rules = table["thresholds"], table["rules"]
    return CandidacyRules(
        min_age_years=sourced(thresholds, "min_age_years", where="candidacy.thresholds"),
        tbi_wait_days=sourced(thresholds, "tbi_wait_days", where="candidacy.thresholds"),
        max_implant_depth_cm=sourced(
            thresholds, "max_implant_depth_cm", where="candidacy.thresholds"
        ),
        rules={
            rid: parse_rule(rules, rid, outcomes=_OUTCOMES, where="candidacy.rules")
            for rid in _RULE_IDS
        },
    )


def _require_vocab(field: str, values: tuple[str, ...], vocab: Mapping[str, str]) -> None:
    for v in values:
        if v not in vocab:
            raise InvalidValue(field, v, ", ".join(vocab))


@dataclass(frozen=True, slots=True)
class CandidacyRecord:
    """What the team knows about a person being considered for ITB.

    Attributes:
        age_years: age in years (>= 0).
        origin: origin of the spasticity, ``"spinal"`` or ``"cerebral"``.
        cause: one of :data:`CAUSES`.
        oral_baclofen: one of :data:`ORAL_BACLOFEN`.
        hypersensitivity_to_baclofen: known hypersensitivity.
        body_size_sufficient: enough body mass to hold the pump; ``None`` = not assessed.
        implant_depth_cm: expected depth of the pump under the skin, cm; ``None`` = not
            estimated.
        spinal_anomalies: spinal anomalies that contraindicate the implant.
        active_infection: an active infection now.
        brain_injury_date: date of the traumatic brain injury (needed when the cause is TBI).
        active_issues: active medical issues now, from :data:`ACTIVE_ISSUES`.
        relative_contraindications: from :data:`RELATIVE_CONTRAINDICATIONS`.
        risk_groups: boxed-warning risk groups, from :data:`RISK_GROUPS`.
        can_attend_follow_up: can return for titration and refills; ``None`` = not asked.
    """

    age_years: float
    origin: Origin
    cause: str
    oral_baclofen: OralBaclofen
    hypersensitivity_to_baclofen: bool
    body_size_sufficient: bool | None
    implant_depth_cm: float | None
    spinal_anomalies: bool
    active_infection: bool
    brain_injury_date: date | None = None
    active_issues: tuple[str, ...] = ()
    relative_contraindications: tuple[str, ...] = ()
    risk_groups: tuple[str, ...] = ()
    can_attend_follow_up: bool | None = None

    def __post_init__(self) -> None:
        require_non_negative("age_years", self.age_years)
        if self.origin not in ORIGINS:
            raise InvalidValue("origin", self.origin, " or ".join(ORIGINS))
        if self.cause not in CAUSES:
            raise InvalidValue("cause", self.cause, ", ".join(CAUSES))
        if self.oral_baclofen not in ORAL_BACLOFEN:
            raise InvalidValue("oral_baclofen", self.oral_baclofen, ", ".join(ORAL_BACLOFEN))
        if self.implant_depth_cm is not None:
            require_non_negative("implant_depth_cm", self.implant_depth_cm)
        _require_vocab("risk_groups", self.risk_groups, RISK_GROUPS)
        check_cause_fits(self.cause, origin=self.origin)
        if "sci_t6_or_above" in self.risk_groups and self.cause != "spinal_cord_injury":
            raise InvalidValue(
                "risk_groups",
                "sci_t6_or_above",
                f"not listed when cause is {self.cause} (only a spinal cord injury has a level)",
            )
        _require_vocab("active_issues", self.active_issues, ACTIVE_ISSUES)
        _require_vocab(
            "relative_contraindications",
            self.relative_contraindications,
            RELATIVE_CONTRAINDICATIONS,
        )


@dataclass(frozen=True, slots=True)
class CandidacyAssessment:
    """The verdict with every reason that fired (blocking ones first)."""

    verdict: Verdict
    reasons: tuple[Reason, ...]
    assessed_on: date
    reassess_on_or_after: date | None = None
    """Earliest date a temporary ``not_candidate`` (TBI wait) can clear, if that applies."""

    @property
    def blocking(self) -> tuple[Reason, ...]:
        """Reasons that set the verdict (not notes)."""
        return tuple(r for r in self.reasons if r.outcome != "note")


def _fmt(x: float) -> str:
    return f"{x:g}"


def assess_candidacy(
    record: CandidacyRecord, rules: CandidacyRules, *, assessed_on: date
) -> CandidacyAssessment:
    """Assess ``record`` against the candidacy rules on ``assessed_on``.

    Args:
        record: the person's record.
        rules: thresholds and outcomes from :func:`parse_candidacy_rules`.
        assessed_on: the date of the assessment (no clock inside the domain).

    Raises:
        InvalidValue: the brain-injury date is after ``assessed_on``.
    """
    r = rules.rules
    reasons: list[Reason] = []
    reassess: date | None = None

    min_age = rules.min_age_years.value
    if record.age_years < min_age:
        reasons.append(
            Reason.of(
                r["min_age"],
                f"Age {_fmt(record.age_years)} years is under {_fmt(min_age)} years: safety and "
                "efficacy of intrathecal baclofen are not established below that age.",
            )
        )

    if record.cause == "traumatic_brain_injury":
        if record.brain_injury_date is None:
            reasons.append(
                Reason.of(
                    r["tbi_date_unknown"],
                    "Spasticity after traumatic brain injury, but the date of injury is not "
                    "recorded: the one-year wait cannot be checked.",
                )
            )
        else:
            if record.brain_injury_date > assessed_on:
                raise InvalidValue(
                    "brain_injury_date",
                    record.brain_injury_date.isoformat(),
                    f"on or before the assessment date {assessed_on.isoformat()}",
                )
            waited_days = (assessed_on - record.brain_injury_date).days
            wait_days = rules.tbi_wait_days.value
            if waited_days < wait_days:
                reassess = record.brain_injury_date + timedelta(days=int(wait_days))
                reasons.append(
                    Reason.of(
                        r["tbi_wait"],
                        f"Only {waited_days} days since the brain injury; long-term ITB is "
                        f"considered at least {_fmt(wait_days)} days (1 year) after it. "
                        f"Reassess on or after {reassess.isoformat()}.",
                    )
                )

    oral = record.oral_baclofen
    if oral == "unknown":
        reasons.append(
            Reason.of(
                r["oral_baclofen_unknown"],
                "The response to oral baclofen is not recorded.",
            )
        )
    elif record.origin == "spinal" and oral in ("responsive", "not_tried"):
        reasons.append(
            Reason.of(
                r["oral_baclofen_spinal"],
                f"Spinal origin and {ORAL_BACLOFEN[oral]}: long-term ITB is reserved for people "
                "who do not respond to oral baclofen or cannot tolerate its side effects.",
            )
        )
    elif record.origin == "cerebral" and oral == "responsive":
        reasons.append(
            Reason.of(
                r["oral_baclofen_cerebral"],
                "Cerebral origin and oral baclofen works and is tolerated: discuss what ITB "
                "would add.",
            )
        )
    elif record.origin == "cerebral" and oral == "not_tried":
        reasons.append(
            Reason.of(
                r["oral_baclofen_not_tried_cerebral"],
                "Oral baclofen not tried; many clinicians require at least one oral agent first.",
            )
        )

    if record.hypersensitivity_to_baclofen:
        reasons.append(Reason.of(r["hypersensitivity"], "Known hypersensitivity to baclofen."))

    if record.body_size_sufficient is False:
        reasons.append(
            Reason.of(r["body_size"], "Body size is not sufficient to hold the implanted pump.")
        )
    elif record.body_size_sufficient is None:
        reasons.append(
            Reason.of(
                r["body_size_unknown"],
                "Body size has not been assessed against the size of the pump.",
            )
        )

    max_depth = rules.max_implant_depth_cm.value
    if record.implant_depth_cm is None:
        reasons.append(
            Reason.of(
                r["implant_depth_unknown"],
                f"The expected implant depth is not estimated (must be at most {_fmt(max_depth)} "
                "cm).",
            )
        )
    elif record.implant_depth_cm > max_depth:
        reasons.append(
            Reason.of(
                r["implant_depth"],
                f"The pump would sit {_fmt(record.implant_depth_cm)} cm deep, more than "
                f"{_fmt(max_depth)} cm.",
            )
        )

    if record.spinal_anomalies:
        reasons.append(
            Reason.of(r["spinal_anomalies"], "Spinal anomalies contraindicate the implant.")
        )

    if record.active_infection:
        reasons.append(
            Reason.of(
                r["active_infection"],
                "Active infection: no implant now; reassess once it has cleared.",
            )
        )

    if record.active_issues:
        issues = ", ".join(ACTIVE_ISSUES[i] for i in record.active_issues)
        reasons.append(
            Reason.of(
                r["active_issues"],
                f"Active medical issues ({issues}): do not screen now; reassess when resolved.",
            )
        )

    if record.relative_contraindications:
        rel = ", ".join(RELATIVE_CONTRAINDICATIONS[i] for i in record.relative_contraindications)
        reasons.append(
            Reason.of(r["relative_contraindications"], f"Relative contraindications: {rel}.")
        )

    if record.can_attend_follow_up is False:
        reasons.append(
            Reason.of(
                r["follow_up"],
                "Cannot reliably return for titration and refills; missed refills risk withdrawal.",
            )
        )

    for group in record.risk_groups:
        reasons.append(
            Reason.of(
                r["risk_groups"],
                f"Risk group ({RISK_GROUPS[group]}): higher risk of withdrawal; teach the early "
                "signs and plan refills carefully.",
            )
        )

    if record.cause == "multiple_sclerosis":
        reasons.append(
            Reason.of(
                r["ms_sensitivity"],
                "Multiple sclerosis: may be more sensitive to ITB; consider lower screening and "
                "maintenance doses.",
            )
        )

    verdict = _verdict(reasons)
    if verdict is Verdict.CANDIDATE:
        reasons.append(
            Reason.of(
                r["screening_required"],
                "Candidate for a screening trial only: a positive response to a screening dose "
                "is required before a pump is implanted.",
            )
        )
    order = {"not_candidate": 0, "needs_review": 1, "note": 2}
    reasons.sort(key=lambda x: order[x.outcome])
    return CandidacyAssessment(
        verdict=verdict,
        reasons=tuple(reasons),
        assessed_on=assessed_on,
        reassess_on_or_after=reassess if verdict is Verdict.NOT_CANDIDATE else None,
    )


def _verdict(reasons: list[Reason]) -> Verdict:
    outcomes = {x.outcome for x in reasons}
    if "not_candidate" in outcomes:
        return Verdict.NOT_CANDIDATE
    if "needs_review" in outcomes:
        return Verdict.NEEDS_REVIEW
    return Verdict.CANDIDATE

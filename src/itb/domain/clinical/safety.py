"""Programming safety checks, run on every staged change, and a checked commit.

Given the pump (its present prescription, the drug it holds), the patient's
drug-library population and a staged :class:`ProgrammingSession`, the checks
return *findings*: ``block`` (cannot be committed), ``warn`` (needs a second
person's verification, and for some a recorded override reason) or ``info``.
Each finding names the field, its value and what is allowed, with its source.
The rules' outcomes, thresholds and sources are reviewed data
(``itb/data/safety_checks.toml``); the wording lives here.

Rules:

* ``unit_mixup`` — a daily dose about 24x (or 1/24) the current one, a flex
  step about 24x the current mean hourly rate, or a flex rate in mcg/h equal to
  the intended dose in mcg/day (the ISMP case, [D56]). "About" is
  within ``unit_mixup_tolerance_pct`` of 24x: with 10 %, 21.6x to 26.4x (23x is
  flagged; 21x is not, a ``large_dose_change`` blocks it instead).
* ``intended_dose_mismatch`` — the program's mean daily dose differs from the
  intended dose (when one is given) by more than the tolerance.
* ``concentration_mismatch`` — the program's concentration differs from the
  drug the pump holds (or is about to be filled with).
* ``large_dose_change`` — an increase above the maintenance limit of the
  population ([C12][C13]: +40 % spinal, +20 % cerebral and children);
  compared weekday by weekday; exactly at the limit is allowed.
* ``patient_bolus_over_hard_limit`` / ``_soft_limit`` — the highest daily dose
  plus the most the patient can add in 24 h passes the library's daily limit.
* ``access_port_refill`` — a refill aimed at the catheter access port.
* ``stopped_mode`` (warn, needs a reason), ``update_incomplete`` (block),
  ``restarts_pump`` (info) — sessions that would leave the pump stopped.
* ``library_hard_limit`` / ``library_soft_limit`` / ``library_soft_override`` —
  the drug library (:mod:`itb.domain.clinical.drug_library`): a hard limit
  blocks, a soft limit needs a recorded reason.
* ``pump_refused`` — the pump's own validation refused the change at staging.

Second-person verification (``[verification.*]``) is required for any warn
finding, a dose change of ``verify_dose_change_pct`` or more (or a start from
no dose), a flex program, a concentration change, a patient-bolus change and a
single bolus. :func:`commit_checked` refuses to commit when a block finding
exists, an override reason is needed and missing, or verification is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, cast

from itb.domain.clinical.drug_library import (
    DrugLibrary,
    check_bolus_against_library,
    check_dose_against_library,
)
from itb.domain.clinical.reasons import Reason, RuleInfo, parse_rule
from itb.domain.errors import (
    BlockedBySafetyCheck,
    ConcentrationMismatch,
    HardLimitExceeded,
    InvalidValue,
    ITBError,
    OverrideReasonRequired,
    SafetyCheckRefused,
    SoftLimitNeedsReason,
    VerificationRequired,
)
from itb.domain.provenance import Sourced, Status, sourced
from itb.domain.pump.prescription import Bolus, BolusKind, Prescription
from itb.domain.pump.programs import WEEKDAYS, Flex, Program, Stopped
from itb.domain.pump.pump import Pump, StopReason
from itb.domain.pump.session import ChangeRow, ProgrammingSession, SessionState
from itb.domain.units import HOURS_PER_DAY

__all__ = [
    "RULES",
    "SEVERITIES",
    "TRIGGERS",
    "ActionKind",
    "BlockedBySafetyCheck",
    "CheckedCommit",
    "Finding",
    "OverrideReasonRequired",
    "SafetyCheckRefused",
    "SafetyChecks",
    "SafetyReview",
    "SafetyRules",
    "VerificationRequired",
    "check_change",
    "commit_checked",
    "parse_safety_rules",
    "review_session",
    "stage_checked",
]

Severity = Literal["block", "warn", "info"]
SEVERITIES: tuple[Severity, ...] = ("block", "warn", "info")
RULES: tuple[str, ...] = (
    "unit_mixup",
    "intended_dose_mismatch",
    "concentration_mismatch",
    "large_dose_change",
    "patient_bolus_over_hard_limit",
    "patient_bolus_over_soft_limit",
    "access_port_refill",
    "stopped_mode",
    "update_incomplete",
    "restarts_pump",
    "library_hard_limit",
    "library_soft_limit",
    "library_soft_override",
    "pump_refused",
)
TRIGGERS: tuple[str, ...] = (
    "warn_finding",
    "dose_change",
    "flex_program",
    "concentration_change",
    "patient_bolus_change",
    "single_bolus",
)


# ------------------------------------------------------------------ errors


# ------------------------------------------------------------------ data


class ActionKind(StrEnum):
    """What the clinician is doing in the session."""

    PROGRAM = "program"
    REFILL_RESERVOIR = "refill_reservoir"
    REFILL_ACCESS_PORT = "refill_catheter_access_port"


@dataclass(frozen=True, slots=True)
class SafetyRules:
    """The reviewed rules (``safety_checks.toml``)."""

    rules: Mapping[str, RuleInfo]
    unit_mixup_ratio: Sourced
    unit_mixup_tolerance_pct: Sourced
    intended_dose_tolerance_pct: Sourced
    verify_dose_change_pct: Sourced
    verification: Mapping[str, RuleInfo]


def parse_safety_rules(table: Mapping[str, Any]) -> SafetyRules:
    """Parse ``safety_checks.toml``.

    Raises:
        InvalidValue: a rule, threshold or trigger is missing or malformed.
    """
    rules_table = table.get("rules", {})
    rules = {
        key: parse_rule(rules_table, key, outcomes=SEVERITIES, where="safety_checks.rules")
        for key in RULES
    }
    th = table.get("thresholds", {})
    where = "safety_checks.thresholds"
    ver = table.get("verification", {})
    out = SafetyRules(
        rules=rules,
        unit_mixup_ratio=sourced(th, "unit_mixup_ratio", where=where),
        unit_mixup_tolerance_pct=sourced(th, "unit_mixup_tolerance_pct", where=where),
        intended_dose_tolerance_pct=sourced(th, "intended_dose_tolerance_pct", where=where),
        verify_dose_change_pct=sourced(th, "verify_dose_change_pct", where=where),
        verification={
            key: parse_rule(
                ver, key, outcomes=("verify", "none"), where="safety_checks.verification"
            )
            for key in TRIGGERS
        },
    )
    tol = out.unit_mixup_tolerance_pct.value
    if not 0.0 <= tol < 100.0:
        raise InvalidValue(f"{where}.unit_mixup_tolerance_pct", tol, "0 <= pct < 100")
    return out


@dataclass(frozen=True, slots=True)
class SafetyChecks:
    """Everything the checks need besides the pump and the session.

    Attributes:
        rules: the reviewed rules.
        library: the drug library.
        population: the patient's library population (``adult_spinal``,
            ``adult_cerebral``, ``child``; see ``population_for``).
        intended_dose_mcg_per_day: the dose the clinician means to program, when
            entered separately from the program (flex steps are checked against it).
        action: what the session does (a refill via the catheter access port blocks).
        held_concentration_mcg_per_ml: the drug about to be in the pump (a refill
            with a new concentration); default: the drug the pump holds.
    """

    rules: SafetyRules
    library: DrugLibrary
    population: str
    intended_dose_mcg_per_day: float | None = None
    action: ActionKind = ActionKind.PROGRAM
    held_concentration_mcg_per_ml: float | None = None

    def __post_init__(self) -> None:
        self.library.limits(self.population)


@dataclass(frozen=True, slots=True)
class Finding:
    """One safety finding: severity, rule code, field and a one-line message with its source."""

    severity: Severity
    code: str
    field: str
    message: str
    source: str
    status: Status
    needs_override_reason: bool = False


@dataclass(frozen=True, slots=True)
class SafetyReview:
    """The findings, why verification is needed, and the side-by-side old/new review."""

    findings: tuple[Finding, ...]
    verification: tuple[Reason, ...]
    rows: tuple[ChangeRow, ...]

    @property
    def blocked(self) -> bool:
        """True when a block finding exists."""
        return any(f.severity == "block" for f in self.findings)

    @property
    def verification_required(self) -> bool:
        """True when a second person must verify before commit."""
        return bool(self.verification)

    @property
    def needs_override_reason(self) -> bool:
        """True when a finding can be passed only with a recorded reason."""
        return any(f.needs_override_reason for f in self.findings)


@dataclass(frozen=True, slots=True)
class CheckedCommit:
    """A committed session: its changes and the review it passed."""

    rows: tuple[ChangeRow, ...]
    review: SafetyReview
    override_reason: str | None
    verified_by: str | None


# --------------------------------------------------------------- helpers


def _weekday_doses(program: Program) -> tuple[float, ...]:
    if isinstance(program, Flex):
        return tuple(program.daily_dose_mcg(d) for d in range(len(WEEKDAYS)))
    return (program.daily_dose_mcg(),) * len(WEEKDAYS)


def _hhmm(hours: float) -> str:
    minutes = round(hours * 60.0)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class _Findings:
    def __init__(self, rules: SafetyRules) -> None:
        self.rules = rules
        self.items: list[Finding] = []

    def add(self, code: str, field: str, message: str, *, needs_reason: bool = False) -> None:
        info = self.rules.rules[code]
        sev = cast(Severity, info.outcome)  # parse_rule allowed only SEVERITIES
        self.items.append(
            Finding(sev, code, field, message, info.source, info.status, needs_reason)
        )

    def has(self, code: str) -> bool:
        return any(f.code == code for f in self.items)


def _about(ratio: float, target: float, tol_pct: float) -> bool:
    return abs(ratio - target) <= target * tol_pct / 100.0


# ------------------------------------------------------------------ checks


def check_change(
    pump: Pump,
    checks: SafetyChecks,
    *,
    prescription: Prescription | None = None,
    bolus: Bolus | None = None,
    override_reason: str | None = None,
) -> list[Finding]:
    """Check a proposed change (before or after staging) against the pump and the library.

    Args:
        pump: the pump as it is now (its prescription is the "old" side).
        checks: rules, library, population, intended dose, action kind.
        prescription: the proposed prescription, if any.
        bolus: the proposed one-off bolus, if any.
        override_reason: the clinician's recorded reason for passing soft limits.

    Returns:
        The findings, in rule order (never raises for a clinical finding).
    """
    rules = checks.rules
    out = _Findings(rules)
    lib_limits = checks.library.limits(checks.population)
    kind = pump.preset.kind.value
    held = (
        checks.held_concentration_mcg_per_ml
        if checks.held_concentration_mcg_per_ml is not None
        else pump.labelled_concentration_mcg_per_ml
    )
    reason = (override_reason or "").strip() or None

    if checks.action is ActionKind.REFILL_ACCESS_PORT:
        out.add(
            "access_port_refill",
            "action",
            "action = refill via the catheter access port is not allowed; allowed: refill "
            "through the reservoir septum only (the port flushes drug straight into the CSF)",
        )

    old_program = pump.prescription.program
    old_days = _weekday_doses(old_program)
    old_mean = old_program.daily_dose_mcg()

    if prescription is not None:
        new_program = prescription.program
        new_days = _weekday_doses(new_program)
        new_mean = new_program.daily_dose_mcg()
        target = rules.unit_mixup_ratio.value
        tol = rules.unit_mixup_tolerance_pct.value

        # --- per-hour vs per-day (ISMP [D56])
        if old_mean > 0 and new_mean > 0:
            ratio = new_mean / old_mean
            if _about(ratio, target, tol):
                out.add(
                    "unit_mixup",
                    "dose_mcg_per_day",
                    f"dose_mcg_per_day = {new_mean:g} is {ratio:.1f}x the current {old_mean:g} "
                    f"mcg/day, like a per-hour value entered as per-day; allowed: not about "
                    f"{target:g}x (±{tol:g} %) the current dose",
                )
            elif _about(1.0 / ratio, target, tol):
                out.add(
                    "unit_mixup",
                    "dose_mcg_per_day",
                    f"dose_mcg_per_day = {new_mean:g} is 1/{1.0 / ratio:.1f} of the current "
                    f"{old_mean:g} mcg/day, like a per-day value entered as per-hour; allowed: "
                    f"not about 1/{target:g} (±{tol:g} %) of the current dose",
                )
        intended = checks.intended_dose_mcg_per_day
        if isinstance(new_program, Flex):
            old_hourly = old_mean / HOURS_PER_DAY
            flagged = False
            for d, steps in enumerate(new_program.days):
                for step in steps:
                    if flagged or step.rate_mcg_per_h <= 0:
                        continue
                    where = f"flex {WEEKDAYS[d]} {_hhmm(step.start_h)} rate_mcg_per_h"
                    if (
                        intended is not None
                        and intended > 0
                        and _about(step.rate_mcg_per_h / intended, 1.0, tol)
                    ):
                        flagged = True
                        out.add(
                            "unit_mixup",
                            where,
                            f"{where} = {step.rate_mcg_per_h:g} equals the intended daily dose "
                            f"{intended:g} mcg/day: as mcg/h it delivers "
                            f"{step.rate_mcg_per_h * HOURS_PER_DAY:g} mcg/day; allowed: a rate "
                            f"in mcg/h (about {intended / HOURS_PER_DAY:.3g} mcg/h for "
                            f"{intended:g} mcg/day)",
                        )
                    elif old_hourly > 0 and _about(step.rate_mcg_per_h / old_hourly, target, tol):
                        flagged = True
                        out.add(
                            "unit_mixup",
                            where,
                            f"{where} = {step.rate_mcg_per_h:g} is "
                            f"{step.rate_mcg_per_h / old_hourly:.1f}x the current mean rate "
                            f"{old_hourly:.3g} mcg/h, like a per-day value entered as per-hour; "
                            f"allowed: not about {target:g}x (±{tol:g} %) the current rate",
                        )
        if intended is not None and intended > 0:
            itol = rules.intended_dose_tolerance_pct.value
            if abs(new_mean - intended) > intended * itol / 100.0:
                out.add(
                    "intended_dose_mismatch",
                    "program daily dose",
                    f"program daily dose = {new_mean:.4g} mcg/day differs from the intended "
                    f"{intended:g} mcg/day; allowed: within ±{itol:g} % of the intended dose",
                )

        # --- concentration
        conc = prescription.concentration_mcg_per_ml
        if held > 0 and conc != held:
            out.add(
                "concentration_mismatch",
                "concentration_mcg_per_ml",
                f"concentration_mcg_per_ml = {conc:g} does not match the drug in the pump; "
                f"allowed: {held:g}",
            )

        # --- stopped
        if isinstance(new_program, Stopped):
            out.add(
                "stopped_mode",
                "mode",
                "mode = stopped leaves the pump delivering nothing (abrupt withdrawal risk); "
                "allowed: only with a recorded reason and a withdrawal plan",
                needs_reason=True,
            )

        # --- large increase ([C12][C13]), weekday by weekday
        max_inc = lib_limits.increase_hard_max_pct
        worst: tuple[float, int] | None = None
        for d, (old, new) in enumerate(zip(old_days, new_days, strict=True)):
            if old > 0:
                pct = (new - old) * 100.0 / old
                if worst is None or pct > worst[0]:
                    worst = (pct, d)
        if worst is not None and worst[0] > max_inc.value:
            pct, d = worst
            day = "" if len(set(new_days)) == 1 and len(set(old_days)) == 1 else f" ({WEEKDAYS[d]})"
            out.add(
                "large_dose_change",
                "dose increase",
                f"dose increase{day} = +{pct:.1f} % ({old_days[d]:g} -> {new_days[d]:g} "
                f"mcg/day); allowed: <= +{max_inc.value:g} % per adjustment "
                f"({checks.population})",
            )

        # --- drug library: the highest daily dose, and the change from the highest old day
        if not isinstance(new_program, Stopped) and pump.preset.programmable:
            new_max = max(new_days)
            old_max = max(old_days)
            prev = old_max if old_max > 0 else None
            _library_dose(out, checks, conc, kind, new_max, prev, reason)
        # --- patient boluses
        pb = prescription.patient_bolus
        if pb is not None:
            total = max(new_days) + pb.max_extra_mcg_per_day
            hard = lib_limits.daily_dose_hard_max_mcg_per_day.value
            soft = lib_limits.daily_dose_soft_max_mcg_per_day.value
            text = (
                f"daily dose + patient boluses = {total:g} mcg/day ({max(new_days):g} + up to "
                f"{pb.max_extra_mcg_per_day:g} from {pb.dose_mcg:g} mcg x "
                f"{round(pb.max_extra_mcg_per_day / pb.dose_mcg)})"
            )
            if total > hard:
                out.add(
                    "patient_bolus_over_hard_limit",
                    "patient_bolus",
                    f"{text}; allowed: <= {hard:g} mcg/day (hard limit, {checks.population})",
                )
            elif total > soft:
                if reason is None:
                    out.add(
                        "patient_bolus_over_soft_limit",
                        "patient_bolus",
                        f"{text}; allowed: <= {soft:g} mcg/day (soft limit, "
                        f"{checks.population}) or with a recorded override reason",
                        needs_reason=True,
                    )
                else:
                    out.add(
                        "library_soft_override",
                        "patient_bolus",
                        f"{text} passes the soft limit {soft:g} mcg/day; override reason "
                        f"recorded: {reason}",
                    )
            _library_bolus(out, checks, conc, kind, pb.dose_mcg, reason, "patient_bolus dose_mcg")

    # --- single bolus
    if bolus is not None and bolus.kind is BolusKind.SINGLE and held > 0:
        _library_bolus(out, checks, held, kind, bolus.volume_ml * held, reason, "bolus_mcg")
    return out.items


def _library_dose(
    out: _Findings,
    checks: SafetyChecks,
    conc: float,
    kind: str,
    dose: float,
    previous: float | None,
    reason: str | None,
) -> None:
    try:
        decision = check_dose_against_library(
            checks.library,
            checks.population,
            conc,
            kind,
            dose,
            reason,
            previous_dose_mcg_per_day=previous,
        )
    except HardLimitExceeded as exc:
        if exc.field == "dose_increase_pct" and out.has("large_dose_change"):
            # Already blocked as a large change; still check the dose itself.
            _library_dose(out, checks, conc, kind, dose, None, reason)
            return
        out.add("library_hard_limit", exc.field, str(exc))
        return
    except SoftLimitNeedsReason as exc:
        out.add("library_soft_limit", exc.field, str(exc), needs_reason=True)
        return
    for c in decision.overridden:
        out.add(
            "library_soft_override",
            c.field,
            f"{c.field} = {c.value:.4g} passes the soft limit {c.describe(checks.population)}; "
            f"override reason recorded: {decision.override_reason}",
        )


def _library_bolus(
    out: _Findings,
    checks: SafetyChecks,
    conc: float,
    kind: str,
    bolus_mcg: float,
    reason: str | None,
    field: str,
) -> None:
    try:
        decision = check_bolus_against_library(
            checks.library, checks.population, conc, kind, bolus_mcg, reason
        )
    except HardLimitExceeded as exc:
        out.add("library_hard_limit", field, f"{field}: {exc}")
        return
    except SoftLimitNeedsReason as exc:
        out.add("library_soft_limit", field, f"{field}: {exc}", needs_reason=True)
        return
    for c in decision.overridden:
        out.add(
            "library_soft_override",
            field,
            f"{field} = {c.value:.4g} passes the soft limit {c.describe(checks.population)}; "
            f"override reason recorded: {decision.override_reason}",
        )


def _verification(
    pump: Pump,
    checks: SafetyChecks,
    prescription: Prescription | None,
    bolus: Bolus | None,
    findings: Sequence[Finding],
) -> tuple[Reason, ...]:
    rules = checks.rules
    why: list[Reason] = []

    def need(trigger: str, text: str) -> None:
        info = rules.verification[trigger]
        if info.outcome == "verify":
            why.append(Reason.of(info, text))

    warns = [f.code for f in findings if f.severity == "warn" or f.code == "library_soft_override"]
    if warns:
        need("warn_finding", f"warnings to verify: {', '.join(sorted(set(warns)))}")
    old = pump.prescription
    if prescription is not None:
        old_mean = old.program.daily_dose_mcg()
        new_mean = prescription.program.daily_dose_mcg()
        limit = rules.verify_dose_change_pct.value
        if old_mean > 0:
            pct = (new_mean - old_mean) * 100.0 / old_mean
            if abs(pct) >= limit:
                need(
                    "dose_change",
                    f"daily dose {old_mean:g} -> {new_mean:.4g} mcg/day ({pct:+.1f} %, "
                    f"verification from ±{limit:g} %)",
                )
        elif new_mean > 0:
            need("dose_change", f"the pump starts delivering: 0 -> {new_mean:.4g} mcg/day")
        if isinstance(prescription.program, Flex):
            need("flex_program", "a flex program: check every step's time and mcg/h rate")
        if (
            old.concentration_mcg_per_ml != prescription.concentration_mcg_per_ml
            and pump.labelled_concentration_mcg_per_ml > 0
        ):
            need(
                "concentration_change",
                f"concentration {old.concentration_mcg_per_ml:g} -> "
                f"{prescription.concentration_mcg_per_ml:g} mcg/mL",
            )
        if prescription.patient_bolus != old.patient_bolus:
            need("patient_bolus_change", "patient-bolus settings change")
    if bolus is not None and bolus.kind is BolusKind.SINGLE:
        need("single_bolus", f"a single bolus of {bolus.volume_ml:.4g} mL")
    return tuple(why)


def review_session(
    session: ProgrammingSession, checks: SafetyChecks, override_reason: str | None = None
) -> SafetyReview:
    """Run every check on what ``session`` has staged; with the side-by-side review rows."""
    pump = session.pump
    prescription = session.staged_prescription
    bolus = session.staged_bolus
    out = _Findings(checks.rules)
    out.items = check_change(
        pump, checks, prescription=prescription, bolus=bolus, override_reason=override_reason
    )
    if session.state is SessionState.UPDATING:
        out.add(
            "update_incomplete",
            "session",
            "session = update begun and not completed leaves the pump stopped; allowed: "
            "complete the update (or abandon it and restart the pump)",
        )
    elif session.state is not SessionState.OPEN:
        out.add(
            "update_incomplete",
            "session",
            f"session = {session.state.value} cannot be committed; allowed: an open session",
        )
    stopped_by = pump.stop_reasons & {StopReason.UNFINISHED_SESSION, StopReason.UPDATE_IN_PROGRESS}
    if stopped_by and session.state is SessionState.OPEN:
        out.add(
            "restarts_pump",
            "pump",
            "pump = stopped by an unfinished programming session; committing this session "
            "restarts it",
        )
    findings = tuple(out.items)
    return SafetyReview(
        findings=findings,
        verification=_verification(pump, checks, prescription, bolus, findings),
        rows=tuple(session.review()),
    )


_REFUSAL_FIELD = {ConcentrationMismatch: "concentration_mcg_per_ml"}


def stage_checked(
    session: ProgrammingSession,
    checks: SafetyChecks,
    *,
    prescription: Prescription | None = None,
    bolus: Bolus | None = None,
    reason: str = "",
    override_reason: str | None = None,
) -> SafetyReview:
    """Stage a change and check it. A change the pump refuses is not staged; it becomes a
    finding (``concentration_mismatch`` or ``pump_refused``) instead of an exception."""
    refused: list[Finding] = []
    rules = checks.rules

    def refuse(code: str, field: str, exc: ITBError) -> None:
        info = rules.rules[code]
        if isinstance(exc, SoftLimitNeedsReason):
            soft = rules.rules["library_soft_limit"]
            sev = cast(Severity, soft.outcome)
            refused.append(
                Finding(sev, "library_soft_limit", field, str(exc), soft.source, soft.status, True)
            )
            return
        refused.append(Finding("block", code, field, str(exc), info.source, info.status))

    pre = check_change(
        session.pump,
        checks,
        prescription=prescription,
        bolus=bolus,
        override_reason=override_reason,
    )
    library_found = any(
        f.code.startswith(("library_", "patient_bolus")) or f.code == "large_dose_change"
        for f in pre
    )
    if prescription is not None:
        try:
            session.stage_prescription(prescription, reason, override_reason=override_reason)
        except ConcentrationMismatch as exc:
            if not any(f.code == "concentration_mismatch" for f in pre):
                refuse("concentration_mismatch", "concentration_mcg_per_ml", exc)
        except (HardLimitExceeded, SoftLimitNeedsReason) as exc:
            if not library_found:
                refuse("library_hard_limit", exc.field, exc)
        except ITBError as exc:
            refuse("pump_refused", getattr(exc, "field", "prescription"), exc)
    if bolus is not None:
        try:
            session.stage_bolus(bolus, reason, override_reason=override_reason)
        except (HardLimitExceeded, SoftLimitNeedsReason) as exc:
            if not library_found:
                refuse("library_hard_limit", exc.field, exc)
        except ITBError as exc:
            refuse("pump_refused", getattr(exc, "field", "bolus"), exc)
    review = review_session(session, checks, override_reason)
    # Checks on what could not be staged still count (they were made on the proposal).
    staged_codes = {(f.code, f.field) for f in review.findings}
    extra = [f for f in pre if (f.code, f.field) not in staged_codes]
    findings = (*review.findings, *extra, *refused)
    return SafetyReview(
        findings=findings,
        verification=_verification(session.pump, checks, prescription, bolus, findings),
        rows=review.rows,
    )


def commit_checked(
    session: ProgrammingSession,
    t_h: float,
    checks: SafetyChecks,
    override_reason: str | None = None,
) -> CheckedCommit:
    """Commit ``session`` only if the safety checks allow it.

    Raises:
        BlockedBySafetyCheck: a block finding exists.
        OverrideReasonRequired: a finding needs a recorded reason and none was given.
        VerificationRequired: a second person must verify (``session.verify``) first.
        SessionError, ...: from the session itself (nothing is written then either).
    """
    review = review_session(session, checks, override_reason)
    blocks = [f for f in review.findings if f.severity == "block"]
    if blocks:
        more = f" (+{len(blocks) - 1} more)" if len(blocks) > 1 else ""
        raise BlockedBySafetyCheck(f"commit refused: {blocks[0].message}{more}")
    reason = (override_reason or "").strip()
    if review.needs_override_reason and not reason:
        first = next(f for f in review.findings if f.needs_override_reason)
        raise OverrideReasonRequired(
            f"commit refused: {first.message}; give an override reason to proceed"
        )
    if review.verification_required and not session.verified_by:
        raise VerificationRequired(
            "commit refused: a second person must verify the changes first ("
            + "; ".join(r.text for r in review.verification)
            + ")"
        )
    rows = tuple(session.commit(t_h))
    if reason and any(f.code == "library_soft_override" for f in review.findings):
        session.pump.log.append(
            t_h,
            "safety_override",
            "; ".join(f.message for f in review.findings if f.code == "library_soft_override"),
            reason,
        )
    elif reason and review.needs_override_reason:
        session.pump.log.append(t_h, "safety_override", "findings passed with a reason", reason)
    return CheckedCommit(rows, review, reason or None, session.verified_by)

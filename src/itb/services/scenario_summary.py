"""The story of a simulated course in plain words: highlights, key events, metric labels.

Shared by the report (HTML), the CLI summary and the demo, so they say the
same thing. Pure text from a :class:`~itb.services.scenario.ScenarioResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from itb.domain.units import DAYS_PER_YEAR, HOURS_PER_DAY
from itb.services.scenario import ScenarioResult
from itb.simulation.engine import TimelineEntry

__all__ = [
    "ASSUMPTIONS",
    "DISCLAIMER",
    "METRIC_LABELS",
    "format_metric",
    "highlights",
    "key_events",
    "patient_line",
]

DISCLAIMER = (
    "Simulation and decision support only: not a medical device and not clinical advice. "
    "The virtual patient, the pump model and the clinic's protocol are models with "
    "assumptions (many numbers are marked 'assumed' in the data files); they do not predict "
    "what will happen to a real patient."
)

ASSUMPTIONS: tuple[str, ...] = (
    "The patient is a model: two-compartment CSF pharmacokinetics, an effect site, tolerance, "
    "dependence and withdrawal, overdose signs (docs/patient-model.md). Its parameters are "
    "typical values or a seeded population draw, not this person.",
    "The clinic sees only what a clinic could know: the pump's calculated reservoir and alarms "
    "at interrogation, refill discrepancies, MAS/PSFS scored at visits and the signs the patient "
    "reports. It never sees the true reservoir or the pump's true accuracy.",
    "Dose changes follow the label titration rules (usual step: the middle of the allowed "
    "range), at most once per 24 h and none in the first 24 h after implant.",
    "The patient (or a caregiver) checks for signs once a day and calls the clinic; the urgent "
    "visit follows after the scenario's response time. A catheter study, when ordered, finds a "
    "catheter fault if there is one; operations (revision, replacement) follow after the "
    "scenario's delay.",
    "Refills are planned a margin of days before the pump's forecast low-reservoir alarm and "
    "within the drug's stability limit; the reservoir is filled to capacity.",
    "A replacement pump is a new pump of the same model with nominal accuracy, primed through "
    "pump path and catheter; the battery replacement is planned from the programmer's ERI "
    "forecast.",
    "Metrics that count time (time in range, days with signs) use the scenario's sampling grid; "
    "the simulation itself is exact between events and does not depend on it.",
)

METRIC_LABELS: dict[str, str] = {
    "horizon_days": "Length of the course (days)",
    "time_in_therapeutic_range_pct": "Time in the therapeutic range (%)",
    "time_in_therapeutic_range_after_titration_pct": "Time in range after titration (%)",
    "titration_days": "Length of titration (days from implant to goal)",
    "initial_dose_mcg_per_day": "Starting dose (mcg/day)",
    "final_dose_mcg_per_day": "Dose at the end (mcg/day)",
    "dose_changes": "Dose changes",
    "days_with_withdrawal_signs": "Days with withdrawal signs",
    "days_with_severe_withdrawal": "Days with severe withdrawal",
    "first_withdrawal_sign_day": "First withdrawal sign (day)",
    "days_with_overdose_signs": "Days with overdose signs",
    "first_overdose_sign_day": "First overdose sign (day)",
    "max_overdose_stage": "Highest overdose stage",
    "hours_reservoir_empty": "Hours with the reservoir really empty",
    "hours_without_delivery": "Hours with no drug reaching the CSF",
    "refills": "Refills",
    "refill_discrepancies_flagged": "Refill discrepancies flagged",
    "missed_refills": "Refills missed",
    "urgent_visits": "Urgent visits",
    "catheter_revisions": "Catheter revisions",
    "pump_replacements": "Pump replacements",
    "complications_found": "Complications found",
    "explants": "Explants (pump taken out)",
    "hours_pump_out": "Hours with the pump out",
    "reimplants": "New pumps after an explant",
    "failed_refills": "Refills that could not be done",
    "battery_replacement_date": "Battery (pump) replacement date",
    "eri_reached_days": "ERI reached (day)",
    "critical_alarms": "Critical alarms",
    "alarms_by_kind": "Alarms by kind",
    "mean_mas": "Mean MAS",
    "mean_mas_daytime": "Mean MAS by day",
    "mean_mas_night": "Mean MAS by night",
    "delivered_to_csf_mcg": "Drug delivered to the CSF (mcg)",
}


def format_metric(value: Any) -> str:
    """A metric value for people."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(format_metric(v) for v in value) or "none"
    return str(value)


def patient_line(result: ScenarioResult) -> str:
    """``42-year-old, spinal cord injury (spinal origin), 75 kg, baseline MAS 3.5 ...``."""
    p = result.patient
    risks = [
        name
        for flag, name in (
            (p.risk.sci_at_or_above_t6, "injury at T6 or above"),
            (p.risk.communication_difficulty, "communication difficulty"),
            (p.risk.previous_withdrawal, "previous withdrawal"),
        )
        if flag
    ]
    text = (
        f"{p.age_years:.0f}-year-old, {p.cause.value.replace('_', ' ')} ({p.origin} origin), "
        f"{p.weight_kg:.0f} kg, baseline MAS {p.baseline_mas:.1f} and PSFS {p.baseline_psfs:.1f}"
    )
    if risks:
        text += "; withdrawal risk factors: " + ", ".join(risks)
    draw = result.scenario.patient.population
    if draw is not None:
        seed = result.scenario.seed if draw.seed is None else draw.seed
        text += f" (population draw: seed {seed}, patient {draw.index})"
    return text


def _day(t_h: float) -> str:
    return f"day {t_h / HOURS_PER_DAY:.1f}"


def highlights(result: ScenarioResult) -> list[str]:
    """The course in a few sentences, most important first."""
    m = result.metrics
    clinic = result.run.clinic
    s = result.scenario
    out = [f"Patient: {patient_line(result)}."]
    out.append(
        f"Pump: {result.pump_label}, implanted {result.iso(0.0)[:10]}; followed "
        f"{m['horizon_days']:g} days ({m['horizon_days'] / DAYS_PER_YEAR:.1f} years)."
    )
    concentrations = [s.drug.concentration_mcg_per_ml]
    bridged = []
    for r in clinic.refills:
        if r.concentration_mcg_per_ml != concentrations[-1]:
            concentrations.append(r.concentration_mcg_per_ml)
            bridged.append(r.bridge_bolus)
    if len(concentrations) > 1:
        how = (
            "with a bridge bolus each time"
            if all(bridged)
            else "WITHOUT a bridge bolus"
            if not any(bridged)
            else "bridge bolus: " + ", ".join("yes" if b else "no" for b in bridged)
        )
        out.append("Drug: " + " -> ".join(f"{c:g}" for c in concentrations) + f" mcg/mL ({how}).")
    else:
        out.append(f"Drug: baclofen {concentrations[0]:g} mcg/mL throughout.")
    if result.screening is not None and result.screening.effective_dose_mcg is not None:
        out.append(
            f"Screening trial (simulated): response to {result.screening.effective_dose_mcg:g} mcg, "
            f"effect seen for {result.screening.effect_duration_h:g} h."
        )
    start = s.protocol
    if start.established is not None:
        out.append(f"Established patient on {m['initial_dose_mcg_per_day']:g} mcg/day.")
    elif m["titration_days"] is not None:
        out.append(
            f"Titration: started at {m['initial_dose_mcg_per_day']:g} mcg/day (label 8-hour rule); "
            f"goal (MAS <= {result.protocol.goal_mas:g}) reached after {m['titration_days']:g} days."
        )
    out.append(
        f"Dose at the end: {m['final_dose_mcg_per_day']:.0f} mcg/day after "
        f"{m['dose_changes']} change(s); time in the therapeutic range "
        f"{format_metric(m['time_in_therapeutic_range_pct'])} %."
    )
    if m["days_with_withdrawal_signs"]:
        first_w = m["first_withdrawal_sign_day"]
        out.append(
            f"WITHDRAWAL signs on {m['days_with_withdrawal_signs']} day(s), first on day "
            f"{first_w:.1f} ({result.iso(first_w * HOURS_PER_DAY)[:10]})"
            + (
                f"; severe on {m['days_with_severe_withdrawal']} day(s)"
                if m["days_with_severe_withdrawal"]
                else ""
            )
            + "."
        )
    else:
        out.append("No withdrawal signs.")
    if m["days_with_overdose_signs"]:
        first_o = m["first_overdose_sign_day"]
        out.append(
            f"OVERDOSE signs on {m['days_with_overdose_signs']} day(s), first on day "
            f"{first_o:.1f} ({result.iso(first_o * HOURS_PER_DAY)[:10]}; highest stage "
            f"{m['max_overdose_stage']})."
        )
    if m["hours_reservoir_empty"]:
        out.append(f"The reservoir was really empty for {m['hours_reservoir_empty']:g} h.")
    alarms = m["alarms_by_kind"]
    out.append("Alarms: " + (format_metric(alarms) if alarms else "none") + ".")
    out.append(
        f"Refills: {m['refills']} ({m['refill_discrepancies_flagged']} discrepancy flagged"
        f"{'; ' + str(m['missed_refills']) + ' missed' if m['missed_refills'] else ''})."
    )
    for t, why in clinic.catheter_revisions:
        out.append(f"Catheter revision on {_day(t)}: {why}.")
    for t, why in clinic.pump_replacements:
        out.append(f"Pump replaced on {_day(t)} ({result.iso(t)[:10]}): {why}.")
    for c in clinic.complications:
        out.append(
            f"Complication found on {_day(c.t_h)}: {c.kind.replace('_', ' ')}; "
            f"{c.treatment.replace('_', ' ')}."
        )
    for i, (t, bridge) in enumerate(clinic.explants):
        back = clinic.reimplants[i] if i < len(clinic.reimplants) else None
        out.append(
            f"PUMP OUT (explanted) on {_day(t)} ({result.iso(t)[:10]}), bridge: {bridge}; "
            + (
                f"new pump on {_day(back)} ({(back - t) / HOURS_PER_DAY:.0f} days out)."
                if back is not None
                else "still out at the end."
            )
        )
    for t in clinic.failed_refills:
        out.append(f"Refill failed on {_day(t)} (the septum could not be reached).")
    if m["urgent_visits"]:
        out.append(f"Urgent visits: {m['urgent_visits']}.")
    return out


_ROUTINE = frozenset({"titration_visit", "checkup"})


def key_events(result: ScenarioResult, limit: int = 120) -> list[TimelineEntry]:
    """Timeline lines worth reading (routine refills and visits left out), at most ``limit``."""
    out: list[TimelineEntry] = []
    last_report = ""
    for e in result.timeline:
        if e.kind in _ROUTINE:
            continue
        if (
            e.kind == "refill"
            and "within tolerance" in e.detail
            and "planned" in e.detail
            and "(was " not in e.detail
        ):
            continue
        if e.kind == "reports":
            if e.detail == last_report:
                continue
            last_report = e.detail
        out.append(e)
    return out[:limit]

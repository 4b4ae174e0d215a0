"""The code systems, codes and units the FHIR mapping uses, and which of them are local.

No implementation guide exists for implanted intrathecal pumps, so ``itb`` profiles its
own on the core R4 resources. Where a standard code is used it is named here with its
system; everything else is a local code under :data:`LOCAL` (``itb.invalid`` is a
reserved, never-resolving domain: a site replaces it with its own base URL). The same
table is printed in ``docs/fhir.md``. Sources: FHIR R4 [S1], SNOMED CT's intrathecal
route [S2], UCUM [S3], HL7 Terminology [S4].
"""

from __future__ import annotations

__all__ = [
    "BASE",
    "EXT",
    "LOCAL",
    "ROUTE_INTRATHECAL",
    "SNOMED",
    "STANDARD_CODES",
    "UCUM",
    "local",
]

BASE = "https://itb.invalid/fhir"
"""The base of every local URL (extensions, code systems, identifier systems)."""

EXT = f"{BASE}/StructureDefinition/"
"""Local extensions: ``EXT + name``."""

LOCAL = f"{BASE}/CodeSystem/"
"""Local code systems: ``LOCAL + name``."""

MRN_SYSTEM = f"{BASE}/identifier/mrn"
"""The identifier system of the hospital's medical record numbers (a site sets its own)."""

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"

ROUTE_INTRATHECAL = {"system": SNOMED, "code": "72607000", "display": "Intrathecal route"}
"""SNOMED CT's intrathecal route (qualifier value)."""

FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

STANDARD_CODES: tuple[tuple[str, str, str, str], ...] = (
    (
        SNOMED,
        "72607000",
        "Intrathecal route",
        "MedicationRequest and MedicationAdministration route",
    ),
    (FLAG_CATEGORY, "safety", "Safety", "Flag.category"),
    (OBSERVATION_CATEGORY, "device", "Device", "interrogation and residual Observations"),
    (OBSERVATION_CATEGORY, "exam", "Exam", "assessment Observations"),
    (OBSERVATION_CATEGORY, "survey", "Survey", "symptom report Observations"),
    (PROVENANCE_PARTICIPANT, "author", "Author", "Provenance of a programming change"),
    (PROVENANCE_PARTICIPANT, "verifier", "Verifier", "the second person"),
    (UCUM, "ug/d", "microgram per day", "dose rates"),
    (UCUM, "ug/h", "microgram per hour", "flex step rates"),
    (UCUM, "ug", "microgram", "bolus doses"),
    (UCUM, "ug/mL", "microgram per millilitre", "concentration (as a Ratio ug / mL)"),
    (UCUM, "mL", "millilitre", "volumes"),
    (UCUM, "cm", "centimetre", "catheter length"),
    (UCUM, "kg", "kilogram", "body weight"),
    (UCUM, "h", "hour", "durations, intervals"),
    (UCUM, "d", "day", "the period of a maximum dose"),
)
"""(system, code, display, where it is used) of every standard code."""


def local(system: str, code: str, display: str | None = None) -> dict[str, str]:
    """A Coding in a local code system."""
    out = {"system": LOCAL + system, "code": code}
    if display:
        out["display"] = display
    return out


def quantity(value: float, code: str) -> dict[str, object]:
    """A UCUM quantity."""
    return {"value": value, "unit": code, "system": UCUM, "code": code}

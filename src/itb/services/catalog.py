"""The reviewed data every use case needs, parsed once.

:func:`build_catalog` turns the data tables (``itb/data/*.toml``, read by an
adapter and handed in as a loader function) into one frozen :class:`Catalog`
of domain objects. The composition root builds it once at start-up
(``itb.bootstrap.catalog``); services receive it as an argument and never read
a file. Facts that one table takes from another (the drug library's bolus
limits from the screening doses, its change limits from the titration rules)
are wired here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from itb.domain.clinic.forecast import ForecastRules, parse_forecast_rules
from itb.domain.clinic.rules import RegistryRules, parse_registry_rules
from itb.domain.clinical.candidacy import CandidacyRules, parse_candidacy_rules
from itb.domain.clinical.card import CardContent, parse_card_content
from itb.domain.clinical.care import ProtocolDefaults, parse_protocol_defaults
from itb.domain.clinical.complications import ComplicationRules, parse_complication_rules
from itb.domain.clinical.dose_guard import DoseGuard
from itb.domain.clinical.drug_library import DrugLibrary, parse_drug_library
from itb.domain.clinical.refill_planning import RefillPolicy, parse_refill_policy
from itb.domain.clinical.safety import SafetyRules, parse_safety_rules
from itb.domain.clinical.screening import ScreeningProtocol, parse_screening_protocol
from itb.domain.clinical.titration import TitrationRules, parse_titration_rules
from itb.domain.clinical.triage import TriageGuide, parse_triage_guide
from itb.domain.drug import DrugCatalog, DrugProduct, parse_drugs
from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced
from itb.domain.pump import (
    CatheterSpec,
    DiscrepancyTolerance,
    PumpPreset,
    parse_catheters,
    parse_discrepancy_tolerance,
    parse_presets,
)

__all__ = ["Catalog", "CatheterFamily", "build_catalog"]

Loader = Callable[[str], Mapping[str, Any]]
"""Reads one data table by name (``"pumps"`` -> the parsed ``pumps.toml``)."""


@dataclass(frozen=True, slots=True)
class CatheterFamily:
    """A catheter family: its label, internal volume and supplied length."""

    key: str
    label: str
    volume_ml_per_cm: float
    supplied_length_cm: float


@dataclass(frozen=True)
class Catalog:
    """Every reviewed table as domain objects (built once; never read again)."""

    presets: Mapping[str, PumpPreset]
    catheters: Mapping[str, CatheterFamily]
    drugs: DrugCatalog
    titration: TitrationRules
    screening: ScreeningProtocol
    library: DrugLibrary
    safety: SafetyRules
    refill_tolerance: DiscrepancyTolerance
    refill_policy: RefillPolicy
    protocol: ProtocolDefaults
    triage: TriageGuide
    candidacy: CandidacyRules
    card: CardContent
    registry: RegistryRules
    """``clinic.toml``: the bounds of a registry record and the refill radar's windows."""
    forecast: ForecastRules
    """``forecast.toml``: the reservoir forecast's prior, measurement and risk classes."""
    complications: ComplicationRules
    """``complications.toml``: the implanted system's complications, explant and bridging."""
    patient_table: Mapping[str, Any]
    """``patient.toml`` (the virtual patient's parameters; parsed per patient)."""
    cohort_table: Mapping[str, Any]
    """``cohort.toml`` (the cohort engine's hazards; parsed by the simulation layer)."""
    demo_table: Mapping[str, Any]
    """``demo_clinic.toml`` (how the virtual clinic's histories are drawn)."""

    # ------------------------------------------------------------ lookups

    def preset(self, key: str, *, field: str = "pump.preset") -> PumpPreset:
        """A pump preset by key.

        Raises:
            InvalidValue: unknown preset (the message lists the known ones).
        """
        preset = self.presets.get(key)
        if preset is None:
            raise InvalidValue(field, key, ", ".join(sorted(self.presets)))
        return preset

    def catheter(
        self, family: str, implanted_length_cm: float, *, field: str = "catheter"
    ) -> CatheterSpec:
        """The implanted catheter of a family and length.

        Raises:
            InvalidValue: unknown family, or longer than the family is supplied.
        """
        fam = self.catheters.get(family)
        if fam is None:
            raise InvalidValue(f"{field}.family", family, ", ".join(sorted(self.catheters)))
        if not 0.0 < implanted_length_cm <= fam.supplied_length_cm:
            raise InvalidValue(
                f"{field}.implanted_length_cm",
                implanted_length_cm,
                f"> 0 and <= {fam.supplied_length_cm:g} (the supplied length of {fam.label})",
            )
        return CatheterSpec(family, fam.label, implanted_length_cm, fam.volume_ml_per_cm)

    def drugs_stability(self) -> Sourced:
        """The drug's stability in the pump, days, with its source."""
        return self.drugs.stability

    def fill_products(self, pump_kind: str) -> tuple[DrugProduct, ...]:
        """The products a pump of this kind may be filled with: not screening-only, made
        for the kind, at a strength the drug library allows in it (a lower concentration
        is a dilution of one of these)."""
        strengths = set(self.library.pump_strengths(pump_kind))
        return tuple(
            p
            for p in self.drugs.products
            if not p.screening_only
            and pump_kind in p.pump_kinds
            and p.concentration_mcg_per_ml in strengths
        )

    def guard(self, population: str | None, *, declared_hazard: str | None = None) -> DoseGuard:
        """The drug library for a patient's population (None: widest hard limits only)."""
        return DoseGuard(self.library, population, declared_hazard)


def build_catalog(load: Loader) -> Catalog:
    """Parse every reviewed table.

    Raises:
        InvalidValue: a table is malformed (the message names the entry).
    """
    drugs = parse_drugs(load("drugs"))
    titration = parse_titration_rules(load("titration"))
    screening = parse_screening_protocol(load("screening"))
    catheters = {
        key: CatheterFamily(key, label, ml_per_cm, supplied)
        for key, (label, ml_per_cm, supplied) in parse_catheters(load("catheters")).items()
    }
    return Catalog(
        presets=parse_presets(load("pumps")),
        catheters=catheters,
        drugs=drugs,
        titration=titration,
        screening=screening,
        library=parse_drug_library(
            load("drug_library"), drugs=drugs, titration=titration, screening=screening
        ),
        safety=parse_safety_rules(load("safety_checks")),
        refill_tolerance=parse_discrepancy_tolerance(load("refill")),
        refill_policy=parse_refill_policy(load("refill_planning")),
        protocol=parse_protocol_defaults(load("protocol")),
        triage=parse_triage_guide(load("triage")),
        candidacy=parse_candidacy_rules(load("candidacy")),
        card=parse_card_content(load("card")),
        registry=parse_registry_rules(load("clinic")),
        forecast=parse_forecast_rules(load("forecast")),
        complications=parse_complication_rules(load("complications")),
        patient_table=load("patient"),
        cohort_table=load("cohort"),
        demo_table=load("demo_clinic"),
    )

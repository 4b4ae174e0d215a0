"""Drug library: soft and hard limits for intrathecal baclofen.

The limits are reviewed data, per population (adult spinal, adult cerebral,
child under 12), with the concentrations each pump kind may hold. Each fact
has one home: the daily-dose limits live in ``drug_library.toml``; the bolus
limits are the screening doses of ``screening.toml`` (the first dose of the
population's sequence is the soft limit, the largest standard dose the hard
one: no protocol gives a single bolus above it, [C11][C12][C13][C16]); the
limits on a change per adjustment are the titration ranges of
``titration.toml`` (the titration-phase maximum is the soft limit, the
maintenance "never more than" the hard one, [C12][C13][C17]); the child age and
the product strengths come from ``titration.toml`` and ``drugs.toml``.

Rules (house style of infusion-pump drug libraries):

- a **hard** limit cannot be passed: :class:`~itb.domain.errors.HardLimitExceeded`;
- a **soft** limit can be passed only with an explicit, non-blank reason; without
  one, :class:`~itb.domain.errors.SoftLimitNeedsReason`; with one, the returned
  :class:`LibraryDecision` records which soft limits were passed and why;
- limits are inclusive (a value equal to a limit is within it);
- a pump may hold a marketed infusion strength listed for its kind, or a saline
  dilution of one ([C3][C15]) above the screening strength and up to the
  strongest strength for its kind; the screening strength itself (50 mcg/mL)
  is for screening boluses only and never goes into a pump.

:class:`~itb.domain.clinical.dose_guard.DoseGuard` applies the library on every
path that programs a pump; the programming-safety checks report its verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from itb.domain.clinical.screening import ScreeningProtocol
from itb.domain.clinical.titration import TitrationRules
from itb.domain.drug import DrugCatalog
from itb.domain.errors import HardLimitExceeded, InvalidValue, SoftLimitNeedsReason
from itb.domain.provenance import STATUSES, Sourced, Status, sourced
from itb.domain.units import require_non_negative, require_positive

__all__ = [
    "PUMP_KINDS",
    "ConcentrationEntry",
    "DrugLibrary",
    "LibraryDecision",
    "LimitCheck",
    "PopulationLimits",
    "PumpKindInfo",
    "check_bolus_against_library",
    "check_dose_against_library",
    "parse_drug_library",
    "population_for",
]

PUMP_KINDS: tuple[str, ...] = ("peristaltic", "valve", "constant_flow")

_DOSE_KEYS = (
    "daily_dose_soft_min_mcg_per_day",
    "daily_dose_soft_max_mcg_per_day",
    "daily_dose_hard_max_mcg_per_day",
)
_RULE_GROUP = {"adult_spinal": "spinal", "adult_cerebral": "cerebral", "child": "pediatric"}
"""Library population -> titration rule group."""
_SCREENING_SEQUENCE = {"adult_spinal": "standard", "adult_cerebral": "standard", "child": "reduced"}
"""Library population -> the screening sequence whose first dose is its bolus soft limit."""


@dataclass(frozen=True, slots=True)
class PopulationLimits:
    """Limits for one population. Every limit is a :class:`Sourced` number."""

    key: str
    label: str
    daily_dose_soft_min_mcg_per_day: Sourced
    daily_dose_soft_max_mcg_per_day: Sourced
    daily_dose_hard_max_mcg_per_day: Sourced
    bolus_soft_max_mcg: Sourced
    bolus_hard_max_mcg: Sourced
    increase_soft_max_pct: Sourced
    increase_hard_max_pct: Sourced
    decrease_soft_max_pct: Sourced


@dataclass(frozen=True, slots=True)
class ConcentrationEntry:
    """A product strength, what it is for and the pump kinds that may hold it."""

    concentration: Sourced
    use: Literal["screening", "infusion"]
    pump_kinds: tuple[str, ...]

    @property
    def concentration_mcg_per_ml(self) -> float:
        """The concentration, mcg/mL."""
        return self.concentration.value


@dataclass(frozen=True, slots=True)
class PumpKindInfo:
    """A pump kind known to the library, with the source that supports its use."""

    kind: str
    label: str
    source: str
    status: Status
    note: str = ""


@dataclass(frozen=True, slots=True)
class DrugLibrary:
    """The whole library."""

    populations: Mapping[str, PopulationLimits]
    concentrations: tuple[ConcentrationEntry, ...]
    pump_kinds: Mapping[str, PumpKindInfo]
    child_under_years: Sourced

    def concentration(self, concentration_mcg_per_ml: float) -> ConcentrationEntry:
        """The product entry for an exact strength.

        Raises:
            HardLimitExceeded: no product has this strength.
        """
        for entry in self.concentrations:
            if entry.concentration_mcg_per_ml == concentration_mcg_per_ml:
                return entry
        raise HardLimitExceeded(
            "concentration_mcg_per_ml",
            concentration_mcg_per_ml,
            ", ".join(f"{e.concentration_mcg_per_ml:g}" for e in self.concentrations)
            + " mcg/mL (product strengths)",
        )

    @property
    def strongest_mcg_per_ml(self) -> float:
        """The strongest baclofen product in the library, mcg/mL."""
        return max(e.concentration_mcg_per_ml for e in self.concentrations)

    @property
    def highest_hard_max_mcg_per_day(self) -> float:
        """The highest hard maximum daily dose of any population, mcg/day."""
        return max(p.daily_dose_hard_max_mcg_per_day.value for p in self.populations.values())

    def pump_strengths(self, pump_kind: str) -> tuple[float, ...]:
        """The infusion strengths a pump kind may hold, mcg/mL, ascending."""
        return tuple(
            e.concentration_mcg_per_ml for e in self.concentrations if pump_kind in e.pump_kinds
        )

    def require_pump_concentration(self, concentration_mcg_per_ml: float, pump_kind: str) -> None:
        """Accept a strength for this pump kind, or a saline dilution of one.

        Raises:
            InvalidValue: unknown pump kind.
            HardLimitExceeded: the screening strength, or outside what can be made for
                this pump kind (above its strongest strength, at or below the screening one).
        """
        if pump_kind not in self.pump_kinds:
            raise InvalidValue("pump_kind", pump_kind, ", ".join(self.pump_kinds))
        strengths = self.pump_strengths(pump_kind)
        if concentration_mcg_per_ml in strengths:
            return
        screening = [
            e.concentration_mcg_per_ml for e in self.concentrations if e.use == "screening"
        ]
        floor = max(screening) if screening else 0.0
        top = max(strengths) if strengths else 0.0
        if not floor < concentration_mcg_per_ml <= top:
            note = (
                f" (the {concentration_mcg_per_ml:g} mcg/mL strength is for screening boluses only)"
                if concentration_mcg_per_ml in screening
                else ""
            )
            raise HardLimitExceeded(
                "concentration_mcg_per_ml",
                concentration_mcg_per_ml,
                f"{', '.join(f'{c:g}' for c in strengths)} mcg/mL in a {pump_kind} pump, or a "
                f"saline dilution above {floor:g} and up to {top:g} mcg/mL{note}",
            )

    def hard_max_by_rule_group(self) -> dict[str, float]:
        """The daily hard maximum keyed by titration rule group (spinal, cerebral, pediatric)."""
        return {
            group: self.populations[pop].daily_dose_hard_max_mcg_per_day.value
            for pop, group in _RULE_GROUP.items()
            if pop in self.populations
        }

    def limits(self, population: str) -> PopulationLimits:
        """The limits of ``population``.

        Raises:
            InvalidValue: unknown population.
        """
        try:
            return self.populations[population]
        except KeyError:
            raise InvalidValue("population", population, ", ".join(self.populations)) from None


def _pct(fraction: Sourced, what: str) -> Sourced:
    """A titration fraction as a library percentage, keeping its provenance."""
    return Sourced(
        fraction.value * 100.0,
        "%/adjustment",
        fraction.status,
        fraction.source,
        f"{what} (titration.toml)" + (f"; {fraction.note}" if fraction.note else ""),
    )


def _screening_dose(dose: Sourced, what: str) -> Sourced:
    return Sourced(
        dose.value,
        "mcg",
        "assumed",
        dose.source,
        f"{what} (screening.toml) used as a library limit: no source states it as one",
    )


def parse_drug_library(
    table: Mapping[str, Any],
    *,
    drugs: DrugCatalog,
    titration: TitrationRules,
    screening: ScreeningProtocol,
) -> DrugLibrary:
    """Parse ``drug_library.toml`` and draw the other limits from their own homes.

    Raises:
        InvalidValue: a limit is missing or malformed, a soft limit is above its hard
            limit, or a product names an unknown pump kind.
    """
    pops_table = table.get("populations")
    if not isinstance(pops_table, Mapping) or not pops_table:
        raise InvalidValue("drug_library.populations", pops_table, "a table of populations")
    hard_bolus = _screening_dose(
        max(screening.sequences["standard"], key=lambda d: d.value),
        "the largest standard screening dose",
    )
    populations: dict[str, PopulationLimits] = {}
    for key, entry in pops_table.items():
        where = f"drug_library.populations.{key}"
        if not isinstance(entry, Mapping):
            raise InvalidValue(where, entry, "a table of limits")
        if key not in _RULE_GROUP:
            raise InvalidValue(where, key, ", ".join(_RULE_GROUP))
        group = _RULE_GROUP[key]
        doses = {k: sourced(entry, k, where=where) for k in _DOSE_KEYS}
        first = screening.sequences[_SCREENING_SEQUENCE[key]][0]
        pop = PopulationLimits(
            key=key,
            label=str(entry.get("label", key)),
            **doses,
            bolus_soft_max_mcg=_screening_dose(first, "the first screening dose"),
            bolus_hard_max_mcg=hard_bolus,
            increase_soft_max_pct=_pct(
                titration.titration_increase[group].high, "the titration-phase maximum step"
            ),
            increase_hard_max_pct=_pct(
                titration.maintenance_increase[group].high,
                "never more than this per adjustment",
            ),
            decrease_soft_max_pct=_pct(titration.decrease.high, "the label's largest decrease"),
        )
        _check_order(where, pop)
        populations[key] = pop

    kinds_table = table.get("pump_kinds")
    if not isinstance(kinds_table, Mapping):
        raise InvalidValue("drug_library.pump_kinds", kinds_table, "a table of pump kinds")
    pump_kinds: dict[str, PumpKindInfo] = {}
    for kind, entry in kinds_table.items():
        where = f"drug_library.pump_kinds.{kind}"
        if kind not in PUMP_KINDS:
            raise InvalidValue(where, kind, ", ".join(PUMP_KINDS))
        status = entry.get("status")
        if status not in STATUSES:
            raise InvalidValue(f"{where}.status", status, " or ".join(STATUSES))
        source = entry.get("source")
        if not isinstance(source, str) or not source:
            raise InvalidValue(f"{where}.source", source, "a non-empty source string")
        pump_kinds[kind] = PumpKindInfo(
            kind, str(entry.get("label", kind)), source, status, str(entry.get("note", ""))
        )

    concentrations: list[ConcentrationEntry] = []
    for product in drugs.products:
        where = f"drugs.{product.key}.pump_kinds"
        if any(k not in pump_kinds for k in product.pump_kinds):
            raise InvalidValue(where, list(product.pump_kinds), ", ".join(pump_kinds))
        if product.screening_only and product.pump_kinds:
            raise InvalidValue(where, list(product.pump_kinds), "[] for a screening-only strength")
        concentrations.append(
            ConcentrationEntry(
                product.concentration,
                "screening" if product.screening_only else "infusion",
                product.pump_kinds,
            )
        )
    return DrugLibrary(
        populations=populations,
        concentrations=tuple(sorted(concentrations, key=lambda e: e.concentration_mcg_per_ml)),
        pump_kinds=pump_kinds,
        child_under_years=titration.pediatric_age_below_years,
    )


def _check_order(where: str, pop: PopulationLimits) -> None:
    pairs = (
        ("daily_dose_soft_min_mcg_per_day", "daily_dose_soft_max_mcg_per_day"),
        ("daily_dose_soft_max_mcg_per_day", "daily_dose_hard_max_mcg_per_day"),
        ("bolus_soft_max_mcg", "bolus_hard_max_mcg"),
        ("increase_soft_max_pct", "increase_hard_max_pct"),
    )
    for low, high in pairs:
        lo, hi = getattr(pop, low).value, getattr(pop, high).value
        if lo > hi:
            raise InvalidValue(f"{where}.{low}", lo, f"<= {high} ({hi:g})")


def population_for(library: DrugLibrary, *, age_years: float, origin: str) -> str:
    """The library population for a person: ``child`` under the child age, else by origin.

    Raises:
        InvalidValue: negative age or unknown origin.
    """
    require_non_negative("age_years", age_years)
    if origin not in ("spinal", "cerebral"):
        raise InvalidValue("origin", origin, "spinal or cerebral")
    if age_years < library.child_under_years.value:
        return "child"
    return f"adult_{origin}"


LimitKind = Literal["soft", "hard"]


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One limit checked against one value.

    Attributes:
        field: the checked quantity, e.g. ``"dose_mcg_per_day"`` or ``"dose_increase_pct"``.
        value: its value, in ``limit.unit``.
        kind: ``"soft"`` or ``"hard"``.
        bound: ``"max"`` (value must be <= limit) or ``"min"`` (value must be >= limit).
        limit: the limit with its unit and source.
        passed_limit: True when the value is beyond the limit.
    """

    field: str
    value: float
    kind: LimitKind
    bound: Literal["min", "max"]
    limit: Sourced
    passed_limit: bool

    def describe(self, population: str) -> str:
        """One-line wording of the limit, e.g. ``<= 1000 mcg/day (soft, adult_spinal; ...)``."""
        op = "<=" if self.bound == "max" else ">="
        return (
            f"{op} {self.limit.value:g} {self.limit.unit} ({self.kind} limit, {population}; "
            f"{self.limit.source})"
        )


@dataclass(frozen=True, slots=True)
class LibraryDecision:
    """The library's answer: allowed, with every check and any recorded override.

    A decision is only ever returned for an allowed value: a hard limit raises
    :class:`HardLimitExceeded` and an unexplained soft limit raises
    :class:`SoftLimitNeedsReason`.
    """

    population: str
    concentration_mcg_per_ml: float
    pump_kind: str | None
    field: str
    value: float
    checks: tuple[LimitCheck, ...]
    override_reason: str | None

    @property
    def overridden(self) -> tuple[LimitCheck, ...]:
        """Soft limits passed on the strength of :attr:`override_reason`."""
        return tuple(c for c in self.checks if c.passed_limit)

    @property
    def within_all_limits(self) -> bool:
        """True when no soft limit was passed."""
        return not self.overridden


def _beyond(value: float, bound: str, limit: float) -> bool:
    return value > limit if bound == "max" else value < limit


def _decide(
    *,
    population: str,
    concentration_mcg_per_ml: float,
    pump_kind: str | None,
    field: str,
    value: float,
    wanted: list[tuple[str, float, LimitKind, Literal["min", "max"], Sourced]],
    override_reason: str | None,
) -> LibraryDecision:
    checks = tuple(
        LimitCheck(f, v, kind, bound, limit, _beyond(v, bound, limit.value))
        for f, v, kind, bound, limit in wanted
    )
    for c in checks:
        if c.kind == "hard" and c.passed_limit:
            raise HardLimitExceeded(c.field, round(c.value, 2), c.describe(population))
    soft_passed = [c for c in checks if c.passed_limit]
    reason = override_reason.strip() if override_reason is not None else ""
    if soft_passed and not reason:
        first = soft_passed[0]
        raise SoftLimitNeedsReason(
            first.field,
            round(first.value, 2),
            "; and ".join(c.describe(population) for c in soft_passed),
        )
    return LibraryDecision(
        population=population,
        concentration_mcg_per_ml=concentration_mcg_per_ml,
        pump_kind=pump_kind,
        field=field,
        value=value,
        checks=checks,
        override_reason=reason if soft_passed else None,
    )


def check_dose_against_library(
    library: DrugLibrary,
    population: str,
    concentration_mcg_per_ml: float,
    pump_kind: str,
    dose_mcg_per_day: float,
    override_reason: str | None = None,
    *,
    previous_dose_mcg_per_day: float | None = None,
) -> LibraryDecision:
    """Check a daily dose (and, given the previous dose, the size of the change).

    Args:
        library: the drug library.
        population: ``"adult_spinal"``, ``"adult_cerebral"`` or ``"child"``
            (see :func:`population_for`).
        concentration_mcg_per_ml: drug in the pump, mcg/mL.
        pump_kind: ``"peristaltic"``, ``"valve"`` or ``"constant_flow"``.
        dose_mcg_per_day: the new daily dose, mcg/day (>= 0).
        override_reason: the clinician's reason for passing a soft limit.
        previous_dose_mcg_per_day: the dose being replaced, mcg/day (> 0); omit for a
            first program or a restart.

    Returns:
        The decision, with every check and the recorded override reason if one was used.

    Raises:
        HardLimitExceeded: a hard limit, or a concentration not allowed in this pump kind.
        SoftLimitNeedsReason: a soft limit passed without a reason.
        InvalidValue: unknown population or pump kind, or a negative dose.
    """
    dose = require_non_negative("dose_mcg_per_day", dose_mcg_per_day)
    limits = library.limits(population)
    library.require_pump_concentration(concentration_mcg_per_ml, pump_kind)
    wanted: list[tuple[str, float, LimitKind, Literal["min", "max"], Sourced]] = [
        ("dose_mcg_per_day", dose, "hard", "max", limits.daily_dose_hard_max_mcg_per_day),
        ("dose_mcg_per_day", dose, "soft", "max", limits.daily_dose_soft_max_mcg_per_day),
        ("dose_mcg_per_day", dose, "soft", "min", limits.daily_dose_soft_min_mcg_per_day),
    ]
    if previous_dose_mcg_per_day is not None:
        prev = require_positive("previous_dose_mcg_per_day", previous_dose_mcg_per_day)
        # (new - prev) * 100 / prev, computed so that exact steps (e.g. 100 -> 130) stay exact.
        change_pct = (dose - prev) * 100.0 / prev
        if change_pct > 0:
            wanted += [
                ("dose_increase_pct", change_pct, "hard", "max", limits.increase_hard_max_pct),
                ("dose_increase_pct", change_pct, "soft", "max", limits.increase_soft_max_pct),
            ]
        elif change_pct < 0:
            wanted.append(
                ("dose_decrease_pct", -change_pct, "soft", "max", limits.decrease_soft_max_pct)
            )
    return _decide(
        population=population,
        concentration_mcg_per_ml=concentration_mcg_per_ml,
        pump_kind=pump_kind,
        field="dose_mcg_per_day",
        value=dose,
        wanted=wanted,
        override_reason=override_reason,
    )


def check_bolus_against_library(
    library: DrugLibrary,
    population: str,
    concentration_mcg_per_ml: float,
    pump_kind: str | None,
    bolus_mcg: float,
    override_reason: str | None = None,
) -> LibraryDecision:
    """Check a single bolus.

    Args:
        pump_kind: the pump giving the bolus, or ``None`` for a screening bolus by lumbar
            puncture or spinal catheter (the only use of the 50 mcg/mL strength).
        bolus_mcg: the bolus, mcg (> 0).

    Raises:
        HardLimitExceeded, SoftLimitNeedsReason, InvalidValue: as for
        :func:`check_dose_against_library`.
    """
    bolus = require_positive("bolus_mcg", bolus_mcg)
    limits = library.limits(population)
    if pump_kind is None:
        library.concentration(concentration_mcg_per_ml)
    else:
        library.require_pump_concentration(concentration_mcg_per_ml, pump_kind)
    return _decide(
        population=population,
        concentration_mcg_per_ml=concentration_mcg_per_ml,
        pump_kind=pump_kind,
        field="bolus_mcg",
        value=bolus,
        wanted=[
            ("bolus_mcg", bolus, "hard", "max", limits.bolus_hard_max_mcg),
            ("bolus_mcg", bolus, "soft", "max", limits.bolus_soft_max_mcg),
        ],
        override_reason=override_reason,
    )

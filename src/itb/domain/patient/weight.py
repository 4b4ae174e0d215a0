"""Body weight for age: the expected weight, and the range a patient's weight must lie in.

The expected (median) weight follows the paediatric rule of thumb 2 x (age + 4) kg up to
``child_rule_until_years``, then rises linearly to the adult median at
``adult_age_years`` (``[population.weight]`` of patient.toml, all assumed). A weight more
than ``plausible_factor`` times above or below it is refused wherever a patient enters
(scenarios, the registry): a 6-year-old of 120 kg is a typing error, not a patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.provenance import sourced
from itb.domain.units import require_finite, require_positive

__all__ = ["WeightForAge"]

_WHERE = "population.weight"


@dataclass(frozen=True, slots=True)
class WeightForAge:
    """The expected body weight by age and the plausible range around it."""

    child_kg_per_year: float
    child_offset_years: float
    child_rule_until_years: float
    adult_age_years: float
    adult_median_kg: float
    plausible_factor: float

    def __post_init__(self) -> None:
        for name in (
            "child_kg_per_year",
            "child_rule_until_years",
            "adult_age_years",
            "adult_median_kg",
        ):
            require_positive(f"{_WHERE}.{name}", getattr(self, name))
        require_finite(f"{_WHERE}.child_offset_years", self.child_offset_years)
        if not self.plausible_factor > 1.0:
            raise InvalidValue(f"{_WHERE}.plausible_factor", self.plausible_factor, "> 1")
        if self.adult_age_years <= self.child_rule_until_years:
            raise InvalidValue(
                f"{_WHERE}.adult_age_years",
                self.adult_age_years,
                f"> child_rule_until_years ({self.child_rule_until_years:g})",
            )

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> WeightForAge:
        """Parse ``[population.weight]`` of patient.toml."""
        node = table.get("population", {}).get("weight")
        if not isinstance(node, Mapping):
            raise InvalidValue(_WHERE, None, "a [population.weight] table")

        def v(key: str) -> float:
            return sourced(node, key, where=_WHERE).value

        return cls(
            child_kg_per_year=v("child_kg_per_year"),
            child_offset_years=v("child_offset_years"),
            child_rule_until_years=v("child_rule_until_years"),
            adult_age_years=v("adult_age_years"),
            adult_median_kg=v("adult_median_kg"),
            plausible_factor=v("plausible_factor"),
        )

    def expected_kg(self, age_years: float) -> float:
        """Median body weight (kg) expected at ``age_years``."""
        until = self.child_rule_until_years
        child = self.child_kg_per_year * (min(age_years, until) + self.child_offset_years)
        if age_years <= until:
            return child
        if age_years >= self.adult_age_years:
            return self.adult_median_kg
        frac = (age_years - until) / (self.adult_age_years - until)
        return child + frac * (self.adult_median_kg - child)

    def allowed_kg(self, age_years: float) -> tuple[float, float]:
        """The plausible range of weights (kg) at ``age_years``."""
        expected = self.expected_kg(age_years)
        return expected / self.plausible_factor, expected * self.plausible_factor

    def check(self, age_years: float, weight_kg: float, *, field: str = "weight_kg") -> None:
        """Refuse a weight outside the plausible range for the age.

        Raises:
            InvalidValue: named as ``field``, with the range allowed at that age.
        """
        lo, hi = self.allowed_kg(age_years)
        if not lo <= weight_kg <= hi:
            raise InvalidValue(
                field,
                weight_kg,
                f"{lo:.0f} to {hi:.0f} kg at age {age_years:.0f} (within "
                f"{self.plausible_factor:g} x the {self.expected_kg(age_years):.0f} kg expected)",
            )

"""Baclofen products and concentrations, dilution, dose <-> rate.

Products ([C3][C6][C10]): 50 mcg/mL (screening), 500, 1000 and 2000 mcg/mL.
Any other concentration must be made by dilution with preservative-free
normal saline [C3][C15].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.provenance import Sourced, sourced
from itb.domain.units import require_non_negative, require_positive

__all__ = ["DrugCatalog", "DrugProduct", "dilute", "dilution_volumes", "parse_drugs"]


@dataclass(frozen=True, slots=True)
class DrugProduct:
    """A baclofen injection product and the pump kinds it may be filled into."""

    key: str
    label: str
    concentration: Sourced
    screening_only: bool
    pump_kinds: tuple[str, ...] = ()

    @property
    def concentration_mcg_per_ml(self) -> float:
        """The strength, mcg/mL."""
        return self.concentration.value


@dataclass(frozen=True, slots=True)
class DrugCatalog:
    """The products on the market plus handling limits."""

    products: tuple[DrugProduct, ...]
    labelled_tolerance_pct: float
    stability: Sourced
    """Days the drug may stay in the pump, with its source."""

    @property
    def max_days_in_pump(self) -> float:
        """Days the drug may stay in the pump."""
        return self.stability.value

    def concentrations_mcg_per_ml(self, *, for_pump: bool = True) -> tuple[float, ...]:
        """Available concentrations (mcg/mL); ``for_pump`` drops screening-only strengths."""
        return tuple(
            p.concentration_mcg_per_ml for p in self.products if not (for_pump and p.screening_only)
        )


def parse_drugs(tables: Mapping[str, Any]) -> DrugCatalog:
    """Parse the ``drugs`` data table."""
    products = []
    for key, table in tables.items():
        if "concentration_mcg_per_ml" not in table:
            continue
        kinds = table.get("pump_kinds", [])
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise InvalidValue(f"drugs.{key}.pump_kinds", kinds, "a list of pump kinds")
        products.append(
            DrugProduct(
                key=key,
                label=str(table.get("label", key)),
                concentration=sourced(table, "concentration_mcg_per_ml", where=f"drugs.{key}"),
                screening_only=bool(table.get("screening_only", False)),
                pump_kinds=tuple(kinds),
            )
        )
    return DrugCatalog(
        products=tuple(sorted(products, key=lambda p: p.concentration_mcg_per_ml)),
        labelled_tolerance_pct=sourced(
            tables["labelled_tolerance"], "concentration_within_pct", where="drugs"
        ).value,
        stability=sourced(tables["stability"], "max_days_in_pump", where="drugs"),
    )


def dilute(stock_mcg_per_ml: float, stock_ml: float, diluent_ml: float) -> float:
    """Concentration (mcg/mL) after adding ``diluent_ml`` of saline to ``stock_ml`` of stock."""
    require_positive("stock_mcg_per_ml", stock_mcg_per_ml)
    require_positive("stock_ml", stock_ml)
    require_non_negative("diluent_ml", diluent_ml)
    return stock_mcg_per_ml * stock_ml / (stock_ml + diluent_ml)


def dilution_volumes(
    stock_mcg_per_ml: float, target_mcg_per_ml: float, total_ml: float
) -> tuple[float, float]:
    """Stock and saline volumes (mL) that make ``total_ml`` at ``target_mcg_per_ml``.

    Raises:
        InvalidValue: the target is stronger than the stock.
    """
    require_positive("stock_mcg_per_ml", stock_mcg_per_ml)
    require_positive("target_mcg_per_ml", target_mcg_per_ml)
    require_positive("total_ml", total_ml)
    if target_mcg_per_ml > stock_mcg_per_ml:
        raise InvalidValue(
            "target_mcg_per_ml", target_mcg_per_ml, f"<= the stock's {stock_mcg_per_ml:g} mcg/mL"
        )
    stock_ml = total_ml * target_mcg_per_ml / stock_mcg_per_ml
    return stock_ml, total_ml - stock_ml

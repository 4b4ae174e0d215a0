"""The catheter and the pump's internal path: the dead space, in plug flow.

Dead space = pump internal path + implanted catheter length x internal volume
per cm ([D71b]: 0.0026 mL/cm; a 60 cm catheter holds ~0.156 mL).
Fluid moves through it as a plug: what leaves the tip is what entered a dead
space's volume earlier. A change of concentration therefore reaches the CSF
only after the dead space has been pushed through (at 0.2 mL/day through
0.2 mL that is a whole day), which is why a bridge bolus exists, and
why an injection through the catheter access port (CAP), which enters at the
catheter's start, flushes the catheter's drug straight into the CSF
([D57][D62]).

The contents are kept exactly as a queue of slugs (volume, concentration),
tip first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.provenance import sourced
from itb.domain.units import require_non_negative, require_positive

__all__ = ["CatheterSpec", "DeadSpace", "Slug", "parse_catheters"]

_TINY_ML = 1e-15
"""Slugs smaller than this (mL) are float dust from splitting and are merged away."""


@dataclass(frozen=True, slots=True)
class CatheterSpec:
    """An implanted catheter: implanted length (cm) x internal volume (mL/cm)."""

    key: str
    label: str
    implanted_length_cm: float
    volume_ml_per_cm: float

    def __post_init__(self) -> None:
        require_positive("implanted_length_cm", self.implanted_length_cm)
        require_positive("volume_ml_per_cm", self.volume_ml_per_cm)

    @property
    def volume_ml(self) -> float:
        """Internal volume of the implanted catheter, mL."""
        return self.implanted_length_cm * self.volume_ml_per_cm


def parse_catheters(
    tables: Mapping[str, Any],
) -> dict[str, tuple[str, float, float]]:
    """Catheter families: key -> (label, volume per cm in mL/cm, supplied length in cm)."""
    out: dict[str, tuple[str, float, float]] = {}
    for key, table in tables.items():
        where = f"catheters.{key}"
        out[key] = (
            str(table.get("label", key)),
            sourced(table, "volume_ml_per_cm", where=where).value,
            sourced(table, "supplied_length_cm", where=where).value,
        )
    return out


@dataclass(frozen=True, slots=True)
class Slug:
    """A plug of fluid in the dead space."""

    volume_ml: float
    concentration_mcg_per_ml: float

    @property
    def mass_mcg(self) -> float:
        """Drug in the slug, mcg."""
        return self.volume_ml * self.concentration_mcg_per_ml


class DeadSpace:
    """Contents of pump path + catheter, tip first, moving in plug flow.

    The catheter access port sits where the catheter leaves the pump, i.e.
    ``catheter_ml`` from the tip.
    """

    __slots__ = ("_slugs", "catheter_ml", "pump_path_ml")

    def __init__(
        self, pump_path_ml: float, catheter_ml: float, concentration_mcg_per_ml: float = 0.0
    ) -> None:
        self.pump_path_ml = require_non_negative("internal_path_ml", pump_path_ml)
        self.catheter_ml = require_positive("catheter volume_ml", catheter_ml)
        self._slugs: deque[Slug] = deque()
        self._slugs.append(Slug(self.volume_ml, concentration_mcg_per_ml))

    @property
    def volume_ml(self) -> float:
        """Total dead-space volume, mL."""
        return self.pump_path_ml + self.catheter_ml

    @property
    def slugs(self) -> tuple[Slug, ...]:
        """Current contents, tip first."""
        return tuple(self._slugs)

    @property
    def mass_mcg(self) -> float:
        """Drug in the dead space, mcg."""
        return sum(s.mass_mcg for s in self._slugs)

    def tip_concentration_mcg_per_ml(self) -> float:
        """Concentration of the fluid at the catheter tip, mcg/mL."""
        return self._slugs[0].concentration_mcg_per_ml

    def _append(self, target: deque[Slug], volume_ml: float, conc: float) -> None:
        if volume_ml <= _TINY_ML:
            return
        if target and target[-1].concentration_mcg_per_ml == conc:
            last = target.pop()
            target.append(Slug(last.volume_ml + volume_ml, conc))
        else:
            target.append(Slug(volume_ml, conc))

    @staticmethod
    def _pop_front(source: deque[Slug], volume_ml: float) -> list[Slug]:
        """Remove ``volume_ml`` from the front of ``source``; return the parts removed, in order."""
        out: list[Slug] = []
        remaining = volume_ml
        while remaining > _TINY_ML and source:
            head = source[0]
            if head.volume_ml <= remaining + _TINY_ML:
                source.popleft()
                out.append(head)
                remaining -= head.volume_ml
            else:
                source[0] = Slug(head.volume_ml - remaining, head.concentration_mcg_per_ml)
                out.append(Slug(remaining, head.concentration_mcg_per_ml))
                remaining = 0.0
        return out

    def push(self, volume_ml: float, concentration_mcg_per_ml: float) -> list[Slug]:
        """Push ``volume_ml`` in at the pump end; return what leaves the tip, in order."""
        if volume_ml <= 0.0:
            return []
        self._append(self._slugs, volume_ml, concentration_mcg_per_ml)
        return self._pop_front(self._slugs, volume_ml)

    def inject_at_access_port(
        self, volume_ml: float, concentration_mcg_per_ml: float
    ) -> list[Slug]:
        """Inject through the catheter access port; return what leaves the tip, in order.

        The catheter's contents (and, beyond the catheter's volume, the injected
        drug itself) are pushed straight into the CSF.
        """
        if volume_ml <= 0.0:
            return []
        catheter = deque(self._pop_front(self._slugs, self.catheter_ml))
        self._append(catheter, volume_ml, concentration_mcg_per_ml)
        out = self._pop_front(catheter, volume_ml)
        path = self._slugs
        self._slugs = catheter
        for slug in path:
            self._append(self._slugs, slug.volume_ml, slug.concentration_mcg_per_ml)
        return out

    def replace(self, concentration_mcg_per_ml: float) -> None:
        """Fill the whole dead space with one concentration (e.g. a new catheter)."""
        self._slugs = deque([Slug(self.volume_ml, concentration_mcg_per_ml)])

    def restore(self, slugs: list[Slug]) -> None:
        """Set the contents, tip first (a stored state); the volumes must fill the dead space.

        Raises:
            InvalidValue: the slugs do not add up to the dead-space volume.
        """
        total = sum(s.volume_ml for s in slugs)
        if not slugs or abs(total - self.volume_ml) > 1e-9 * max(1.0, self.volume_ml):
            raise InvalidValue("dead space", round(total, 9), f"slugs of {self.volume_ml:g} mL")
        self._slugs = deque(slugs)

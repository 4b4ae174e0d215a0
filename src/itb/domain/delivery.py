"""What reaches the patient: the interface between the pump system and the patient.

The pump system emits drug into the CSF at the catheter tip as a sequence of
:class:`DeliverySegment`: a constant mass rate over a time span. Every program is
piecewise constant and plug flow through the catheter preserves that, so any
history (continuous, flex, boluses, transit of a concentration change, a
catheter-access-port flush) is exactly such a sequence. A bolus given "at once"
(barbotage over a minute) is a short segment too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from itb.domain.errors import InvalidValue

__all__ = ["DeliverySegment", "bolus_segment", "coalesce", "total_mcg"]


@dataclass(frozen=True, slots=True)
class DeliverySegment:
    """Drug entering the CSF at a constant rate.

    Attributes:
        t0_h: start, hours since the start of the run.
        t1_h: end, hours; ``t1_h > t0_h``.
        rate_mcg_per_h: baclofen mass rate into the CSF, mcg/h (>= 0).
    """

    t0_h: float
    t1_h: float
    rate_mcg_per_h: float

    def __post_init__(self) -> None:
        if not self.t1_h > self.t0_h:
            raise InvalidValue("t1_h", self.t1_h, f"> t0_h ({self.t0_h})")
        if not self.rate_mcg_per_h >= 0.0:
            raise InvalidValue("rate_mcg_per_h", self.rate_mcg_per_h, ">= 0")

    @property
    def duration_h(self) -> float:
        """Length of the segment, hours."""
        return self.t1_h - self.t0_h

    @property
    def amount_mcg(self) -> float:
        """Drug delivered over the segment, mcg."""
        return self.rate_mcg_per_h * (self.t1_h - self.t0_h)


def bolus_segment(t_h: float, amount_mcg: float, duration_h: float = 1.0 / 60.0) -> DeliverySegment:
    """A bolus of ``amount_mcg`` given over ``duration_h`` (default 1 minute) from ``t_h``.

    The screening bolus is given by barbotage over at least 1 minute
    ([C11][C12]).
    """
    return DeliverySegment(t_h, t_h + duration_h, amount_mcg / duration_h)


def coalesce(segments: Iterable[DeliverySegment]) -> Iterator[DeliverySegment]:
    """Merge touching segments with equal rates (a pure simplification; amounts unchanged)."""
    pending: DeliverySegment | None = None
    for seg in segments:
        if (
            pending is not None
            and pending.t1_h == seg.t0_h
            and pending.rate_mcg_per_h == seg.rate_mcg_per_h
        ):
            pending = DeliverySegment(pending.t0_h, seg.t1_h, seg.rate_mcg_per_h)
            continue
        if pending is not None:
            yield pending
        pending = seg
    if pending is not None:
        yield pending


def total_mcg(segments: Iterable[DeliverySegment]) -> float:
    """Total drug delivered by ``segments``, mcg."""
    return sum(s.amount_mcg for s in segments)

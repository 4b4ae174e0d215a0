"""Dosing histories: the patient's response to a sequence of delivery segments.

Segments may overlap (a bolus on top of a continuous infusion): the rates add.
Gaps deliver nothing. Between consecutive breakpoints (segment ends and sample
times) the rate is constant, so each piece is advanced exactly with
:func:`itb.domain.patient.model.advance`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

from itb.domain.delivery import DeliverySegment
from itb.domain.errors import InvalidValue
from itb.domain.patient.model import PatientParameters, PatientState, advance
from itb.domain.patient.observe import Observation, observe
from itb.domain.units import require_finite

__all__ = ["rate_pieces", "respond", "simulate"]


def rate_pieces(
    segments: Iterable[DeliverySegment],
    t0_h: float,
    t1_h: float,
    extra_breaks: Iterable[float] = (),
) -> list[tuple[float, float, float]]:
    """Split ``[t0_h, t1_h]`` into pieces ``(start_h, end_h, rate_mcg_per_h)`` of constant rate.

    The rate of a piece is the sum of the rates of the segments covering it.
    """
    segs = sorted((s for s in segments if s.t1_h > t0_h and s.t0_h < t1_h), key=lambda s: s.t0_h)
    breaks = {t0_h, t1_h}
    for s in segs:
        breaks.update(t for t in (s.t0_h, s.t1_h) if t0_h < t < t1_h)
    breaks.update(t for t in extra_breaks if t0_h < t < t1_h)
    points = sorted(breaks)
    pieces: list[tuple[float, float, float]] = []
    active: list[DeliverySegment] = []
    i_next = 0
    for a, b in itertools.pairwise(points):
        while i_next < len(segs) and segs[i_next].t0_h <= a:
            active.append(segs[i_next])
            i_next += 1
        active = [s for s in active if s.t1_h > a]
        pieces.append((a, b, math.fsum(s.rate_mcg_per_h for s in active)))
    return pieces


def simulate(
    params: PatientParameters,
    segments: Sequence[DeliverySegment],
    sample_times_h: Sequence[float],
    state: PatientState | None = None,
) -> tuple[PatientState, ...]:
    """States at ``sample_times_h`` (ascending, >= the start state's ``t_h``).

    Raises:
        InvalidValue: sample times out of order or before the start.
    """
    current = state if state is not None else PatientState()
    times = [require_finite("sample_times_h", t) for t in sample_times_h]
    if any(b < a for a, b in itertools.pairwise(times)):
        raise InvalidValue("sample_times_h", "not ascending", "ascending times")
    if times and times[0] < current.t_h:
        raise InvalidValue("sample_times_h", times[0], f">= start time {current.t_h}")
    if not times:
        return ()
    out: list[PatientState] = []
    pending = iter(times)
    next_sample = next(pending, None)
    for a, b, rate in rate_pieces(segments, current.t_h, times[-1], times):
        while next_sample is not None and next_sample <= a:
            out.append(current)
            next_sample = next(pending, None)
        current = advance(params, current, rate, b - a)
    while next_sample is not None:
        out.append(current)
        next_sample = next(pending, None)
    return tuple(out)


def respond(
    params: PatientParameters,
    segments: Sequence[DeliverySegment],
    sample_times_h: Sequence[float],
    state: PatientState | None = None,
) -> tuple[Observation, ...]:
    """Observations of the patient at ``sample_times_h`` under a delivery history."""
    return tuple(observe(params, s) for s in simulate(params, segments, sample_times_h, state))

"""The reservoir forecast over many pumps at once: learn each pump's delivery factor from
its refills, then the low-reservoir and empty times and the chance of each before a date.

The method (``docs/forecast.md``):

* **Belief.** A pump's mean delivery factor ``f`` (mL drawn per mL programmed) starts at
  the spread between pumps, ``N(prior_mean, prior_sd²)``. Refill interval ``i`` runs at
  ``f_i = f + η_i`` with ``η_i ~ N(0, τ²)`` (the interval-to-interval spread), and its
  residual is read from the syringe with error ``ε ~ N(0, σ_w²)``.
* **A measured refill** gives ``used_i / programmed_i = f + η_i + ε/programmed_i``: a
  normal measurement of ``f`` with variance ``τ² + σ_w² / programmed_i²``; the update is
  the exact conjugate one.
* **A reservoir found empty** says only ``f_i >= c_i = used_i / programmed_i`` (it used at
  least all it held): a censored observation, likelihood ``Φ((f - c_i) / sqrt(τ² +
  σ_w²/programmed_i²))``. The belief is updated by matching the first two moments of the
  normal belief times that probit (assumed-density filtering; exact in mean and variance
  for one such step, an approximation for the belief's shape).
* **The coming interval** runs at ``f + η``: predictive ``N(m, s² + τ²)``.
* **Times.** The reservoir is empty when ``f · (programmed since the fill + C(t)) =
  start`` (the calculated volume the fill left), where ``C(t)`` is the volume commanded from now to ``t`` (the profile: a lead
  piece, then a repeating period of constant-rate pieces, worst-case patient boluses in
  every rate). ``C`` is increasing, so the empty time's quantiles are ``C⁻¹`` of the
  factor's quantiles, and ``P(empty by t) = P(f >= start / (programmed so far + C(t)))``
  exactly; the same for the low-reservoir volume with ``start - low`` in place of
  ``start``.

Everything is numpy over pumps; the profile's pieces are padded to the longest period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr, ndtr, ndtri

from itb.domain.clinic.forecast import DeliveryProfile

__all__ = [
    "Beliefs",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "Profiles",
    "Times",
    "commanded_ml",
    "forecast",
    "forecast_profiles",
    "learn",
    "pack",
    "time_to",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

_MIN_FACTOR = 1e-3
"""A delivery factor at or below this is taken as delivering nothing (no finite time)."""


@dataclass(frozen=True, slots=True)
class Beliefs:
    """Each pump's belief about its mean delivery factor: ``N(mean, var)``."""

    mean: FloatArray
    var: FloatArray

    def predictive_sd(self, interval_sd: float) -> FloatArray:
        """sd of the factor over the coming interval (the belief and the interval spread)."""
        return np.asarray(np.sqrt(self.var + interval_sd**2), dtype=np.float64)


def learn(
    n_pumps: int,
    *,
    prior_mean: float | FloatArray,
    prior_sd: float | FloatArray,
    pump: IntArray,
    programmed_ml: FloatArray,
    used_ml: FloatArray,
    found_empty: BoolArray,
    reading_sd_ml: float,
    interval_sd: float,
) -> Beliefs:
    """Every pump's belief after its refills.

    Args:
        n_pumps: how many pumps.
        prior_mean, prior_sd: the belief before any refill (scalars or per pump).
        pump: each observation's pump (0 .. n_pumps-1), in time order within a pump.
        programmed_ml: volume programmed over each observation's interval, mL (> 0).
        used_ml: volume used (``programmed + expected - withdrawn``), mL; a lower bound
            where ``found_empty``.
        found_empty: the reservoir was found empty (a censored observation).
        reading_sd_ml: sd of a syringe reading, mL.
        interval_sd: sd of the factor between intervals.
    """
    mean = np.full(n_pumps, 0.0) + prior_mean
    var = np.full(n_pumps, 0.0) + np.square(prior_sd)
    if pump.size == 0:
        return Beliefs(mean, var)
    order = np.argsort(pump, kind="stable")
    p = pump[order]
    ratio = used_ml[order] / programmed_ml[order]
    obs_var = interval_sd**2 + (reading_sd_ml / programmed_ml[order]) ** 2
    empty = found_empty[order]
    # rank of each observation within its pump: process the k-th refills of all pumps together
    first = np.r_[0, np.flatnonzero(np.diff(p)) + 1]
    counts = np.diff(np.r_[first, p.size])
    rank = np.arange(p.size) - np.repeat(first, counts)
    for k in range(int(rank.max()) + 1):
        at = rank == k
        i, x, v, cen = p[at], ratio[at], obs_var[at], empty[at]
        m, s2 = mean[i], var[i]
        # measured: conjugate normal update
        post_var = 1.0 / (1.0 / s2 + 1.0 / v)
        post_mean = post_var * (m / s2 + x / v)
        # found empty: moment-matched probit update, f >= x
        d = np.sqrt(v + s2)
        z = (m - x) / d
        alpha = np.exp(-0.5 * z * z - 0.5 * np.log(2.0 * np.pi) - log_ndtr(z))
        cen_mean = m + s2 * alpha / d
        cen_var = s2 - s2 * s2 * alpha * (alpha + z) / (d * d)
        mean[i] = np.where(cen, cen_mean, post_mean)
        var[i] = np.where(cen, np.maximum(cen_var, 1e-12), post_var)
    return Beliefs(mean, var)


@dataclass(frozen=True, slots=True)
class Profiles:
    """Many pumps' :class:`~itb.domain.clinic.forecast.DeliveryProfile`, as arrays.

    ``cum_h`` and ``cum_ml`` are the cumulative hours and volume at the starts of the
    period's pieces, shape ``(N, K + 1)`` (padded pieces add nothing).
    """

    start_ml: FloatArray
    programmed_ml: FloatArray
    volume_ml: FloatArray
    low_ml: FloatArray
    lead_h: FloatArray
    lead_rate: FloatArray
    period_h: FloatArray
    rate: FloatArray
    cum_h: FloatArray
    cum_ml: FloatArray

    @property
    def n(self) -> int:
        """How many pumps."""
        return int(self.start_ml.size)

    @property
    def lead_ml(self) -> FloatArray:
        """Volume of the lead piece, mL."""
        return np.asarray(self.lead_h * self.lead_rate, dtype=np.float64)

    @property
    def period_ml(self) -> FloatArray:
        """Volume commanded per period, mL."""
        return np.asarray(self.cum_ml[:, -1], dtype=np.float64)

    @staticmethod
    def of(
        start_ml: FloatArray,
        programmed_ml: FloatArray,
        volume_ml: FloatArray,
        low_ml: FloatArray,
        lead_h: FloatArray,
        lead_rate: FloatArray,
        period_h: FloatArray,
        hours: FloatArray,
        rate: FloatArray,
    ) -> Profiles:
        """Profiles from padded pieces ``hours`` and ``rate`` of shape ``(N, K)``."""
        n = hours.shape[0]
        cum_h = np.zeros((n, hours.shape[1] + 1))
        cum_ml = np.zeros_like(cum_h)
        np.cumsum(hours, axis=1, out=cum_h[:, 1:])
        np.cumsum(hours * rate, axis=1, out=cum_ml[:, 1:])
        return Profiles(
            start_ml, programmed_ml, volume_ml, low_ml, lead_h, lead_rate, period_h, rate,
            cum_h, cum_ml,
        )  # fmt: skip


def pack(profiles: Sequence[DeliveryProfile]) -> Profiles:
    """Profiles as arrays (pieces padded to the longest period)."""
    n = len(profiles)
    lengths = np.fromiter((len(p.pieces) for p in profiles), np.int64, count=n)
    k = max(int(lengths.max(initial=0)), 1)
    hours = np.zeros((n, k))
    rate = np.zeros((n, k))
    total = int(lengths.sum())
    if total:
        flat = np.fromiter(
            chain.from_iterable(chain.from_iterable(p.pieces for p in profiles)),
            np.float64,
            count=2 * total,
        ).reshape(total, 2)
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        hours[rows, cols] = flat[:, 0]
        rate[rows, cols] = flat[:, 1]
    scalars = np.array(
        [
            (p.start_ml, p.programmed_ml, p.volume_ml, p.low_ml, p.lead_h, p.lead_ml_per_h,
             p.period_h)
            for p in profiles
        ],
        dtype=np.float64,
    ).reshape(n, 7)  # fmt: skip
    c = [scalars[:, j].copy() for j in range(7)]
    return Profiles.of(c[0], c[1], c[2], c[3], c[4], c[5], c[6], hours, rate)


def _rows(a: FloatArray, q: int) -> FloatArray:
    """A per-pump array broadcast against ``q`` values per pump."""
    return a[:, None] if q else a


def time_to(pr: Profiles, volume_ml: FloatArray) -> FloatArray:
    """Hours from now until ``volume_ml`` (shape ``(N,)`` or ``(N, Q)``) has been
    commanded (inf: never; 0 at or below 0 mL)."""
    q = volume_ml.shape[1] if volume_ml.ndim == 2 else 0
    lead_ml, lead_h = _rows(pr.lead_ml, q), _rows(pr.lead_h, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        in_lead = np.where(volume_ml <= 0.0, 0.0, volume_ml / _rows(pr.lead_rate, q))
        rest = volume_ml - lead_ml
        per_ml, per_h = _rows(pr.period_ml, q), _rows(pr.period_h, q)
        # whole periods before the one the volume is reached in: rem in (0, period_ml], so
        # a volume reached exactly at a period's end is the end of its last piece that
        # delivers (not the start of the next period, after pieces that deliver nothing)
        k = np.ceil(rest / per_ml) - 1.0
        rem = np.minimum(rest - k * per_ml, per_ml)  # rounding must not pass the period's end
        cum_ml = pr.cum_ml[:, None, :] if q else pr.cum_ml
        j = np.sum(cum_ml[..., 1:] < rem[..., None], axis=-1)
        j = np.minimum(j, pr.rate.shape[1] - 1)
        rows = np.arange(pr.n)[:, None] if q else np.arange(pr.n)
        start_ml, start_h, rate = pr.cum_ml[rows, j], pr.cum_h[rows, j], pr.rate[rows, j]
        within = np.where((rem > start_ml) & (rate > 0.0), (rem - start_ml) / rate, 0.0)
        after = lead_h + k * per_h + start_h + within
        after = np.where(per_ml > 0.0, after, np.inf)
    return np.asarray(np.where(volume_ml <= lead_ml, in_lead, after), dtype=np.float64)


def commanded_ml(pr: Profiles, hours: FloatArray) -> FloatArray:
    """Volume commanded over the next ``hours`` (shape ``(N,)``), mL."""
    h = np.maximum(hours, 0.0)
    in_lead = np.minimum(h, pr.lead_h) * pr.lead_rate
    rest = np.maximum(h - pr.lead_h, 0.0)
    finite = np.isfinite(rest)
    rest = np.where(finite, rest, 0.0)
    k = np.floor(rest / pr.period_h)
    r = rest - k * pr.period_h
    j = np.minimum(np.sum(pr.cum_h[:, 1:] <= r[:, None], axis=1), pr.rate.shape[1] - 1)
    rows = np.arange(pr.n)
    vol = k * pr.period_ml + pr.cum_ml[rows, j] + (r - pr.cum_h[rows, j]) * pr.rate[rows, j]
    out = in_lead + vol
    return np.asarray(np.where(finite, out, np.inf), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Times:
    """The forecast of every pump, hours from each pump's present instant.

    Attributes:
        alarm_h: the programmer's low-reservoir alarm (calculated volume; not uncertain).
        low_h, empty_h: the real reservoir at the low-reservoir volume, and empty, at the
            probabilities asked for, shape ``(N, Q)``.
        p_low, p_dry: probability of each by ``by_h``.
        advise_h: the latest refill that keeps P(empty) at or below the advice's
            probability and comes no later than the alarm (before any margin).
    """

    alarm_h: FloatArray
    low_h: FloatArray
    empty_h: FloatArray
    p_low: FloatArray
    p_dry: FloatArray
    advise_h: FloatArray


def _factor_quantiles(mean: FloatArray, sd: FloatArray, p_early: FloatArray) -> FloatArray:
    """The factor at which the time is reached with probability ``p_early`` (a higher
    factor empties earlier), shape ``(N, Q)``."""
    return np.asarray(mean[:, None] + sd[:, None] * ndtri(1.0 - p_early)[None, :])


def _needed_ml(pr: Profiles, level_ml: FloatArray, factor: FloatArray) -> FloatArray:
    """Volume to command from now until the real reservoir is at ``level_ml`` when the
    pump draws ``factor`` per mL programmed."""
    so_far = pr.programmed_ml[:, None]
    usable = (pr.start_ml - level_ml)[:, None]
    with np.errstate(divide="ignore"):
        out = np.where(factor > _MIN_FACTOR, usable / factor - so_far, np.inf)
    return np.asarray(out, dtype=np.float64)


def _p_by(
    pr: Profiles, level_ml: FloatArray, commanded: FloatArray, mean: FloatArray, sd: FloatArray
) -> FloatArray:
    """P(the real reservoir is at ``level_ml`` once ``commanded`` more is commanded)."""
    total = pr.programmed_ml + commanded
    usable = pr.start_ml - level_ml
    with np.errstate(divide="ignore", invalid="ignore"):
        cut = np.where(total > 0.0, usable / total, np.inf)
    p = np.where(usable <= 0.0, 1.0, ndtr((mean - cut) / sd))
    return np.asarray(np.where(np.isfinite(cut) | (usable <= 0.0), p, 0.0), dtype=np.float64)


def forecast(
    pr: Profiles,
    beliefs: Beliefs,
    *,
    interval_sd: float,
    by_h: FloatArray,
    probabilities: Sequence[float],
    advise_probability: float,
) -> Times:
    """The forecast of every pump (see the module's method).

    Args:
        pr: the pumps' profiles.
        beliefs: their beliefs (:func:`learn`).
        interval_sd: sd of the factor between intervals.
        by_h: the hour (from each pump's present instant) the probabilities are for.
        probabilities: the probabilities of the time quantiles (e.g. 0.05, 0.5, 0.95).
        advise_probability: P(empty) the advised refill may reach.
    """
    sd = beliefs.predictive_sd(interval_sd)
    p = np.asarray([*probabilities, advise_probability], dtype=np.float64)
    f = _factor_quantiles(beliefs.mean, sd, p)
    empty = time_to(pr, _needed_ml(pr, np.zeros(pr.n), f))
    low = time_to(pr, _needed_ml(pr, pr.low_ml, f[:, :-1]))
    alarm = time_to(pr, pr.volume_ml - pr.low_ml)
    c = commanded_ml(pr, by_h)
    return Times(
        alarm_h=alarm,
        low_h=low,
        empty_h=empty[:, :-1],
        p_low=_p_by(pr, pr.low_ml, c, beliefs.mean, sd),
        p_dry=_p_by(pr, np.zeros(pr.n), c, beliefs.mean, sd),
        advise_h=np.minimum(empty[:, -1], alarm),
    )


def forecast_profiles(
    profiles: Sequence[DeliveryProfile],
    observations: tuple[Sequence[int], Sequence[float], Sequence[float], Sequence[bool]],
    by_h: Sequence[float],
    *,
    prior_mean: float,
    prior_sd: float,
    reading_sd_ml: float,
    interval_sd: float,
    probabilities: Sequence[float],
    advise_probability: float,
) -> tuple[Beliefs, Times]:
    """:func:`learn` and :func:`forecast` from plain values: the observations as columns
    ``(pump, programmed_ml, used_ml, found_empty)`` (pumps numbered as ``profiles``, in
    time order within a pump); ``by_h`` per pump."""
    pump, programmed, used, empty = observations
    beliefs = learn(
        len(profiles),
        prior_mean=prior_mean,
        prior_sd=prior_sd,
        pump=np.asarray(pump, dtype=np.int64),
        programmed_ml=np.asarray(programmed, dtype=np.float64),
        used_ml=np.asarray(used, dtype=np.float64),
        found_empty=np.asarray(empty, dtype=np.bool_),
        reading_sd_ml=reading_sd_ml,
        interval_sd=interval_sd,
    )
    times = forecast(
        pack(profiles),
        beliefs,
        interval_sd=interval_sd,
        by_h=np.asarray(by_h, dtype=np.float64),
        probabilities=probabilities,
        advise_probability=advise_probability,
    )
    return beliefs, times

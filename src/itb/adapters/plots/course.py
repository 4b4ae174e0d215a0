"""PNG plots of a simulated course of therapy (one patient, months to years).

Four figures sharing a calendar time axis, each returned as PNG bytes:

- ``reservoir``: the pump's calculated reservoir (what it believes, drives the
  alarms) against the true reservoir, with refills and the low-reservoir
  alarm volume;
- ``dose``: programmed daily dose and the drug actually reaching the CSF;
- ``concentration``: lumbar CSF and effect-site concentrations;
- ``spasticity``: MAS and PSFS with the therapeutic band, and the periods with
  withdrawal or overdose signs shaded.

Deterministic output: fixed size, DPI and fonts; no timestamps in the files.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import datetime

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from itb.simulation.engine import Sample, TimelineEntry

__all__ = ["PLOT_TITLES", "course_plots"]

PLOT_TITLES: dict[str, str] = {
    "spasticity": "Spasticity (MAS, PSFS), therapeutic band, withdrawal and overdose periods",
    "dose": "Programmed dose and drug reaching the CSF",
    "reservoir": "Reservoir: what the pump calculates vs what is really left",
    "concentration": "CSF and effect-site concentration",
}

_WITHDRAWAL = "#d62728"
_SEVERE = "#7f0000"
_OVERDOSE = "#9467bd"
_BAND = "#2ca02c"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _spans(samples: Sequence[Sample], pred: Callable[[Sample], bool]) -> list[tuple[int, int]]:
    """Index ranges [i, j) of consecutive samples where ``pred`` holds."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    for i, s in enumerate(samples):
        if pred(s) and start is None:
            start = i
        elif not pred(s) and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(samples)))
    return out


def _axes(title: str) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=(11, 3.6), layout="constrained")
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(True, alpha=0.3)
    return fig, ax


_EPOCH = datetime(1970, 1, 1)
"""matplotlib's default date epoch: date numbers are days since then."""


def _num(when: datetime) -> float:
    return (when - _EPOCH).total_seconds() / 86400.0


def _dates(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)


def _shade(
    ax: Axes,
    samples: Sequence[Sample],
    x: Sequence[float],
    pred: Callable[[Sample], bool],
    color: str,
    label: str,
    alpha: float,
) -> None:
    first = True
    for i, j in _spans(samples, pred):
        end = x[j] if j < len(x) else x[-1]
        ax.axvspan(x[i], end, color=color, alpha=alpha, lw=0, label=label if first else None)
        first = False


def course_plots(
    samples: Sequence[Sample],
    timeline: Sequence[TimelineEntry],
    when: Callable[[float], datetime],
    *,
    therapeutic_band: tuple[float, float],
    low_reservoir_alarm_ml: float | None,
) -> dict[str, bytes]:
    """The four course figures as PNG bytes, keyed by name (see :data:`PLOT_TITLES`).

    Args:
        samples: trajectory samples in time order.
        timeline: the course timeline (refills are marked).
        when: run time (h) -> local date-time (naive) for the axis.
        therapeutic_band: (low, high) MAS of the therapeutic range.
        low_reservoir_alarm_ml: alarm volume to draw, mL (None: not drawn).
    """
    plt.rcParams.update({"font.size": 9, "svg.hashsalt": "itb"})
    x = [_num(when(s.t_h)) for s in samples]
    out: dict[str, bytes] = {}

    fig, ax = _axes(PLOT_TITLES["spasticity"])
    low, high = therapeutic_band
    ax.axhspan(low, high, color=_BAND, alpha=0.12, lw=0, label="therapeutic band (MAS)")
    _shade(ax, samples, x, lambda s: s.withdrawal_stage == 1, _WITHDRAWAL, "withdrawal signs", 0.18)
    _shade(ax, samples, x, lambda s: s.withdrawal_stage >= 2, _SEVERE, "severe withdrawal", 0.3)
    _shade(ax, samples, x, lambda s: s.overdose_stage > 0, _OVERDOSE, "overdose signs", 0.3)
    ax.plot(x, [s.mas for s in samples], color="black", lw=1.2, label="MAS (0-4)")
    ax.plot(x, [s.psfs for s in samples], color="#1f77b4", lw=0.9, alpha=0.8, label="PSFS (0-4)")
    ax.set_ylim(-0.1, 4.2)
    ax.set_ylabel("score")
    ax.legend(loc="upper right", fontsize=8, ncols=3, framealpha=0.9)
    _dates(ax)
    out["spasticity"] = _png(fig)

    fig, ax = _axes(PLOT_TITLES["dose"])
    ax.plot(
        x,
        [s.delivery_mcg_per_h * 24.0 for s in samples],
        color="#ff7f0e",
        lw=0.9,
        label="reaching the CSF (mean since previous sample, per day)",
    )
    ax.step(
        x,
        [s.dose_mcg_per_day for s in samples],
        where="post",
        color="black",
        lw=1.3,
        label="programmed daily dose",
    )
    ax.set_ylabel("mcg/day")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    _dates(ax)
    out["dose"] = _png(fig)

    fig, ax = _axes(PLOT_TITLES["reservoir"])
    ax.plot(
        x,
        [s.reservoir_calculated_ml for s in samples],
        color="#1f77b4",
        lw=1.3,
        label="calculated (the pump's belief; drives alarms)",
    )
    ax.plot(
        x,
        [s.reservoir_actual_ml for s in samples],
        color="#d62728",
        lw=1.0,
        ls="--",
        label="actual (hidden truth)",
    )
    if low_reservoir_alarm_ml is not None:
        ax.axhline(
            low_reservoir_alarm_ml,
            color="grey",
            lw=0.8,
            ls=":",
            label=f"low-reservoir alarm ({low_reservoir_alarm_ml:g} mL)",
        )
    refills = [_num(when(e.t_h)) for e in timeline if e.kind == "refill"]
    for i, t in enumerate(refills):
        ax.axvline(t, color="#2ca02c", lw=0.6, alpha=0.5, label="refill" if i == 0 else None)
    ax.set_ylabel("mL")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    _dates(ax)
    out["reservoir"] = _png(fig)

    fig, ax = _axes(PLOT_TITLES["concentration"])
    ax.plot(
        x,
        [s.csf_mcg_per_ml for s in samples],
        color="#8c564b",
        lw=0.9,
        label="lumbar CSF near the tip",
    )
    ax.plot(
        x, [s.effect_site_mcg_per_ml for s in samples], color="black", lw=1.2, label="effect site"
    )
    ax.set_ylabel("mcg/mL")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    _dates(ax)
    out["concentration"] = _png(fig)
    return out

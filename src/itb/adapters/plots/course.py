"""PNG plots of a simulated course of therapy (one patient, months to years).

Four figures sharing a calendar time axis, each returned as PNG bytes:

- ``reservoir``: the pump's calculated reservoir (what it believes, drives the
  alarms) against the true reservoir, with refills and the low-reservoir
  alarm volume; from :data:`REFILL_HISTORY_FROM` refills on, refill by refill
  (what was calculated and what was really left just before each);
- ``dose``: programmed daily dose and the drug actually reaching the CSF;
- ``concentration``: lumbar CSF and effect-site concentrations;
- ``spasticity``: MAS and PSFS with the therapeutic band, and the periods with
  withdrawal or overdose signs shaded.

The events of :func:`marked_events` carry the same number on every long plot and in the
report's events table. Deterministic output: fixed size, DPI and fonts; no timestamps
in the files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from datetime import datetime

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from itb.simulation.engine import Sample, TimelineEntry

__all__ = ["PLOT_TITLES", "REFILL_HISTORY_FROM", "course_plots", "marked_events"]

PLOT_TITLES: dict[str, str] = {
    "spasticity": "Spasticity (MAS, PSFS), therapeutic band, withdrawal and overdose periods",
    "dose": "Programmed dose and drug reaching the CSF",
    "reservoir": "Reservoir: what the pump calculates vs what is really left",
    "reservoir_history": "Reservoir at each refill: what the pump calculated vs what was really "
    "left",
    "concentration": "CSF and effect-site concentration",
    "episodes": "Close-up of each episode with signs: MAS (black) and drug reaching the CSF "
    "(orange, mcg/day)",
}

# Okabe-Ito colours: told apart with the common colour-vision deficiencies
_BLUE, _VERMILLION, _ORANGE, _SKY, _GREEN = "#0072B2", "#D55E00", "#E69F00", "#56B4E9", "#009E73"
_WITHDRAWAL = "#d62728"
_SEVERE = "#7f0000"
_OVERDOSE = "#9467bd"
_BAND = _GREEN

REFILL_HISTORY_FROM = 13
"""From so many refills on, the reservoir is shown refill by refill (found vs calculated)
instead of as its sawtooth over time (which is then a hundred cycles wide)."""


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


def _marker_label(e: TimelineEntry) -> str | None:
    """Short label of a key event for the plots (None: not marked)."""
    match e.kind:
        case "fault":
            return "fault: " + e.detail.split(" (")[0]
        case "mri_start":
            return "MRI"
        case "access_port_injection":
            return "access-port injection"
        case "refill_missed":
            return "refill missed"
        case "catheter_revision":
            return "catheter revised"
        case "pump_replacement":
            return "pump replaced"
        case "environment":
            return "fever / altitude"
        case "refill" if "(was " in e.detail:
            return "concentration change"
        case "complication":
            return e.detail.split(" begins")[0].lower()
        case "explant":
            return "pump out"
        case "implant" if e.detail.split("; ")[-1].startswith("re-implant"):
            return "new pump"
        case "refill_failed":
            return "refill failed"
        case "pocket_revision":
            return "pocket revised"
        case "alarm" if "(critical)" in e.detail:
            return e.detail.split(" raised")[0].replace("_", " ")
    return None


def marked_events(timeline: Sequence[TimelineEntry]) -> list[tuple[int, TimelineEntry, str]]:
    """The events the long-course plots mark, numbered in time order (the report's events
    table gives each number its date and words)."""
    out: list[tuple[int, TimelineEntry, str]] = []
    for e in timeline:
        label = _marker_label(e)
        if label is not None:
            out.append((len(out) + 1, e, label))
    return out


def _markers(ax: Axes, marks: Sequence[tuple[float, str]], *, labels: bool = True) -> None:
    """A dashed line at each marked event and, above the plot, its number in a circle
    (numbers close together step down so none covers another)."""
    last_x = -1e18
    span = ax.get_xlim()[1] - ax.get_xlim()[0]
    level = 0
    for k, (x, _label) in enumerate(marks, start=1):
        ax.axvline(x, color="#555555", lw=0.8, ls="--", alpha=0.7)
        if not labels:
            continue
        level = level + 1 if x - last_x < span * 0.025 else 0
        ax.annotate(
            str(k),
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, -9 - 13 * (level % 3)),
            textcoords="offset points",
            fontsize=7,
            ha="center",
            va="center",
            color="#222222",
            bbox={"boxstyle": "circle,pad=0.2", "fc": "white", "ec": "#555555", "lw": 0.6},
        )
        last_x = x


def _before_each(samples: Sequence[Sample], times_h: Sequence[float]) -> list[tuple[float, float]]:
    """(calculated, actual) reservoir of the last sample before each time, mL."""
    out = []
    k = 0
    for t in times_h:
        while k + 1 < len(samples) and samples[k + 1].t_h < t:
            k += 1
        s = samples[k]
        out.append((s.reservoir_calculated_ml, s.reservoir_actual_ml))
    return out


def _pump_out(timeline: Sequence[TimelineEntry]) -> list[tuple[float, float]]:
    """``(explant, new pump)`` times, h (``inf``: still out at the end)."""
    spans: list[tuple[float, float]] = []
    for e in timeline:
        if e.kind == "explant":
            spans.append((e.t_h, math.inf))
        elif e.kind == "implant" and spans and math.isinf(spans[-1][1]):
            spans[-1] = (spans[-1][0], e.t_h)
    return spans


def _shade_out(
    ax: Axes, spans: Sequence[tuple[float, float]], when: Callable[[float], datetime], end_h: float
) -> None:
    for i, (a, b) in enumerate(spans):
        ax.axvspan(_num(when(a)), _num(when(min(b, end_h))), color="#999999", alpha=0.15, lw=0,
                   label="pump out (explanted)" if i == 0 else None)  # fmt: skip


def _legend_below(ax: Axes, ncols: int = 4) -> None:
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, ncols=ncols, frameon=False
    )


def _episodes(samples: Sequence[Sample], gap_h: float = 72.0) -> list[tuple[float, float, str]]:
    """Periods with withdrawal or overdose signs, merged when closer than ``gap_h``."""
    out: list[tuple[float, float, str]] = []
    for s in samples:
        kind = "overdose" if s.overdose_stage > 0 else "withdrawal" if s.withdrawal_stage else ""
        if not kind:
            continue
        if out and s.t_h - out[-1][1] <= gap_h:
            t0, _, k = out[-1]
            out[-1] = (t0, s.t_h, k if k == kind else "withdrawal and overdose")
        else:
            out.append((s.t_h, s.t_h, kind))
    return out


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
    marks = [(_num(when(e.t_h)), label) for _, e, label in marked_events(timeline)]
    outs = _pump_out(timeline)
    end_h = samples[-1].t_h if samples else 0.0

    def present(s: Sample, value: float) -> float:
        """NaN while the pump is out (no reservoir to show; a sample at an event's instant
        is taken before the event acts)."""
        return math.nan if any(a < s.t_h <= b for a, b in outs) else value

    fig, ax = _axes(PLOT_TITLES["spasticity"])
    low, high = therapeutic_band
    ax.axhspan(low, high, color=_BAND, alpha=0.12, lw=0, label="therapeutic band (MAS)")
    _shade(ax, samples, x, lambda s: s.withdrawal_stage == 1, _WITHDRAWAL, "withdrawal signs", 0.18)
    _shade(ax, samples, x, lambda s: s.withdrawal_stage >= 2, _SEVERE, "severe withdrawal", 0.3)
    _shade(ax, samples, x, lambda s: s.overdose_stage > 0, _OVERDOSE, "overdose signs", 0.3)
    ax.plot(x, [s.mas for s in samples], color="black", lw=1.2, label="MAS (0-4)")
    ax.plot(x, [s.psfs for s in samples], color=_BLUE, lw=0.9, alpha=0.8, label="PSFS (0-4)")
    ax.set_ylim(-0.1, 4.6)
    ax.set_ylabel("score")
    _markers(ax, marks)
    _legend_below(ax, 6)
    _dates(ax)
    out["spasticity"] = _png(fig)

    fig, ax = _axes(PLOT_TITLES["dose"])
    ax.step(
        x,
        [s.dose_mcg_per_day for s in samples],
        where="post",
        color=_SKY,
        lw=3.0,
        label="programmed daily dose",
    )
    ax.plot(
        x,
        [s.delivery_mcg_per_h * 24.0 for s in samples],
        color="black",
        lw=0.9,
        label="reaching the CSF (mean since previous sample, per day)",
        drawstyle="steps-pre",
    )
    _shade_out(ax, outs, when, end_h)
    ax.set_ylabel("mcg/day")
    ax.set_ylim(0, max([s.dose_mcg_per_day for s in samples] + [1.0]) * 1.35)
    _markers(ax, marks)
    _legend_below(ax, 2)
    _dates(ax)
    out["dose"] = _png(fig)

    refills = [e for e in timeline if e.kind == "refill"]
    history = len(refills) >= REFILL_HISTORY_FROM
    fig, ax = _axes(PLOT_TITLES["reservoir_history" if history else "reservoir"])
    if history:
        found = _before_each(samples, [e.t_h for e in refills])
        rx = [_num(when(e.t_h)) for e in refills]
        ax.vlines(rx, [min(c, a) for c, a in found], [max(c, a) for c, a in found],
                  color="#999999", lw=0.8)  # fmt: skip
        ax.plot(rx, [c for c, _ in found], "o", color=_BLUE, ms=4,
                label="calculated when the nurse came (the pump's belief)")  # fmt: skip
        ax.plot(rx, [a for _, a in found], "x", color=_VERMILLION, ms=5, mew=1.4,
                label="really left (what the syringe would find)")  # fmt: skip
    else:
        ax.plot(
            x,
            [present(s, s.reservoir_calculated_ml) for s in samples],
            color=_BLUE,
            lw=1.6,
            label="calculated (the pump's belief; drives alarms)",
        )
        ax.plot(
            x,
            [present(s, s.reservoir_actual_ml) for s in samples],
            color=_VERMILLION,
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
    _shade_out(ax, outs, when, end_h)
    if not history:
        for i, e in enumerate(refills):
            ax.axvline(_num(when(e.t_h)), color=_GREEN, lw=0.6, alpha=0.5,
                       label="refill" if i == 0 else None)  # fmt: skip
    ax.set_ylabel("mL")
    top = (
        max([max(c, a) for c, a in found] + [1.0]) * 1.4
        if history
        else max([s.reservoir_calculated_ml for s in samples] + [1.0]) * 1.3
    )
    ax.set_ylim(0, top)
    _markers(ax, marks, labels=history)
    _legend_below(ax, 4)
    _dates(ax)
    out["reservoir"] = _png(fig)

    fig, ax = _axes(PLOT_TITLES["concentration"])
    ax.plot(
        x,
        [s.csf_mcg_per_ml for s in samples],
        color=_SKY,
        lw=3.0,
        label="lumbar CSF near the tip",
    )
    ax.plot(
        x, [s.effect_site_mcg_per_ml for s in samples], color="black", lw=1.0, label="effect site"
    )
    ax.set_ylabel("mcg/mL")
    ax.set_ylim(bottom=0)
    _markers(ax, marks)
    _legend_below(ax, 2)
    _dates(ax)
    out["concentration"] = _png(fig)

    episodes = _episodes(samples)[:4]
    if episodes:
        out["episodes"] = _episode_figure(samples, timeline, when, episodes, therapeutic_band)
    return out


def _episode_figure(
    samples: Sequence[Sample],
    timeline: Sequence[TimelineEntry],
    when: Callable[[float], datetime],
    episodes: Sequence[tuple[float, float, str]],
    band: tuple[float, float],
) -> bytes:
    """Close-ups of each episode with signs: MAS and the drug reaching the CSF, +-2 days."""
    n = len(episodes)
    fig, axes = plt.subplots(1, n, figsize=(11, 3.4), layout="constrained", squeeze=False)
    fig.suptitle(PLOT_TITLES["episodes"], x=0.01, ha="left", fontsize=11)
    for ax, (t0, t1, kind) in zip(axes[0], episodes, strict=True):
        lo, hi = t0 - 48.0, t1 + 48.0
        window = [s for s in samples if lo <= s.t_h <= hi]
        xs = [(s.t_h - t0) / 24.0 for s in window]
        ax.axhspan(band[0], band[1], color=_BAND, alpha=0.12, lw=0)
        color = _OVERDOSE if kind == "overdose" else _WITHDRAWAL
        ax.axvspan(0.0, (t1 - t0) / 24.0, color=color, alpha=0.15, lw=0)
        ax.plot(xs, [s.mas for s in window], color="black", lw=1.2)
        ax.set_ylim(-0.1, 4.2)
        ax.set_xlabel("days from first sign")
        ax.set_title(f"{when(t0):%Y-%m-%d}: {kind}", fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
        rate = ax.twinx()
        rate.plot(
            xs,
            [s.delivery_mcg_per_h * 24.0 for s in window],
            color="#ff7f0e",
            lw=0.9,
            drawstyle="steps-pre",
        )
        rate.set_ylim(bottom=0)
        rate.tick_params(axis="y", labelcolor="#ff7f0e", labelsize=7)
        for e in timeline:
            label = _marker_label(e)
            if label is not None and lo <= e.t_h <= hi:
                ax.axvline((e.t_h - t0) / 24.0, color="#555555", lw=0.8, ls="--")
                ax.annotate(
                    label,
                    ((e.t_h - t0) / 24.0, 4.1),
                    fontsize=7,
                    va="top",
                    xytext=(2, 0),
                    textcoords="offset points",
                )
    axes[0][0].set_ylabel("MAS (black)")
    return _png(fig)

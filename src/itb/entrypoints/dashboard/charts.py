"""Charts for the dashboard as inline SVG, drawn on the server.

No JavaScript and nothing fetched: each chart is an ``<svg>`` with axes, units and a
``<title>`` on every point and step, so the browser shows the value on hover (and a
screen reader reads it). Every chart on a page has a table or a sentence beside it
with the same numbers: nothing important is only in a chart. Presentation attributes
only (no ``style``), so the pages' content security policy can forbid inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape

__all__ = ["Marker", "Series", "day_profile_chart", "nice_ticks", "time_chart"]

_W, _H = 760, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 14, 42


@dataclass(frozen=True, slots=True)
class Series:
    """A line over time: its name (the legend), its points, the CSS class that colours it,
    whether it is dashed (a forecast), and how a value is written on hover."""

    name: str
    points: Sequence[tuple[datetime, float]]
    css: str
    dashed: bool = False
    unit: str = ""
    dots: bool = True
    line: bool = True
    labels: Sequence[str] = field(default_factory=tuple)
    """Optional words per point for its hover text (same length as ``points``)."""


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical line at a time (a booked visit, today) with its words."""

    at: datetime
    text: str
    css: str


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low``..``high`` (1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    v = first
    while v <= high + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"


def _time_ticks(t0: datetime, t1: datetime) -> list[tuple[datetime, str]]:
    span_days = (t1 - t0).total_seconds() / 86400.0
    out: list[tuple[datetime, str]] = []
    if span_days > 3 * 365:
        for year in range(t0.year, t1.year + 2):
            t = datetime(year, 1, 1, tzinfo=t0.tzinfo)
            if t0 <= t <= t1:
                out.append((t, str(year)))
        return out
    months = 1 if span_days <= 400 else 3 if span_days <= 2 * 365 else 6
    y, m = t0.year, t0.month
    while True:
        t = datetime(y, m, 1, tzinfo=t0.tzinfo)
        if t > t1:
            break
        if t >= t0 and (m - 1) % months == 0:
            out.append((t, t.strftime("%b %Y") if m == 1 or not out else t.strftime("%b")))
        m += 1
        if m > 12:
            y, m = y + 1, 1
    return out


def time_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    markers: Sequence[Marker] = (),
    y_min: float | None = None,
    y_max: float | None = None,
) -> str:
    """A line chart over time with axes, units, a legend and hover values (SVG markup)."""
    pts = [p for s in series for p in s.points]
    if not pts:
        return f'<p class="empty">{escape(title)}: nothing recorded yet.</p>'
    times = [t for t, _ in pts] + [m.at for m in markers]
    t0, t1 = min(times), max(times)
    if t1 <= t0:
        t0, t1 = t0 - timedelta(days=1), t1 + timedelta(days=1)
    values = [v for _, v in pts]
    lo = min(values) if y_min is None else y_min
    hi = max(values) if y_max is None else y_max
    ticks = nice_ticks(lo, hi)
    lo, hi = ticks[0], ticks[-1]
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    span = (t1 - t0).total_seconds()

    def x(t: datetime) -> float:
        return _LEFT + pw * (t - t0).total_seconds() / span

    def y(v: float) -> float:
        return _TOP + ph * (1.0 - (v - lo) / (hi - lo))

    out = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for v in ticks:
        yy = y(v)
        out.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
        )
        out.append(
            f'<text class="tick" x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(v)}</text>'
        )
    for t, words in _time_ticks(t0, t1):
        xx = x(t)
        out.append(f'<line class="grid" x1="{xx:.1f}" x2="{xx:.1f}" y1="{_TOP}" y2="{_TOP + ph}"/>')
        out.append(
            f'<text class="tick" x="{xx:.1f}" y="{_TOP + ph + 16}" text-anchor="middle">'
            f"{escape(words)}</text>"
        )
    out.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_TOP + ph}"/>'
        f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_TOP + ph}" y2="{_TOP + ph}"/>'
    )
    out.append(
        f'<text class="label" transform="translate(14 {_TOP + ph / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for i, m in enumerate(sorted(markers, key=lambda m: m.at)):
        xx = x(m.at)
        label_y = _TOP + 10 + 12 * i  # staggered so neighbouring labels never overlap
        anchor = "end" if xx > _LEFT + pw * 0.8 else "start"
        lx = xx - 3 if anchor == "end" else xx + 3
        out.append(
            f'<g class="marker {escape(m.css)}"><title>{escape(m.text)}</title>'
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_TOP}" y2="{_TOP + ph}"/>'
            f'<text x="{lx:.1f}" y="{label_y}" text-anchor="{anchor}">'
            f"{escape(m.text.split(':')[0])}</text></g>"
        )
    for s in series:
        if not s.points:
            continue
        if s.line:
            path = " ".join(
                f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}"
                for i, (t, v) in enumerate(s.points)
            )
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            out.append(f'<path class="line {escape(s.css)}" d="{path}" fill="none"{dash}/>')
        if s.dots or not s.line:
            for i, (t, v) in enumerate(s.points):
                words = s.labels[i] if i < len(s.labels) else ""
                tip = f"{s.name}, {t.astimezone(UTC).date().isoformat()}: {v:,.1f} {s.unit}"
                if words:
                    tip += f" ({words})"
                out.append(
                    f'<circle class="dot {escape(s.css)}" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3.5">'
                    f"<title>{escape(tip.strip())}</title></circle>"
                )
    lx = _LEFT
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        mark = (
            f'<line class="line {escape(s.css)}" x1="{lx}" x2="{lx + 18}" '
            f'y1="{_H - 8}" y2="{_H - 8}"{dash}/>'
            if s.line
            else f'<circle class="dot {escape(s.css)}" cx="{lx + 9}" cy="{_H - 8}" r="3.5"/>'
        )
        out.append(
            f'<g class="legend">{mark}<text x="{lx + 22}" y="{_H - 4}">{escape(s.name)}</text></g>'
        )
        lx += 30 + 7 * len(s.name)
    out.append("</svg>")
    return "".join(out)


def day_profile_chart(steps: Sequence[tuple[float, float]], *, title: str) -> str:
    """A flex program's day: the rate of each step from its start hour to the next (SVG)."""
    if not steps:
        return ""
    ordered = sorted(steps)
    hi = nice_ticks(0.0, max(r for _, r in ordered))[-1]
    pw, ph = _W - _LEFT - _RIGHT, 160
    top = _TOP

    def x(h: float) -> float:
        return _LEFT + pw * h / 24.0

    def y(v: float) -> float:
        return top + ph * (1.0 - v / hi)

    out = [
        f'<svg class="chart" viewBox="0 0 {_W} {ph + 56}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for v in nice_ticks(0.0, hi, 4):
        out.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>'
        )
    for h in range(0, 25, 3):
        out.append(
            f'<text class="tick" x="{x(h):.1f}" y="{top + ph + 16}" text-anchor="middle">'
            f"{h:02d}:00</text>"
        )
    for i, (start, rate) in enumerate(ordered):
        end = ordered[i + 1][0] if i + 1 < len(ordered) else 24.0
        if end <= start:
            continue
        tip = f"{_clock(start)}-{_clock(end)}: {rate:g} mcg/h"
        out.append(
            f'<rect class="bar" x="{x(start):.1f}" y="{y(rate):.1f}" '
            f'width="{x(end) - x(start):.1f}" height="{top + ph - y(rate):.1f}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    out.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{top + ph}" y2="{top + ph}"/>'
        f'<text class="label" transform="translate(14 {top + ph / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">mcg/h</text>'
        f'<text class="label" x="{_LEFT + pw / 2:.0f}" y="{top + ph + 36}" '
        f'text-anchor="middle">hour of the day (pump clock)</text></svg>'
    )
    return "".join(out)


def _clock(h: float) -> str:
    minutes = round(h * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"

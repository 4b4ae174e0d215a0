"""PNG of the validation report: the model's mean dose by origin over ten years against
the published one."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from itb.simulation.cohort_summary import Z95
from itb.simulation.validation_long_term import GROUP_LABELS, DoseSeries

__all__ = ["dose_trajectory_png"]

_COLOURS = {"spinal_cord_injury": "#1f5fa8", "multiple_sclerosis": "#2e8b57", "cerebral": "#b5472c"}


def dose_trajectory_png(
    trajectories: Mapping[str, list[float]], published: Mapping[str, DoseSeries], source: str
) -> bytes:
    """Lines: the model's mean daily dose at the end of each year, by group. Markers with
    bars: the published mean at 1 and 10 years with its 95 % interval (mean +- Z95 SD/sqrt n)."""
    fig, ax = plt.subplots(figsize=(8.5, 5.6))
    for g, means in trajectories.items():
        colour = _COLOURS.get(g, "0.3")
        years = list(range(1, len(means) + 1))
        ax.plot(years, means, color=colour, linewidth=2, label=f"model: {GROUP_LABELS.get(g, g)}")
        s = published.get(g)
        if s is None:
            continue
        pts = [(1, s.year_1), (10, s.year_10)]
        shift = {"cerebral": 0.08, "multiple_sclerosis": -0.08}.get(g, 0.0)
        ax.errorbar(
            [x + shift for x, _ in pts],
            [m for _, (m, _sd) in pts],
            yerr=[Z95 * sd / math.sqrt(s.n) for _, (_m, sd) in pts],
            fmt="o",
            color=colour,
            capsize=4,
            markerfacecolor="white",
            label=f"published {source}: {GROUP_LABELS.get(g, g)} (n={s.n})",
        )
    ax.set_xlabel("years on therapy")
    ax.set_ylabel("mean daily dose (mcg/day)")
    ax.set_xticks(range(1, 11))
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", color="0.9")
    ax.set_title("Dose by origin over ten years: model cohort vs published means (95 % intervals)")
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()

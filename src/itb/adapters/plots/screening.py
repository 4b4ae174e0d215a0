"""PNG of a screening trial: MAS after each bolus, with the clinic's observations."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from itb.simulation.screening_run import ScreeningRun

__all__ = ["screening_plot_png"]


def screening_plot_png(run: ScreeningRun, title: str) -> bytes:
    """The response curve of every screening bolus as PNG bytes."""
    fig, (ax_mas, ax_csf) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    for b in run.boluses:
        label = f"{b.dose_mcg:g} mcg: {b.assessment.outcome.replace('_', '-')}"
        t = [p.t_after_h for p in b.curve]
        (line,) = ax_mas.plot(t, [p.mas for p in b.curve], label=label)
        ax_mas.scatter(
            [o.t_after_h for o in b.observations],
            [o.mas for o in b.observations],
            color=line.get_color(),
            s=18,
            zorder=3,
        )
        ax_csf.plot(t, [p.csf_concentration_mcg_per_ml for p in b.curve], color=line.get_color())
        baseline = b.observations[0].mas
        if baseline is not None:
            ax_mas.axhline(baseline - 1.0, color=line.get_color(), linestyle=":", linewidth=0.8)
    ax_mas.axvspan(4.0, 8.0, color="0.92", zorder=0, label="4-8 h observation window")
    ax_mas.set_ylabel("Modified Ashworth (0-4)")
    ax_mas.set_ylim(0, 4.2)
    ax_mas.legend(loc="lower right", fontsize=8)
    ax_mas.set_title(title)
    ax_csf.set_ylabel("CSF baclofen (mcg/mL)")
    ax_csf.set_xlabel("hours after the bolus (dots: clinic observations; dotted: 1-point fall)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()

"""PNG plot of one patient's response to a dosing history.

Three stacked panels sharing the time axis (hours): delivery rate into the CSF
(mcg/h), CSF and effect-site concentration (mcg/mL), and the Modified Ashworth
and Penn Spasm Frequency scores (0-4; MAS 1+ coded 1.5). Withdrawal and
overdose stages are shaded on the score panel.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from itb.adapters.output_paths import write_file_atomic
from itb.domain.delivery import DeliverySegment
from itb.domain.patient import Observation, WithdrawalStage, rate_pieces

__all__ = ["plot_patient_response"]


def plot_patient_response(
    observations: Sequence[Observation],
    segments: Sequence[DeliverySegment],
    out: Path,
    *,
    title: str = "Virtual patient response",
) -> Path:
    """Write the response plot to ``out`` (PNG, atomically) and return the path.

    Args:
        observations: the patient observed at ascending times (``respond``).
        segments: the delivery history that produced them.
        out: PNG file to write (parent directories must exist).
        title: figure title.
    """
    if not observations:
        raise ValueError("nothing to plot: no observations")
    t = [o.t_h for o in observations]
    fig, (ax_rate, ax_conc, ax_score) = plt.subplots(
        3, 1, figsize=(9, 8), sharex=True, gridspec_kw={"height_ratios": [1, 2, 2]}
    )
    try:
        xs: list[float] = []
        ys: list[float] = []
        for a, b, rate in rate_pieces(segments, t[0], t[-1]):
            xs += [a, b]
            ys += [rate, rate]
        ax_rate.plot(xs, ys, color="tab:gray")
        ax_rate.set_ylabel("delivery\n(mcg/h)")

        ax_conc.plot(t, [o.csf_concentration_mcg_per_ml for o in observations], label="CSF")
        ax_conc.plot(t, [o.effect_site_mcg_per_ml for o in observations], label="effect site")
        ax_conc.plot(
            t,
            [o.effective_ec50_mcg_per_ml for o in observations],
            linestyle=":",
            color="tab:red",
            label="EC50 (after tolerance)",
        )
        ax_conc.set_ylabel("concentration\n(mcg/mL)")
        ax_conc.legend(loc="upper right", fontsize="small")

        ax_score.plot(t, [o.mas for o in observations], label="MAS (1+ = 1.5)")
        ax_score.plot(t, [o.psfs for o in observations], label="PSFS")
        for o0, o1 in itertools.pairwise(observations):
            if o0.withdrawal_stage >= WithdrawalStage.EARLY:
                color = "tab:orange" if o0.withdrawal_stage == WithdrawalStage.EARLY else "tab:red"
                ax_score.axvspan(o0.t_h, o1.t_h, color=color, alpha=0.15, linewidth=0)
            if o0.overdose_stage > 0:
                ax_score.axvspan(o0.t_h, o1.t_h, color="tab:purple", alpha=0.15, linewidth=0)
        ax_score.set_ylim(-0.1, 4.1)
        ax_score.set_ylabel("score (0-4)")
        ax_score.set_xlabel("time (h)")
        ax_score.legend(loc="upper right", fontsize="small")
        fig.suptitle(title)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    return write_file_atomic(out, buffer.getvalue())

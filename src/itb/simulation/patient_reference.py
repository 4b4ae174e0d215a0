"""Reference solution of the patient's state equations by a general ODE solver.

Not used by the model: it exists so the tests can prove the exact per-segment
solution (:func:`itb.domain.patient.advance`) right. It integrates the *same*
equations (:func:`itb.domain.patient.system_matrix`) with
``scipy.integrate.solve_ivp`` (DOP853, tight tolerances), restarting at every
rate change so no discontinuity is stepped over.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.integrate import solve_ivp

from itb.domain.delivery import DeliverySegment
from itb.domain.patient import PatientParameters, PatientState, rate_pieces, system_matrix

__all__ = ["REFERENCE_ATOL", "REFERENCE_RTOL", "reference_states"]

REFERENCE_RTOL = 1e-12
"""Relative tolerance of the reference solver."""
REFERENCE_ATOL = 1e-16
"""Absolute tolerance of the reference solver (state units: mcg and mcg/mL)."""


def reference_states(
    params: PatientParameters,
    segments: Sequence[DeliverySegment],
    sample_times_h: Sequence[float],
    state: PatientState | None = None,
) -> npt.NDArray[np.float64]:
    """Linear states at ``sample_times_h`` (ascending), shape (T, 5), ``STATE_NAMES`` order."""
    start = state if state is not None else PatientState()
    m_rows, b_vec = system_matrix(params.pk, params.pd, params.adaptation)
    m = np.array(m_rows, dtype=np.float64)
    b = np.array(b_vec, dtype=np.float64)
    x = np.array(start.vector, dtype=np.float64)
    times = list(sample_times_h)
    out = np.empty((len(times), len(b)))
    if not times:
        return out
    i = 0
    while i < len(times) and times[i] <= start.t_h:
        out[i] = x
        i += 1
    for a, end, rate in rate_pieces(segments, start.t_h, times[-1], times):

        def rhs(_t: float, y: npt.NDArray[np.float64], r: float = rate) -> npt.NDArray[np.float64]:
            return m @ y + b * r

        sol = solve_ivp(
            rhs,
            (a, end),
            x,
            method="DOP853",
            rtol=REFERENCE_RTOL,
            atol=REFERENCE_ATOL,
        )
        if not sol.success:  # pragma: no cover - solver failure is a test failure
            raise RuntimeError(sol.message)
        x = sol.y[:, -1]
        while i < len(times) and times[i] <= end:
            out[i] = x
            i += 1
    return out

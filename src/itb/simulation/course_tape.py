"""What a single-patient course did between its events, and the sampling grid read from it.

The course engine (:mod:`itb.simulation.engine`) steps pump, patient and clinic only at
events. On the way it keeps a :class:`CourseTape`:

- every constant-rate piece the patient received, with the patient's state at its start;
- every integration step of the pump (:class:`itb.domain.pump.ReservoirPiece`);
- the world at the end of every move (before the events of that instant act): whether a
  pump is in, its reservoir and its programmed dose.

:meth:`CourseTape.samples` then computes the whole output grid in one pass: the patient's
state at every grid point from its piece's start state and the patient's modes
(:func:`itb.domain.patient.modes`; exact, vectorised over the grid), the observation map on
arrays (:func:`itb.simulation.cohort.observe`), and the reservoir from the pump's steps. A
grid point at an event's instant shows the course just before the event acts. The grid
changes what is recorded, never what happens: nothing is stepped there.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from itb.domain.patient import (
    Observation,
    PatientParameters,
    PatientState,
    advance,
    modes,
    observe,
)
from itb.domain.pump import ReservoirPiece
from itb.simulation.cohort import CohortArrays, CohortState
from itb.simulation.cohort import observe as observe_arrays

__all__ = ["CourseTape", "Sample"]

_EPS_H = 1e-9

PatientStep = Callable[[PatientParameters, PatientState, float, float], PatientState]
"""``(params, state, rate_mcg_per_h, dt_h) -> state``, as :func:`itb.domain.patient.advance`."""


@dataclass(frozen=True, slots=True)
class Sample:
    """The course at one point of the sampling grid.

    Attributes:
        t_h: hours since implant.
        reservoir_actual_ml: drug really left in the reservoir, mL (hidden truth).
        reservoir_calculated_ml: what the pump believes is left, mL.
        dose_mcg_per_day: programmed daily dose (fixed-flow: concentration x flow), mcg/day.
        delivery_mcg_per_h: mean rate reaching the CSF since the previous sample, mcg/h.
        csf_mcg_per_ml: lumbar CSF concentration, mcg/mL.
        effect_site_mcg_per_ml: effect-site concentration, mcg/mL.
        mas, psfs: spasticity scores, 0-4.
        withdrawal_stage: 0 none, 1 early signs, 2 severe.
        withdrawal_severity: the model's withdrawal index w (dimensionless).
        overdose_stage: 0 none, else the highest overdose stage reached.
        signs: withdrawal and overdose signs present, ``"; "``-joined.
    """

    t_h: float
    reservoir_actual_ml: float
    reservoir_calculated_ml: float
    dose_mcg_per_day: float
    delivery_mcg_per_h: float
    csf_mcg_per_ml: float
    effect_site_mcg_per_ml: float
    mas: float
    psfs: float
    withdrawal_stage: int
    withdrawal_severity: float
    overdose_stage: int
    signs: str


@dataclass(slots=True)
class CourseTape:
    """Kept while the course runs; read once at its end (:meth:`samples`)."""

    params: PatientParameters
    start: PatientState
    step: PatientStep = advance
    """The patient's step; the grid is computed from the patient's modes when it is the
    domain's exact :func:`~itb.domain.patient.advance`, else by calling it at every point."""
    piece_t0: list[float] = field(default_factory=list)
    piece_t1: list[float] = field(default_factory=list)
    piece_rate: list[float] = field(default_factory=list)
    piece_state: list[PatientState] = field(default_factory=list)
    reservoir: list[ReservoirPiece] = field(default_factory=list)
    move_t: list[float] = field(default_factory=list)
    move_pump: list[bool] = field(default_factory=list)
    move_reservoir: list[tuple[float, float]] = field(default_factory=list)
    move_dose: list[float] = field(default_factory=list)

    def piece(self, t0_h: float, t1_h: float, rate_mcg_per_h: float, state: PatientState) -> None:
        """The patient received ``rate_mcg_per_h`` from ``t0_h`` to ``t1_h``, from ``state``."""
        self.piece_t0.append(t0_h)
        self.piece_t1.append(t1_h)
        self.piece_rate.append(rate_mcg_per_h)
        self.piece_state.append(state)

    def moved(
        self, t_h: float, pump_in: bool, reservoir_ml: tuple[float, float], dose: float
    ) -> None:
        """The world reached ``t_h`` (events of ``t_h`` not yet acted): pump in or out, its
        true and calculated reservoir (mL) and programmed dose (mcg/day)."""
        self.move_t.append(t_h)
        self.move_pump.append(pump_in)
        self.move_reservoir.append(reservoir_ml)
        self.move_dose.append(dose)

    # ------------------------------------------------------------------ reading

    def samples(self, every_h: float, horizon_h: float) -> list[Sample]:
        """The course at ``0, every_h, 2 every_h, ...`` up to ``horizon_h``."""
        count = int(np.floor((horizon_h + _EPS_H) / every_h)) + 1
        ts = np.arange(count, dtype=np.float64) * every_h
        ts = ts[ts <= horizon_h + _EPS_H]
        states = self._patient_at(ts)
        obs = observe_arrays(CohortArrays.from_patients([self.params]), states)
        detail = self._detailed(ts, states, obs.withdrawal_severity, obs.occupancy)
        delivered = states.delivered_mcg
        spans = np.diff(ts, prepend=0.0)
        steps = np.diff(delivered, prepend=self.start.delivered_mcg)
        with np.errstate(divide="ignore", invalid="ignore"):
            rates = np.where(spans > 0.0, steps / spans, 0.0)
        columns = zip(
            ts.tolist(),
            rates.tolist(),
            obs.csf_concentration_mcg_per_ml.tolist(),
            obs.effect_site_mcg_per_ml.tolist(),
            obs.mas.tolist(),
            obs.psfs.tolist(),
            obs.withdrawal_stage.tolist(),
            obs.withdrawal_severity.tolist(),
            np.broadcast_to(obs.overdose_stage, ts.shape).tolist(),
            strict=True,
        )
        ends = [p.t1_h for p in self.reservoir]
        out: list[Sample] = []
        for i, (t, rate, csf, ce, mas, psfs, stage, w, od) in enumerate(columns):
            actual, calculated, dose = self._pump_at(t, ends)
            o = detail.get(i)
            if o is not None:
                csf, ce, mas, psfs = (
                    o.csf_concentration_mcg_per_ml,
                    o.effect_site_mcg_per_ml,
                    o.mas,
                    o.psfs,
                )
                stage, w, od = int(o.withdrawal_stage), o.withdrawal_severity, o.overdose_stage
            out.append(
                Sample(
                    t_h=t,
                    reservoir_actual_ml=actual,
                    reservoir_calculated_ml=calculated,
                    dose_mcg_per_day=dose,
                    delivery_mcg_per_h=rate,
                    csf_mcg_per_ml=csf,
                    effect_site_mcg_per_ml=ce,
                    mas=mas,
                    psfs=psfs,
                    withdrawal_stage=int(stage),
                    withdrawal_severity=w,
                    overdose_stage=int(od),
                    signs="" if o is None else "; ".join(o.withdrawal_signs + o.overdose_signs),
                )
            )
        return out

    def _patient_at(self, ts: np.ndarray) -> CohortState:
        """The patient's state at every time of ``ts`` (exact, from its piece's start)."""
        n = len(self.piece_t0)
        if n == 0:
            s = self.start
            x = np.tile(np.asarray(s.vector, dtype=np.float64), (len(ts), 1))
            return CohortState(
                0.0, x, np.full(len(ts), s.delivered_mcg), np.full(len(ts), s.therapy_h)
            )
        t0 = np.asarray(self.piece_t0)
        t1 = np.asarray(self.piece_t1)
        rate = np.asarray(self.piece_rate)
        idx = np.minimum(np.searchsorted(t1, ts, side="left"), n - 1)
        dt = np.clip(ts - t0[idx], 0.0, t1[idx] - t0[idx])
        m = modes(self.params) if self.step is advance else None
        if m is None:  # another step (a reference integrator), or two rates nearly coincide
            stepped = [
                self.step(self.params, self.piece_state[i], self.piece_rate[i], d)
                for i, d in zip(idx.tolist(), dt.tolist(), strict=True)
            ]
            return CohortState(
                0.0,
                np.asarray([s.vector for s in stepped], dtype=np.float64),
                np.asarray([s.delivered_mcg for s in stepped]),
                np.asarray([s.therapy_h for s in stepped]),
            )
        x0 = np.asarray([s.vector for s in self.piece_state], dtype=np.float64)
        delivered0 = np.asarray([s.delivered_mcg for s in self.piece_state])
        therapy0 = np.asarray([s.therapy_h for s in self.piece_state])
        v = np.asarray(m.vectors)
        lam = np.asarray(m.rates)
        z = lam[None, :] * dt[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            phi1 = np.where(z == 0.0, 1.0, np.expm1(z) / z)
        modal = (x0 @ np.asarray(m.inverse).T)[idx]
        modal = np.exp(z) * modal + dt[:, None] * phi1 * np.asarray(m.inverse_b) * rate[idx, None]
        x = modal @ v.T
        x[:, :4] = np.maximum(x[:, :4], 0.0)
        on = (delivered0[idx] > 0.0) | (rate[idx] > 0.0)
        return CohortState(
            0.0,
            x,
            delivered0[idx] + rate[idx] * dt,
            np.where(on, therapy0[idx] + dt, 0.0),
        )

    def _detailed(
        self,
        ts: np.ndarray,
        states: CohortState,
        severity: np.ndarray,
        occupancy: np.ndarray,
    ) -> dict[int, Observation]:
        """The domain's full observation at the grid points where a sign may be present (the
        signs are named there; everywhere else there is none)."""
        signs = self.params.signs
        first_withdrawal = min(
            [signs.withdrawal_early_threshold, *(s.threshold for s in signs.withdrawal_early_signs)]
        )
        first_overdose = min((s.threshold for s in signs.overdose_stages), default=np.inf)
        near = (severity >= first_withdrawal * (1 - 1e-9)) | (
            occupancy >= first_overdose * (1 - 1e-9)
        )
        out: dict[int, Observation] = {}
        for i in np.flatnonzero(near).tolist():
            x = states.x[i]
            state = PatientState(
                t_h=float(ts[i]),
                central_mcg=float(x[0]),
                peripheral_mcg=float(x[1]),
                effect_site_mcg_per_ml=float(x[2]),
                adaptation_mcg_per_ml=float(x[3]),
                withdrawal_drive_mcg_per_ml=float(x[4]),
                delivered_mcg=float(states.delivered_mcg[i]),
                therapy_h=float(states.therapy_h[i]),
            )
            out[i] = observe(self.params, state)
        return out

    def _pump_at(self, t_h: float, ends: list[float]) -> tuple[float, float, float]:
        """True and calculated reservoir (mL) and programmed dose (mcg/day) at ``t_h``
        (``ends``: where each of the pump's steps ends)."""
        k = min(bisect.bisect_left(self.move_t, t_h - _EPS_H), len(self.move_t) - 1)
        if k < 0 or not self.move_pump[k]:
            return 0.0, 0.0, 0.0
        dose = self.move_dose[k]
        if abs(self.move_t[k] - t_h) <= _EPS_H or not self.reservoir:
            actual, calculated = self.move_reservoir[k]
            return actual, calculated, dose
        piece = self.reservoir[min(bisect.bisect_left(ends, t_h), len(self.reservoir) - 1)]
        actual, calculated = piece.at(t_h)
        return actual, calculated, dose

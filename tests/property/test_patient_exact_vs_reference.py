"""The exact per-segment solution agrees with a general ODE solver (solve_ivp) to 1e-8.

Random patients (including coincident and widely separated rate constants) and
random dosing histories (boluses, infusions, gaps, overlaps). The reference
integrates the same equations (``system_matrix``) with DOP853 at rtol 1e-12.
Agreement is relative, 1e-8, with an absolute floor of 1e-9 of the largest
magnitude over the history of the states sharing the same unit (amounts in mcg;
concentrations in mcg/mL), for states that pass through zero, such as the
withdrawal drive at equilibrium (D - Ce - S -> 0), and never below 100 x the
reference solver's own absolute tolerance.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from itb.adapters.datafiles import load_data_table
from itb.domain.delivery import DeliverySegment
from itb.domain.patient import (
    AdaptationParameters,
    Cause,
    PatientParameters,
    PDParameters,
    PKParameters,
    simulate,
    typical_parameters,
)
from itb.simulation.patient_reference import REFERENCE_ATOL, reference_states

TYPICAL = typical_parameters(load_data_table("patient"), Cause.SPINAL_CORD_INJURY)
REL = 1e-8


@st.composite
def patients(draw: st.DrawFn) -> PatientParameters:
    cl = draw(st.floats(5.0, 120.0))
    v1 = draw(st.floats(20.0, 250.0))
    pk = PKParameters(cl, v1, draw(st.floats(0.0, 40.0)), draw(st.floats(50.0, 2000.0)))
    # Sometimes make ke0 equal to k10 exactly: closed forms written as sums of
    # exponentials break there; the matrix exponential must not.
    ke0 = draw(st.one_of(st.floats(0.02, 2.0), st.just(cl / v1)))
    pd = dataclasses.replace(TYPICAL.pd, ke0_per_h=ke0)
    ad = AdaptationParameters(
        tolerance_max_fraction=draw(st.floats(0.0, 4.0)),
        tolerance_time_constant_h=draw(st.floats(100.0, 1e4)),
        tolerance_drift_per_year=draw(st.sampled_from([0.0, 0.8])),
        dependence_rate_per_h=draw(st.floats(1e-4, 0.1)),
        withdrawal_rate_per_h=draw(st.one_of(st.floats(0.005, 1.0), st.just(ke0))),
    )
    assert isinstance(pd, PDParameters)
    return dataclasses.replace(TYPICAL, pk=pk, pd=pd, adaptation=ad)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[DeliverySegment], list[float]]:
    segments: list[DeliverySegment] = []
    t = 0.0
    for _ in range(draw(st.integers(1, 6))):
        t += draw(st.floats(0.0, 48.0))
        kind = draw(st.sampled_from(["bolus", "infusion", "gap"]))
        if kind == "bolus":
            dur = draw(st.floats(1.0 / 60.0, 0.5))
            rate = draw(st.floats(10.0, 100.0)) / dur
        elif kind == "infusion":
            dur = draw(st.floats(0.1, 400.0))
            rate = draw(st.one_of(st.just(0.0), st.floats(0.01, 100.0)))
        else:
            dur = draw(st.floats(0.1, 200.0))
            rate = 0.0
        if rate > 0.0:
            segments.append(DeliverySegment(t, t + dur, rate))
        t += dur
    if draw(st.booleans()) and segments:  # an overlapping bolus on top of something
        s = segments[0]
        segments.append(DeliverySegment(s.t0_h, s.t0_h + 1.0 / 60.0, 3000.0))
    extra = draw(st.lists(st.floats(0.0, t + 48.0), max_size=4))
    times = sorted({*(s.t1_h for s in segments), t + 24.0, *extra})
    return segments, times


@settings(max_examples=60)
@given(patients(), histories())
def test_exact_solution_matches_solve_ivp(
    params: PatientParameters, history: tuple[list[DeliverySegment], list[float]]
) -> None:
    segments, times = history
    exact = np.array([s.vector for s in simulate(params, segments, times)])
    ref = reference_states(params, segments, times)
    scale = np.abs(ref).max(axis=0)
    amounts, concentrations = scale[:2].max(), scale[2:].max()
    floor = np.maximum(
        1e-9 * np.array([amounts] * 2 + [concentrations] * 3), 100.0 * REFERENCE_ATOL
    )
    err = np.abs(exact - ref)
    assert (err <= REL * np.abs(ref) + floor).all(), (err / np.maximum(np.abs(ref), floor)).max(
        axis=0
    )

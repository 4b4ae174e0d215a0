"""The Wilson interval of a proportion always holds the estimate and stays in [0, 1].

A count of 0 (or n) once rounded to a lower bound a hair above the estimate,
which made the trial's error bars negative and the plot fail after the run.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from itb.simulation.cohort_summary import wilson


@given(st.integers(1, 10_000_000), st.data())
def test_interval_holds_the_estimate(n: int, data: st.DataObject) -> None:
    k = data.draw(st.sampled_from([0, n, data.draw(st.integers(0, n))]))
    ci = wilson(k, n)
    low, est, high = ci["low"], ci["estimate"], ci["high"]
    assert isinstance(low, float)
    assert isinstance(est, float)
    assert isinstance(high, float)
    assert 0.0 <= low <= est <= high <= 1.0


def test_the_size_that_broke_the_plot() -> None:
    ci = wilson(0, 7803)
    assert ci["low"] == 0.0
    assert ci["estimate"] == 0.0

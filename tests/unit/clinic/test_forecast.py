"""The reservoir forecast: the belief learned from refills, the times, the words."""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr
from scipy.stats import norm

from itb import bootstrap
from itb.domain.clinic.forecast import (
    DeliveryProfile,
    Observed,
    PumpForecast,
    RefillObservation,
    delivery_profile,
    history_words,
    parse_forecast_rules,
)
from itb.domain.clinic.radar import forecast_flag
from itb.domain.errors import InvalidValue
from itb.domain.pump import Flex, FlexStep, PatientBolusSettings, PeriodicBolus, Stopped
from itb.domain.pump.refill import (
    FORECAST_HORIZON_H,
    Verdict,
    calculated_volume_at,
    time_calculated_volume_reaches,
)
from itb.services.clinic.forecasting import ForecastInput, forecast_pumps
from itb.simulation.forecast import Beliefs, commanded_ml, forecast, learn, pack, time_to

sys.path.insert(0, str(Path(__file__).parents[1] / "clinical"))
from test_refill_planning import make_pump

RULES = bootstrap.catalog().forecast
HORIZON_H = FORECAST_HORIZON_H
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)

# ------------------------------------------------------------------ programs

_step_rates = st.one_of(st.just(0.0), st.floats(min_value=1.0, max_value=60.0))
_day = st.lists(
    st.tuples(st.integers(min_value=1, max_value=95), _step_rates), min_size=0, max_size=12
).map(
    lambda steps: (
        FlexStep(0.0, 20.0),
        *(FlexStep(q / 4.0, r) for q, r in sorted(dict(steps).items())),
    )
)
_programs = st.one_of(
    st.just(None),
    _day.map(lambda d: Flex((d,) * 7)),
    st.lists(_day, min_size=7, max_size=7).map(lambda ds: Flex(tuple(ds))),
    st.builds(
        PeriodicBolus,
        basal_mcg_per_day=st.floats(min_value=50.0, max_value=400.0),
        bolus_mcg=st.floats(min_value=5.0, max_value=80.0),
        bolus_duration_h=st.just(0.5),
        interval_h=st.sampled_from([3.0, 6.0, 8.0, 12.0]),
    ),
)


@st.composite
def pumps(draw: st.DrawFn) -> object:
    program = draw(_programs)
    bolus = draw(st.booleans())
    pb = PatientBolusSettings(20.0, 0.5, 4.0, 3) if bolus else None
    pump = make_pump(program, patient_bolus=pb, fill_ml=draw(st.floats(5.0, 40.0)))
    pump.advance_to(draw(st.floats(0.0, 200.0)))
    return pump


@settings(max_examples=60, deadline=None)
@given(pumps())
def test_at_the_programmed_rate_the_times_are_the_programmers(pump: object) -> None:
    """With no uncertainty and a factor of 1, the forecast's alarm, low-reservoir and empty
    times are the pump's own calculated dates, for any program shape."""
    from itb.domain.pump import Pump

    assert isinstance(pump, Pump)
    profile = delivery_profile(pump)
    assert profile is not None
    pr = pack([profile])
    times = forecast(
        pr,
        Beliefs(np.ones(1), np.zeros(1)),
        interval_sd=1e-12,
        by_h=np.zeros(1),
        probabilities=[0.5],
        advise_probability=0.5,
    )
    for level, got in (
        (pump.low_reservoir_alarm_ml, times.alarm_h[0]),
        (pump.low_reservoir_alarm_ml, times.low_h[0, 0]),
        (0.0, times.empty_h[0, 0]),
    ):
        want = time_calculated_volume_reaches(pump, level, horizon_h=HORIZON_H)
        if want is None:  # beyond the programmer's horizon: the forecast says later still
            assert got >= HORIZON_H
            assert (
                calculated_volume_at(pump, pump.t_h + HORIZON_H, include_max_patient_boluses=True)
                > level
            )
            continue
        if pump.reservoir_calculated_ml <= level:  # already there
            assert got == 0.0
            assert want == pump.t_h
            continue
        # the same volume at the same instant; where pieces deliver nothing between
        # two crossings of the level within rounding, the forecast takes the first
        assert got <= want - pump.t_h + 1e-6
        at = calculated_volume_at(pump, pump.t_h + float(got), include_max_patient_boluses=True)
        assert at == pytest.approx(level, abs=1e-7)
        if got < want - pump.t_h - 1e-6:
            assert calculated_volume_at(
                pump, want, include_max_patient_boluses=True
            ) == pytest.approx(level, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(pumps(), st.floats(min_value=0.0, max_value=500.0))
def test_the_commanded_volume_and_its_inverse_agree(pump: object, volume: float) -> None:
    from itb.domain.pump import Pump

    assert isinstance(pump, Pump)
    profile = delivery_profile(pump)
    assert profile is not None
    pr = pack([profile])
    hours = time_to(pr, np.array([volume]))
    assert commanded_ml(pr, hours)[0] == pytest.approx(volume, rel=1e-9, abs=1e-9)
    assert profile.commanded_ml(float(hours[0])) == pytest.approx(volume, rel=1e-9, abs=1e-9)


def test_a_stopped_pump_has_no_profile() -> None:
    pump = make_pump(Stopped())
    assert not pump.running
    assert delivery_profile(pump) is None


def test_a_profile_round_trips_and_another_layout_is_rebuilt() -> None:
    profile = delivery_profile(make_pump(Flex(((FlexStep(0, 10.0), FlexStep(8, 30.0)),) * 7)))
    assert profile is not None
    assert DeliveryProfile.from_data(profile.to_data()) == profile
    assert DeliveryProfile.from_data({**profile.to_data(), "version": 0}) is None


# ------------------------------------------------------------------ the belief


def _grid_moments(log_density: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
    w = np.exp(log_density - log_density.max())
    w /= w.sum()
    mean = float((w * grid).sum())
    return mean, float((w * (grid - mean) ** 2).sum())


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(2.0, 40.0), st.floats(0.8, 1.25), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_the_belief_is_the_posterior_of_the_stated_model(
    obs: list[tuple[float, float, bool]],
) -> None:
    """Measured refills: the exact normal posterior. One refill found empty: the exact
    mean and variance of the prior times the probit (checked on a fine grid)."""
    tau, sw, m0, s0 = 0.022, 0.25, 1.01, 0.04
    grid = np.linspace(0.5, 1.8, 200_001)
    measured = [(u, r) for u, r, empty in obs if not empty]
    log_p = norm.logpdf(grid, m0, s0)
    for u, r in measured:
        log_p += norm.logpdf(r, grid, math.sqrt(tau**2 + (sw / u) ** 2))
    b = learn(
        1,
        prior_mean=m0,
        prior_sd=s0,
        pump=np.zeros(len(measured), dtype=np.int64),
        programmed_ml=np.array([u for u, _ in measured]),
        used_ml=np.array([u * r for u, r in measured]),
        found_empty=np.zeros(len(measured), dtype=np.bool_),
        reading_sd_ml=sw,
        interval_sd=tau,
    )
    mean, var = _grid_moments(log_p, grid)
    assert b.mean[0] == pytest.approx(mean, abs=1e-6)
    assert b.var[0] == pytest.approx(var, rel=1e-4)
    # then one reservoir found empty: at least all it held was used
    u, c, _ = obs[-1]
    sd_c = math.sqrt(tau**2 + (sw / u) ** 2)
    m1, s1 = float(b.mean[0]), math.sqrt(float(b.var[0]))
    after = learn(
        1,
        prior_mean=m1,
        prior_sd=s1,
        pump=np.zeros(1, dtype=np.int64),
        programmed_ml=np.array([u]),
        used_ml=np.array([u * c]),
        found_empty=np.ones(1, dtype=np.bool_),
        reading_sd_ml=sw,
        interval_sd=tau,
    )
    grid = np.linspace(m1 - 12 * s1, max(m1, c) + 12 * max(s1, sd_c), 400_001)
    log_p = norm.logpdf(grid, m1, s1) + norm.logcdf((grid - c) / sd_c)
    mean, var = _grid_moments(log_p, grid)
    assert after.mean[0] == pytest.approx(mean, abs=1e-6)
    assert after.var[0] == pytest.approx(var, rel=1e-3)
    assert after.mean[0] >= m1  # an empty reservoir can only say the pump ran faster


def test_refills_are_learned_one_after_another_per_pump() -> None:
    """Two pumps' refills, interleaved: each pump's belief is its own sequence."""
    kw = {"prior_mean": 1.0, "prior_sd": 0.04, "reading_sd_ml": 0.25, "interval_sd": 0.02}
    together = learn(
        2,
        pump=np.array([1, 0, 1, 0]),
        programmed_ml=np.array([10.0, 20.0, 12.0, 18.0]),
        used_ml=np.array([11.0, 20.2, 13.0, 17.0]),
        found_empty=np.array([False, False, True, False]),
        **kw,  # type: ignore[arg-type]
    )
    for p, rows in ((0, [1, 3]), (1, [0, 2])):
        alone = learn(
            1,
            pump=np.zeros(2, dtype=np.int64),
            programmed_ml=np.array([10.0, 20.0, 12.0, 18.0])[rows],
            used_ml=np.array([11.0, 20.2, 13.0, 17.0])[rows],
            found_empty=np.array([False, False, True, False])[rows],
            **kw,  # type: ignore[arg-type]
        )
        assert together.mean[p] == pytest.approx(alone.mean[0])
        assert together.var[p] == pytest.approx(alone.var[0])


def test_what_a_refill_tells() -> None:
    def obs(verdict: Verdict, programmed: float = 10.0) -> RefillObservation:
        return RefillObservation(programmed, 15.0, 4.0, verdict.value)

    assert obs(Verdict.WITHIN_TOLERANCE).observed is Observed.MEASURED
    assert obs(Verdict.WITHIN_TOLERANCE).used_ml == pytest.approx(11.0)
    assert obs(Verdict.LESS_THAN_EXPECTED).observed is Observed.MEASURED
    assert obs(Verdict.FOUND_EMPTY).observed is Observed.FOUND_EMPTY
    assert obs(Verdict.MORE_THAN_EXPECTED).observed is Observed.NOT_LEARNED
    assert obs(Verdict.WITHIN_TOLERANCE, programmed=0.0).observed is Observed.NOT_LEARNED


# ------------------------------------------------------------------ the times


@settings(max_examples=40, deadline=None)
@given(pumps(), st.floats(0.9, 1.15), st.floats(0.005, 0.08))
def test_the_probability_by_a_band_end_is_the_band_end(pump: object, m: float, s: float) -> None:
    """P(empty by the band's low end) is the band's low-end probability, and so on: the
    probabilities and the times come from one distribution."""
    from itb.domain.pump import Pump

    assert isinstance(pump, Pump)
    profile = delivery_profile(pump)
    assert profile is not None
    pr = pack([profile])
    b = Beliefs(np.array([m]), np.array([s * s]))
    first = forecast(
        pr, b, interval_sd=0.02, by_h=np.zeros(1), probabilities=[0.05, 0.5, 0.95],
        advise_probability=0.01,
    )  # fmt: skip
    for k, q in enumerate((0.05, 0.5, 0.95)):
        for times, p in ((first.empty_h, "p_dry"), (first.low_h, "p_low")):
            at = forecast(
                pr, b, interval_sd=0.02, by_h=times[:, k], probabilities=[0.5],
                advise_probability=0.01,
            )  # fmt: skip
            if times[0, k] > 0.0:
                assert getattr(at, p)[0] == pytest.approx(q, abs=1e-6)
    assert first.empty_h[0, 0] <= first.empty_h[0, 1] <= first.empty_h[0, 2]
    assert first.advise_h[0] <= first.alarm_h[0]


def test_a_pump_learned_to_run_fast_is_forecast_dry_earlier_and_said_why() -> None:
    pump = make_pump(fill_ml=40.0)  # 0.96 mL/day
    profile = delivery_profile(pump)
    assert profile is not None
    visit = T0 + timedelta(days=38)
    fast = tuple(RefillObservation(36.0, 40.0, 40.0 - 36.0 * 1.09, "x") for _ in range(4))
    plain, learned = forecast_pumps(
        RULES,
        [
            ForecastInput(T0, profile, (), visit, True, 5.0),
            ForecastInput(T0, profile, fast, visit, True, 5.0),
        ],
    )
    assert plain is not None
    assert learned is not None
    assert learned.refills_learned == 4
    assert learned.delivered_pct == pytest.approx(9.0)
    assert learned.factor_mean > plain.factor_mean
    assert learned.factor_sd < plain.factor_sd
    assert learned.p_dry > plain.p_dry
    assert learned.empty_at[1] is not None
    assert plain.empty_at[1] is not None
    assert learned.empty_at[1] < plain.empty_at[1]
    flag = forecast_flag(learned, RULES)
    assert flag is not None
    assert flag.urgency == 4
    assert flag.text.startswith(
        f"P(dry before the {visit.date()} visit) {round(100 * learned.p_dry)} %: this pump "
        "has delivered 9 % more than programmed over its last 4 refills"
    )
    # the exact probability: P(f >= start / (programmed so far + commanded to the visit))
    c = profile.start_ml / (profile.programmed_ml + profile.commanded_ml(38 * 24))
    assert learned.p_dry == pytest.approx(
        float(ndtr((learned.factor_mean - c) / learned.factor_sd))
    )


def _forecast(**kw: object) -> PumpForecast:
    base: dict[str, object] = {
        "factor_mean": 1.0, "factor_sd": 0.04, "refills_learned": 0, "found_empty": 0,
        "delivered_pct": None, "band_probability": 0.9, "low_at": (None, None, None),
        "empty_at": (T0, T0, T0), "by_at": T0, "by_visit": True, "p_low": 0.0, "p_dry": 0.0,
        "advised_by": None,
    }  # fmt: skip
    base.update(kw)
    return PumpForecast(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("p_dry", "p_low", "code", "urgency"),
    [
        (0.0, 0.0, None, None),
        (0.0, 0.09, None, None),
        (0.0, 0.10, "forecast_low", 2),
        (0.0, 0.50, "forecast_low", 3),
        (0.01, 0.9, "forecast_dry", 3),
        (0.05, 0.9, "forecast_dry", 4),
    ],
)
def test_risk_classes_follow_the_reviewed_thresholds(
    p_dry: float, p_low: float, code: str | None, urgency: int | None
) -> None:
    flag = forecast_flag(_forecast(p_dry=p_dry, p_low=p_low), RULES)
    assert (flag.code if flag else None) == code
    assert (flag.urgency if flag else None) == urgency


def test_history_in_words() -> None:
    assert history_words(_forecast()) == (
        "no refill measured yet: the spread between pumps is assumed"
    )
    assert history_words(_forecast(refills_learned=1, delivered_pct=-3.4)) == (
        "this pump has delivered 3 % less than programmed over its refill"
    )
    assert history_words(_forecast(refills_learned=3, delivered_pct=0.2, found_empty=1)) == (
        "this pump has delivered as programmed over its last 3 refills; found empty 1 time"
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "allowed"),
    [
        ("band", "probability", 1.0, "a probability between 0 and 1"),
        ("observation", "interval_sd", 0.0, "> 0"),
        ("risk", "dry_act_soon", 0.2, "<= dry_act_now"),
    ],
)
def test_bad_forecast_numbers_are_refused_by_name(
    section: str, key: str, value: float, allowed: str
) -> None:
    from itb.adapters.datafiles import load_data_table

    table = load_data_table("forecast")
    table[section] = {**table[section], key: {**table[section][key], "value": value}}
    with pytest.raises(InvalidValue, match=allowed):
        parse_forecast_rules(table)


def test_without_a_visit_the_words_name_the_look_ahead_date() -> None:
    flag = forecast_flag(_forecast(p_dry=0.2, by_visit=False), RULES)
    assert flag is not None
    assert flag.text.startswith(f"P(dry by {T0.date()}, no visit booked) 20 %: ")

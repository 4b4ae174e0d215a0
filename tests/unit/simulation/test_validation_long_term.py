"""The long-term validation rows (T17-T23): their interval arithmetic and the low-residual row."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from itb import bootstrap
from itb.services.cohort_trial import default_arm
from itb.simulation.validation import run_validation
from itb.simulation.validation_long_term import (
    LongTermTargets,
    LowResidualSetup,
    _log_ratio_interval,
)

CAT = bootstrap.catalog()


def test_the_interval_of_a_ratio_of_means_is_the_log_ratio_interval() -> None:
    # two groups with a coefficient of variation of 0.5 and 25 patients each
    ratio, lo, hi = _log_ratio_interval((200.0, 100.0), 25, (100.0, 50.0), 25)
    se = math.sqrt(0.5**2 / 25 + 0.5**2 / 25)
    assert ratio == 2.0
    assert lo == pytest.approx(2.0 * math.exp(-1.959963984540054 * se))
    assert hi == pytest.approx(2.0 * math.exp(1.959963984540054 * se))
    assert lo * hi == pytest.approx(ratio * ratio)  # symmetric on the log scale


def test_the_published_numbers_come_from_patient_toml() -> None:
    t = LongTermTargets.from_table(CAT.patient_table)
    assert set(t.doses) == {"spinal_cord_injury", "multiple_sclerosis", "cerebral"}
    assert sum(s.n for s in t.doses.values()) == 102  # [C97]
    assert t.tolerant == (8, 37)  # [C102]
    assert t.low_residual == (21, 88)  # [C101]
    assert t.dose_source == "[C97]"
    assert 0.0 < t.adult_from_years <= 18.0  # T17b and T21e count adults only


def _t22(fraction: float) -> float:
    arm = default_arm(CAT, "t")
    preset = replace(CAT.preset(arm.pump), low_residual_flow_fraction=fraction)
    report = run_validation(
        CAT.patient_table,
        CAT.titration,
        CAT.protocol.goal(),
        CAT.library.hard_max_by_rule_group(),
        low_residual=LowResidualSetup(
            preset, arm.concentrations_mcg_per_ml, arm.min_refill_interval_days
        ),
        pk_cohort_size=50,
        titration_cohort_size=300,
    )
    row = next(r for r in report.rows if r.id == "T22")
    return float(row.model.split(" %")[0])


def test_more_under_delivery_means_more_withdrawal_before_the_refill() -> None:
    full, mild, strong = _t22(1.0), _t22(0.85), _t22(0.6)
    assert full == 0.0  # a pump that delivers to the end shows nothing before the alarm
    assert full <= mild < strong
    assert strong > 50.0

"""Plug flow through pump path and catheter, and the catheter access port."""

import pytest

from itb.domain.pump import DeadSpace


def test_push_returns_the_oldest_fluid_first() -> None:
    ds = DeadSpace(pump_path_ml=0.1, catheter_ml=0.2, concentration_mcg_per_ml=500.0)
    out = ds.push(0.1, 2000.0)
    assert [(s.volume_ml, s.concentration_mcg_per_ml) for s in out] == [(0.1, 500.0)]
    out = ds.push(0.25, 2000.0)
    assert sum(s.volume_ml for s in out) == pytest.approx(0.25)
    assert out[0].concentration_mcg_per_ml == 500.0
    assert out[0].volume_ml == pytest.approx(0.2)
    assert out[-1].concentration_mcg_per_ml == 2000.0
    assert ds.tip_concentration_mcg_per_ml() == 2000.0
    assert ds.volume_ml == pytest.approx(0.3)


def test_access_port_injection_flushes_the_catheter_but_not_the_pump_path() -> None:
    ds = DeadSpace(pump_path_ml=0.1, catheter_ml=0.2, concentration_mcg_per_ml=500.0)
    ds.push(0.05, 1000.0)  # pump path now holds 0.05 mL of 1000 at its pump end
    out = ds.inject_at_access_port(0.5, 0.0)
    flushed = sum(s.mass_mcg for s in out)
    assert flushed == pytest.approx(0.2 * 500.0)  # the whole catheter's drug reaches the CSF
    assert sum(s.volume_ml for s in out) == pytest.approx(0.5)
    assert ds.volume_ml == pytest.approx(0.3)
    # catheter now saline, pump path untouched (0.05 @ 500 then 0.05 @ 1000)
    assert ds.mass_mcg == pytest.approx(0.05 * 500.0 + 0.05 * 1000.0)


def test_mass_is_conserved_through_many_pushes() -> None:
    ds = DeadSpace(0.2, 0.156, 0.0)
    pushed = exited = 0.0
    for i in range(1, 200):
        conc = float(i % 7) * 100.0
        vol = 0.001 * i
        pushed += vol * conc
        exited += sum(s.mass_mcg for s in ds.push(vol, conc))
    assert pushed == pytest.approx(exited + ds.mass_mcg, rel=1e-12)

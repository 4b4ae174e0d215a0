"""A run that leaves the patient without drug or the pump stopped ends with a warning, and
the pump's state at the end says why (the pump-spec examples shipped with itb)."""

from __future__ import annotations

from pathlib import Path

from itb import bootstrap

EXAMPLES = Path(__file__).resolve().parents[3] / "src" / "itb" / "data" / "pump_examples"


def _run(name: str) -> tuple[str, ...]:
    spec = bootstrap.load_pump_spec(EXAMPLES / name)
    return bootstrap.run_pump_spec(spec, None).warnings


def test_a_pump_at_end_of_service_warns_that_it_stopped_and_the_patient_goes_without() -> None:
    warnings = _run("seven_years_flex.toml")
    assert any("STOPPED" in w and "end of service" in w for w in warnings)
    assert any("critical alarms active" in w and "end_of_service" in w for w in warnings)
    assert any("no drug reached the CSF" in w and "without baclofen" in w for w in warnings)


def test_a_pump_run_dry_warns_of_its_empty_reservoir_and_the_gap() -> None:
    warnings = _run("overinfusion_runs_dry.toml")
    assert any("empty_reservoir" in w for w in warnings)
    assert any("no drug reached the CSF" in w for w in warnings)


def test_a_run_without_a_population_says_which_limits_it_checked() -> None:
    assert any("widest hard limits" in w for w in _run("seven_years_flex.toml"))

"""``itb screen`` end to end."""

import json

from typer.testing import CliRunner

from itb.entrypoints.cli.main import app

runner = CliRunner()


def test_screen_json_reports_boluses_and_verdict(tmp_path) -> None:
    png = tmp_path / "curves.png"
    result = runner.invoke(app, ["screen", "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"patient", "boluses", "verdict", "starting_dose_mcg_per_day"}
    assert data["boluses"][0]["dose_mcg"] == 50.0
    assert data["verdict"] in {"responder", "not_a_candidate"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_screen_population_draw_is_reproducible() -> None:
    a = runner.invoke(app, ["screen", "--json", "--seed", "7", "--index", "3"])
    b = runner.invoke(app, ["screen", "--json", "--seed", "7", "--index", "3"])
    assert a.exit_code == 0, a.output
    assert a.output == b.output


def test_screen_refuses_a_child_under_4() -> None:
    result = runner.invoke(app, ["screen", "--age-years", "3"])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "--age-years = 3.0 is not allowed; allowed: 4 to" in str(result.exception)

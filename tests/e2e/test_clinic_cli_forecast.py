"""The reservoir forecast from the command line, in-process through the real command
(``run(argv)``) on SQLite and PostgreSQL: ``itb clinic radar`` shows P(dry before the
visit) and the empty band for every pump the forecast covers, ``--json`` carries the whole
forecast, and ``refill-preview`` / ``program preview`` show the forecast now and after
with nothing recorded."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.e2e.test_clinic_cli import IMPLANT, PASSWORD, Cli, _patient
from tests.support.clinic_setup import CHEAP_HASHER

from itb import bootstrap
from itb.domain.clinic.forecast import band_words, pct_words
from itb.domain.clinic.radar import RadarRow
from itb.entrypoints.cli import clinic as clinic_cli

FORECAST_FIELDS = {
    "factor_mean", "factor_sd", "refills_learned", "found_empty", "delivered_pct",
    "band_probability", "low_at", "empty_at", "by_at", "by_visit", "p_low", "p_dry",
    "advised_by", "history",
}  # fmt: skip
FAST = 0.08
"""The pump in these tests draws 8 % more than programmed."""
FILL = ("--fill-ml", "20", "--concentration", "500", "--product", "baclofen_500")


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("ITB_PASSWORD_FOR_TEST", PASSWORD)
    monkeypatch.setattr(bootstrap, "password_hasher", lambda: CHEAP_HASHER)
    c = Cli(db_url, capsys)
    c("init", "--clinic-name", "North ITB Clinic", "--clinic-phone", "+44 20 7946 0001",
      "--admin", "drlee", "--admin-name", "Dr Lee", "--password-env", "ITB_PASSWORD_FOR_TEST",
      user=None)  # fmt: skip
    c("user", "add", "nina", "--role", "nurse", "--password-env", "ITB_PASSWORD_FOR_TEST")
    c("user", "add", "vic", "--role", "viewer", "--password-env", "ITB_PASSWORD_FOR_TEST")
    return c


def _at(t: datetime) -> str:
    return t.isoformat(timespec="minutes")


def _dict(value: object) -> dict[str, Any]:
    assert isinstance(value, dict)
    return value


def _fast_pump(cli: Cli) -> tuple[str, str, datetime]:
    """A patient whose pump was implanted 120 days ago and refilled twice, each time with
    8 % of the programmed volume less in the reservoir than the pump calculated."""
    pid = _patient(cli)
    now = datetime.now(UTC)
    iid = _dict(cli.json("implant", pid, *IMPLANT, "--at", _at(now - timedelta(days=120))))[
        "implant"
    ]["id"]
    for days_ago in (80, 40):
        at = _at(now - timedelta(days=days_ago))
        # what the refill would find, nothing recorded: the expected residual and the
        # volume programmed since the fill
        seen = _dict(cli.json("refill-preview", iid, "--withdrawn-ml", "10", *FILL, "--at", at,
                              user="nina"))  # fmt: skip
        d = seen["discrepancy"]
        withdrawn = d["expected_ml"] - FAST * d["programmed_since_fill_ml"]
        done = _dict(cli.json("refill", iid, "--withdrawn-ml", f"{withdrawn:.3f}", *FILL,
                              "--lot", f"L{days_ago}", "--at", at, user="nina"))  # fmt: skip
        assert done["refill"]["verdict"] == "within tolerance"
    return pid, iid, now


def _times(band: list[str | None]) -> list[datetime]:
    assert len(band) == 3
    assert all(t is not None for t in band)
    return [datetime.fromisoformat(str(t)) for t in band]


def test_the_radar_json_carries_the_forecast_learned_from_the_refills(cli: Cli) -> None:
    pid, iid, now = _fast_pump(cli)
    row = _dict(cli.json("radar", user="vic"))["pumps"][0]
    assert row["implant_id"] == iid
    fc = row["forecast"]
    assert set(fc) == FORECAST_FIELDS
    assert fc["refills_learned"] == 2
    assert fc["found_empty"] == 0
    assert fc["delivered_pct"] == pytest.approx(100 * FAST, abs=0.5)
    assert fc["factor_mean"] > 1.0
    assert fc["history"] == (
        "this pump has delivered 8 % more than programmed over its last 2 refills"
    )
    assert fc["band_probability"] == pytest.approx(0.9)
    low, empty = _times(fc["low_at"]), _times(fc["empty_at"])
    assert low == sorted(low)
    assert empty == sorted(empty)
    assert low[1] < empty[1]
    # a pump that runs fast is empty before the programmer's date, which assumes it does not
    assert empty[1] < datetime.fromisoformat(row["empty_at"])
    assert 0.0 <= fc["p_dry"] <= fc["p_low"] <= 1.0
    assert fc["by_visit"] is False  # no visit booked: the probabilities are for the look-ahead
    assert row["refill_by"] == fc["advised_by"]
    # a visit booked after the median empty time: the chance of running dry before it is
    # high, and the radar says so in its words
    visit = empty[2] + timedelta(days=3)
    cli("visit", "book", pid, "--at", _at(visit), user="nina")
    row = _dict(cli.json("radar", user="vic"))["pumps"][0]
    fc = row["forecast"]
    assert fc["by_visit"] is True
    assert datetime.fromisoformat(fc["by_at"]) == datetime.fromisoformat(row["next_visit_at"])
    assert fc["p_dry"] > 0.9
    assert row["urgency"] == 4
    said = f"P(dry before the {row['next_visit_at'][:10]} visit) {pct_words(fc['p_dry'])}"
    assert said in row["words"]
    # the table shows the same chance and the empty band in short dates
    table = cli("radar", user="vic")
    assert "P(dry) by visit" in table
    assert "empty 90 % band" in table
    assert pct_words(fc["p_dry"]) in table
    # the band in the one wording every screen uses (the table may wrap it: its ends)
    band = band_words(tuple(datetime.fromisoformat(t) for t in fc["empty_at"]))  # type: ignore[arg-type]
    low_end, high_end = band.split(" to ")
    assert low_end in table
    assert high_end in table
    assert now.date().isoformat() in table  # the title's day


def test_a_pump_without_a_forecast_keeps_the_rated_band_date(cli: Cli) -> None:
    _fast_pump(cli)
    handle = bootstrap.clinic(cli.db)
    try:
        service = handle.service
        (row,) = service.radar(service.actor("vic"))
    finally:
        handle.close()
    assert row.pump.forecast is not None
    assert clinic_cli._dry_cell(row).startswith(pct_words(row.pump.forecast.p_dry))
    bare = RadarRow(replace(row.pump, forecast=None), row.flags, row.refill_by)
    assert row.pump.earliest_dry_at is not None
    assert clinic_cli._dry_cell(bare) == (
        f"could be dry from {row.pump.earliest_dry_at.astimezone(UTC).date().isoformat()}"
    )
    assert clinic_cli._radar_row(bare)["forecast"] is None
    assert set(clinic_cli._radar_row(row)["forecast"]) == FORECAST_FIELDS


def test_a_refill_preview_shows_the_forecast_after_and_records_nothing(cli: Cli) -> None:
    _, iid, _ = _fast_pump(cli)
    before = _dict(cli.json("pump", iid, user="nina"))
    expected = before["reservoir_calculated_ml"]
    out = _dict(cli.json("refill-preview", iid, "--withdrawn-ml", f"{expected:.2f}", *FILL,
                         user="nina"))  # fmt: skip
    assert out["implant_id"] == iid
    assert out["refusal"] is None
    assert out["discrepancy"]["verdict"] == "within tolerance"
    now_fc, after = out["forecast_now"], out["forecast_after"]
    assert set(now_fc) == set(after) == FORECAST_FIELDS
    # the residual just withdrawn is learned from, and a full reservoir empties later
    assert after["refills_learned"] == now_fc["refills_learned"] + 1
    assert _times(after["empty_at"])[1] > _times(now_fc["empty_at"])[1]
    # a stronger drug at the same dose lasts four times as long
    stronger = _dict(cli.json("refill-preview", iid, "--withdrawn-ml", f"{expected:.2f}",
                              "--fill-ml", "20", "--concentration", "2000", "--product",
                              "baclofen_2000", "--dose", "100", "--bridge-bolus",
                              user="nina"))  # fmt: skip
    assert stronger["refusal"] is None
    lasts = _times(after["empty_at"])[1] - datetime.fromisoformat(out["at"])
    lasts4 = _times(stronger["forecast_after"]["empty_at"])[1] - datetime.fromisoformat(
        stronger["at"]
    )
    assert lasts4 / lasts == pytest.approx(4.0, rel=0.1)
    # a new strength without a program is refused: no forecast after it
    refused = _dict(cli.json("refill-preview", iid, "--withdrawn-ml", f"{expected:.2f}",
                             "--fill-ml", "20", "--concentration", "2000", "--product",
                             "baclofen_2000", user="nina"))  # fmt: skip
    assert refused["refusal"]
    assert refused["forecast_after"] is None
    text = _flat(cli("refill-preview", iid, "--withdrawn-ml", f"{expected:.2f}", *FILL,
                     user="nina"))  # fmt: skip
    assert "nothing recorded" in text
    # no visit booked: the chance is for the look-ahead, and the words say so
    assert re.search(r"Reservoir forecast now: P\(dry by \d{4}-\d\d-\d\d, no visit booked\)", text)
    assert re.search(r"after this refill: P\(dry by \d{4}-\d\d-\d\d, no visit booked\)", text)
    assert "over its last 3 refills" in text  # after: the previewed refill learned from
    # nothing was recorded: the same pump, the same version, still two refills learned
    again = _dict(cli.json("pump", iid, user="nina"))
    assert again["implant"]["version"] == before["implant"]["version"]
    assert _dict(cli.json("radar", user="vic"))["pumps"][0]["forecast"]["refills_learned"] == 2
    # the same roles as a refill: a viewer may not
    line = cli("refill-preview", iid, "--withdrawn-ml", "1", *FILL, user="vic", code=1)
    assert "may not" in line
    assert "--withdrawn-ml" in cli("refill-preview", iid, "--withdrawn-ml", "-1", *FILL,
                                   user="nina", code=2)  # fmt: skip


def test_a_change_preview_shows_the_forecast_now_and_after(cli: Cli) -> None:
    _, iid, _ = _fast_pump(cli)
    out = _dict(cli.json("program", "preview", iid, "--dose", "80"))
    assert out["refusal"] is None
    assert out["blocked"] is False
    assert [r["field"] for r in out["review"]["rows"]] == ["prescription"]
    now_fc, after = out["forecast_now"], out["forecast_after"]
    # a lower dose empties later; what the refills taught is the same
    assert _times(after["empty_at"])[1] > _times(now_fc["empty_at"])[1]
    assert after["refills_learned"] == now_fc["refills_learned"] == 2
    text = _flat(cli("program", "preview", iid, "--dose", "80"))
    assert "nothing staged" in text
    assert "Reservoir forecast after this change: P(dry by " in text
    blocked = _dict(cli.json("program", "preview", iid, "--dose", "400"))
    assert blocked["blocked"] is True
    assert "change refused" in blocked["refusal"]
    assert blocked["forecast_after"] is None
    assert "after this change: none: it would be refused" in _flat(
        cli("program", "preview", iid, "--dose", "400")
    )
    assert _dict(cli.json("program", "list"))["changes"] == []  # nothing staged
    assert "may not" in cli("program", "preview", iid, "--dose", "80", user="vic", code=1)


def _flat(text: str) -> str:
    return " ".join(text.split())

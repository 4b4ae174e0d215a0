"""The reservoir forecast over HTTP, on SQLite and PostgreSQL: every radar row carries the
forecast learned from its pump's refills, and ``POST /implants/{id}/refill-preview`` says
what a refill would find and forecast with nothing recorded, for the roles that may
refill."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.e2e.api.conftest import Api, sign_in

FILL = {
    "volume_ml": 20.0,
    "concentration_mcg_per_ml": 500.0,
    "product": "baclofen_500",
    "lot": "L9",
}
FORECAST_FIELDS = {
    "factor_mean", "factor_sd", "refills_learned", "found_empty", "delivered_pct",
    "band_probability", "low_at", "empty_at", "by_at", "by_visit", "p_low", "p_dry",
    "advised_by", "history",
}  # fmt: skip
SLOW = 0.06
"""The pump in these tests draws 6 % less than programmed."""


def _times(band: list[str | None]) -> list[datetime]:
    assert len(band) == 3
    assert all(t is not None for t in band)
    return [datetime.fromisoformat(str(t)) for t in band]


def _preview(api: Api, role: str, body: dict[str, Any]) -> Any:
    return api.client.post(
        f"/api/v1/implants/{api.clinic.implant_id}/refill-preview",
        headers=api.as_(role),
        json=body,
    )


def _slow_pump(api: Api) -> dict[str, str]:
    """Three refills 40 days apart, each finding 6 % of the programmed volume more in the
    reservoir than the pump calculated (within its rated band). The nurse's headers."""
    c, iid = api.client, api.clinic.implant_id
    nurse: dict[str, str] = {}
    for _ in range(3):
        api.clinic.clock.advance(days=40)
        nurse = sign_in(c, "nina")  # the session of 40 days ago has ended
        seen = c.post(
            f"/api/v1/implants/{iid}/refill-preview",
            headers=nurse,
            json={"withdrawn_ml": 10.0, "fill": FILL},
        ).json()["discrepancy"]
        withdrawn = seen["expected_ml"] + SLOW * seen["programmed_since_fill_ml"]
        r = c.post(
            f"/api/v1/implants/{iid}/refills",
            headers=nurse,
            json={"withdrawn_ml": round(withdrawn, 3), "fill": FILL},
        )
        assert r.status_code == 201, r.text
        assert r.json()["refill"]["verdict"] == "within tolerance"
    return nurse


def test_radar_rows_carry_the_forecast_learned_from_the_refills(api: Api) -> None:
    c = api.client
    fresh = c.get("/api/v1/radar", headers=api.as_("viewer")).json()
    (row,) = fresh
    assert set(row["forecast"]) == FORECAST_FIELDS
    assert row["forecast"]["refills_learned"] == 0
    assert row["forecast"]["delivered_pct"] is None
    assert row["forecast"]["history"].startswith("no refill measured yet")
    _slow_pump(api)
    (row,) = c.get("/api/v1/radar", headers=sign_in(c, "vic")).json()
    fc = row["forecast"]
    assert fc["refills_learned"] == 3
    assert fc["delivered_pct"] < -3.0
    assert fc["factor_mean"] < 1.0
    assert "less than programmed over its last 3 refills" in fc["history"]
    empty = _times(fc["empty_at"])
    assert empty == sorted(empty)
    # a pump that runs slow is empty after the programmer's date
    assert empty[1] > datetime.fromisoformat(row["empty_at"])
    assert row["refill_by"] == fc["advised_by"]
    assert fc["by_visit"] is False
    # a visit booked well before the band: no chance of running dry before it
    nurse = sign_in(c, "nina")
    visit = api.clinic.clock.now() + timedelta(days=7)
    booked = c.post(
        f"/api/v1/patients/{api.clinic.patient_id}/visits",
        headers=nurse,
        json={"at": visit.isoformat(), "kind": "refill"},
    )
    assert booked.status_code == 201, booked.text
    (row,) = c.get("/api/v1/radar", headers=nurse).json()
    assert row["forecast"]["by_visit"] is True
    assert datetime.fromisoformat(row["forecast"]["by_at"]) == visit
    assert row["forecast"]["p_dry"] < 0.001
    assert not any(f["code"] == "forecast_dry" for f in row["flags"])


def test_a_refill_preview_forecasts_the_refill_and_records_nothing(api: Api) -> None:
    _slow_pump(api)
    api.clinic.clock.advance(days=30)  # a refill interval of its own to learn from
    c, iid = api.client, api.clinic.implant_id
    # the fixture's tokens are months old: sign in again
    nurse = api.headers["nurse"] = sign_in(c, "nina")
    api.headers["physician"] = sign_in(c, "drlee")
    pump = c.get(f"/api/v1/implants/{iid}/pump", headers=nurse).json()
    refills = c.get("/api/v1/refills", headers=nurse).json()
    expected = pump["reservoir_calculated_ml"]
    r = _preview(api, "nurse", {"withdrawn_ml": expected, "fill": FILL})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["implant_id"] == iid
    assert out["refusal"] is None
    assert out["discrepancy"]["verdict"] == "within tolerance"
    assert out["discrepancy"]["expected_ml"] == expected
    now_fc, after = out["forecast_now"], out["forecast_after"]
    assert set(now_fc) == set(after) == FORECAST_FIELDS
    assert after["refills_learned"] == now_fc["refills_learned"] + 1 == 4
    assert _times(after["empty_at"])[1] > _times(now_fc["empty_at"])[1]
    # far less withdrawn than calculated: the verdict says so, and the forecast after it has
    # learned a faster pump than before
    fast = _preview(api, "physician", {"withdrawn_ml": max(0.0, expected - 4.0), "fill": FILL})
    assert fast.status_code == 200, fast.text
    assert fast.json()["discrepancy"]["verdict"] == "less withdrawn than expected"
    assert fast.json()["forecast_after"]["factor_mean"] > after["factor_mean"]
    # a new strength without a program: the pump would refuse it, nothing forecast after
    strong = {**FILL, "concentration_mcg_per_ml": 2000.0, "product": "baclofen_2000"}
    refused = _preview(api, "nurse", {"withdrawn_ml": expected, "fill": strong}).json()
    assert refused["refusal"]
    assert refused["forecast_after"] is None
    assert refused["forecast_now"] == now_fc
    # with its program it lasts about four times as long
    ok = _preview(
        api,
        "nurse",
        {"withdrawn_ml": expected, "fill": strong, "program": {"dose_mcg_per_day": 100.0},
         "bridge_bolus": True},
    ).json()  # fmt: skip
    assert ok["refusal"] is None
    at = datetime.fromisoformat(ok["at"])
    lasts = _times(after["empty_at"])[1] - datetime.fromisoformat(out["at"])
    assert 3.5 < (_times(ok["forecast_after"]["empty_at"])[1] - at) / lasts < 4.5
    # nothing was recorded
    again = c.get(f"/api/v1/implants/{iid}/pump", headers=nurse).json()
    assert again["implant"]["version"] == pump["implant"]["version"]
    assert c.get("/api/v1/refills", headers=nurse).json() == refills
    (row,) = c.get("/api/v1/radar", headers=nurse).json()
    assert row["forecast"]["refills_learned"] == 3


def test_a_refill_preview_refuses_what_a_refill_refuses(api: Api) -> None:
    body = {"withdrawn_ml": 5.0, "fill": FILL}
    for role, status in (("viewer", 403), ("patient", 403), ("caregiver", 403),
                         ("other_patient", 404)):  # fmt: skip
        r = _preview(api, role, body)
        assert r.status_code == status, (role, r.text)
        assert "Jones" not in r.text
    r = api.client.post(f"/api/v1/implants/{api.clinic.implant_id}/refill-preview", json=body)
    assert r.status_code == 401
    bad = _preview(api, "nurse", {"withdrawn_ml": -1.0, "fill": FILL})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "withdrawn_ml"
    unknown = _preview(api, "nurse", {"withdrawn_ml": 5.0, "fill": {**FILL, "product": "x"}})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "fill.product"
    extra = _preview(api, "nurse", {**body, "expected_version": 1})
    assert extra.status_code == 422
    assert extra.json()["error"]["field"] == "expected_version"
    missing = api.client.post(
        "/api/v1/implants/I9999/refill-preview", headers=api.as_("nurse"), json=body
    )
    assert missing.status_code == 404

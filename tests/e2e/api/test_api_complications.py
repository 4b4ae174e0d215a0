"""Complications through the API, on SQLite and PostgreSQL: recorded, updated by appended
entries, an explant ending the implant and taking it off the radar; the command line's
verdicts as JSON errors naming the field as sent; nothing written on a refusal."""

from __future__ import annotations

from typing import Any

import pytest
from tests.e2e.api.conftest import Api


def _complications(api: Api) -> list[dict[str, Any]]:
    c = api.clinic
    r = api.client.get(f"/api/v1/patients/{c.patient_id}/complications", headers=api.as_("viewer"))
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


def _writes(api: Api) -> list[str]:
    trail = api.clinic.service.audit_trail(api.clinic.viewer)
    return [e.action for e in trail if not e.action.startswith(("read:", "refused:", "log_in"))]


def test_a_complication_from_found_to_explanted_to_resolved(api: Api) -> None:
    c, client = api.clinic, api.client
    c.clock.advance(minutes=10)
    found = c.clock.now().replace(microsecond=0)
    r = client.post(
        f"/api/v1/implants/{c.implant_id}/complications",
        headers=api.as_("nurse"),
        json={
            "kind": "wound_infection",
            "found_at": found.isoformat(),
            "onset_at": "2026-01-05T09:05",  # the patient's local time (Europe/London)
            "signs": ["fever", "wound redness or drainage"],
            "treatments": ["antibiotics"],
            "note": "pocket red and warm",
        },
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "ongoing"
    assert first["signs"] == ["fever", "wound_redness_or_drainage"]
    assert first["onset_at"].startswith("2026-01-05T09:05")
    assert first["stamp"]["created_by"] == "nina"
    # a nurse may not take the pump out (a surgery); nothing written
    before = _complications(api)
    r = client.post(
        f"/api/v1/complications/{first['id']}/updates",
        headers=api.as_("nurse"),
        json={"treatments": ["explant"], "bridge": "oral", "oral_bridge_mg_per_day": 60.0},
    )
    assert r.status_code == 403, r.text
    assert _complications(api) == before
    c.clock.advance(minutes=10)
    version = c.service.pump_now(c.physician, c.implant_id).implant.version
    r = client.post(
        f"/api/v1/complications/{first['id']}/updates",
        headers=api.as_("physician"),
        json={"treatments": ["explant"], "bridge": "oral", "oral_bridge_mg_per_day": 60.0,
              "expected_version": version},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["follows"], out["status"], out["bridge"]) == (first["id"], "explanted", "oral")
    assert out["treatments"] == ["antibiotics", "explant"]
    chart = client.get(f"/api/v1/patients/{c.patient_id}", headers=api.as_("viewer")).json()
    assert chart["implants"][0]["status"] == "explanted"
    assert [s["id"] for s in chart["surgeries"]] == [out["explant_surgery_id"]]
    assert client.get("/api/v1/radar", headers=api.as_("viewer")).json() == []
    # the first entry again: refused as stale, nothing written
    r = client.post(
        f"/api/v1/complications/{first['id']}/updates",
        headers=api.as_("physician"),
        json={"status": "resolved"},
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["type"] == "StaleVersion"
    r = client.post(
        f"/api/v1/complications/{out['id']}/updates",
        headers=api.as_("nurse"),
        json={"status": "resolved", "bridge": "none"},
    )
    assert r.status_code == 201, r.text
    rows = _complications(api)
    assert [x["id"] for x in rows] == [first["id"], out["id"], r.json()["id"]]
    assert rows[0] == first  # never changed
    latest = client.get(
        f"/api/v1/patients/{c.patient_id}/complications?latest=true", headers=api.as_("patient")
    ).json()
    assert [x["status"] for x in latest] == ["resolved"]
    assert _writes(api)[-5:] == [
        "record_complication", "record_surgery", "explant", "update_complication",
        "update_complication",
    ]  # fmt: skip
    assert client.get("/api/v1/audit/verify", headers=api.as_("viewer")).json()["ok"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "flu"}, "kind"),
        ({"kind": "csf_leak", "treatments": ["leeches"]}, "treatments"),
        ({"kind": "csf_leak", "signs": ["sneezing loudly"]}, "signs"),
        ({"kind": "csf_leak", "bridge": "oral", "oral_bridge_mg_per_day": 20.0}, "bridge"),
        ({"kind": "csf_leak", "treatments": ["explant"], "bridge": "oral"},
         "oral_bridge_mg_per_day"),
        ({"kind": "csf_leak", "treatments": ["explant"], "bridge": "oral",
          "oral_bridge_mg_per_day": 500.0}, "oral_bridge_mg_per_day"),
        ({"kind": "csf_leak", "status": "explanted"}, "status"),
        ({"kind": "csf_leak", "found_at": "2099-01-01T00:00:00+00:00"}, "found_at"),
        ({"kind": "csf_leak", "found_at": "2020-01-01T00:00:00+00:00"}, "found_at"),
        ({"kind": "csf_leak", "note": "x" * 2001}, "note"),
        ({"kind": 3}, "kind"),
        ({"kind": "csf_leak", "oral_bridge_mg_per_day": "60"}, "oral_bridge_mg_per_day"),
        ({"kind": "csf_leak", "treatments": "antibiotics"}, "treatments"),
        ({"kind": "csf_leak", "surprise": 1}, "surprise"),
        ({}, "kind"),
    ],
)  # fmt: skip
def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    c = api.clinic
    c.clock.advance(minutes=5)
    writes = _writes(api)
    r = api.client.post(
        f"/api/v1/implants/{c.implant_id}/complications", headers=api.as_("physician"), json=body
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == field, error
    assert "\n" not in error["message"]
    assert _complications(api) == []
    assert _writes(api) == writes
    assert c.service.chart(c.viewer, c.patient_id).implants[0].status.value == "active"


def test_unknown_records_and_other_patients_are_not_found(api: Api) -> None:
    c, client = api.clinic, api.client
    r = client.post(
        "/api/v1/complications/X9999/updates", headers=api.as_("physician"), json={"note": "x"}
    )
    assert r.status_code == 404
    x = c.service.record_complication(c.nurse, c.implant_id, kind="pump_flip")
    r = client.post(
        f"/api/v1/complications/{x.id}/updates",
        headers=api.as_("other_patient"),
        json={"note": "x"},
    )
    assert r.status_code == 404
    assert "Ada" not in r.text
    r = client.get(
        f"/api/v1/patients/{c.patient_id}/complications", headers=api.as_("other_patient")
    )
    assert r.status_code == 404
    r = client.post(f"/api/v1/complications/{x.id}/updates", headers=api.as_("physician"), json={})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "update"

"""The clinic API end to end on SQLite and PostgreSQL: signing in, the clinic's work through
HTTP (a refill, a change staged, verified by a second person and committed, the radar, the
audit trail), errors in one JSON shape naming the field, sessions that end, slowed
log-ins, security headers, and an OpenAPI schema that declares every status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.api.conftest import Api, sign_in
from tests.support.clinic_setup import PASSWORD

FILL = {
    "volume_ml": 20.0,
    "concentration_mcg_per_ml": 500.0,
    "product": "baclofen_500",
    "lot": "L9",
}


def test_a_clinic_day_over_http(api: Api) -> None:
    c, clinic = api.client, api.clinic
    iid = clinic.implant_id
    nurse, doc, second = api.as_("nurse"), api.as_("physician"), api.as_("second_physician")
    assert c.get("/api/v1/me", headers=nurse).json() == {
        "username": "nina",
        "role": "nurse",
        "patient_id": None,
    }
    pump = c.get(f"/api/v1/implants/{iid}/pump", headers=nurse).json()
    version = pump["implant"]["version"]
    clinic.clock.advance(days=40)  # the sessions have ended since: sign in again
    nurse, doc, second = sign_in(c, "nina"), sign_in(c, "drlee"), sign_in(c, "drkim")
    r = c.post(
        f"/api/v1/implants/{iid}/refills",
        headers=nurse,
        json={"withdrawn_ml": 12.0, "fill": FILL, "expected_version": version},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["refill"]["verdict"] == body["discrepancy"]["verdict"] == "within tolerance"
    assert body["refill"]["stamp"]["created_by"] == "nina"
    # the same reading again: someone (this nurse) acted on the pump since
    again = c.post(
        f"/api/v1/implants/{iid}/refills",
        headers=nurse,
        json={"withdrawn_ml": 12.0, "fill": FILL, "expected_version": version},
    )
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "StaleVersion"
    staged = c.post(
        f"/api/v1/implants/{iid}/changes",
        headers=nurse,
        json={"program": {"dose_mcg_per_day": 125.0}, "reason": "tone"},
    )
    assert staged.status_code == 201, staged.text
    cid = staged.json()["id"]
    assert staged.json()["needs_verification"] is True
    assert c.post(f"/api/v1/changes/{cid}/commit", headers=nurse).status_code == 409
    assert c.post(f"/api/v1/changes/{cid}/verify", headers=nurse).status_code == 403
    assert c.post(f"/api/v1/changes/{cid}/verify", headers=second).json()["verified_by"] == "drkim"
    done = c.post(f"/api/v1/changes/{cid}/commit", headers=doc).json()
    assert done["state"] == "committed"
    assert c.get(f"/api/v1/implants/{iid}/pump", headers=nurse).json()["dose_mcg_per_day"] == 125.0
    blocked = c.post(
        f"/api/v1/implants/{iid}/changes",
        headers=nurse,
        json={"program": {"dose_mcg_per_day": 5000.0}, "reason": "typo"},
    )
    assert blocked.status_code == 422
    assert blocked.json()["error"]["type"] == "BlockedBySafetyCheck"
    visit = c.post(
        f"/api/v1/patients/{clinic.patient_id}/visits",
        headers=nurse,
        json={"at": (clinic.clock.now() + timedelta(days=60)).isoformat(), "kind": "refill"},
    )
    assert visit.status_code == 201
    radar = c.get("/api/v1/radar", headers=sign_in(c, "vic")).json()
    assert radar[0]["patient_id"] == clinic.patient_id
    assert radar[0]["next_visit_at"] is not None
    log = c.get(f"/api/v1/implants/{iid}/commands", headers=doc).json()
    assert [e["command"]["kind"] for e in log][-2:] == ["refill", "reprogram"]
    assert log[-1]["verified_by"] == "drkim"
    trail = c.get(
        "/api/v1/audit", params={"entity": "programming_change", "entity_id": cid}, headers=doc
    ).json()
    assert [e["action"] for e in trail] == [
        "stage_change",
        "refused:commit_change",
        "refused:verify_change",
        "verify_change",
        "commit_change",
    ]
    assert c.get("/api/v1/audit/verify", headers=doc).json()["ok"] is True
    symptoms = c.post(
        f"/api/v1/patients/{clinic.patient_id}/symptoms",
        headers=sign_in(c, "bob"),
        json={"signs": ["itching", "fever"]},
    )
    assert symptoms.status_code == 201
    assert symptoms.json()["record"]["urgency"] == "emergency"


def test_modified_since_returns_only_what_changed(api: Api) -> None:
    c, clinic = api.client, api.clinic
    clinic.clock.advance(minutes=2)
    mark = clinic.clock.now()
    clinic.clock.advance(minutes=1)
    r = c.patch(
        f"/api/v1/patients/{clinic.patient_id}",
        headers=api.as_("nurse"),
        json={"version": 1, "weight_kg": 71.5},
    )
    assert r.status_code == 200, r.text
    changed = c.get(
        "/api/v1/patients", params={"modified_since": mark.isoformat()}, headers=api.as_("viewer")
    ).json()
    assert [p["id"] for p in changed] == [clinic.patient_id]
    assert changed[0]["stamp"]["modified_by"] == "nina"
    assert len(c.get("/api/v1/patients", headers=api.as_("viewer")).json()) == 2
    naive = c.get(
        "/api/v1/patients",
        params={"modified_since": "2026-01-01T00:00:00"},
        headers=api.as_("viewer"),
    )
    assert naive.status_code == 422


def test_errors_name_the_field_as_sent(api: Api) -> None:
    c = api.client
    nurse = api.as_("nurse")
    patient = {
        "mrn": "N1",
        "given_name": "A",
        "family_name": "B",
        "birth_date": "1980-01-01",
        "sex": "female",
        "cause": "stroke",
    }
    for change, field in (
        ({"weight_kg": 7000.0}, "weight_kg"),
        ({"weight_kg": "70"}, "weight_kg"),
        ({"birth_date": "2990-01-01"}, "birth_date"),
        ({"cause": "flu"}, "cause"),
        ({"sex": "x"}, "sex"),
        ({"unknown": 1}, "unknown"),
    ):
        r = c.post("/api/v1/patients", headers=nurse, json={**patient, **change})
        assert r.status_code == 422, (change, r.text)
        err = r.json()["error"]
        assert err["field"] == field, err
        assert "\n" not in err["message"]
    r = c.post(
        f"/api/v1/implants/{api.clinic.implant_id}/refills",
        headers=nurse,
        json={"withdrawn_ml": 5.0, "fill": {**FILL, "volume_ml": 45.0}},
    )
    assert r.status_code == 422
    assert r.json()["error"]["type"] == "ReservoirOverfill"
    assert c.get("/api/v1/patients/P9999", headers=nurse).status_code == 404
    assert c.get("/api/v1/nothing-here", headers=nurse).json()["error"]["type"] == "HTTPError"
    big = c.post(
        "/api/v1/patients",
        headers={**nurse, "content-type": "application/json"},
        content=b" " * 2_000_000,
    )
    assert big.status_code == 413


def test_nan_and_infinity_are_refused(api: Api) -> None:
    body = b'{"withdrawn_ml": NaN, "fill": {"volume_ml": 20.0, "concentration_mcg_per_ml": 500.0, "product": "baclofen_500", "lot": "L"}}'
    r = api.client.post(
        f"/api/v1/implants/{api.clinic.implant_id}/refills",
        headers={**api.as_("nurse"), "content-type": "application/json"},
        content=body,
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "withdrawn_ml"


def test_unauthenticated_requests_learn_nothing(api: Api) -> None:
    c = api.client
    token = api.as_("physician")["Authorization"].split()[1]
    for path in ("/api/v1/radar", "/api/v1/patients", f"/api/v1/patients/{api.clinic.patient_id}"):
        r = c.get(path)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert set(r.json()["error"]) == {"type", "message"}
        assert c.get(path, params={"access_token": token}).status_code == 401  # never in a query
    assert c.get("/api/v1/health").json() == {"status": "ok"}
    r = c.get("/api/v1/radar", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401


def test_security_headers_on_every_api_response(api: Api) -> None:
    for r in (
        api.client.get("/api/v1/radar", headers=api.as_("viewer")),
        api.client.get("/api/v1/radar"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        assert "server" not in {k.lower() for k in r.headers} or "uvicorn" not in r.headers.get(
            "server", ""
        )


def test_sessions_end_after_inactivity_and_after_their_lifetime(api: Api) -> None:
    c, clock = api.client, api.clinic.clock
    policy = api.clinic.service.rules.sessions
    h = sign_in(c, "nina")
    clock.advance(minutes=policy.idle_minutes.value - 1)
    assert c.get("/api/v1/me", headers=h).status_code == 200
    clock.advance(minutes=policy.idle_minutes.value + 1)
    ended = c.get("/api/v1/me", headers=h)
    assert ended.status_code == 401
    assert "ended" in ended.json()["error"]["message"]
    h = sign_in(c, "nina")
    for _ in range(int(policy.lifetime_hours.value * 60 / (policy.idle_minutes.value / 2)) + 1):
        clock.advance(minutes=policy.idle_minutes.value / 2)
        r = c.get("/api/v1/me", headers=h)
        if r.status_code == 401:
            break
    assert r.status_code == 401  # active all along, yet past its absolute lifetime
    assert c.post("/api/v1/auth/logout", headers=sign_in(c, "nina")).status_code == 204


def test_a_logged_out_token_is_dead(api: Api) -> None:
    h = sign_in(api.client, "vic")
    assert api.client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert api.client.get("/api/v1/me", headers=h).status_code == 401


def test_failed_log_ins_are_slowed_per_account_and_recorded(api: Api) -> None:
    c = api.client
    policy = api.clinic.service.rules.sessions
    free = int(policy.free_failed_logins.value)
    for _ in range(free + 1):
        assert (
            c.post("/api/v1/auth/token", data={"username": "nina", "password": "wrong"}).status_code
            == 401
        )
    slowed = c.post("/api/v1/auth/token", data={"username": "nina", "password": PASSWORD})
    assert slowed.status_code == 429
    assert int(slowed.headers["retry-after"]) >= 1
    api.clinic.clock.advance(seconds=policy.failed_login_delay_max_s.value + 1)
    assert (
        c.post("/api/v1/auth/token", data={"username": "nina", "password": PASSWORD}).status_code
        == 200
    )
    refusals = [
        e for e in api.clinic.service.audit_trail(api.clinic.viewer) if e.action == "refused:login"
    ]
    assert len(refusals) >= free + 2


def test_the_openapi_schema_declares_every_status(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            declared = set(op["responses"])
            if path.endswith("/health"):
                continue
            assert {"401", "422"} <= declared, (method, path, declared)
            if not path.startswith("/api/v1/auth/"):
                assert {"403", "404", "409"} <= declared, (method, path)
    assert spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"


def test_a_caregiver_reads_their_patient_and_not_another(api: Api) -> None:
    c, clinic = api.client, api.clinic
    mine = c.get(f"/api/v1/patients/{clinic.patient_id}", headers=api.as_("caregiver"))
    assert mine.status_code == 200
    theirs = c.get(f"/api/v1/patients/{clinic.other_patient_id}", headers=api.as_("caregiver"))
    assert theirs.status_code == 404
    assert clinic.other_patient_id in theirs.json()["error"]["message"]
    assert "Bo" not in theirs.text
    assert [p["id"] for p in c.get("/api/v1/patients", headers=api.as_("caregiver")).json()] == [
        clinic.patient_id
    ]
    reads = [e for e in clinic.service.audit_trail(clinic.viewer) if e.action == "read:chart"]
    assert reads[-1].actor == "bob"


def test_times_come_back_in_utc(api: Api) -> None:
    r = api.client.get(
        f"/api/v1/implants/{api.clinic.implant_id}/pump", headers=api.as_("nurse")
    ).json()
    at = datetime.fromisoformat(r["at"])
    assert at.utcoffset() == timedelta(0)
    assert at.tzinfo is not None
    assert datetime.fromisoformat(r["implant"]["implanted_at"]) == datetime(
        2026, 1, 5, 9, tzinfo=UTC
    )


def test_a_patients_record_as_fhir_over_http(api: Api) -> None:
    """GET /patients/{id}/fhir: the record as a Bundle that reads back into the same
    records; a patient gets their own, not another's; the clinic's for staff only."""
    from itb.adapters.fhir import Importer, from_bundle

    c, pid, other = api.client, api.clinic.patient_id, api.clinic.other_patient_id
    r = c.get(f"/api/v1/patients/{pid}/fhir", headers=api.as_("physician"))
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    [f] = from_bundle(bundle, Importer("drlee", "physician", api.clinic.clock.now()))
    assert f == api.clinic.service.patient_files(api.clinic.physician, pid)[0]
    assert c.get(f"/api/v1/patients/{pid}/fhir", headers=api.as_("patient")).status_code == 200
    assert c.get(f"/api/v1/patients/{other}/fhir", headers=api.as_("patient")).status_code == 404
    whole = c.get("/api/v1/fhir", headers=api.as_("viewer"))
    assert whole.status_code == 200
    patients = {
        e["resource"]["id"]
        for e in whole.json()["entry"]
        if e["resource"]["resourceType"] == "Patient"
    }
    assert patients == {pid, other}
    assert c.get("/api/v1/fhir", headers=api.as_("patient")).status_code == 403


def test_a_calendar_subscription_address_per_patient(api: Api) -> None:
    """The address works without signing in, shows only that patient's reminders, stops
    when a new one is issued or it is revoked; a patient cannot issue one for another."""
    from icalendar import Calendar

    c, pid, other = api.client, api.clinic.patient_id, api.clinic.other_patient_id
    api.clinic.service.book_visit(
        api.clinic.nurse, pid, at=api.clinic.clock.now() + timedelta(days=20), kind="refill"
    )
    made = c.post(f"/api/v1/patients/{pid}/calendar-feed", headers=api.as_("patient"))
    assert made.status_code == 201, made.text
    path = made.json()["path"]
    assert path.startswith("/calendar/")
    assert path.endswith(".ics")
    feed = c.get(path)  # no token header: the address is the key
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(feed.content)
    uids = {str(e["uid"]) for e in cal.walk("VEVENT")}
    assert uids
    assert all(u.endswith(f"-{pid}") for u in uids)
    assert (
        c.get(f"/api/v1/patients/{other}/calendar-feed", headers=api.as_("patient")).status_code
        == 405
    )
    assert (
        c.post(f"/api/v1/patients/{other}/calendar-feed", headers=api.as_("patient")).status_code
        == 404
    )
    assert (
        c.post(f"/api/v1/patients/{pid}/calendar-feed", headers=api.as_("viewer")).status_code
        == 403
    )
    assert c.get(path).status_code == 200  # a refused request stops nothing
    again = c.post(f"/api/v1/patients/{pid}/calendar-feed", headers=api.as_("nurse")).json()["path"]
    assert c.get(path).status_code == 404  # the old address stopped
    assert c.get(again).status_code == 200
    assert (
        c.delete(f"/api/v1/patients/{pid}/calendar-feed", headers=api.as_("caregiver")).status_code
        == 204
    )
    assert c.get(again).status_code == 404
    assert c.get("/calendar/not-a-token.ics").status_code == 404

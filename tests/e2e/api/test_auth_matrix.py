"""Every endpoint with every role: the status each gets, decided by the use cases.

Staff roles without the permission get 403; a patient or caregiver asking about another
patient's record gets 404 (never the record, never a hint it exists); anyone without a
token gets 401. Each case prepares fresh records first, so one role's success never
changes what the next one sees. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tests.e2e.api.conftest import Api
from tests.support.clinic_setup import PASSWORD

from itb.services.clinic import ChangeRequest, ProgramRequest

ROLES = ("physician", "nurse", "viewer", "patient", "caregiver", "other_patient", "anonymous")
FILL = {
    "volume_ml": 20.0,
    "concentration_mcg_per_ml": 500.0,
    "product": "baclofen_500",
    "lot": "L1",
}

Request = tuple[str, str, dict[str, Any] | None]
Prepare = Callable[[Api], Request]


def _staged(api: Api, *, verified: bool = False) -> str:
    svc, c = api.clinic.service, api.clinic
    change = svc.stage_change(
        c.nurse,
        c.implant_id,
        ChangeRequest(program=ProgramRequest(dose_mcg_per_day=110.0), reason="tone"),
    )
    if verified:
        svc.verify_change(c.second_physician, change.id)
    return change.id


def _complication(api: Api) -> Request:
    c = api.clinic
    x = c.service.record_complication(c.nurse, c.implant_id, kind="csf_leak")
    return ("POST", f"/api/v1/complications/{x.id}/updates", {"treatments": ["bed_rest"]})


def _visit(api: Api) -> Request:
    c = api.clinic
    v = c.service.book_visit(
        c.nurse, c.patient_id, at=c.clock.now() + timedelta(days=30), kind="refill"
    )
    return ("PATCH", f"/api/v1/visits/{v.id}", {"status": "cancelled", "version": v.version})


def _patient_version(api: Api) -> Request:
    c = api.clinic
    version = c.service.chart(c.physician, c.patient_id).patient.version
    return ("PATCH", f"/api/v1/patients/{c.patient_id}", {"version": version, "notes": "seen"})


STAFF = {"physician", "nurse", "viewer"}
OWN = {"patient", "caregiver"}
EVERYONE_SIGNED_IN = STAFF | OWN | {"other_patient"}

# endpoint: (prepare, {role: expected status}); roles not listed get the default rule
CASES: dict[str, tuple[Prepare, dict[str, int]]] = {
    "me": (lambda a: ("GET", "/api/v1/me", None), dict.fromkeys(EVERYONE_SIGNED_IN, 200)),
    "list users": (lambda a: ("GET", "/api/v1/users", None), dict.fromkeys(STAFF, 200)),
    "create user": (
        lambda a: (
            "POST",
            "/api/v1/users",
            {
                "username": f"u{id(a)}{len(a.clinic.service.audit_trail(a.clinic.viewer))}",
                "role": "viewer",
                "password": PASSWORD,
            },
        ),
        {"physician": 201},
    ),
    "list patients": (
        lambda a: ("GET", "/api/v1/patients", None),
        dict.fromkeys(EVERYONE_SIGNED_IN, 200),
    ),
    "register patient": (
        lambda a: (
            "POST",
            "/api/v1/patients",
            {
                "mrn": f"M{len(a.clinic.service.audit_trail(a.clinic.viewer))}",
                "given_name": "A",
                "family_name": "B",
                "birth_date": "1980-01-01",
                "sex": "female",
                "cause": "stroke",
            },
        ),
        {"physician": 201, "nurse": 201},
    ),
    "read chart": (
        lambda a: ("GET", f"/api/v1/patients/{a.clinic.patient_id}", None),
        dict.fromkeys(STAFF | OWN, 200),
    ),
    "edit patient": (_patient_version, {"physician": 200, "nurse": 200}),
    "add contact": (
        lambda a: (
            "POST",
            f"/api/v1/patients/{a.clinic.patient_id}/contacts",
            {"name": "N", "relation": "GP", "phone": "1"},
        ),
        {"physician": 201, "nurse": 201},
    ),
    "record implant": (
        lambda a: (
            "POST",
            f"/api/v1/patients/{a.clinic.other_patient_id}/implants",
            {
                "pump_preset": "synchromed_ii_20",
                "serial": "S",
                "catheter_family": "ascenda_like",
                "catheter_length_cm": 60.0,
                "fill": FILL,
                "program": {"dose_mcg_per_day": 100.0},
            },
        ),
        # the other patient's own account may read their record: forbidden, not not-found
        {"physician": 201, "other_patient": 403, "patient": 404, "caregiver": 404},
    ),
    "pump now": (
        lambda a: ("GET", f"/api/v1/implants/{a.clinic.implant_id}/pump", None),
        dict.fromkeys(STAFF | OWN, 200),
    ),
    "command log": (
        lambda a: ("GET", f"/api/v1/implants/{a.clinic.implant_id}/commands", None),
        dict.fromkeys(STAFF | OWN, 200),
    ),
    "interrogate": (
        lambda a: ("POST", f"/api/v1/implants/{a.clinic.implant_id}/interrogations", {}),
        {"physician": 201, "nurse": 201},
    ),
    "refill": (
        lambda a: (
            "POST",
            f"/api/v1/implants/{a.clinic.implant_id}/refills",
            {"withdrawn_ml": 19.9, "fill": FILL},
        ),
        {"physician": 201, "nurse": 201},
    ),
    "refill preview": (
        lambda a: (
            "POST",
            f"/api/v1/implants/{a.clinic.implant_id}/refill-preview",
            {"withdrawn_ml": 19.9, "fill": FILL},
        ),
        {"physician": 200, "nurse": 200},
    ),
    "list refills": (lambda a: ("GET", "/api/v1/refills", None), dict.fromkeys(STAFF, 200)),
    "surgery": (
        lambda a: (
            "POST",
            f"/api/v1/implants/{a.clinic.implant_id}/surgeries",
            {"kind": "other", "detail": "wound check"},
        ),
        {"physician": 201},
    ),
    "record complication": (
        lambda a: (
            "POST",
            f"/api/v1/implants/{a.clinic.implant_id}/complications",
            {"kind": "wound_infection", "signs": ["fever"], "treatments": ["antibiotics"]},
        ),
        {"physician": 201, "nurse": 201},
    ),
    "update complication": (_complication, {"physician": 201, "nurse": 201}),
    "list complications": (
        lambda a: ("GET", f"/api/v1/patients/{a.clinic.patient_id}/complications", None),
        dict.fromkeys(STAFF | OWN, 200),
    ),
    "stage change": (
        lambda a: (
            "POST",
            f"/api/v1/implants/{a.clinic.implant_id}/changes",
            {"program": {"dose_mcg_per_day": 110.0}, "reason": "tone"},
        ),
        {"physician": 201, "nurse": 201},
    ),
    "list changes": (lambda a: ("GET", "/api/v1/changes", None), dict.fromkeys(STAFF, 200)),
    "read change": (
        lambda a: ("GET", f"/api/v1/changes/{_staged(a)}", None),
        dict.fromkeys(STAFF | OWN, 200),
    ),
    "verify change": (
        lambda a: ("POST", f"/api/v1/changes/{_staged(a)}/verify", None),
        {"physician": 200},
    ),
    "commit change": (
        lambda a: ("POST", f"/api/v1/changes/{_staged(a, verified=True)}/commit", None),
        {"physician": 200, "nurse": 200},
    ),
    "cancel change": (
        lambda a: ("POST", f"/api/v1/changes/{_staged(a)}/cancel", {"reason": "declined"}),
        {"physician": 200, "nurse": 200},
    ),
    "list visits": (
        lambda a: ("GET", "/api/v1/visits", None),
        dict.fromkeys(EVERYONE_SIGNED_IN, 200),
    ),
    "book visit": (
        lambda a: (
            "POST",
            f"/api/v1/patients/{a.clinic.patient_id}/visits",
            {"at": (a.clinic.clock.now() + timedelta(days=20)).isoformat(), "kind": "refill"},
        ),
        {"physician": 201, "nurse": 201},
    ),
    "visit status": (_visit, {"physician": 200, "nurse": 200}),
    "symptoms": (
        lambda a: (
            "POST",
            f"/api/v1/patients/{a.clinic.patient_id}/symptoms",
            {"signs": ["itching"]},
        ),
        {"physician": 201, "nurse": 201, "patient": 201, "caregiver": 201},
    ),
    "radar": (lambda a: ("GET", "/api/v1/radar", None), dict.fromkeys(STAFF, 200)),
    "pumps out": (lambda a: ("GET", "/api/v1/pumps-out", None), dict.fromkeys(STAFF, 200)),
    "audit": (lambda a: ("GET", "/api/v1/audit", None), dict.fromkeys(STAFF, 200)),
    "audit verify": (lambda a: ("GET", "/api/v1/audit/verify", None), dict.fromkeys(STAFF, 200)),
}

# Endpoints about patient P0001's record: the other patient gets 404 there; everywhere
# else a role without the permission gets 403.
ABOUT_THE_PATIENT = {
    "read chart", "edit patient", "add contact", "pump now", "command log", "interrogate",
    "refill", "refill preview", "surgery", "stage change", "read change", "verify change",
    "commit change", "cancel change", "book visit", "visit status", "symptoms",
    "record complication", "update complication", "list complications",
}  # fmt: skip


def expected(name: str, role: str) -> int:
    allowed = CASES[name][1]
    if role == "anonymous":
        return 401
    if role in allowed:
        return allowed[role]
    if role == "other_patient" and name in ABOUT_THE_PATIENT:
        return 404
    return 403


def test_every_endpoint_with_every_role(api: Api) -> None:
    mismatches = []
    seen = 0
    for name, (prepare, _) in CASES.items():
        for role in ROLES:
            method, path, body = prepare(api)
            headers = {} if role == "anonymous" else api.as_(role)
            r = api.client.request(method, path, headers=headers, json=body)
            seen += 1
            want = expected(name, role)
            if r.status_code != want:
                mismatches.append(f"{name} as {role}: {r.status_code} (want {want}) {r.text[:120]}")
            if r.status_code == 404 and role == "other_patient":
                assert "Ada" not in r.text
                assert "Jones" not in r.text
    assert seen == len(CASES) * len(ROLES)
    assert mismatches == []


def test_refusals_and_sensitive_reads_are_recorded(api: Api) -> None:
    c = api.client
    c.get(f"/api/v1/patients/{api.clinic.patient_id}", headers=api.as_("other_patient"))
    c.get("/api/v1/radar", headers=api.as_("patient"))
    c.get(f"/api/v1/patients/{api.clinic.patient_id}", headers=api.as_("nurse"))
    actions = [(e.actor, e.action) for e in api.clinic.service.audit_trail(api.clinic.viewer)]
    assert ("bo", "refused:read") in actions
    assert ("ada", "refused:radar") in actions
    assert ("nina", "read:chart") in actions

"""Every use case walked with every role: allowed, forbidden, or (another patient's record
seen by a patient or caregiver) not found — decided in the services, recorded when refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from tests.support.clinic_setup import PASSWORD, Clinic, fill, make_clinic, new_implant, new_patient

from itb.domain.clinic.access import Actor
from itb.domain.errors import Forbidden, NotFound
from itb.services.clinic import ChangeRequest, ProgramRequest, Reading, RefillRequest

ROLES = ("physician", "nurse", "viewer", "patient", "caregiver", "other_patient")

UseCase = Callable[[Clinic, Actor], Any]


def _staged(c: Clinic) -> str:
    return c.service.stage_change(
        c.physician,
        c.implant_id,
        ChangeRequest(program=ProgramRequest(dose_mcg_per_day=125.0), reason="tone"),
    ).id


USE_CASES: dict[str, tuple[UseCase, set[str]]] = {
    "register_patient": (
        lambda c, a: c.service.register_patient(a, new_patient("MRN-R")),
        {"physician", "nurse"},
    ),
    "edit_patient": (
        lambda c, a: c.service.edit_patient(a, c.patient_id, expected_version=1, notes="x"),
        {"physician", "nurse"},
    ),
    "add_contact": (
        lambda c, a: c.service.add_contact(a, c.patient_id, name="N", relation="GP", phone="1"),
        {"physician", "nurse"},
    ),
    "chart": (
        lambda c, a: c.service.chart(a, c.patient_id),
        {"physician", "nurse", "viewer", "patient", "caregiver"},
    ),
    "patients": (lambda c, a: c.service.patients(a), set(ROLES)),  # their own, for patients
    "record_implant": (
        lambda c, a: c.service.record_implant(
            a, c.other_patient_id if a.role.is_staff else c.patient_id, new_implant(c.clock)
        ),
        {"physician"},
    ),
    "pump_now": (
        lambda c, a: c.service.pump_now(a, c.implant_id),
        {"physician", "nurse", "viewer", "patient", "caregiver"},
    ),
    "command_log": (
        lambda c, a: c.service.command_log(a, c.implant_id),
        {"physician", "nurse", "viewer", "patient", "caregiver"},
    ),
    "record_interrogation": (
        lambda c, a: c.service.record_interrogation(a, c.implant_id, reading=Reading()),
        {"physician", "nurse"},
    ),
    "record_refill": (
        lambda c, a: c.service.record_refill(
            a, c.implant_id, RefillRequest(at=c.clock.now(), withdrawn_ml=19.0, fill=fill())
        ),
        {"physician", "nurse"},
    ),
    "record_surgery": (
        lambda c, a: c.service.record_surgery(a, c.implant_id, kind="other", detail="wound check"),
        {"physician"},
    ),
    "stage_change": (
        lambda c, a: c.service.stage_change(
            a,
            c.implant_id,
            ChangeRequest(program=ProgramRequest(dose_mcg_per_day=110.0), reason="tone"),
        ),
        {"physician", "nurse"},
    ),
    # staged by the first physician: "physician" here acts as the second physician
    "verify_change": (lambda c, a: c.service.verify_change(a, _staged(c)), {"physician"}),
    "commit_change": (
        lambda c, a: c.service.commit_change(
            a, c.service.verify_change(c.second_physician, _staged(c)).id
        ),
        {"physician", "nurse"},
    ),
    "book_visit": (
        lambda c, a: c.service.book_visit(
            a, c.patient_id, at=c.clock.now() + timedelta(days=9), kind="refill"
        ),
        {"physician", "nurse"},
    ),
    "visits": (
        lambda c, a: c.service.visits(a, patient_id=c.patient_id),
        {"physician", "nurse", "viewer", "patient", "caregiver"},
    ),
    "record_symptoms": (
        lambda c, a: c.service.record_symptoms(a, c.patient_id, signs=["itching"]),
        {"physician", "nurse", "patient", "caregiver"},
    ),
    "wallet_card": (
        lambda c, a: c.service.wallet_card(a, c.patient_id),
        {"physician", "nurse", "viewer", "patient", "caregiver"},
    ),
    "radar": (lambda c, a: c.service.radar(a), {"physician", "nurse", "viewer"}),
    "verify_audit": (lambda c, a: c.service.verify_audit(a), {"physician", "nurse", "viewer"}),
    "create_user": (
        lambda c, a: c.service.create_user(a, username="newbie", role="viewer", password=PASSWORD),
        {"physician"},
    ),
    "users": (lambda c, a: c.service.users(a), {"physician", "nurse", "viewer"}),
    "backup": (lambda c, a: c.service.note_backup(a, what="backup"), {"physician"}),
}


def _actor(c: Clinic, role: str) -> Actor:
    return getattr(c, role)  # type: ignore[no-any-return]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(USE_CASES))
def test_every_use_case_with_every_role(name: str, role: str) -> None:
    c = make_clinic()
    body, allowed = USE_CASES[name]
    actor = _actor(c, role)
    if name == "verify_change" and role == "physician":
        actor = c.second_physician
    if role in allowed:
        body(c, actor)
        return
    audit_before = len(c.store.state["audit"])
    expected = NotFound if role == "other_patient" and name not in ("patients",) else Forbidden
    if role in ("patient", "caregiver") and name in ("radar", "verify_audit", "users"):
        expected = Forbidden
    if role == "other_patient" and name in (
        "radar",
        "verify_audit",
        "users",
        "create_user",
        "register_patient",
        "backup",
    ):
        expected = Forbidden
    with pytest.raises(expected):
        body(c, actor)
    refusals = [e for e in c.store.state["audit"][audit_before:] if e.action.startswith("refused:")]
    if name != "patients":  # a patient listing patients sees their own, never refused
        assert refusals, f"{name} refused for {role} but not recorded"
        assert refusals[-1].actor == actor.username


def test_a_patient_sees_only_their_own_record() -> None:
    c = make_clinic()
    assert [p.id for p in c.service.patients(c.patient)] == [c.patient_id]
    assert [p.id for p in c.service.patients(c.other_patient)] == [c.other_patient_id]
    with pytest.raises(NotFound, match=c.patient_id):
        c.service.chart(c.other_patient, c.patient_id)
    with pytest.raises(NotFound):
        c.service.pump_now(c.other_patient, c.implant_id)

"""Who may do what in the clinic registry: roles, actions, and one decision function.

Roles (the clinic's staff and the people they care for):

- ``physician``: prescribes, programs, verifies, and everything a nurse does;
- ``nurse``: refills, interrogates, stages programming changes, books visits,
  records symptoms and complications (an explant among their treatments is a
  surgery: a physician's); verifies a change where the clinic allows it;
- ``viewer``: reads everything, changes nothing;
- ``patient`` and ``caregiver``: read their own record (the card, the reminders,
  the pump's state) and report symptoms; nothing of anyone else's — another
  patient's record is *not found* for them, never *forbidden*, so they cannot
  learn that it exists.

The decision is made in the services for every use case (the API and the pages
only authenticate). Every refusal is recorded in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from itb.domain.errors import Forbidden, InvalidValue, NotFound

__all__ = [
    "PERMISSIONS",
    "Action",
    "Actor",
    "Role",
    "authorize",
    "can",
]


class Role(StrEnum):
    """A user's role."""

    PHYSICIAN = "physician"
    NURSE = "nurse"
    VIEWER = "viewer"
    PATIENT = "patient"
    CAREGIVER = "caregiver"

    @property
    def is_staff(self) -> bool:
        """Clinic staff (not a patient or a caregiver)."""
        return self in (Role.PHYSICIAN, Role.NURSE, Role.VIEWER)


class Action(StrEnum):
    """What a use case does."""

    READ = "read"
    READ_OWN = "read_own"
    REGISTER_PATIENT = "register_patient"
    EDIT_PATIENT = "edit_patient"
    RECORD_ASSESSMENT = "record_assessment"
    RECORD_IMPLANT = "record_implant"
    RECORD_SURGERY = "record_surgery"
    RECORD_COMPLICATION = "record_complication"
    INTERROGATE = "interrogate"
    REFILL = "refill"
    STAGE_CHANGE = "stage_change"
    VERIFY_CHANGE = "verify_change"
    COMMIT_CHANGE = "commit_change"
    BOOK_VISIT = "book_visit"
    RECORD_SYMPTOMS = "record_symptoms"
    ISSUE_CARD = "issue_card"
    MANAGE_USERS = "manage_users"
    VERIFY_AUDIT = "verify_audit"
    BACKUP = "backup"
    IMPORT_RECORDS = "import_records"


_STAFF_READ = {Action.READ, Action.READ_OWN, Action.ISSUE_CARD}
_NURSE = _STAFF_READ | {
    Action.REGISTER_PATIENT,
    Action.EDIT_PATIENT,
    Action.INTERROGATE,
    Action.REFILL,
    Action.STAGE_CHANGE,
    Action.BOOK_VISIT,
    Action.RECORD_SYMPTOMS,
    Action.RECORD_ASSESSMENT,
    Action.RECORD_COMPLICATION,
    Action.VERIFY_AUDIT,
}
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.PHYSICIAN: frozenset(
        _NURSE
        | {
            Action.RECORD_IMPLANT,
            Action.RECORD_SURGERY,
            Action.VERIFY_CHANGE,
            Action.COMMIT_CHANGE,
            Action.MANAGE_USERS,
            Action.BACKUP,
            Action.IMPORT_RECORDS,
        }
    ),
    Role.NURSE: frozenset(_NURSE | {Action.COMMIT_CHANGE}),
    Role.VIEWER: frozenset(_STAFF_READ | {Action.VERIFY_AUDIT}),
    Role.PATIENT: frozenset({Action.READ_OWN, Action.RECORD_SYMPTOMS, Action.ISSUE_CARD}),
    Role.CAREGIVER: frozenset({Action.READ_OWN, Action.RECORD_SYMPTOMS, Action.ISSUE_CARD}),
}
"""Role -> the actions it may take (patients and caregivers on their own record only).
A nurse may commit a change only once a physician (or, where the clinic allows it, a
nurse other than its author) has verified it."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking: a user, their role, and for a patient or caregiver, whose record."""

    username: str
    role: Role
    patient_id: str | None = None

    def __post_init__(self) -> None:
        if not self.username.strip():
            raise InvalidValue("username", self.username, "a user name")
        if self.role in (Role.PATIENT, Role.CAREGIVER) and not self.patient_id:
            raise InvalidValue("patient_id", None, f"the patient a {self.role.value} belongs to")


def can(
    actor: Actor,
    action: Action,
    patient_id: str | None = None,
    *,
    nurses_may_verify: bool = False,
) -> bool:
    """Whether ``actor`` may take ``action`` (on ``patient_id``'s record, when given)."""
    allowed = set(PERMISSIONS[actor.role])
    if actor.role is Role.NURSE and nurses_may_verify:
        allowed.add(Action.VERIFY_CHANGE)
    if action not in allowed:
        return False
    if actor.role.is_staff:
        return True
    return patient_id is not None and patient_id == actor.patient_id


def authorize(
    actor: Actor,
    action: Action,
    patient_id: str | None = None,
    *,
    nurses_may_verify: bool = False,
) -> None:
    """Raise unless ``actor`` may take ``action``.

    Raises:
        NotFound: a patient or caregiver asking about another patient's record (they
            must not learn that it exists).
        Forbidden: the role does not allow the action.
    """
    if can(actor, action, patient_id, nurses_may_verify=nurses_may_verify):
        return
    if not actor.role.is_staff and patient_id is not None and patient_id != actor.patient_id:
        raise NotFound(f"patient {patient_id} not found")
    raise Forbidden(f"{actor.role.value} {actor.username} may not {action.value.replace('_', ' ')}")

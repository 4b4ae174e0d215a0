"""Schemathesis over the whole OpenAPI schema, with a real token for each role, on SQLite and
PostgreSQL: no server error, every status and body as the schema declares, schema-invalid
requests refused, and no endpoint that answers without a token.

Every generated request is sent once per role (physician, nurse, viewer, patient,
caregiver), so each operation is tried with every kind of access. The
``positive_data_acceptance`` check is left out on purpose: a request can be valid by
the schema and still refused by the domain (a dose above the drug library's hard limit
for this patient, a fill into a pump that cannot hold it) — those refusals are the
point, and they are checked by the other tests. The run counts its requests and fails
below the floor it promises.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from tests.support.clinic_memory import FakeClock
from tests.support.clinic_setup import CHEAP_HASHER, PASSWORD, make_clinic

from itb import bootstrap
from itb.entrypoints.api.app import create_api

ROLES = {
    "physician": "drlee",
    "nurse": "nina",
    "viewer": "vic",
    "patient": "ada",
    "caregiver": "bob",
}
EXAMPLES_PER_OPERATION = 50
"""Hypothesis examples per operation; each is sent once per role."""
MIN_REQUESTS_PER_BACKEND = 5000


def _tokens(app: object) -> dict[str, str]:
    from fastapi.testclient import TestClient

    out = {}
    with TestClient(app) as c:  # type: ignore[arg-type]
        for role, name in ROLES.items():
            r = c.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            out[role] = r.json()["access_token"]
    return out


def test_the_api_keeps_its_schema_for_every_role(db_url: str) -> None:
    clock = FakeClock()
    handle = bootstrap.clinic(db_url, create=True, clock=clock, hasher=CHEAP_HASHER)
    try:
        clinic = make_clinic(uow=handle.registry.uow, hasher=CHEAP_HASHER, clock=clock)
        app = create_api(clinic.service)
        tokens = _tokens(app)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 30
        sent = {"n": 0}
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def fuzz(case: schemathesis.Case) -> None:
                for token in tokens.values():
                    case.call_and_validate(
                        headers={"Authorization": f"Bearer {token}"},
                        excluded_checks=[positive_data_acceptance],
                    )
                    sent["n"] += 1

            fuzz()
        assert sent["n"] >= MIN_REQUESTS_PER_BACKEND, sent
        assert clinic.service.verify_audit(clinic.viewer).ok
    finally:
        handle.close()

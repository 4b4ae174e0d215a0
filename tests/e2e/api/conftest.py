"""The clinic API in-process (FastAPI's test client over ASGI) on a real registry — SQLite and
PostgreSQL — with the standard test clinic and a token per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.support.clinic_memory import FakeClock
from tests.support.clinic_setup import CHEAP_HASHER, PASSWORD, Clinic, make_clinic

from itb import bootstrap
from itb.entrypoints.api.app import create_api

USERS = {
    "physician": "drlee",
    "second_physician": "drkim",
    "nurse": "nina",
    "viewer": "vic",
    "patient": "ada",
    "caregiver": "bob",
    "other_patient": "bo",
}


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    clinic: Clinic
    headers: dict[str, dict[str, str]]

    def as_(self, role: str) -> dict[str, str]:
        return self.headers[role]


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    clock = FakeClock()
    handle = bootstrap.clinic(db_url, create=True, clock=clock, hasher=CHEAP_HASHER)
    clinic = make_clinic(uow=handle.registry.uow, hasher=CHEAP_HASHER, clock=clock)
    app = create_api(clinic.service)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {role: sign_in(client, name) for role, name in USERS.items()}
        yield Api(client, app, clinic, headers)
    handle.close()

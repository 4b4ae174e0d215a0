"""A registry on a real database (SQLite file and PostgreSQL server, each test its own) and a
clinic set up in it through the use cases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.clinic_memory import FakeClock
from tests.support.clinic_setup import CHEAP_HASHER, Clinic, make_clinic

from itb import bootstrap


@pytest.fixture
def registry(db_url: str) -> Iterator[bootstrap.ClinicHandle]:
    """A new registry (schema migrated) on the backend under test."""
    handle = bootstrap.clinic(db_url, create=True, clock=FakeClock(), hasher=CHEAP_HASHER)
    yield handle
    handle.close()


@pytest.fixture
def sql_clinic(registry: bootstrap.ClinicHandle) -> Clinic:
    """The unit tests' clinic, stored in the real registry."""
    return make_clinic(uow=registry.registry.uow, hasher=CHEAP_HASHER)

"""The clinic of the use-case unit tests, on in-memory fakes."""

from __future__ import annotations

import pytest
from tests.support.clinic_setup import Clinic, make_clinic


@pytest.fixture
def clinic() -> Clinic:
    return make_clinic()

"""Bad input through the dashboard's forms, in-process on SQLite: every bad value gets a
4xx page with one line naming the field as the form labels it, and nothing is written;
no page ever shows a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.support.clinic_memory import FakeClock
from tests.support.clinic_setup import CHEAP_HASHER, PASSWORD, Clinic, make_clinic

from itb import bootstrap
from itb.entrypoints.api.app import create_api
from itb.entrypoints.dashboard import mount_dashboard
from itb.entrypoints.dashboard.app import csrf_token


@dataclass
class Signed:
    client: TestClient
    clinic: Clinic
    csrf: str


@pytest.fixture
def nurse(sqlite_url: str) -> Iterator[Signed]:
    clock = FakeClock()
    handle = bootstrap.clinic(sqlite_url, create=True, clock=clock, hasher=CHEAP_HASHER)
    clinic = make_clinic(uow=handle.registry.uow, hasher=CHEAP_HASHER, clock=clock)
    app = FastAPI()
    create_api(clinic.service, app)
    mount_dashboard(app, clinic.service)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        form = client.get("/login").text
        nonce = re.search(r'name="nonce" value="([^"]+)"', form)
        assert nonce
        r = client.post(
            "/login", data={"username": "nina", "password": PASSWORD, "nonce": nonce.group(1)}
        )
        assert r.status_code == 303, r.text
        token = client.cookies.get("itb_session")
        assert token
        yield Signed(client, clinic, csrf_token(token))
    handle.close()


def _refusal(html: str) -> str:
    alerts = re.findall(r'role="alert"[^>]*>([^<]*)<', html)
    assert len(alerts) == 1, html[-3000:]
    assert "Traceback" not in html
    return alerts[0]


def _state(c: Clinic) -> tuple[int, int, int]:
    s, n = c.service, c.nurse
    return (
        len(s.refills(n)),
        len(s.changes(n, open_only=False)),
        len(s.command_log(n, c.implant_id)),
    )


REFILL_CASES = [
    ({"withdrawn_ml": "abc"}, "Withdrawn (mL)"),
    ({"withdrawn_ml": ""}, "Withdrawn (mL)"),
    ({"withdrawn_ml": "nan"}, "Withdrawn (mL)"),
    ({"withdrawn_ml": "inf"}, "Withdrawn (mL)"),
    ({"withdrawn_ml": "-3"}, "Withdrawn (mL)"),
    ({"withdrawn_ml": "1e308"}, "Withdrawn (mL)"),
    ({"withdrawn_ml": "9" * 400}, "Withdrawn (mL)"),
    ({"step": "record", "fill_volume_ml": "x"}, "Fill volume (mL)"),
    ({"step": "record", "fill_volume_ml": "0"}, "Fill volume (mL)"),
    ({"step": "record", "fill_volume_ml": "500"}, "Fill volume (mL)"),
    ({"step": "record", "product": "baclofen_9999"}, "Product"),
    ({"step": "record", "lot": ""}, "Lot"),
    ({"step": "record", "lot": "L" * 500}, "Lot"),
    ({"step": "record", "expiry": "31/12/2027"}, "Expiry"),
    ({"step": "record", "expiry": "2001-01-01"}, "Expiry"),
    ({"step": "record", "version": "v2"}, "version"),
]


@pytest.mark.parametrize(("fields", "label"), REFILL_CASES)
def test_a_bad_refill_value_is_named_and_nothing_is_written(
    nurse: Signed, fields: dict[str, str], label: str
) -> None:
    c = nurse.clinic
    before = _state(c)
    form = {"csrf": nurse.csrf, "withdrawn_ml": "5", "step": "record", "fill_volume_ml": "18",
            "product": "baclofen_500", "lot": "LOT1", "expiry": "", **fields}  # fmt: skip
    r = nurse.client.post(f"/implants/{c.implant_id}/refill", data=form)
    assert 400 <= r.status_code < 500, r.text[-2000:]
    assert label in _refusal(r.text)
    assert _state(c) == before


PROGRAM_CASES = [
    ({"dose_mcg_per_day": "lots"}, "Daily dose (mcg/day)"),
    ({"dose_mcg_per_day": ""}, "Daily dose (mcg/day)"),
    ({"dose_mcg_per_day": "nan"}, "Daily dose (mcg/day)"),
    ({"dose_mcg_per_day": "5000"}, "change refused"),
    ({"dose_mcg_per_day": "-10"}, "Daily dose (mcg/day)"),
    ({"flex_steps": "7"}, "Flex steps, line 1"),
    ({"flex_steps": "0 4\nseven 5"}, "Flex steps, line 2"),
    ({"low_reservoir_alarm_ml": "abc"}, "Low-reservoir alarm (mL)"),
    ({"reason": ""}, "Reason"),
]


@pytest.mark.parametrize(("fields", "label"), PROGRAM_CASES)
def test_a_bad_programming_value_is_named_and_nothing_is_staged(
    nurse: Signed, fields: dict[str, str], label: str
) -> None:
    c = nurse.clinic
    before = _state(c)
    form = {"csrf": nurse.csrf, "dose_mcg_per_day": "110", "reason": "tone", "step": "stage",
            **fields}  # fmt: skip
    r = nurse.client.post(f"/implants/{c.implant_id}/program", data=form)
    assert 400 <= r.status_code < 500, r.text[-2000:]
    assert label in _refusal(r.text)
    assert _state(c) == before


def test_a_form_token_of_any_characters_is_refused_not_crashed(nurse: Signed) -> None:
    c = nurse.clinic
    for token in ("é" * 64, "\x00", "x" * 100_000):
        r = nurse.client.post(
            f"/implants/{c.implant_id}/refill", data={"csrf": token, "withdrawn_ml": "1"}
        )
        assert r.status_code == 403
        assert "another site" in _refusal(r.text)
    r = nurse.client.post("/login", data={"username": "nina", "password": "x", "nonce": "é"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/patients/P9999", "/implants/I9999/refill", "/implants/I9999/program", "/changes/C9999",
     "/patients/%00", "/patients/" + "P" * 5000, "/radar?page_no=-5&show=nope",
     "/radar?page_no=abc", "/login?ended=x", "/radar?q=%F0%9F%92%8A"],
)  # fmt: skip
def test_unknown_records_and_odd_addresses_get_a_page_not_a_traceback(
    nurse: Signed, path: str
) -> None:
    r = nurse.client.get(path)
    assert r.status_code in (200, 404, 422), path
    assert "Traceback" not in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_every_page_says_its_server_time(nurse: Signed) -> None:
    for path in ("/radar", "/patients/P0001", "/patients/P9999"):
        r = nurse.client.get(path)
        assert re.fullmatch(r"app;dur=\d+(\.\d)?", r.headers["server-timing"]), path
    assert "server-timing" not in nurse.client.get("/api/v1/health").headers

"""The patient page's complications in a real browser: Playwright driving Debian's chromium
against a live ``itb serve`` over the virtual clinic. A complication recorded through the
API (a nurse), then the pump taken out through it (a physician): the page lists both
entries in words, the latest marked as the complication now, the pump no longer in use."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from tests.e2e.dashboard.test_dashboard import ITB, Clinic, sign_in
from tests.support.servers import serve_command


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    db = f"sqlite:///{tmp_path_factory.mktemp('complications') / 'clinic.db'}"
    demo = subprocess.run(
        [str(ITB), "clinic", "demo", "--db", db, "--patients", "2", "--seed", "5", "--json"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    data = json.loads(demo.stdout)
    users = {u["username"]: u for u in data["users"]}
    argv = [str(ITB), "serve", "--db", db, "--host", "127.0.0.1", "--port", "{port}"]
    with serve_command(argv, timeout=90, ready_path="/api/v1/health") as base:
        yield Clinic(base, db, users, int(data["implanted"]))


def _token(page: Page, clinic: Clinic, username: str) -> dict[str, str]:
    r = page.request.post(
        f"{clinic.base}/api/v1/auth/token",
        form={"username": username, "password": clinic.password(username)},
    )
    assert r.ok, r.text()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_patient_page_lists_a_complication_and_its_explant(
    page: Page, clinic: Clinic, tmp_path: Path
) -> None:
    nurse, doctor = (
        _token(page, clinic, clinic.of_role("nurse")),
        _token(page, clinic, clinic.of_role("physician")),
    )
    radar = page.request.get(f"{clinic.base}/api/v1/radar", headers=nurse).json()
    row = radar[0]
    pid, iid = row["patient_id"], row["implant_id"]
    r = page.request.post(
        f"{clinic.base}/api/v1/implants/{iid}/complications",
        headers=nurse,
        data={"kind": "wound_infection", "signs": ["fever"], "treatments": ["antibiotics"],
              "note": "pocket red and warm"},
    )  # fmt: skip
    assert r.status == 201, r.text()
    first = r.json()["id"]
    sign_in(page, clinic, clinic.of_role("physician"))
    page.goto(f"{clinic.base}/patients/{pid}")
    section = page.locator("#complications")
    expect(page.get_by_role("heading", name="Complications")).to_be_visible()
    expect(section.locator("tbody tr")).to_have_count(1)
    expect(section).to_contain_text("wound infection")
    expect(section).to_contain_text("ongoing")
    expect(section).to_contain_text("pocket red and warm")
    r = page.request.post(
        f"{clinic.base}/api/v1/complications/{first}/updates",
        headers=doctor,
        data={"treatments": ["explant"], "bridge": "oral", "oral_bridge_mg_per_day": 60.0},
    )
    assert r.status == 201, r.text()
    page.reload()
    rows = section.locator("tbody tr")
    expect(rows).to_have_count(2)
    latest = rows.first  # newest first
    expect(latest).to_contain_text("explanted")
    expect(latest).to_contain_text("now")
    expect(latest).to_contain_text("oral 60 mg/day")
    expect(latest).to_contain_text(f"updates {first}")
    expect(latest).to_contain_text("antibiotics, explant")
    expect(rows.nth(1)).not_to_contain_text("now")
    expect(page.get_by_text("No pump in use (last: explanted).")).to_be_visible()
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "complications.png"), full_page=True)
    section.screenshot(path=str(Path("/tmp") / "itb-complications-section.png"))

"""The reservoir forecast in a real browser: Playwright driving Debian's chromium against a
live ``itb serve`` over the virtual clinic (``itb clinic demo``).

The radar says each pump's chance of running dry before its visit and its empty band in
words (the same numbers the API gives), its "runs dry" filter keeps the pumps the
forecast flags; the programming review shows the forecast now and after the change beside
the safety checks, and the refill form the forecast after the refill, nothing recorded.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.e2e.dashboard.test_dashboard import ITB, Clinic, sign_in
from tests.support.servers import serve_command

from itb.domain.clinic.forecast import pct_words

PATIENTS = 6
DRY_CODES = {"forecast_dry", "dry_before_visit", "stopped"}
"""The flags the radar's "runs dry before the visit" filter keeps."""


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    db = f"sqlite:///{tmp_path_factory.mktemp('forecast') / 'clinic.db'}"
    demo = subprocess.run(
        [str(ITB), "clinic", "demo", "--db", db, "--patients", str(PATIENTS), "--seed", "7", "--json"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    data = json.loads(demo.stdout)
    users = {u["username"]: u for u in data["users"]}
    argv = [str(ITB), "serve", "--db", db, "--host", "127.0.0.1", "--port", "{port}"]
    with serve_command(argv, timeout=90, ready_path="/api/v1/health") as base:
        yield Clinic(base, db, users, int(data["implanted"]))


class Api:
    """The same clinic through its API, signed in as one user (what the pages must agree
    with)."""

    def __init__(self, page: Page, clinic: Clinic, username: str) -> None:
        r = page.request.post(
            f"{clinic.base}/api/v1/auth/token",
            form={"username": username, "password": clinic.password(username)},
        )
        assert r.ok, r.text()
        self.page, self.base = page, clinic.base
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def get(self, path: str, **params: str) -> Any:
        r = self.page.request.get(f"{self.base}/api/v1{path}", headers=self.headers, params=params)
        assert r.ok, r.text()
        return r.json()

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        r = self.page.request.fetch(
            f"{self.base}/api/v1{path}", method=method, headers=self.headers, data=body
        )
        assert r.ok, r.text()
        return r.json()


def _target(api: Api) -> dict[str, Any]:
    """The radar row of the pump with the most room in its reservoir now (a refill shows
    most clearly on it)."""

    def room(row: dict[str, Any]) -> float:
        now = api.get(f"/implants/{row['implant_id']}/pump")
        return float(now["implant"]["fill_volume_ml"] - now["reservoir_calculated_ml"])

    rows = [r for r in api.get("/radar") if r["forecast"] is not None and r["running"]]
    assert rows
    return max(rows, key=room)


def _day(iso: str | None) -> str:
    assert iso is not None
    return iso[:10]


def test_the_radar_says_each_pumps_chance_of_running_dry_in_words(
    page: Page, clinic: Clinic
) -> None:
    nurse = clinic.of_role("nurse")
    sign_in(page, clinic, nurse)
    api = Api(page, clinic, nurse)
    target = _target(api)
    pid = target["patient_id"]
    # book the target's next visit a week after its empty band: it will very likely be dry
    # before it
    for v in api.get("/visits", patient_id=pid):
        api.send("PATCH", f"/visits/{v['id']}", {"status": "cancelled", "version": v["version"]})
    visit = datetime.fromisoformat(target["forecast"]["empty_at"][2]) + timedelta(days=7)
    api.send("POST", f"/patients/{pid}/visits", {"at": visit.isoformat(), "kind": "refill"})
    rows = {r["patient_id"]: r for r in api.get("/radar")}
    fc = rows[pid]["forecast"]
    assert fc["by_visit"] is True
    assert fc["p_dry"] > 0.9
    assert "forecast_dry" in {f["code"] for f in rows[pid]["flags"]}

    page.goto(f"{clinic.base}/radar")
    expect(page.get_by_role("columnheader", name="Chance of running dry")).to_be_visible()
    shown = page.locator("table.radar-table tbody tr")
    expect(shown).to_have_count(len(rows))
    for i in range(shown.count()):
        tr = shown.nth(i)
        href = tr.locator("a").first.get_attribute("href") or ""
        row = rows[href.rsplit("/", 1)[1]]
        cell = " ".join(tr.locator("td.dry").inner_text().split())
        f = row["forecast"]
        if f is None:
            assert cell.startswith("could run dry from"), cell
            continue
        # the pump's own numbers, in words: the chance, for which date, and the band
        when = "before the visit" if f["by_visit"] else f"by {_day(f['by_at'])}, no visit booked"
        assert f"P(dry) {pct_words(f['p_dry'])} {when}" in cell, cell
        assert f"empty {_day(f['empty_at'][0])} to " in cell, cell
        assert f"{_day(f['empty_at'][2])[5:]} (90 % band)" in cell, cell
    mine = shown.filter(has=page.locator(f'a[href="/patients/{pid}"]'))
    expect(mine.locator(".badge")).to_have_text("act now")
    expect(mine.locator("td.words")).to_contain_text(
        f"P(dry before the {visit.date().isoformat()} visit) {pct_words(fc['p_dry'])}"
    )
    # "runs dry before the visit" keeps the pumps the forecast flags, the target among them
    dry = [r for r in rows.values() if DRY_CODES & {f["code"] for f in r["flags"]}]
    chip = page.locator("label.chip", has_text="runs dry before the visit")
    assert int(chip.locator(".count").inner_text()) == len(dry) >= 1
    chip.locator("input").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"show=dry"))
    expect(shown).to_have_count(len(dry))
    expect(shown.filter(has=page.locator(f'a[href="/patients/{pid}"]'))).to_have_count(1)


def _learned(text: str) -> int:
    """How many refills the forecast's words say it learned from."""
    if "no refill measured yet" in text:
        return 0
    found = re.search(r"over its (?:last (\d+) refills|refill)\b", text)
    assert found, text
    return int(found.group(1) or 1)


def _empty_low(text: str) -> str:
    found = re.search(r"empty (\d{4}-\d\d-\d\d) to", text)
    assert found, text
    return found.group(1)


def test_the_change_review_shows_the_forecast_now_and_after_beside_the_checks(
    page: Page, clinic: Clinic
) -> None:
    doctor = clinic.of_role("physician")
    sign_in(page, clinic, doctor)
    target = _target(Api(page, clinic, doctor))
    page.goto(f"{clinic.base}/implants/{target['implant_id']}/program")
    dose = float(page.get_by_label("Daily dose (mcg/day)").input_value())
    page.get_by_label(re.compile("^Flex steps")).fill("")  # a simple continuous program
    page.get_by_label("Daily dose (mcg/day)").fill(f"{0.85 * dose:.1f}")
    page.get_by_label("Reason (required)").fill("less tone at the follow-up")
    page.get_by_role("button", name="Review the change").click()
    review = page.locator("section.verdict")
    expect(review).to_contain_text("Safety checks")
    forecast = review.locator("section.forecast")
    expect(forecast.get_by_role("heading", name="Reservoir forecast")).to_be_visible()
    now = forecast.locator("dt:has-text('Now') + dd").inner_text()
    after = forecast.locator("dt:has-text('After this change') + dd").inner_text()
    assert "P(dry) " in now
    assert "P(dry) " in after
    assert "refill" in now  # why: what the pump's refills said
    # 15 % less drug a day: the reservoir empties later
    assert _empty_low(after) > _empty_low(now)
    # a change the checks block has no forecast after it, and says why
    page.get_by_label("Daily dose (mcg/day)").fill(f"{5 * dose:.0f}")
    page.get_by_role("button", name="Review the change").click()
    expect(page.get_by_role("heading", name="This change cannot be committed")).to_be_visible()
    expect(page.locator("section.forecast dt:has-text('After this change') + dd")).to_have_text(
        "none: it would be refused"
    )


def test_the_refill_form_shows_the_forecast_after_the_refill_and_records_nothing(
    page: Page, clinic: Clinic
) -> None:
    nurse = clinic.of_role("nurse")
    sign_in(page, clinic, nurse)
    api = Api(page, clinic, nurse)
    target = _target(api)
    iid = target["implant_id"]
    pump = api.get(f"/implants/{iid}/pump")
    before = api.get("/refills", implant_id=iid)
    page.goto(f"{clinic.base}/implants/{iid}/refill")
    page.get_by_label("Withdrawn (mL)").fill(f"{pump['reservoir_calculated_ml']:.2f}")
    page.get_by_role("button", name="Check the residual").click()
    expect(page.locator("section.verdict")).to_contain_text("within tolerance")
    expect(page.locator("fieldset", has_text="The fill")).to_contain_text(
        "shows the reservoir forecast after this refill"
    )
    page.get_by_label("Fill volume (mL)").fill(f"{pump['implant']['fill_volume_ml']:g}")
    page.get_by_role("button", name="Check again").click()  # no lot yet: a check needs none
    forecast = page.locator("section.forecast")
    now = forecast.locator("dt:has-text('Now') + dd").inner_text()
    after = forecast.locator("dt:has-text('After this refill') + dd").inner_text()
    assert "P(dry) " in after
    assert _empty_low(after) > _empty_low(now)
    assert _learned(after) == _learned(now) + 1  # the residual just withdrawn is learned from
    expect(page.get_by_role("alert")).to_have_count(0)
    # a check records nothing
    assert api.get("/refills", implant_id=iid) == before
    assert api.get(f"/implants/{iid}/pump")["implant"]["version"] == pump["implant"]["version"]

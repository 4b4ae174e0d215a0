"""The dashboard in a real browser: Playwright driving Debian's chromium against a live
``itb serve`` on 127.0.0.1 over the virtual clinic (``itb clinic demo``).

What a clinic team does on its first morning: sign in with each role, read the radar,
open a patient, record a refill (the verdict shown before the fill), stage a change
and have a second physician verify it, be refused a hard-limit change (the page says
why and offers no way to stage it), and a caregiver who cannot reach another patient.
Also: forms refuse a post without their token, every field has a label, and the
sign-in form works from the keyboard alone.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from icalendar import Calendar
from playwright.sync_api import Browser, Page, expect
from tests.support.browser import VIEWPORT
from tests.support.servers import serve_command

from itb.domain.clinic.radar import URGENCY_WORDS

ITB = Path(sys.executable).parent / "itb"
PATIENTS = 4


@dataclass(frozen=True)
class Clinic:
    base: str
    db: str
    users: dict[str, dict[str, str | None]]
    implanted: int

    def password(self, username: str) -> str:
        return str(self.users[username]["password"])

    def of_role(self, role: str) -> str:
        return next(name for name, u in self.users.items() if u["role"] == role)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    db = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'clinic.db'}"
    demo = subprocess.run(
        [str(ITB), "clinic", "demo", "--db", db, "--patients", str(PATIENTS), "--seed", "11", "--json"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    data = json.loads(demo.stdout)
    users = {u["username"]: u for u in data["users"]}
    argv = [str(ITB), "serve", "--db", db, "--host", "127.0.0.1", "--port", "{port}"]
    with serve_command(argv, timeout=90, ready_path="/api/v1/health") as base:
        yield Clinic(base, db, users, int(data["implanted"]))


def sign_in(page: Page, clinic: Clinic, username: str) -> None:
    page.goto(f"{clinic.base}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(clinic.password(username))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def new_page(browser: Browser) -> Page:
    context = browser.new_context(viewport=VIEWPORT)
    p = context.new_page()
    p.set_default_timeout(15_000)
    return p


def test_every_role_signs_in_and_lands_where_its_work_is(browser: Browser, clinic: Clinic) -> None:
    for role, landing in (
        ("physician", r"/radar$"),
        ("nurse", r"/radar$"),
        ("viewer", r"/radar$"),
        ("patient", r"/patients/P\d+$"),
        ("caregiver", r"/patients/P\d+$"),
    ):
        page = new_page(browser)
        username = clinic.of_role(role)
        sign_in(page, clinic, username)
        expect(page).to_have_url(re.compile(landing))
        expect(page.locator(".whoami")).to_contain_text(f"{username} · {role}")
        if role in ("patient", "caregiver"):
            own = str(clinic.users[username]["patient_id"])
            assert page.url.endswith(f"/patients/{own}")
            # the radar is not theirs: it sends them back to their own record
            page.goto(f"{clinic.base}/radar")
            expect(page).to_have_url(re.compile(f"/patients/{own}$"))
            expect(page.get_by_role("link", name="Record a refill")).to_have_count(0)
        page.context.close()


def test_a_wrong_password_is_refused_with_one_line_and_no_session(
    page: Page, clinic: Clinic
) -> None:
    page.goto(f"{clinic.base}/login")
    page.get_by_label("User name").fill(clinic.of_role("nurse"))
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not")
    page.goto(f"{clinic.base}/radar")
    expect(page).to_have_url(re.compile(r"/login\?next=/radar"))


def test_the_radar_lists_every_pump_with_words_and_filters(page: Page, clinic: Clinic) -> None:
    sign_in(page, clinic, clinic.of_role("nurse"))
    rows = page.locator("table.radar-table tbody tr")
    expect(rows).to_have_count(clinic.implanted)
    words = rows.locator("td.words").all_inner_texts()
    assert all(w.strip() for w in words)  # every row says in words what to do ("ok" included)
    badges = rows.locator(".badge").all_inner_texts()
    assert set(badges) <= set(URGENCY_WORDS.values())
    # sorted by urgency: the badges never go up the list
    order = [URGENCY_WORDS[u] for u in (4, 3, 2, 1, 0)]
    assert [order.index(b) for b in badges] == sorted(order.index(b) for b in badges)
    # a filter keeps only what it names; its count matches its rows
    chip = page.locator("label.chip", has_text="no visit booked")
    expected = int(chip.locator(".count").inner_text())
    chip.locator("input").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"show=novisit"))
    shown = page.locator("table.radar-table tbody tr td.words")
    if expected:
        expect(shown).to_have_count(expected)
        assert all("no visit booked" in t for t in shown.all_inner_texts())
    else:
        expect(page.locator("table.radar-table tbody")).to_contain_text("No pump matches")
    expect(page.get_by_role("heading", name="Attention")).to_be_visible()


def test_the_patient_page_shows_the_pump_the_therapy_and_its_history(
    page: Page, clinic: Clinic
) -> None:
    sign_in(page, clinic, clinic.of_role("physician"))
    page.locator("table.radar-table tbody tr a").first.click()
    for heading in ("Pump and catheter", "Dose history", "Spasticity scores",
                    "Refills and their discrepancy verdicts", "Programming changes", "Booked visits"):  # fmt: skip
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    # charts carry a value on every point for hover, and axes with units
    reservoir = page.get_by_role("img", name="Reservoir over time")
    expect(reservoir).to_be_visible()
    tips = reservoir.locator("circle title").all_text_contents()
    assert tips
    assert all(re.search(r"\d{4}-\d\d-\d\d: [\d,.]+ mL", t) for t in tips)
    assert "mL" in (reservoir.locator("text.label").text_content() or "")
    dose_tips = page.get_by_role("img", name="Daily dose over time").locator("circle title")
    assert re.search(r"[\d,.]+ mcg/day", dose_tips.first.text_content() or "")
    # the same numbers are in words and tables, not only in the charts
    expect(page.locator("dt", has_text="Low-reservoir alarm")).to_be_visible()
    assert page.locator("#refills table tbody tr").count() >= 1
    # who entered and who verified each change
    expect(page.locator("table", has_text="Verified by").first).to_be_visible()


def test_the_wallet_card_and_the_calendar_download(page: Page, clinic: Clinic) -> None:
    sign_in(page, clinic, clinic.of_role("caregiver"))
    own = str(clinic.users[clinic.of_role("caregiver")]["patient_id"])
    pdf = page.request.get(f"{clinic.base}/patients/{own}/card.pdf")
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    ics = page.request.get(f"{clinic.base}/patients/{own}/reminders.ics")
    assert ics.status == 200
    cal = Calendar.from_ical(ics.body())
    events = list(cal.walk("VEVENT"))
    assert events, "a patient with a pump has at least the refill-by reminder"
    assert all(list(e.walk("VALARM")) for e in events)
    assert any("refill by" in str(e["summary"]).lower() for e in events)


def test_a_caregiver_subscribes_a_calendar_app_and_can_stop_it(
    page: Page, clinic: Clinic, tmp_path: Path
) -> None:
    sign_in(page, clinic, clinic.of_role("caregiver"))
    own = str(clinic.users[clinic.of_role("caregiver")]["patient_id"])
    page.goto(f"{clinic.base}/patients/{own}")
    page.get_by_role("link", name="Subscribe in a calendar app").click()
    page.get_by_role("button", name="Make an address").click()
    url = page.get_by_label("Subscription address").input_value()
    assert url.startswith(f"{clinic.base}/calendar/")
    page.screenshot(path=str(tmp_path / "calendar.png"), full_page=True)
    feed = page.context.request.get(url, headers={"Cookie": ""})
    assert feed.status == 200
    events = list(Calendar.from_ical(feed.body()).walk("VEVENT"))
    assert events
    assert all(str(e["uid"]).endswith(f"-{own}") for e in events)
    page.get_by_role("button", name="Stop the address").click()
    expect(page.get_by_role("status")).to_contain_text("stopped")
    assert page.context.request.get(url).status == 404


def test_a_caregiver_cannot_reach_another_patient(page: Page, clinic: Clinic) -> None:
    username = clinic.of_role("caregiver")
    own = str(clinic.users[username]["patient_id"])
    other = next(f"P{n:04d}" for n in range(1, PATIENTS + 1) if f"P{n:04d}" != own)
    sign_in(page, clinic, username)
    for path in (f"/patients/{other}", f"/patients/{other}/card.pdf",
                 f"/patients/{other}/reminders.ics", f"/patients/{other}/calendar"):  # fmt: skip
        response = page.goto(f"{clinic.base}{path}")
        assert response is not None
        assert response.status == 404, path
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def _open_first_pump(page: Page, clinic: Clinic, username: str) -> str:
    sign_in(page, clinic, username)
    page.locator("table.radar-table tbody tr a").first.click()
    link = page.get_by_role("link", name="Record a refill")
    href = link.get_attribute("href") or ""
    implant = href.split("/")[2]
    assert implant.startswith("I")
    return implant


def test_a_nurse_records_a_refill_seeing_the_verdict_before_the_fill(
    page: Page, clinic: Clinic
) -> None:
    implant = _open_first_pump(page, clinic, clinic.of_role("nurse"))
    before = page.locator("#refills table tbody tr").count()
    page.get_by_role("link", name="Record a refill").click()
    expected = page.locator("fieldset", has_text="The residual").locator("strong").inner_text()
    expected_ml = float(expected.split()[0].replace(",", ""))
    # a residual far below the calculated one (a tenth of it; an empty reservoir has its own
    # verdict): the verdict and its follow-up come first
    assert expected_ml >= 3.0, "the demo's first pump holds enough to tell less from empty"
    page.get_by_label("Withdrawn (mL)").fill(f"{expected_ml / 10:.1f}")
    page.get_by_role("button", name="Check the residual").click()
    verdict = page.locator("section.verdict")
    expect(verdict).to_contain_text("less withdrawn than expected")
    expect(verdict).to_contain_text("Follow-up")
    # nothing is recorded by a check
    page.goto(f"{clinic.base}/implants/{implant}/refill")
    page.get_by_label("Withdrawn (mL)").fill(f"{expected_ml:.1f}")
    page.get_by_role("button", name="Check the residual").click()
    expect(page.locator("section.verdict")).to_contain_text("within tolerance")
    page.get_by_label("Fill volume (mL)").fill("18")
    page.get_by_label("Lot").fill("LOT-BROWSER-1")
    page.get_by_role("button", name="Record the refill").click()
    expect(page.locator("p.notice[role=status]")).to_contain_text("recorded")
    rows = page.locator("#refills table tbody tr")
    assert rows.count() in (before + 1, 25)  # the table holds the latest 25
    expect(rows.first).to_contain_text("LOT-BROWSER-1")
    expect(rows.first).to_contain_text("within tolerance")


def test_a_refill_the_pump_cannot_hold_is_refused_and_nothing_recorded(
    page: Page, clinic: Clinic
) -> None:
    implant = _open_first_pump(page, clinic, clinic.of_role("nurse"))
    page.goto(f"{clinic.base}/implants/{implant}/refill")
    page.get_by_label("Withdrawn (mL)").fill("0")
    page.get_by_role("button", name="Check the residual").click()
    page.get_by_label("Fill volume (mL)").fill("500")
    page.get_by_label("Lot").fill("LOT-TOO-MUCH")
    page.get_by_role("button", name="Record the refill").click()
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("500")
    expect(refusal).to_contain_text("Fill volume (mL)")  # the field as the form names it
    page.goto(f"{clinic.base}/radar")
    page.locator("table.radar-table tbody tr a").first.click()
    expect(page.locator("#refills")).not_to_contain_text("LOT-TOO-MUCH")


def test_a_change_is_staged_verified_by_a_second_physician_and_committed(
    browser: Browser, clinic: Clinic
) -> None:
    first, second = [n for n, u in clinic.users.items() if u["role"] == "physician"][:2]
    page = new_page(browser)
    implant = _open_first_pump(page, clinic, first)
    page.goto(f"{clinic.base}/implants/{implant}/program")
    now = float(page.get_by_label("Daily dose (mcg/day)").input_value())
    # the same daily dose as a flex program: a flex program always needs a second person
    page.get_by_label(re.compile("^Flex steps")).fill(f"0 {now / 24:.3f}\n8 {now / 24:.3f}")
    page.get_by_label("Reason (required)").fill("move to a flex program before the new schedule")
    page.get_by_label("Override reason (only to pass a soft limit)").fill(
        "physician's judgement after the follow-up"
    )
    page.get_by_role("button", name="Review the change").click()
    review = page.locator("section.verdict")
    expect(review).to_contain_text("Old and new, side by side")
    expect(review).to_contain_text("A second person must verify")
    page.get_by_role("button", name="Stage the change").click()
    expect(page).to_have_url(re.compile(r"/changes/C\d+$"))
    change_url = page.url
    expect(page.locator("h1 .badge")).to_have_text("staged")
    # the one who staged it is not offered to verify it, and a forged post is refused
    expect(page.get_by_role("button", name=re.compile("^Verify"))).to_have_count(0)
    expect(page.locator("p.notice")).to_contain_text("another person")
    csrf = page.locator("input[name=csrf]").first.input_value()
    forged = page.request.post(f"{change_url}/verify", form={"csrf": csrf})
    assert forged.status == 403
    assert "may not verify" in forged.text()
    page.reload()
    expect(page.locator("h1 .badge")).to_have_text("staged")
    # nor commit it before it is verified
    page.get_by_role("button", name="Commit to the pump").click()
    expect(page.get_by_role("alert")).to_contain_text("verif")
    # a second physician, signed in in a browser of their own, verifies it
    other = new_page(browser)
    sign_in(other, clinic, second)
    other.goto(change_url)
    other.get_by_role("button", name=re.compile("^Verify")).click()
    expect(other.locator("dd", has_text=second)).to_be_visible()
    other.context.close()
    page.goto(change_url)
    page.get_by_role("button", name="Commit to the pump").click()
    expect(page.locator("h1 .badge")).to_have_text("committed")
    expect(page.locator("dd", has_text=first).first).to_be_visible()
    page.context.close()


def test_a_hard_limit_change_cannot_be_staged_and_the_page_says_why(
    page: Page, clinic: Clinic
) -> None:
    implant = _open_first_pump(page, clinic, clinic.of_role("physician"))
    page.goto(f"{clinic.base}/patients/{implant}")  # not a patient id: a clear 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto(f"{clinic.base}/implants/{implant}/program")
    page.get_by_label("Daily dose (mcg/day)").fill("5000")
    # a simple continuous program (another test may have left this pump on flex steps,
    # which the form offers again)
    page.get_by_label("Flex steps (optional: one per line, start hour and mcg/h)").fill("")
    page.get_by_label("Reason (required)").fill("typing slip")
    page.get_by_role("button", name="Review the change").click()
    expect(page.get_by_role("heading", name="This change cannot be committed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("change refused")
    expect(page.locator("ul.findings")).to_contain_text("hard limit")
    expect(page.get_by_role("button", name="Stage the change")).to_have_count(0)
    # posting the stage step anyway (a stale or forged form) is refused, nothing staged
    csrf = page.locator("input[name=csrf]").first.input_value()
    response = page.request.post(
        f"{clinic.base}/implants/{implant}/program",
        form={"csrf": csrf, "dose_mcg_per_day": "5000", "reason": "typing slip", "step": "stage"},
    )
    assert response.status == 422
    assert "cannot be committed" in response.text()
    page.goto(f"{clinic.base}/radar")
    page.locator("table.radar-table tbody tr a").first.click()
    expect(page.locator("table", has_text="Committed by")).not_to_contain_text("5000 mcg/day")


def test_forms_refuse_a_post_without_their_token(page: Page, clinic: Clinic) -> None:
    implant = _open_first_pump(page, clinic, clinic.of_role("nurse"))
    for path, form in (
        (f"/implants/{implant}/refill", {"withdrawn_ml": "1", "step": "check"}),
        (f"/implants/{implant}/program", {"dose_mcg_per_day": "100", "reason": "x"}),
        ("/logout", {}),
    ):
        response = page.request.post(f"{clinic.base}{path}", form={**form, "csrf": "forged"})
        assert response.status == 403, path
        assert "another site" in response.text()
    # still signed in: the forged sign-out did nothing
    page.goto(f"{clinic.base}/radar")
    expect(page).to_have_url(re.compile(r"/radar$"))
    response = page.request.post(
        f"{clinic.base}/login", form={"username": "x", "password": "y", "nonce": "forged"}
    )
    assert response.status == 403


def test_every_field_is_labelled_and_sign_in_works_from_the_keyboard(
    page: Page, clinic: Clinic
) -> None:
    page.goto(f"{clinic.base}/login")
    expect(page.get_by_label("User name")).to_be_focused()  # the form is ready to type into
    page.keyboard.type(clinic.of_role("physician"))
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(clinic.password(clinic.of_role("physician")))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/radar$"))
    page.keyboard.press("Tab")  # on every page the first stop skips the header
    expect(page.locator("a.skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    implant = page.locator("table.radar-table tbody tr a").first.get_attribute("href")
    assert implant
    page.goto(f"{clinic.base}{implant}")
    pump = page.get_by_role("link", name="Record a refill").get_attribute("href") or ""
    iid = pump.split("/")[2]
    unlabelled_js = """() => [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.type !== 'hidden' && e.type !== 'radio' && e.labels.length === 0)
        .map(e => e.name)"""
    for path in ("/radar", f"/implants/{iid}/refill", f"/implants/{iid}/program"):
        page.goto(f"{clinic.base}{path}")
        assert page.evaluate(unlabelled_js) == [], path
    page.goto(f"{clinic.base}/implants/{iid}/refill")
    page.get_by_label("Withdrawn (mL)").fill("1.0")
    page.get_by_label("Withdrawn (mL)").press("Enter")  # the form submits from the keyboard
    expect(page.locator("section.verdict")).to_be_visible()
    assert page.evaluate(unlabelled_js) == []

"""``itb clinic complication ...`` end to end, in-process through the real command
(``run(argv)``) on SQLite and PostgreSQL: a complication recorded by a nurse, the pump taken
out by a physician through it (the implant ends and leaves the radar), entries appended and
never changed, and a bad-input campaign over every option of the three commands: one line
naming the flag as typed, exit code 2 (1 for a role that may not), nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e.test_clinic_cli import IMPLANT, PASSWORD, Cli, _patient
from tests.support.clinic_setup import CHEAP_HASHER

from itb import bootstrap

LONG = "x" * 2001


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("ITB_PASSWORD_FOR_TEST", PASSWORD)
    monkeypatch.setattr(bootstrap, "password_hasher", lambda: CHEAP_HASHER)
    c = Cli(db_url, capsys)
    c("init", "--clinic-name", "North ITB Clinic", "--clinic-phone", "+44 20 7946 0001",
      "--admin", "drlee", "--admin-name", "Dr Lee", "--password-env", "ITB_PASSWORD_FOR_TEST",
      user=None)  # fmt: skip
    for name, role in (("nina", "nurse"), ("vic", "viewer")):
        c("user", "add", name, "--role", role, "--password-env", "ITB_PASSWORD_FOR_TEST")
    return c


def _implanted(cli: Cli) -> tuple[str, str]:
    pid = _patient(cli)
    out = cli.json("implant", pid, *IMPLANT)
    assert isinstance(out, dict)
    return pid, str(out["implant"]["id"])


def _entries(cli: Cli, pid: str) -> list[dict[str, Any]]:
    out = cli.json("complication", "list", pid, user="vic")
    assert isinstance(out, dict)
    rows: list[dict[str, Any]] = out["complications"]
    return rows


def test_a_complication_recorded_then_the_pump_taken_out(cli: Cli) -> None:
    pid, iid = _implanted(cli)
    first = cli.json("complication", "add", iid, "--kind", "wound_infection", "--sign", "fever",
                     "--sign", "wound redness or drainage", "--treatment", "antibiotics",
                     "--note", "pocket red and warm", user="nina")  # fmt: skip
    assert isinstance(first, dict)
    assert (first["status"], first["follows"], first["stamp"]["created_by"]) == (
        "ongoing", None, "nina",
    )  # fmt: skip
    assert first["signs"] == ["fever", "wound_redness_or_drainage"]
    table = cli("complication", "list", pid, user="vic")
    assert first["id"] in table
    assert "wound" in table
    # a nurse may not explant (a surgery): one line, exit 1, nothing written
    line = cli("complication", "update", first["id"], "--treatment", "explant", user="nina", code=1)
    assert "may not record surgery" in line
    assert _entries(cli, pid) == [first]
    version = cli.json("pump", iid, user="nina")["implant"]["version"]  # type: ignore[index]
    out = cli("complication", "update", first["id"], "--treatment", "explant", "--bridge", "oral",
              "--oral-bridge-mg-per-day", "60", "--expect-version", str(version))  # fmt: skip
    assert "explanted" in out
    assert "oral 60 mg/day" in out
    radar = cli.json("radar", user="nina")
    assert isinstance(radar, dict)
    assert [r["implant_id"] for r in radar["pumps"]] == []
    # not on the radar, but on its list of pumps out, with the bridge
    assert [
        (o["implant_id"], o["bridge"], o["oral_bridge_mg_per_day"]) for o in radar["pumps_out"]
    ] == [(iid, "oral", 60.0)]
    assert "Pumps out: 1 patient(s) on a bridge" in cli("radar", user="nina")
    assert "an implant in use (this one was explanted)" in cli("refill", iid, "--withdrawn-ml", "5", "--fill-ml", "20",
                                  "--concentration", "500", "--product", "baclofen_500",
                                  "--lot", "L2", user="nina", code=2)  # fmt: skip
    # the first entry was updated: refused as stale
    assert "updated already" in cli("complication", "update", first["id"], "--status",
                                    "resolved", code=1)  # fmt: skip
    rows = _entries(cli, pid)
    assert rows[0] == first
    done = cli.json("complication", "update", rows[1]["id"], "--status", "resolved",
                    "--bridge", "none", user="nina")  # fmt: skip
    assert isinstance(done, dict)
    latest = cli.json("complication", "list", pid, "--latest", user="vic")
    assert isinstance(latest, dict)
    assert [x["id"] for x in latest["complications"]] == [done["id"]]
    assert done["treatments"] == ["antibiotics", "explant"]
    assert done["explant_surgery_id"] == rows[1]["explant_surgery_id"] is not None
    assert "verified" in cli("audit", "verify", user="vic")
    trail = cli.json("audit", "show", "--entity", "complication", user="vic")
    assert isinstance(trail, dict)
    actions = [e["action"] for e in trail["entries"]]
    assert actions.count("record_complication") == 1
    assert actions.count("update_complication") == 2


def test_a_viewer_and_patients_records_are_refused(cli: Cli) -> None:
    pid, iid = _implanted(cli)
    assert "may not record complication" in cli(
        "complication", "add", iid, "--kind", "csf_leak", user="vic", code=1
    )
    assert _entries(cli, pid) == []


# ------------------------------------------------------------------ the bad-input campaign

# (command, option or argument, bad value, what the line must name); each runs on a clinic
# with one pump and one complication X0001 (an infection treated with antibiotics)
ADD = ("complication", "add", "{iid}", "--kind", "wound_infection")
UPDATE = ("complication", "update", "X0001")
LIST = ("complication", "list", "{pid}")
BAD: list[tuple[tuple[str, ...], str, str, str]] = [
    (("complication", "add", "I9999", "--kind", "csf_leak"), "IMPLANT", "I9999", "I9999"),
    (("complication", "add", "{iid}"), "--kind", "flu", "--kind"),
    (("complication", "add", "{iid}"), "--kind", "", "--kind"),
    (("complication", "add", "{iid}"), "--kind", LONG, "--kind"),
    (ADD, "--found", "tomorrow", "--found"),
    (ADD, "--found", "2099-01-01T00:00+00:00", "--found"),
    (ADD, "--found", "2000-01-01T00:00+00:00", "--found"),
    (ADD, "--found", "2026-03-29T01:30", "--found"),  # skipped by the clocks going forward
    (ADD, "--onset", "last week", "--onset"),
    (ADD, "--onset", "2099-01-01T00:00+00:00", "--onset"),
    (ADD, "--onset", "2000-01-01T00:00+00:00", "--onset"),
    (ADD, "--at", "x", "--at"),
    (ADD, "--at", "2099-01-01T00:00+00:00", "--at"),
    (ADD, "--sign", "sneezing loudly", "--sign"),
    (ADD, "--sign", "", "--sign"),
    (ADD, "--treatment", "leeches", "--treatment"),
    (ADD, "--treatment", "reimplant", "--treatment"),
    (ADD, "--bridge", "iv", "--bridge"),
    (ADD, "--bridge", "oral", "--bridge"),
    (ADD, "--oral-bridge-mg-per-day", "abc", "--oral-bridge-mg-per-day"),
    (ADD, "--oral-bridge-mg-per-day", "40", "--oral-bridge-mg-per-day"),
    ((*ADD, "--treatment", "explant", "--bridge", "oral"), "--oral-bridge-mg-per-day", "nan",
     "--oral-bridge-mg-per-day"),
    ((*ADD, "--treatment", "explant", "--bridge", "oral"), "--oral-bridge-mg-per-day", "inf",
     "--oral-bridge-mg-per-day"),
    ((*ADD, "--treatment", "explant", "--bridge", "oral"), "--oral-bridge-mg-per-day", "-1",
     "--oral-bridge-mg-per-day"),
    ((*ADD, "--treatment", "explant", "--bridge", "oral"), "--oral-bridge-mg-per-day", "0",
     "--oral-bridge-mg-per-day"),
    ((*ADD, "--treatment", "explant", "--bridge", "oral"), "--oral-bridge-mg-per-day", "1e300",
     "--oral-bridge-mg-per-day"),
    ((*ADD, "--treatment", "explant"), "--bridge", "oral", "--oral-bridge-mg-per-day"),
    (ADD, "--status", "better", "--status"),
    (ADD, "--status", "explanted", "--status"),
    (ADD, "--note", LONG, "--note"),
    (ADD, "--note", "bell\x07", "--note"),
    (ADD, "--expect-version", "abc", "--expect-version"),
    (("complication", "update", "X9999", "--status", "resolved"), "COMPLICATION", "X9999", "X9999"),
    (UPDATE, "--at", "x", "--at"),
    (UPDATE, "--at", "2000-01-01T00:00+00:00", "--at"),
    (UPDATE, "--at", "2099-01-01T00:00+00:00", "--at"),
    (UPDATE, "--sign", "sneezing loudly", "--sign"),
    (UPDATE, "--treatment", "prayer", "--treatment"),
    (UPDATE, "--bridge", "iv", "--bridge"),
    (UPDATE, "--bridge", "intrathecal", "--bridge"),
    (UPDATE, "--oral-bridge-mg-per-day", "abc", "--oral-bridge-mg-per-day"),
    (UPDATE, "--oral-bridge-mg-per-day", "60", "--oral-bridge-mg-per-day"),
    ((*UPDATE, "--treatment", "explant", "--bridge", "oral"), "--oral-bridge-mg-per-day", "241",
     "--oral-bridge-mg-per-day"),
    (UPDATE, "--status", "gone", "--status"),
    (UPDATE, "--status", "explanted", "--status"),
    (UPDATE, "--note", LONG, "--note"),
    (UPDATE, "--expect-version", "1.5", "--expect-version"),
    (("complication", "list", "P9999"), "PATIENT", "P9999", "P9999"),
]  # fmt: skip


def test_every_bad_value_is_one_line_naming_the_flag_exit_2_and_writes_nothing(
    cli: Cli,
) -> None:
    pid, iid = _implanted(cli)
    cli("complication", "add", iid, "--kind", "wound_infection", "--treatment", "antibiotics",
        user="nina")  # fmt: skip
    before = _entries(cli, pid)
    implant = cli.json("pump", iid, user="nina")["implant"]  # type: ignore[index]
    problems = []
    for base, option, value, named in BAD:
        argv = [a.format(iid=iid, pid=pid) for a in base]
        if option.startswith("--"):
            argv += [option, value]
        try:
            line = cli(*argv, code=2)
        except AssertionError as exc:
            problems.append(f"{option}={value[:20]!r}: {str(exc)[:200]}")
            continue
        if named not in line:
            problems.append(f"{option}={value[:20]!r}: does not name {named}: {line[:200]}")
        if len(line) > 1000:
            problems.append(f"{option}={value[:20]!r}: line too long ({len(line)})")
    assert problems == []
    assert _entries(cli, pid) == before
    assert cli.json("pump", iid, user="nina")["implant"] == implant  # type: ignore[index]
    assert "verified" in cli("audit", "verify", user="vic")
    assert len(BAD) >= 45


def test_the_commands_print_json_for_machines(cli: Cli) -> None:
    pid, iid = _implanted(cli)
    out = cli("complication", "add", iid, "--kind", "pump_flip", "--json", user="nina")
    data = json.loads(out)
    assert set(data) == {
        "id", "patient_id", "implant_id", "episode_id", "follows", "kind", "onset_at",
        "found_at", "at", "signs", "treatments", "bridge", "oral_bridge_mg_per_day", "status",
        "explant_surgery_id", "note", "stamp",
    }  # fmt: skip
    assert (data["patient_id"], data["implant_id"], data["status"]) == (pid, iid, "ongoing")
    listed = json.loads(cli("complication", "list", pid, "--implant", iid, "--json", user="vic"))
    assert listed == {"complications": [data]}
    assert json.loads(
        cli("complication", "list", pid, "--implant", "I0999", "--json", user="vic")
    ) == {"complications": []}

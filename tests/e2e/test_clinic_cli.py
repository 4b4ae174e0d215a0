"""``itb clinic`` end to end, in-process through the real command (``run(argv)``): a clinic
set up, a patient implanted, refilled, reprogrammed with a second person's verification,
the radar, the audit trail, a backup restored; every refusal one line with its exit code.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support.clinic_setup import CHEAP_HASHER

from itb import bootstrap
from itb.entrypoints.cli.main import run

PASSWORD = "correct-horse-battery"


def _flat(text: str) -> str:
    return " ".join(text.split())


class Cli:
    def __init__(self, db: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *args: str, user: str | None = "drlee", code: int = 0) -> str:
        argv = ["clinic", *args, "--db", self.db]
        if user is not None:
            argv += ["--user", user]
        self.capsys.readouterr()
        rc = run(argv)
        out, err = self.capsys.readouterr()
        assert rc == code, f"{argv}: exit {rc}\n{out}\n{err}"
        if code:
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1, err
            assert lines[0].startswith("error: ")
            assert "Traceback" not in err
            return lines[0]
        return out

    def json(self, *args: str, user: str | None = "drlee") -> object:
        return json.loads(self(*args, "--json", user=user))


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("ITB_PASSWORD_FOR_TEST", PASSWORD)
    # real Argon2id, cheap parameters: the suite creates many accounts
    monkeypatch.setattr(bootstrap, "password_hasher", lambda: CHEAP_HASHER)
    c = Cli(db_url, capsys)
    c(
        "init",
        "--clinic-name",
        "North ITB Clinic",
        "--clinic-phone",
        "+44 20 7946 0001",
        "--admin",
        "drlee",
        "--admin-name",
        "Dr Lee",
        "--password-env",
        "ITB_PASSWORD_FOR_TEST",
        user=None,
    )
    for name, role in (("drkim", "physician"), ("nina", "nurse")):
        c("user", "add", name, "--role", role, "--password-env", "ITB_PASSWORD_FOR_TEST")
    return c


IMPLANT = ("--pump", "synchromed_ii_20", "--serial", "NGP1", "--catheter", "ascenda_like",
           "--catheter-length-cm", "60", "--fill-ml", "20", "--concentration", "500",
           "--product", "baclofen_500", "--lot", "L1", "--expiry", "2099-01-01", "--dose", "100",
           "--low-alarm-ml", "2")  # fmt: skip


def _patient(cli: Cli) -> str:
    p = cli.json("patient", "add", "--mrn", "M1", "--given-name", "Ada", "--family-name", "Jones",
                 "--birth-date", "1970-03-01", "--sex", "female", "--cause", "spinal_cord_injury",
                 "--weight-kg", "70", "--injury-level", "T4", "--sci-at-or-above-t6",
                 "--timezone", "Europe/London", user="nina")  # fmt: skip
    assert isinstance(p, dict)
    return str(p["id"])


def test_a_clinic_day(cli: Cli, tmp_path: Path) -> None:
    pid = _patient(cli)
    cli(
        "patient",
        "contact",
        pid,
        "--name",
        "Bob Jones",
        "--relation",
        "husband",
        "--phone",
        "+44 7700 900001",
        "--caregiver",
        user="nina",
    )
    assert "nurse nina may not record implant" in cli("implant", pid, *IMPLANT, user="nina", code=1)
    out = cli.json("implant", pid, *IMPLANT)
    assert isinstance(out, dict)
    iid = out["implant"]["id"]
    # just filled with 20 mL: less only what it delivered in the seconds since (the command
    # runs on the wall clock; well under 0.01 mL at this dose)
    assert 20.0 - 0.01 < out["pump_now"]["reservoir_calculated_ml"] <= 20.0
    now = cli.json("pump", iid, user="nina")
    assert isinstance(now, dict)
    version = now["implant"]["version"]
    assert "Interrogation" in cli("interrogate", iid, user="nina")
    assert "is at version" in cli("refill", iid, "--withdrawn-ml", "19.9", "--fill-ml", "20",
                                  "--concentration", "500", "--product", "baclofen_500", "--lot", "L2",
                                  "--expect-version", str(version), user="nina", code=1)  # fmt: skip
    refill = cli.json("refill", iid, "--withdrawn-ml", "19.9", "--fill-ml", "20", "--concentration", "500",
                      "--product", "baclofen_500", "--lot", "L2", user="nina")  # fmt: skip
    assert isinstance(refill, dict)
    assert refill["refill"]["verdict"] == "within tolerance"
    change = cli.json(
        "program", "stage", iid, "--dose", "125", "--reason", "tone still high", user="nina"
    )
    assert isinstance(change, dict)
    cid = change["id"]
    assert "verify" in cli("program", "commit", cid, user="nina", code=1)
    assert "may not verify" in cli("program", "verify", cid, user="nina", code=1)
    cli("program", "verify", cid, user="drkim")
    assert "125 mcg/day" in cli("program", "commit", cid, user="nina")
    assert "change refused" in cli(
        "program", "stage", iid, "--dose", "5000", "--reason", "typo", user="nina", code=1
    )
    cli("visit", "book", pid, "--at", "2099-02-10T10:00", user="nina")
    radar = cli.json("radar", user="nina")
    assert isinstance(radar, dict)
    assert radar["pumps"][0]["patient_id"] == pid
    assert radar["pumps"][0]["next_visit_at"].startswith("2099-02-10")
    triaged = cli.json("symptoms", pid, "--sign", "itching", "--sign", "fever", user="nina")
    assert isinstance(triaged, dict)
    assert triaged["record"]["urgency"] == "emergency"
    card = tmp_path / "card.html"
    cli("card", pid, "--html", str(card), user="nina")
    assert "North ITB Clinic" in card.read_text(encoding="utf-8")
    assert "verified" in cli("audit", "verify", user="nina")
    cp = tmp_path / "cp.json"
    cli("audit", "checkpoint", "--out", str(cp), user="nina")
    assert json.loads(cp.read_text())["seq"] > 10
    shown = cli.json("audit", "show", "--entity", "programming_change", "--id", cid, user="nina")
    assert isinstance(shown, dict)
    assert [e["action"] for e in shown["entries"]] == [
        "stage_change",
        "refused:commit_change",
        "refused:verify_change",
        "verify_change",
        "commit_change",
    ]
    backup = tmp_path / "b.json"
    assert "may not backup" in cli("backup", "--out", str(backup), user="nina", code=1)
    cli("backup", "--out", str(backup))
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    cli.db, original = restored, cli.db
    assert "audit chain verified" in _flat(cli("restore", str(backup), user=None))
    assert "matches the checkpoint" in _flat(cli("audit", "verify", "--checkpoint", str(cp)))
    cli.db = original


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            (
                "patient",
                "add",
                "--mrn",
                "X",
                "--given-name",
                "A",
                "--family-name",
                "B",
                "--birth-date",
                "2990-01-01",
                "--sex",
                "female",
                "--cause",
                "stroke",
            ),
            "--birth-date",
        ),
        (
            (
                "patient",
                "add",
                "--mrn",
                "X",
                "--given-name",
                "A",
                "--family-name",
                "B",
                "--birth-date",
                "1990-01-01",
                "--sex",
                "female",
                "--cause",
                "stroke",
                "--weight-kg",
                "7000",
            ),
            "--weight-kg",
        ),
        (
            (
                "patient",
                "add",
                "--mrn",
                "X",
                "--given-name",
                "A",
                "--family-name",
                "B",
                "--birth-date",
                "1990-02-30",
                "--sex",
                "female",
                "--cause",
                "stroke",
            ),
            "--birth-date",
        ),
        (
            (
                "patient",
                "add",
                "--mrn",
                "X",
                "--given-name",
                "A",
                "--family-name",
                "B",
                "--birth-date",
                "1990-01-01",
                "--sex",
                "female",
                "--cause",
                "flu",
            ),
            "--cause",
        ),
        (
            (
                "patient",
                "add",
                "--mrn",
                "X",
                "--given-name",
                "A",
                "--family-name",
                "B",
                "--birth-date",
                "1990-01-01",
                "--sex",
                "female",
                "--cause",
                "stroke",
                "--sci-at-or-above-t6",
            ),
            "--sci-at-or-above-t6",
        ),
        (("patient", "show", "P9999"), "P9999"),
        (("radar", "--on", "tomorrow"), "--on"),
        (("visit", "book", "P0001", "--at", "soon"), "--at"),
        (("audit", "verify", "--checkpoint", "/nonexistent/cp.json"), "--checkpoint"),
        (("restore", "/nonexistent/b.json"), "BACKUP.json"),
        (("backup", "--out", "/nonexistent/dir/b.json"), "--out"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_exit_2(
    cli: Cli, args: tuple[str, ...], named: str
) -> None:
    line = cli(*args, code=2, user=None if args[0] == "restore" else "drlee")
    assert named in line


def test_bad_fill_values_name_their_flags(cli: Cli) -> None:
    pid = _patient(cli)
    for flag, value, named in (
        ("--fill-ml", "45", "fill_ml"),
        ("--concentration", "3000", "--concentration"),
        ("--product", "baclofen_50", "--product"),
        ("--catheter-length-cm", "999", "--catheter-length-cm"),
        ("--dose", "-5", "--dose"),
        ("--low-alarm-ml", "40", "--low-alarm-ml"),
    ):
        args = list(IMPLANT)
        args[args.index(flag) + 1] = value
        line = cli("implant", pid, *args, code=2)
        assert named in line or flag in line, line


def test_an_unknown_user_and_a_missing_registry(cli: Cli, tmp_path: Path) -> None:
    assert "not an active registry user" in cli("patient", "list", user="mallory", code=1)
    assert "--user" in cli("patient", "list", user=None, code=2)
    cli.db = f"sqlite:///{tmp_path / 'none.db'}"
    assert "itb clinic init" in cli("patient", "list", code=2)
    cli.db = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    assert "existing folder" in cli("patient", "list", code=2)
    cli.db = "mysql://x@y/z"
    assert "database URL" in cli("patient", "list", code=2)


def test_a_patients_refill_calendar_is_exported_and_parses(cli: Cli, tmp_path: Path) -> None:
    from icalendar import Calendar

    pid = _patient(cli)
    out = cli.json("implant", pid, *IMPLANT)
    assert isinstance(out, dict)
    cli("visit", "book", pid, "--at", "2099-02-10T10:00", user="nina")
    target = tmp_path / "refills.ics"
    summary = cli.json("export", "ical", "--patient", pid, "--out", str(target), user="nina")
    assert isinstance(summary, dict)
    assert summary["visits"] == 1
    assert summary["refill_by"]
    cal = Calendar.from_ical(target.read_bytes())
    events = list(cal.walk("VEVENT"))
    assert len(events) == 2  # the booked visit and the refill-by date
    assert all(list(e.walk("VALARM")) for e in events)
    # exported again, the same identifiers: a calendar app updates the events in place
    cli("export", "ical", "--patient", pid, "--out", str(target), user="nina")
    again = Calendar.from_ical(target.read_bytes()).walk("VEVENT")
    assert {str(e["uid"]) for e in again} == {str(e["uid"]) for e in events}
    assert any(e.decoded("dtstart").isoformat().startswith("2099-02-10") for e in events)
    # refusals: not an .ics name, nothing written; a patient who is not there
    bad = tmp_path / "refills.txt"
    assert "--out" in cli("export", "ical", "--patient", pid, "--out", str(bad), code=2)
    assert not bad.exists()
    assert "P9999" in cli("export", "ical", "--patient", "P9999", "--out", str(target), code=2)


def test_fhir_export_and_import_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    """export fhir writes a Bundle; import fhir stores it in an empty registry, all or
    nothing; a damaged Bundle is refused with exit 2, naming the resource and field."""
    pid = _patient(cli)
    cli.json("implant", pid, *IMPLANT)
    cli("visit", "book", pid, "--at", "2099-02-10T10:00", user="nina")
    whole = tmp_path / "clinic.json"
    summary = cli.json("export", "fhir", "--out", str(whole))
    assert isinstance(summary, dict)
    assert summary["patients"] == 1
    one = tmp_path / "one.json"
    cli("export", "fhir", "--patient", pid, "--out", str(one))
    assert json.loads(one.read_text())["entry"] == json.loads(whole.read_text())["entry"]
    # an empty registry of its own, then the import
    cli.db = f"sqlite:///{tmp_path / 'target.db'}"
    cli("init", "--clinic-name", "South", "--clinic-phone", "+44 20 7946 0002", "--admin", "drlee",
        "--admin-name", "Dr Lee", "--password-env", "ITB_PASSWORD_FOR_TEST", user=None)  # fmt: skip
    bad = json.loads(whole.read_text())
    patient = next(
        e["resource"] for e in bad["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["birthDate"] = "1970-02-30"
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(bad))
    assert f"Patient/{pid}.birthDate" in cli("import", "fhir", str(damaged), code=2)
    assert cli.json("patient", "list") == {"patients": []}
    done = cli.json("import", "fhir", str(whole))
    assert isinstance(done, dict)
    assert done["imported"]["patients"] == 1
    again = tmp_path / "again.json"
    cli("export", "fhir", "--out", str(again))
    assert json.loads(again.read_text())["entry"] == json.loads(whole.read_text())["entry"]
    assert "not yet in this registry" in cli("import", "fhir", str(whole), code=2)


def test_the_clinic_calendar_and_a_subscription_address(cli: Cli, tmp_path: Path) -> None:
    from icalendar import Calendar

    pid = _patient(cli)
    cli.json("implant", pid, *IMPLANT)
    cli("visit", "book", pid, "--at", "2099-02-10T10:00", user="nina")
    cli("visit", "book", pid, "--at", "2099-03-10T10:00", user="nina")
    target = tmp_path / "clinic.ics"
    done = cli.json("export", "ical", "--clinic", "--out", str(target), user="nina")
    assert isinstance(done, dict)
    assert done["visits"] == 2
    events = list(Calendar.from_ical(target.read_bytes()).walk("VEVENT"))
    assert sorted(e.decoded("dtstart").date().isoformat() for e in events) == [
        "2099-02-10",
        "2099-03-10",
    ]
    assert "--patient" in cli("export", "ical", "--out", str(target), code=2)  # one of the two
    feed = cli.json("calendar-feed", "--patient", pid, "--base-url", "https://itb.example.org")
    assert isinstance(feed, dict)
    assert str(feed["url"]).startswith("https://itb.example.org/calendar/")
    gone = cli.json("calendar-feed", "--patient", pid, "--revoke")
    assert gone == {"patient": pid, "revoked": 1}


TEMPLATE = Path(__file__).resolve().parents[2] / "docs" / "clinic-import-template.csv"


def test_a_clinic_list_is_imported_from_csv_row_by_row(cli: Cli, tmp_path: Path) -> None:
    """The documented template imports whole; a list with bad rows names each line and
    column and writes nothing (exit 2); --valid-only registers the rest (exit 1) and
    writes the report."""
    text = TEMPLATE.read_text(encoding="utf-8")
    lines = text.splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join([
            lines[0],
            lines[1],
            lines[2].replace(",420", ",99999"),  # above the drug library's hard limit
            lines[3].replace("2014-05-09", "2014-13-09"),  # no such date
            lines[1].replace("Ana,Rivera", "Ann,Other"),  # the same MRN again
        ]) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    first = tmp_path / "first.json"
    out = cli("import", "csv", str(bad), "--report", str(first), code=2)
    assert "3 of 4 rows refused (lines 3, 4, 5)" in out
    refused = json.loads(first.read_text())["refused"]
    assert [r["line"] for r in refused] == [3, 4, 5]
    assert refused[0]["problem"].startswith("dose_mcg_per_day = 99999")
    assert refused[1]["problem"].startswith("birth_date = '2014-13-09'")
    assert refused[2]["problem"].startswith("mrn = 'HOSP-0001'")
    assert cli.json("patient", "list") == {"patients": []}  # nothing written
    report = tmp_path / "report.json"
    out = cli("import", "csv", str(bad), "--valid-only", "--report", str(report), code=1)
    assert "lines 3, 4, 5" in out
    summary = json.loads(report.read_text())
    assert [r["line"] for r in summary["imported"]] == [2]
    assert [r["line"] for r in summary["refused"]] == [3, 4, 5]
    patients = cli.json("patient", "list")
    assert isinstance(patients, dict)
    assert [p["mrn"] for p in patients["patients"]] == ["HOSP-0001"]
    assert "import" in cli("import", "csv", str(TEMPLATE), user="nina", code=1)  # a physician's
    shown = cli.json("audit", "show", "--entity", "registry", "--id", "rows", user="nina")
    assert isinstance(shown, dict)
    assert "refused:import_clinic_rows" in [e["action"] for e in shown["entries"]]
    cli.db = f"sqlite:///{tmp_path / 'fresh.db'}"
    cli("init", "--clinic-name", "South", "--clinic-phone", "+44 20 7946 0002", "--admin", "drlee",
        "--admin-name", "Dr Lee", "--password-env", "ITB_PASSWORD_FOR_TEST", user=None)  # fmt: skip
    done = cli.json("import", "csv", str(TEMPLATE))
    assert isinstance(done, dict)
    assert [r["line"] for r in done["imported"]] == [2, 3, 4]
    radar = cli.json("radar")
    assert isinstance(radar, dict)
    assert len(radar["pumps"]) == 2  # the two rows with a pump
    assert "HOSP-0003" in cli("patient", "list")
    assert "3 of 3 rows refused" in cli("import", "csv", str(TEMPLATE), code=2)  # already there


def test_the_exchange_commands_refuse_bad_input_in_one_line(cli: Cli, tmp_path: Path) -> None:
    """Each bad input: exit 2, one line naming what was wrong, nothing written."""
    text = tmp_path / "not.json"
    text.write_text("{ not json", encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"resourceType": "Patient", "id": "P0001"}), encoding="utf-8")
    shell = tmp_path / "shell.json"
    shell.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Nope", "id": "x"}}],
            }
        ),
        encoding="utf-8",
    )
    header = tmp_path / "header.csv"
    header.write_text("mrn,given_name,surname\n", encoding="utf-8")
    nul = tmp_path / "nul.csv"
    nul.write_text(
        TEMPLATE.read_text(encoding="utf-8").replace("Rivera", "Riv\0era"), encoding="utf-8"
    )
    cases = [
        (("import", "fhir", str(tmp_path / "missing.json")), "BUNDLE.json"),
        (("import", "fhir", str(text)), "BUNDLE.json"),
        (("import", "fhir", str(other)), "resourceType = 'Patient'"),
        (("import", "fhir", str(shell)), "Nope/x.resourceType"),
        (("import", "csv", str(tmp_path / "missing.csv")), "CLINIC.csv"),
        (("import", "csv", str(header)), "CSV header = 'surname'"),
        (("import", "csv", str(nul)), "CLINIC.csv"),
        (("export", "fhir", "--patient", "P9999", "--out", str(tmp_path / "x.json")), "P9999"),
        (("export", "fhir", "--out", str(tmp_path / "x.txt")), "--out"),
        (("calendar-feed", "--patient", "P9999"), "P9999"),
        (
            ("export", "ical", "--patient", "P9999", "--clinic", "--out", str(tmp_path / "c.ics")),
            "--patient / --clinic",
        ),
    ]
    for argv, named in cases:
        assert named in cli(*argv, code=2), argv
    assert cli.json("patient", "list") == {"patients": []}
    assert not (tmp_path / "x.json").exists()
    assert not (tmp_path / "x.txt").exists()

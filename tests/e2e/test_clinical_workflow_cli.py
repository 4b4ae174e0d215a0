"""End to end: the clinical-workflow commands through the real ``itb`` entry point.

Most tests call ``itb.entrypoints.cli.main.main`` in-process with ``sys.argv`` set
(the same path as the console script, including the error -> exit 2 mapping);
one test runs the installed console script in a subprocess.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from itb.entrypoints.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

Cli = Callable[..., tuple[int, str, str]]


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["itb", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str, field: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {field} = ")
    assert "is not allowed; allowed:" in lines[0] or "allowed: only with" in lines[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return lambda *argv: run(list(argv), capsys, monkeypatch)


# ------------------------------------------------------------------ help


@pytest.mark.parametrize(
    "command",
    [
        ["candidacy"],
        ["triage"],
        ["library", "check"],
        ["library", "show"],
        ["screening-trial"],
        ["card"],
    ],
)
def test_every_command_has_help(cli: Cli, command: list[str]) -> None:
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert "--json" in out


# ------------------------------------------------------------- candidacy


def test_candidacy_json_shape(cli: Cli) -> None:
    code, out, _ = cli("candidacy", str(EXAMPLES / "candidacy_record.toml"), "--json")
    assert code == 0
    payload = json.loads(out)
    assert set(payload) == {
        "verdict",
        "verdict_label",
        "assessed_on",
        "reassess_on_or_after",
        "reasons",
        "disclaimer",
    }
    assert payload["verdict"] == "candidate"
    assert payload["assessed_on"] == "2026-06-01"
    for reason in payload["reasons"]:
        assert set(reason) == {"rule", "outcome", "text", "source", "status"}
        assert reason["source"]


def test_candidacy_tbi_wait_from_file(cli: Cli, tmp_path: Path) -> None:
    text = (EXAMPLES / "candidacy_record.toml").read_text()
    text = (
        text.replace('origin = "spinal"', 'origin = "cerebral"')
        .replace(
            'cause = "spinal_cord_injury"',
            'cause = "traumatic_brain_injury"\nbrain_injury_date = 2025-06-02',
        )
        .replace(
            'risk_groups = ["sci_t6_or_above"]', 'risk_groups = ["communication_difficulties"]'
        )
    )
    record = tmp_path / "tbi.toml"
    record.write_text(text)
    code, out, _ = cli("candidacy", str(record), "--json")
    payload = json.loads(out)
    assert (code, payload["verdict"], payload["reassess_on_or_after"]) == (
        0,
        "not_candidate",
        "2026-06-02",
    )
    code, out, _ = cli("candidacy", str(record), "--json", "--on", "2026-06-02")
    assert json.loads(out)["verdict"] == "candidate"


def test_candidacy_human_output(cli: Cli) -> None:
    code, out, _ = cli("candidacy", str(EXAMPLES / "candidacy_record.toml"))
    assert code == 0
    assert "CANDIDATE FOR A SCREENING TRIAL" in out
    assert "[C4][C5]" in out


@pytest.mark.parametrize(
    ("replace", "field"),
    [
        (("age_years = 34", 'age_years = "old"'), "age_years"),
        (('origin = "spinal"', 'origin = "peripheral"'), "origin"),
        (("spinal_anomalies = false", "spinal_anomalie = false"), "spinal_anomalie"),
        (('risk_groups = ["sci_t6_or_above"]', 'risk_groups = ["smoker"]'), "risk_groups"),
        (("implant_depth_cm = 1.8", "implant_depth_cm = -2"), "implant_depth_cm"),
    ],
)
def test_candidacy_bad_input_is_one_line_exit_2(
    cli: Cli, tmp_path: Path, replace: tuple[str, str], field: str
) -> None:
    text = (EXAMPLES / "candidacy_record.toml").read_text()
    assert replace[0] in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(*replace))
    code, out, err = cli("candidacy", str(bad))
    assert code == 2
    assert out == ""
    one_line_error(err, field)


def test_candidacy_missing_file_and_bad_toml(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("candidacy", str(tmp_path / "nope.toml"))
    assert code == 2
    one_line_error(err, "RECORD.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("age_years = = 3\n")
    code, _, err = cli("candidacy", str(broken))
    assert code == 2
    one_line_error(err, "RECORD.toml")


# ----------------------------------------------------------------- triage


def test_triage_json_shape_and_emergency(cli: Cli) -> None:
    code, out, _ = cli("triage", "--sign", "weak floppy limbs", "--sign", "drowsiness", "--json")
    assert code == 0
    payload = json.loads(out)
    assert set(payload) == {
        "signs",
        "urgency",
        "urgency_label",
        "causes",
        "actions",
        "reasons",
        "disclaimer",
    }
    assert payload["urgency"] == "emergency"
    assert payload["causes"][0]["cause"] == "overdose"
    assert any("[C20]" in r["source"] for r in payload["reasons"])


@pytest.mark.parametrize(
    ("signs", "urgency"),
    [(["nausea"], "next_visit"), (["itching"], "call_today"), (["slow-breathing"], "emergency")],
)
def test_triage_each_urgency(cli: Cli, signs: list[str], urgency: str) -> None:
    argv = [a for s in signs for a in ("--sign", s)]
    code, out, _ = cli("triage", *argv, "--json")
    assert (code, json.loads(out)["urgency"]) == (0, urgency)


def test_triage_human_output_and_list(cli: Cli) -> None:
    code, out, _ = cli("triage", "--sign", "itching", "--sign", "fever")
    assert code == 0
    assert "EMERGENCY NOW" in out
    code, out, _ = cli("triage", "--list-signs", "--json")
    signs = {s["sign"] for s in json.loads(out)["signs"]}
    assert {"itching_without_rash", "pump_alarm_two_tone", "headache_with_stiff_neck"} <= signs


def test_triage_unknown_or_no_sign(cli: Cli) -> None:
    code, _, err = cli("triage", "--sign", "sneezing")
    assert code == 2
    one_line_error(err, "--sign")
    code, _, err = cli("triage")
    assert code == 2
    one_line_error(err, "--sign")


# ---------------------------------------------------------------- library


def _check(cli, *extra: str) -> tuple[int, str, str]:
    return cli(
        "library",
        "check",
        "--population",
        "adult_spinal",
        "--concentration",
        "2000",
        "--pump-kind",
        "peristaltic",
        *extra,
    )


def test_library_within_limits_json(cli: Cli) -> None:
    code, out, _ = _check(cli, "--dose", "400", "--previous-dose", "350", "--json")
    payload = json.loads(out)
    assert code == 0
    assert payload["within_all_limits"] is True
    assert payload["override_reason"] is None
    assert {c["field"] for c in payload["checks"]} == {"dose_mcg_per_day", "dose_increase_pct"}


def test_library_soft_limit_needs_reason_then_records_it(cli: Cli) -> None:
    code, out, err = _check(cli, "--dose", "1200")
    assert (code, out) == (2, "")
    one_line_error(err, "--dose")
    code, out, _ = _check(cli, "--dose", "1200", "--reason", "documented tolerance", "--json")
    payload = json.loads(out)
    assert code == 0
    assert payload["override_reason"] == "documented tolerance"
    assert [c["limit"] for c in payload["checks"] if c["passed_limit"]] == [1000.0]


def test_library_hard_limit_cannot_be_passed(cli: Cli) -> None:
    code, _, err = _check(cli, "--dose", "2500", "--reason", "anything")
    assert code == 2
    one_line_error(err, "--dose")
    assert "hard limit" in err


def test_library_screening_strength_refused_in_pump(cli: Cli) -> None:
    code, _, err = cli(
        "library",
        "check",
        "--population",
        "child",
        "--concentration",
        "50",
        "--pump-kind",
        "valve",
        "--dose",
        "100",
    )
    assert code == 2
    one_line_error(err, "--concentration")


@pytest.mark.parametrize(("option", "value"), [("--dose", "lots"), ("--previous-dose", "nan")])
def test_library_non_numeric_option_is_one_line(cli: Cli, option: str, value: str) -> None:
    extra = ["--dose", "400"] if option != "--dose" else []
    code, _, err = _check(cli, *extra, option, value)
    assert code == 2
    one_line_error(err, option)


def test_library_show_json(cli: Cli) -> None:
    code, out, _ = cli("library", "show", "--json")
    payload = json.loads(out)
    assert code == 0
    assert set(payload["populations"]) == {"adult_spinal", "adult_cerebral", "child"}
    limit = payload["populations"]["adult_spinal"]["limits"]["daily_dose_hard_max_mcg_per_day"]
    assert set(limit) == {"value", "unit", "status", "source", "note"}


# -------------------------------------------------------------- screening


def test_screening_trial_json(cli: Cli) -> None:
    code, out, _ = cli("screening-trial", str(EXAMPLES / "screening_trial.toml"), "--json")
    payload = json.loads(out)
    assert code == 0
    assert [b["outcome"] for b in payload["boluses"]] == ["non_responder", "responder"]
    assert payload["boluses"][1]["onset_h"] == 3
    assert payload["next_step"]["kind"] == "responder"


def test_screening_trial_plans_next_dose_date(cli: Cli, tmp_path: Path) -> None:
    text = (EXAMPLES / "screening_trial.toml").read_text()
    first_only = text[: text.index("[[bolus]]", text.index("[[bolus]]") + 1)]
    path = tmp_path / "one.toml"
    path.write_text(first_only)
    code, out, _ = cli("screening-trial", str(path), "--json")
    step = json.loads(out)["next_step"]
    assert (code, step["kind"], step["dose_mcg"]) == (0, "give_dose", 75.0)
    assert step["earliest_at"] == "2026-03-03T09:00:00"


def test_screening_trial_refuses_bolus_within_24_h(cli: Cli, tmp_path: Path) -> None:
    text = (EXAMPLES / "screening_trial.toml").read_text()
    path = tmp_path / "early.toml"
    path.write_text(text.replace("2026-03-03T09:30:00", "2026-03-03T08:59:00"))
    code, _, err = cli("screening-trial", str(path))
    assert code == 2
    one_line_error(err, "bolus[2].given_at")
    assert "2026-03-03T09:00:00" in err


# ------------------------------------------------------------------- card


def test_card_writes_pdf_and_self_contained_html(cli: Cli, tmp_path: Path) -> None:
    pdf, page = tmp_path / "card.pdf", tmp_path / "card.html"
    code, out, _ = cli(
        "card", str(EXAMPLES / "wallet_card.toml"), "--pdf", str(pdf), "--html", str(page), "--json"
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["written"] == [str(pdf), str(page)]
    assert len(payload["panels"]) == 4
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 2000
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://|<script|<link|@import|url\(|\bsrc=", html)
    for text in ("SynchroMed II 8637-40", "400 mcg per day", "Itching without a rash", "MRI"):
        assert text in html


def test_card_escapes_user_text_in_html(cli: Cli, tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(
        (EXAMPLES / "wallet_card.toml").read_text().replace('"Alex Example"', '"<b>Alex</b> & co"')
    )
    page = tmp_path / "card.html"
    code, _, _ = cli("card", str(card), "--html", str(page))
    assert code == 0
    html = page.read_text(encoding="utf-8")
    assert "&lt;b&gt;Alex&lt;/b&gt; &amp; co" in html
    assert "<b>Alex</b>" not in html


def test_card_bad_input(cli: Cli, tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(
        (EXAMPLES / "wallet_card.toml")
        .read_text()
        .replace('kind = "peristaltic"', 'kind = "syringe"')
    )
    code, _, err = cli("card", str(card), "--pdf", str(tmp_path / "x.pdf"))
    assert code == 2
    one_line_error(err, "pump.kind")
    assert not (tmp_path / "x.pdf").exists()


def test_card_refuses_an_entry_too_long_for_the_card(cli: Cli, tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    long_program = "Flex dosing: " + "; ".join(
        f"step {i} at {i:02d}:00 {i * 10} mcg per hour" for i in range(40)
    )
    card.write_text(
        (EXAMPLES / "wallet_card.toml")
        .read_text()
        .replace('"Simple continuous"', json.dumps(long_program))
    )
    code, _, err = cli("card", str(card), "--pdf", str(tmp_path / "x.pdf"))
    assert code == 2
    one_line_error(err, "therapy.program")
    assert not (tmp_path / "x.pdf").exists()


def test_card_refuses_text_too_long_for_the_card(cli: Cli, tmp_path: Path) -> None:
    """Entries each short enough, together too much for a credit-card panel: refused, and
    neither the PDF nor the HTML page is written (the HTML would cut the text off)."""
    card = tmp_path / "card.toml"
    entry = json.dumps(("Abcdefgh " * 20)[:118])
    text = re.sub(
        r'^((?:patient_name|model|drug|program|name|phone|role) = )"[^"]*"',
        lambda m: m.group(1) + entry,
        (EXAMPLES / "wallet_card.toml").read_text(),
        flags=re.MULTILINE,
    )
    card.write_text(text)
    pdf, page = tmp_path / "x.pdf", tmp_path / "x.html"
    code, _, err = cli("card", str(card), "--pdf", str(pdf), "--html", str(page))
    assert code == 2
    one_line_error(err, "card panel 2 (Therapy and dates)")
    assert not pdf.exists()
    assert not page.exists()


def test_console_script_maps_errors_to_exit_2() -> None:
    script = Path(sys.executable).with_name("itb")
    assert script.exists()
    done = subprocess.run(
        [str(script), "triage", "--sign", "sneezing"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().startswith("error: --sign = 'sneezing' is not allowed; allowed:")
    assert len(done.stderr.strip().splitlines()) == 1

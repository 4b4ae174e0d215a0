"""Wallet card content: what each panel says, warnings, MRI text per pump kind, validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from itb.adapters.datafiles import load_data_table
from itb.domain.clinical.card import (
    CardContent,
    CardData,
    Contact,
    build_wallet_card,
    parse_card_content,
)
from itb.domain.errors import InvalidValue


@pytest.fixture(scope="module")
def content() -> CardContent:
    return parse_card_content(load_data_table("card"))


def _data(**changes: object) -> CardData:
    base = CardData(
        patient_name="Alex Example",
        pump_model="SynchroMed II 8637-40",
        pump_kind="peristaltic",
        drug="Baclofen injection (intrathecal)",
        concentration_mcg_per_ml=2000.0,
        daily_dose_mcg_per_day=412.5,
        program_summary="Simple continuous",
        next_refill_date=date(2026, 8, 20),
        low_reservoir_alarm_date=date(2026, 8, 27),
        implanting_clinic=Contact("ITB Clinic", "+1 555 0100"),
        emergency_contacts=(Contact("Sam", "+1 555 0199", "Partner"),),
        issued_on=date(2026, 6, 1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _all_text(card: object) -> str:
    panels = card.panels + card.details  # type: ignore[attr-defined]
    parts: list[str] = []
    for p in panels:
        parts += [p.heading, p.alert, p.footer, *p.bullets, *(f"{k} {v}" for k, v in p.rows)]
    return "\n".join(parts)


def test_front_panel_identifies_pump_drug_dose_and_clinic(content: CardContent) -> None:
    card = build_wallet_card(_data(), content)
    assert len(card.panels) == 4
    front = card.panels[0]
    assert front.emphasis
    assert "Do not stop baclofen suddenly" in front.alert
    rows = dict(front.rows)
    assert rows["Pump"] == "SynchroMed II 8637-40"
    assert rows["Daily dose"] == "412.5 mcg per day"
    assert rows["Drug"] == "baclofen 2,000 mcg/mL"
    assert rows["ITB clinic"] == "ITB Clinic, +1\u00a0555\u00a00100"


def test_therapy_panel_dates_and_exact_units(content: CardContent) -> None:
    rows = dict(build_wallet_card(_data(), content).panels[1].rows)
    assert rows["Daily dose"] == "412.5 mcg per day (17.188 mcg per hour)"
    assert rows["Concentration"] == "2,000 mcg per mL"
    assert rows["Next refill"] == "20 Aug 2026"
    assert rows["Low-drug alarm"] == "27 Aug 2026"
    assert rows["Replace pump by"] == "not known"
    assert rows["Partner"].startswith("Sam")


def test_withdrawal_panel_lists_the_early_signs(content: CardContent) -> None:
    panel = build_wallet_card(_data(), content).panels[2]
    assert panel.emphasis
    joined = " ".join(panel.bullets).lower()
    for sign in ("itching", "tingling", "spasms", "low blood pressure", "fever"):
        assert sign in joined
    assert "two-tone" in panel.alert


@pytest.mark.parametrize(
    ("kind", "phrase"),
    [("peristaltic", "stops this pump"), ("valve", "emptied"), ("constant_flow", "MRI team")],
)
def test_mri_text_follows_the_pump_kind(content: CardContent, kind: str, phrase: str) -> None:
    card = build_wallet_card(_data(pump_kind=kind), content)
    assert phrase in " ".join(card.panels[3].bullets)
    mri_source = dict(card.sources)["MRI"]
    assert "[D" in mri_source


def test_procedure_numbers_come_from_data(content: CardContent) -> None:
    text = _all_text(build_wallet_card(_data(), content))
    assert "at least 15 cm" in text
    assert "2 ATA" in text
    assert "10 m" in text
    assert content.values["ultrasound_min_distance_cm"].source == "[D17]"


@pytest.mark.parametrize(
    ("refill", "alarm", "expected"),
    [
        (date(2026, 8, 27), date(2026, 8, 27), ()),
        (date(2026, 8, 28), date(2026, 8, 27), ("after the low-reservoir alarm",)),
        (date(2026, 5, 31), None, ("has passed",)),
        (date(2026, 6, 1), None, ()),
    ],
)
def test_refill_warnings(
    content: CardContent, refill: date, alarm: date | None, expected: tuple[str, ...]
) -> None:
    card = build_wallet_card(
        _data(next_refill_date=refill, low_reservoir_alarm_date=alarm), content
    )
    assert len(card.warnings) == len(expected)
    for w, phrase in zip(card.warnings, expected, strict=True):
        assert phrase in w
    assert (card.panels[1].alert != "") == bool(expected)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pump_kind": "syringe"}, "pump_kind"),
        ({"concentration_mcg_per_ml": 0.0}, "concentration_mcg_per_ml"),
        ({"daily_dose_mcg_per_day": -1.0}, "daily_dose_mcg_per_day"),
        ({"patient_name": "  "}, "patient_name"),
        ({"emergency_contacts": ()}, "emergency_contacts"),
        ({"implant_date": date(2027, 1, 1)}, "implant_date"),
    ],
)
def test_bad_card_data(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        _data(**changes)
    assert info.value.field == field


def test_contact_needs_a_phone() -> None:
    with pytest.raises(InvalidValue, match=r"contact\.phone"):
        Contact("Sam", "")


def test_missing_placeholder_value_is_caught() -> None:
    table = load_data_table("card")
    del table["procedures"]["values"]["hyperbaric_max_ata"]
    with pytest.raises(InvalidValue, match="hyperbaric_max_ata"):
        parse_card_content(table)


# ------------------------------------------------------- complications of the implanted system


def test_what_to_do_panel_also_says_get_help_for_infection_and_meningitis(
    content: CardContent,
) -> None:
    panel = build_wallet_card(_data(), content).panels[2]
    closing = panel.closing_alert.lower()
    assert closing.startswith("get help now")
    for words in ("fever", "wound", "headache", "stiff neck", "meningitis"):
        assert words in closing
    assert panel.closing_alert == content.complications.short


def test_clinician_panel_says_to_bridge_when_the_pump_is_removed(content: CardContent) -> None:
    bullets = build_wallet_card(_data(), content).panels[3].bullets
    joined = " ".join(bullets)
    assert "Oral baclofen alone may not prevent withdrawal." in joined
    (bridge,) = [b for b in bullets if b.startswith("Pump removed or stopped")]
    for words in ("oral", "intrathecal", "abrupt", "withdrawal"):
        assert words in bridge


def test_full_size_copy_tells_an_emergency_team_about_complications(content: CardContent) -> None:
    details = {p.heading: p for p in build_wallet_card(_data(), content).details}
    infection = details["Signs of an infected pump or wound, or meningitis"]
    assert infection.emphasis
    assert infection.alert.startswith("Get emergency help now")
    assert any("fluid at the pump or back wound" in b for b in infection.bullets)
    assert any("headache and a stiff neck" in b for b in infection.bullets)
    (removed,) = details["If the pump is removed or stops"].bullets
    assert removed == (
        "If the pump has to be removed or stops (infection, explant), baclofen must not stop "
        "abruptly: a bridge with oral baclofen or intrathecal baclofen is needed, and "
        "withdrawal must be watched for."
    )
    (moved,) = details["If the pump has turned over in its pocket"].bullets
    assert "cannot be refilled" in moved
    assert "run empty" in moved


def test_complication_texts_keep_their_source_and_status(content: CardContent) -> None:
    sources = dict(build_wallet_card(_data(), content).sources)
    assert content.complications.status == "assumed"
    assert sources["Infection and meningitis signs"].endswith("(assumed)")
    assert "[C7][C8]" in sources["Infection and meningitis signs"]
    assert content.explant.status == "confirmed"
    assert "[C58]" in sources["Pump removed or stopped"]
    assert "(assumed)" not in sources["Pump removed or stopped"]
    assert sources["Pump turned over"].endswith("(assumed)")
    # Confirmed sections are printed as before, without a mark.
    assert sources["Overdose signs"] == content.overdose.source


@pytest.mark.parametrize("section", ["complications", "explant", "pump_moved"])
def test_missing_complication_section_is_caught(section: str) -> None:
    table = load_data_table("card")
    del table[section]
    with pytest.raises(InvalidValue, match=rf"card\.{section}"):
        parse_card_content(table)
    table = load_data_table("card")
    table[section]["status"] = "probably"
    with pytest.raises(InvalidValue, match=rf"card\.{section}\.status"):
        parse_card_content(table)

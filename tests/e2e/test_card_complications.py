"""The wallet card's complications texts, end to end: the CLI prints them, and on the
rendered card nothing overflows a credit-card panel for any pump kind (PDF fit check and
the HTML page measured in a real browser)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page

from itb import bootstrap
from itb.adapters.card_render import check_card_fits, render_card_html
from itb.adapters.datafiles import read_toml_file
from itb.domain.clinical.card import PUMP_KINDS, WalletCard, build_wallet_card
from itb.entrypoints.cli.main import main
from itb.services.clinical_inputs import parse_card_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "wallet_card.toml"


def _card(kind: str) -> WalletCard:
    table = read_toml_file(EXAMPLE, field="CARD.toml")
    table["pump"]["kind"] = kind
    data = parse_card_file(table, default_issued_on=table["issued_on"])
    return build_wallet_card(data, bootstrap.catalog().card)


def _cli(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["itb", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out


@pytest.mark.parametrize("kind", PUMP_KINDS)
def test_every_panel_fits_at_a_readable_size(kind: str) -> None:
    sizes = check_card_fits(_card(kind))
    assert min(sizes) >= 7.0, sizes


@pytest.mark.parametrize("kind", PUMP_KINDS)
def test_html_panels_do_not_overflow_in_a_browser(page: Page, kind: str) -> None:
    page.set_content(render_card_html(_card(kind)))
    overflowing = page.eval_on_selector_all(
        ".block .panel",
        "els => els.filter(e => e.scrollHeight > e.clientHeight + 1)"
        ".map(e => e.querySelector('h2').textContent)",
    )
    assert overflowing == []
    assert page.locator(".block .panel p.alert.closing").count() == 1
    assert "meningitis" in page.locator(".block .panel p.alert.closing").inner_text()


def test_cli_prints_the_complication_texts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = _cli(["card", str(EXAMPLE)], capsys, monkeypatch)
    assert code == 0
    flat = " ".join(out.replace("│", " ").split())
    assert "Get help now too for fever" in flat
    assert "Do not stop baclofen suddenly" in flat
    assert "Pump removed or stopped (infection): bridge with oral or intrathecal baclofen" in flat
    code, out = _cli(["card", str(EXAMPLE), "--json"], capsys, monkeypatch)
    payload = json.loads(out)
    assert payload["panels"][2]["closing_alert"].startswith("Get help now")
    headings = [p["heading"] for p in payload["details"]]
    assert "If the pump is removed or stops" in headings
    assert "If the pump has turned over in its pocket" in headings
    sections = {s["section"]: s["source"] for s in payload["sources"]}
    assert sections["Infection and meningitis signs"].endswith("(assumed)")

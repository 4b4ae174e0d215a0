"""``itb card CARD.toml --pdf out.pdf --html out.html``: the emergency wallet card."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel

from itb.adapters.card_render import write_card_html, write_card_pdf
from itb.adapters.datafiles import load_data_table, read_toml_file
from itb.domain.clinical.card import WalletCard, build_wallet_card, parse_card_content
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli.clinical_common import DISCLAIMER, console, echo_json, jsonable
from itb.services.clinical_inputs import parse_card_file

__all__ = ["card", "register"]


def card(
    card_file: Annotated[
        Path,
        typer.Argument(metavar="CARD.toml", help="Card details (docs/clinical-workflow.md)."),
    ],
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="Write the printable card (A4 PDF) here.")
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option("--html", help="Write a self-contained HTML page (works offline) here."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the card's content as JSON.")
    ] = False,
) -> None:
    """Make the emergency wallet card: pump, drug, dose, dates, contacts, withdrawal signs, MRI.

    Credit-card-sized panels with cut and fold lines, plus a full-size copy.
    """
    data = parse_card_file(
        read_toml_file(card_file, field="CARD.toml"), default_issued_on=date.today()
    )
    wallet = build_wallet_card(data, parse_card_content(load_data_table("card")))
    written: list[str] = []
    for path, writer in ((pdf, write_card_pdf), (html_out, write_card_html)):
        if path is None:
            continue
        if not path.parent.is_dir():
            raise InvalidValue("output", str(path), "a path in an existing folder")
        writer(wallet, path)
        written.append(str(path))
    if as_json:
        echo_json({**_payload(wallet), "written": written})
        return
    _show(wallet, written)


def _payload(wallet: WalletCard) -> dict[str, object]:
    return {
        "title": wallet.title,
        "issued_on": wallet.issued_on.isoformat(),
        "panels": jsonable(wallet.panels),
        "details": jsonable(wallet.details),
        "warnings": list(wallet.warnings),
        "sources": [{"section": k, "source": v} for k, v in wallet.sources],
        "disclaimer": wallet.disclaimer,
    }


def _show(wallet: WalletCard, written: list[str]) -> None:
    out = console()
    for i, p in enumerate(wallet.panels, start=1):
        lines = [f"[bold]{escape(k)}:[/] {escape(v)}" for k, v in p.rows]
        lines += [f"• {escape(b)}" for b in p.bullets]
        if p.footer:
            lines.append(f"[italic]{escape(p.footer)}[/]")
        style = "red" if p.emphasis else "blue"
        out.print(
            Panel("\n".join(lines), title=f"{i}. {escape(p.heading)}", border_style=style, width=72)
        )
    for w in wallet.warnings:
        out.print(f"[bold red]Warning:[/] {escape(w)}")
    for path in written:
        out.print(f"written: {escape(path)}")
    if not written:
        out.print("[dim]Use --pdf and/or --html to write the card.[/]")
    out.print(f"[dim]{DISCLAIMER}[/]")


def register(app: typer.Typer) -> None:
    """Add ``itb card`` to ``app``."""
    app.command("card")(card)

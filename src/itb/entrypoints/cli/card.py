"""``itb card CARD.toml --pdf out.pdf --html out.html``: the emergency wallet card."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel

from itb import bootstrap
from itb.adapters.datafiles import read_toml_file
from itb.adapters.output_paths import check_output_file
from itb.domain.clinical.card import WalletCard, build_wallet_card
from itb.domain.errors import InvalidValue
from itb.entrypoints.cli.clinical_common import DISCLAIMER, console, echo_json, jsonable
from itb.services.clinical_inputs import card_limits, parse_card_file

__all__ = ["card", "register", "show_card"]


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

    Credit-card-sized panels with cut and fold lines, plus a full-size copy. The PDF
    and the HTML page are written together or not at all (each into an existing
    folder; an existing file is replaced).
    """
    pdf_path = None if pdf is None else check_output_file(pdf, field="--pdf")
    html_path = None if html_out is None else check_output_file(html_out, field="--html")
    if pdf_path is not None and pdf_path == html_path:
        raise InvalidValue("--html", str(html_out), f"a path other than --pdf ({pdf})")
    cat = bootstrap.catalog()
    data = parse_card_file(
        read_toml_file(card_file, field="CARD.toml"),
        default_issued_on=date.today(),
        limits=card_limits(cat.library),
    )
    wallet = build_wallet_card(data, cat.card)
    written: list[str] = []
    if pdf_path is not None or html_path is not None:
        from itb.adapters.card_render import write_card_files  # reportlab: only to write

        write_card_files(wallet, pdf=pdf_path, html_path=html_path)
        written = [str(p) for p in (pdf, html_out) if p is not None]
    if as_json:
        echo_json({**_payload(wallet), "written": written})
        return
    show_card(wallet, written)


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


def show_card(wallet: WalletCard, written: list[str]) -> None:
    """Print the card's panels, warnings and the files written."""
    out = console()
    for i, p in enumerate(wallet.panels, start=1):
        lines = [f"[bold red]{escape(p.alert)}[/]"] if p.alert else []
        lines += [f"[bold]{escape(k)}:[/] {escape(v)}" for k, v in p.rows]
        lines += [f"• {escape(b)}" for b in p.bullets]
        if p.footer:
            lines.append(f"[italic]{escape(p.footer)}[/]")
        if p.closing_alert:
            lines.append(f"[bold red]{escape(p.closing_alert)}[/]")
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

"""Render the emergency wallet card: a printable PDF (reportlab) and a self-contained HTML page.

Layout: four credit-card panels (85.6 x 54 mm, ISO/IEC 7810 ID-1) in a 2 x 2
block with a solid cut line around it and dashed fold lines between panels,
then a full-size copy of everything (and the sources) below, flowing onto a
second page if needed. The HTML page has the same content, inline CSS only and
no external resources, so it can be saved on a phone and opened offline.

The domain (``itb.domain.clinical.card``) decides what the card says; this
module only draws it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import io
import json
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from itb import __version__
from itb.adapters.datafiles import data_files_digest
from itb.adapters.output_paths import write_files_atomic
from itb.domain.clinical.card import CardPanel, WalletCard
from itb.domain.errors import InvalidValue

__all__ = [
    "CARD_HEIGHT_MM",
    "CARD_WIDTH_MM",
    "check_card_fits",
    "render_card_html",
    "render_card_pdf",
    "write_card_files",
    "write_card_html",
    "write_card_pdf",
]

CARD_WIDTH_MM = 85.6
CARD_HEIGHT_MM = 54.0
"""ISO/IEC 7810 ID-1 (credit card) size."""

_RED = colors.HexColor("#B00020")
_NAVY = colors.HexColor("#12355B")
_GREY = colors.HexColor("#555555")
_PAD_MM = 2.2
_FONT_SIZES_PT = (9.0, 8.6, 8.2, 7.8, 7.4, 7.0, 6.6, 6.2, 5.8)
"""Panel body sizes tried in turn until the text fits; below 5.8 pt is not readable."""

_PAGE_TITLE = "Emergency wallet card: intrathecal baclofen (ITB) pump"
_PAGE_MARGIN_MM = 14.0
_TITLE_BLOCK_MM = 24.0


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


# --------------------------------------------------------------------------- PDF


def _panel_flowables(panel: CardPanel, size: float, width: float) -> list[Any]:
    body = ParagraphStyle(
        "body", fontName="Helvetica", fontSize=size, leading=size * 1.18, alignment=TA_LEFT
    )
    bullet = ParagraphStyle("bullet", parent=body, leftIndent=size * 0.9, bulletIndent=0)
    foot = ParagraphStyle("foot", parent=body, fontName="Helvetica-Oblique", textColor=_GREY)
    alert = ParagraphStyle(
        "alert", parent=body, fontName="Helvetica-Bold", textColor=_RED, spaceAfter=size * 0.35
    )
    out: list[Any] = []
    if panel.alert:
        out.append(Paragraph(_esc(panel.alert), alert))
    if panel.rows:
        label_w = width * 0.36
        data = [
            [
                Paragraph(f"<b>{_esc(k)}</b>", body),
                Paragraph(_esc(v), body),
            ]
            for k, v in panel.rows
        ]
        table = Table(data, colWidths=[label_w, width - label_w])
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 1),
                    ("TOPPADDING", (0, 0), (-1, -1), 0),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 0.6),
                ]
            )
        )
        out.append(table)
    for b in panel.bullets:
        out.append(Paragraph(_esc(b), bullet, bulletText="•"))
    if panel.footer:
        out.append(Spacer(1, size * 0.3))
        out.append(Paragraph(_esc(panel.footer), foot))
    if panel.closing_alert:
        out.append(Spacer(1, size * 0.3))
        out.append(Paragraph(_esc(panel.closing_alert), alert))
    return out


def _height(flowables: list[Any], width: float) -> float:
    total = 0.0
    for f in flowables:
        _, h = f.wrap(width, 10_000)
        total += float(h) + float(f.getSpaceBefore()) + float(f.getSpaceAfter())
    return total


_HEAD_SIZE_PT = 8.0


def _panel_font_size(panel: CardPanel, number: int) -> float:
    """The largest body size (pt) at which ``panel`` fits its card panel.

    Raises:
        InvalidValue: it does not fit even at the smallest readable size.
    """
    inner_w = (CARD_WIDTH_MM - 2 * _PAD_MM) * mm
    avail = (CARD_HEIGHT_MM - 2 * _PAD_MM) * mm - _HEAD_SIZE_PT * 1.9
    for size in _FONT_SIZES_PT:
        if _height(_panel_flowables(panel, size, inner_w), inner_w) <= avail:
            return size
    raise InvalidValue(
        f"card panel {number} ({panel.heading})",
        "too much text",
        f"text that fits {CARD_WIDTH_MM} x {CARD_HEIGHT_MM} mm at "
        f"{_FONT_SIZES_PT[-1]} pt: shorten the longest entries",
    )


def check_card_fits(card: WalletCard) -> list[float]:
    """The body size (pt) of each credit-card panel.

    Raises:
        InvalidValue: a panel's text does not fit at a readable size (the HTML page
            would cut it off, the PDF cannot print it).
    """
    return [_panel_font_size(p, n) for n, p in enumerate(card.panels, start=1)]


def _draw_panel(
    canvas: Any, panel: CardPanel, x: float, y: float, number: int, size: float
) -> None:
    """Draw ``panel`` with its lower-left corner at (x, y), in points, body at ``size`` pt."""
    w, h = CARD_WIDTH_MM * mm, CARD_HEIGHT_MM * mm
    pad = _PAD_MM * mm
    head_size = _HEAD_SIZE_PT
    head_h = head_size * 1.9
    fill = _RED if panel.emphasis else _NAVY
    canvas.setFillColor(fill)
    canvas.rect(x, y + h - head_h, w, head_h, stroke=0, fill=1)
    canvas.setFillColor(colors.white)
    canvas.setFont("Helvetica-Bold", head_size)
    heading = panel.heading
    while (
        canvas.stringWidth(heading, "Helvetica-Bold", head_size) > w - 2 * pad - 8 and head_size > 6
    ):
        head_size -= 0.25
        canvas.setFont("Helvetica-Bold", head_size)
    canvas.drawString(x + pad, y + h - head_h + (head_h - head_size) / 2 + 1, heading)
    canvas.setFont("Helvetica", 5)
    canvas.drawRightString(x + w - pad / 2, y + h - head_h + 2, str(number))
    inner_w = w - 2 * pad
    avail = h - head_h - 2 * pad
    flow = _panel_flowables(panel, size, inner_w)
    frame = Frame(
        x + pad,
        y + pad,
        inner_w,
        avail,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        showBoundary=0,
    )
    frame.addFromList(flow, canvas)


def _draw_card_block(
    canvas: Any, card: WalletCard, sizes: list[float], page_w: float, top: float
) -> float:
    """Draw the 2 x 2 block with cut and fold lines; return its bottom y (points)."""
    w, h = CARD_WIDTH_MM * mm, CARD_HEIGHT_MM * mm
    x0 = (page_w - 2 * w) / 2
    y0 = top - 2 * h
    positions = [(x0, y0 + h), (x0 + w, y0 + h), (x0, y0), (x0 + w, y0)]
    for number, (panel, (x, y), size) in enumerate(
        zip(card.panels, positions, sizes, strict=True), start=1
    ):
        _draw_panel(canvas, panel, x, y, number, size)
    canvas.setStrokeColor(colors.black)
    canvas.setLineWidth(0.8)
    canvas.setDash()
    canvas.rect(x0, y0, 2 * w, 2 * h, stroke=1, fill=0)
    canvas.setDash(3, 2)
    canvas.setLineWidth(0.6)
    canvas.line(x0 + w, y0 - 3 * mm, x0 + w, y0 + 2 * h + 3 * mm)
    canvas.line(x0 - 3 * mm, y0 + h, x0 + 2 * w + 3 * mm, y0 + h)
    canvas.setDash()
    canvas.setFont("Helvetica", 6.5)
    canvas.setFillColor(_GREY)
    canvas.drawString(x0, y0 - 4 * mm, "CUT along the solid line.   FOLD along the dashed lines.")
    return float(y0 - 6 * mm)


def made_by(card: WalletCard) -> str:
    """What made the card: the itb and data versions and the SHA-256 of its content."""
    content = json.dumps(
        dataclasses.asdict(card), sort_keys=True, default=str, separators=(",", ":")
    )
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    return f"itb {__version__}, data {data_files_digest()[:12]}; content SHA-256 {digest}"


def render_card_pdf(card: WalletCard) -> bytes:
    """The printable card (A4) as PDF bytes.

    Raises:
        InvalidValue: a panel's text does not fit the card at a readable size.
    """
    # Fit every panel before anything is drawn (an error inside reportlab's page
    # callback would be re-wrapped).
    sizes = check_card_fits(card)
    page_w, page_h = A4
    margin = _PAGE_MARGIN_MM * mm
    card_top = page_h - margin - _TITLE_BLOCK_MM * mm
    card_bottom = card_top - 2 * CARD_HEIGHT_MM * mm - 8 * mm

    def first_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFillColor(colors.black)
        canvas.setFont("Helvetica-Bold", 15)
        canvas.drawString(margin, page_h - margin - 6 * mm, _PAGE_TITLE)
        canvas.setFont("Helvetica", 9)
        canvas.drawString(
            margin,
            page_h - margin - 12 * mm,
            "Print at 100 % (actual size, not 'fit to page'). Cut out, then fold so that panel 1 "
            "is on the front.",
        )
        canvas.drawString(
            margin,
            page_h - margin - 17 * mm,
            f"Made on {card.issued_on.strftime('%d %b %Y')}. Keep it with you, and make a new card "
            "after every dose change or refill.",
        )
        _draw_card_block(canvas, card, sizes, page_w, card_top)
        canvas.restoreState()

    flow_h_first = card_bottom - margin
    frame_first = Frame(margin, margin, page_w - 2 * margin, flow_h_first, id="first")
    frame_next = Frame(margin, margin, page_w - 2 * margin, page_h - 2 * margin, id="next")
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=_PAGE_TITLE,
        author="itb",
        subject="Intrathecal baclofen pump emergency card",
        keywords=made_by(card),
    )
    doc.addPageTemplates(
        [
            PageTemplate(id="first", frames=[frame_first], onPage=first_page),
            PageTemplate(id="next", frames=[frame_next]),
        ]
    )
    story = _details_story(card, page_w - 2 * margin)
    doc.build(story)
    return buffer.getvalue()


def write_card_pdf(card: WalletCard, path: Path) -> None:
    """Write the printable card (A4) to ``path`` (atomically).

    Raises:
        InvalidValue: a panel's text does not fit the card at a readable size.
    """
    write_card_files(card, pdf=path)


def write_card_files(
    card: WalletCard, *, pdf: Path | None = None, html_path: Path | None = None
) -> list[Path]:
    """Write the PDF and/or the HTML page: both or neither.

    Both are rendered in memory first (the fit check runs for either: the HTML page
    has the same credit-card panels, which would cut off text that does not fit),
    then written through temporary siblings renamed into place together.

    Raises:
        InvalidValue: a panel's text does not fit the card at a readable size.
    """
    check_card_fits(card)
    items: list[tuple[Path, bytes]] = []
    if pdf is not None:
        items.append((pdf, render_card_pdf(card)))
    if html_path is not None:
        items.append((html_path, render_card_html(card).encode("utf-8")))
    return write_files_atomic(items)


def _details_story(card: WalletCard, width: float) -> list[Any]:
    from reportlab.platypus.doctemplate import NextPageTemplate

    h = ParagraphStyle("h", fontName="Helvetica-Bold", fontSize=11, leading=14, spaceBefore=4)
    body = ParagraphStyle("b", fontName="Helvetica", fontSize=9.5, leading=12)
    small = ParagraphStyle("s", fontName="Helvetica", fontSize=7.5, leading=9.5, textColor=_GREY)
    story: list[Any] = [
        NextPageTemplate("next"),
        Paragraph("Full-size copy (for home, carers and clinicians)", h),
        Spacer(1, 2 * mm),
    ]
    col_w = (width - 6 * mm) / 2
    cells: list[Any] = []
    for panel in card.details:
        flow = [
            Paragraph(
                f'<font color="{"#B00020" if panel.emphasis else "#12355B"}"><b>'
                f"{_esc(panel.heading)}</b></font>",
                ParagraphStyle("ph", parent=body, fontSize=10, leading=13),
            )
        ]
        if panel.alert:
            flow.append(Paragraph(f'<font color="#B00020"><b>{_esc(panel.alert)}</b></font>', body))
        for k, v in panel.rows:
            flow.append(Paragraph(f"<b>{_esc(k)}:</b> {_esc(v)}", body))
        for b in panel.bullets:
            flow.append(
                Paragraph(_esc(b), ParagraphStyle("bl", parent=body, leftIndent=9), bulletText="•")
            )
        if panel.footer:
            flow.append(Paragraph(f"<i>{_esc(panel.footer)}</i>", body))
        if panel.closing_alert:
            flow.append(
                Paragraph(f'<font color="#B00020"><b>{_esc(panel.closing_alert)}</b></font>', body)
            )
        flow.append(Spacer(1, 3 * mm))
        cells.append(flow)
    half = (len(cells) + 1) // 2
    left, right = cells[:half], cells[half:]
    rows = [[left[i], right[i] if i < len(right) else ""] for i in range(half)]
    table = Table(rows, colWidths=[col_w, col_w], hAlign="LEFT", spaceBefore=0)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6 * mm),
            ]
        )
    )
    story.append(table)
    sources = [
        Paragraph(
            "<b>Sources</b> (itb source tags: [Cn] clinical, [Dn] device, [Fn] founding texts)",
            small,
        )
    ]
    sources += [Paragraph(f"{_esc(k)}: {_esc(v)}", small) for k, v in card.sources]
    sources.append(Spacer(1, 2 * mm))
    sources.append(Paragraph(_esc(card.disclaimer), small))
    story.append(KeepTogether(sources))
    return story


# -------------------------------------------------------------------------- HTML

_CSS = """
* { box-sizing: border-box; }
body { font-family: Helvetica, Arial, sans-serif; color: #111; margin: 12mm; max-width: 190mm; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
p.howto { font-size: 10pt; margin: 0 0 5mm; }
.block { display: grid; grid-template-columns: 85.6mm 85.6mm; grid-template-rows: 54mm 54mm;
         border: 0.3mm solid #000; width: calc(171.2mm + 0.6mm); }
.panel { overflow: hidden; font-size: 7.2pt; line-height: 1.18; padding: 0 0 1.5mm; }
.panel:nth-child(1) { border-right: 0.3mm dashed #000; border-bottom: 0.3mm dashed #000; }
.panel:nth-child(2) { border-bottom: 0.3mm dashed #000; }
.panel:nth-child(3) { border-right: 0.3mm dashed #000; }
.panel h2 { margin: 0 0 1mm; padding: 1mm 2.2mm; font-size: 7.6pt; color: #fff; background: #12355B; }
.panel.alert h2, .detail.alert h3 { background: #B00020; }
.panel table { border-collapse: collapse; margin: 0 2.2mm; }
.panel td { padding: 0 1mm 0.3mm 0; vertical-align: top; }
.panel td.k { font-weight: bold; width: 25mm; }
.panel ul { margin: 0 2.2mm; padding-left: 3mm; }
.panel p.foot { margin: 0.8mm 2.2mm 0; font-style: italic; color: #444; }
.panel p.alert { margin: 0 2.2mm 1mm; }
.panel p.alert.closing { margin: 0.8mm 2.2mm 0; }
p.alert { font-weight: bold; color: #B00020; }
.cut { font-size: 8pt; color: #555; margin: 1mm 0 6mm; }
.details { display: grid; grid-template-columns: 1fr 1fr; gap: 4mm 8mm; font-size: 11pt; }
.detail h3 { margin: 0 0 1.5mm; padding: 1mm 2mm; font-size: 11pt; color: #fff; background: #12355B; }
.detail ul { margin: 0; padding-left: 5mm; }
.detail p { margin: 0.5mm 0; }
.warning { font-weight: bold; color: #B00020; }
.sources { font-size: 8.5pt; color: #444; margin-top: 6mm; }
@media screen and (max-width: 600px) {
  body { margin: 3mm; }
  .block { grid-template-columns: 1fr; grid-template-rows: none; width: auto; }
  .panel { font-size: 10pt; border: 0.3mm dashed #000 !important; }
  .panel h2 { font-size: 11pt; }
  .details { grid-template-columns: 1fr; }
}
@media print { body { margin: 0; } @page { size: A4; margin: 12mm; } }
"""


def _panel_html(panel: CardPanel, cls: str) -> str:
    parts = [f'<section class="{cls}{" alert" if panel.emphasis else ""}">']
    tag = "h2" if cls == "panel" else "h3"
    parts.append(f"<{tag}>{_esc(panel.heading)}</{tag}>")
    if panel.alert:
        parts.append(f'<p class="alert">{_esc(panel.alert)}</p>')
    if panel.rows:
        if cls == "panel":
            parts.append("<table>")
            parts += [
                f'<tr><td class="k">{_esc(k)}</td><td>{_esc(v)}</td></tr>' for k, v in panel.rows
            ]
            parts.append("</table>")
        else:
            parts += [f"<p><b>{_esc(k)}:</b> {_esc(v)}</p>" for k, v in panel.rows]
    if panel.bullets:
        parts.append("<ul>" + "".join(f"<li>{_esc(b)}</li>" for b in panel.bullets) + "</ul>")
    if panel.footer:
        parts.append(f'<p class="foot"><i>{_esc(panel.footer)}</i></p>')
    if panel.closing_alert:
        parts.append(f'<p class="alert closing">{_esc(panel.closing_alert)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def render_card_html(card: WalletCard) -> str:
    """The card as one self-contained HTML page (inline CSS, no scripts, no external files)."""
    warnings = "".join(f'<p class="warning">{_esc(w)}</p>' for w in card.warnings)
    sources = "".join(f"<li>{_esc(k)}: {_esc(v)}</li>" for k, v in card.sources)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{_esc(made_by(card))}">
<title>{_PAGE_TITLE}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_PAGE_TITLE}</h1>
<p class="howto">Print at 100&nbsp;% (actual size). Cut along the solid line, fold along the dashed
lines so that panel 1 is on the front. Made on {card.issued_on.strftime("%d %b %Y")}; make a new
card after every dose change or refill.</p>
{warnings}
<div class="block">
{"".join(_panel_html(p, "panel") for p in card.panels)}
</div>
<p class="cut">&#9986; cut along the solid line &nbsp; - - - fold along the dashed lines</p>
<h2>Full-size copy</h2>
<div class="details">
{"".join(_panel_html(p, "detail") for p in card.details)}
</div>
<div class="sources"><b>Sources</b> (itb source tags: [Cn] clinical, [Dn] device, [Fn] founding texts)<ul>{sources}</ul>
<p>{_esc(card.disclaimer)}</p><p class="made-by">{_esc(made_by(card))}</p></div>
</body>
</html>
"""


def write_card_html(card: WalletCard, path: Path) -> None:
    """Write :func:`render_card_html` to ``path`` (UTF-8, atomically).

    Raises:
        InvalidValue: a panel's text does not fit the card at a readable size.
    """
    write_card_files(card, html_path=path)

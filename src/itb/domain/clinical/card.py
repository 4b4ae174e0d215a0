"""The emergency wallet card: what it says (rendering lives in ``itb.adapters.card_render``).

Input is a plain frozen :class:`CardData` (today from a small TOML file, later
straight from the pump state). :func:`build_wallet_card` turns it and the
reviewed card texts (``itb/data/card.toml``) into a :class:`WalletCard`: the
panels of a credit-card-sized, foldable card plus a full-size copy, each line
traceable to its source (marked "assumed" where no source states it as written).
Besides withdrawal and overdose, the card tells an emergency team about the
implanted system's complications (:mod:`itb.domain.clinical.complications`): the
signs of an infected pump or meningitis, the bridge needed when the pump is
removed or stops, and that a pump turned over in its pocket cannot be refilled.
Nothing here draws or writes files.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from itb.domain.errors import InvalidValue
from itb.domain.provenance import STATUSES, Sourced, Status, sourced
from itb.domain.units import HOURS_PER_DAY, require_non_negative, require_positive

__all__ = [
    "PUMP_KINDS",
    "CardContent",
    "CardData",
    "CardPanel",
    "CardText",
    "Contact",
    "WalletCard",
    "build_wallet_card",
    "parse_card_content",
]

PUMP_KINDS: tuple[str, ...] = ("peristaltic", "valve", "constant_flow")
_NBSP = "\u00a0"


@dataclass(frozen=True, slots=True)
class Contact:
    """A person or service to call."""

    name: str
    phone: str
    role: str = ""

    def __post_init__(self) -> None:
        for field in ("name", "phone"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise InvalidValue(f"contact.{field}", value, "a non-empty string")


@dataclass(frozen=True, slots=True)
class CardData:
    """Everything the card needs about one person's pump and therapy.

    Attributes:
        patient_name: name printed on the card.
        pump_model: e.g. ``"SynchroMed II 8637-40"``.
        pump_kind: ``"peristaltic"``, ``"valve"`` or ``"constant_flow"`` (selects the MRI text).
        drug: e.g. ``"Baclofen injection (intrathecal)"``.
        concentration_mcg_per_ml: drug in the pump, mcg/mL.
        daily_dose_mcg_per_day: programmed daily dose, mcg/day.
        program_summary: plain words, e.g. ``"Simple continuous"``.
        next_refill_date: booked refill date.
        low_reservoir_alarm_date: date the low-reservoir alarm is expected, if known.
        replacement_due_date: estimated pump replacement date (battery), if known.
        implanting_clinic: the ITB clinic that manages the pump.
        emergency_contacts: family, carers, GP ... (at least one).
        issued_on: date the card was made.
        implant_date: date of implant, if known.
    """

    patient_name: str
    pump_model: str
    pump_kind: str
    drug: str
    concentration_mcg_per_ml: float
    daily_dose_mcg_per_day: float
    program_summary: str
    next_refill_date: date
    implanting_clinic: Contact
    emergency_contacts: tuple[Contact, ...]
    issued_on: date
    low_reservoir_alarm_date: date | None = None
    replacement_due_date: date | None = None
    implant_date: date | None = None

    def __post_init__(self) -> None:
        for field in ("patient_name", "pump_model", "drug", "program_summary"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise InvalidValue(field, value, "a non-empty string")
        if self.pump_kind not in PUMP_KINDS:
            raise InvalidValue("pump_kind", self.pump_kind, ", ".join(PUMP_KINDS))
        require_positive("concentration_mcg_per_ml", self.concentration_mcg_per_ml)
        require_non_negative("daily_dose_mcg_per_day", self.daily_dose_mcg_per_day)
        if not self.emergency_contacts:
            raise InvalidValue("emergency_contacts", [], "at least one contact")
        if self.implant_date is not None and self.implant_date > self.issued_on:
            raise InvalidValue(
                "implant_date",
                self.implant_date.isoformat(),
                f"on or before issued_on {self.issued_on}",
            )


@dataclass(frozen=True, slots=True)
class CardText:
    """A reviewed block of card text with its source."""

    heading: str
    lines: tuple[str, ...]
    source: str
    status: Status
    later: str = ""
    action: str = ""
    short: str = ""
    """A shorter wording for a credit-card panel (the full-size copy prints ``lines``)."""

    @property
    def cited(self) -> str:
        """The source, marked "(assumed)" when no source states the text as written."""
        return self.source if self.status == "confirmed" else f"{self.source} (assumed)"


@dataclass(frozen=True, slots=True)
class CardContent:
    """Reviewed card texts (``itb/data/card.toml``), numbers already filled in."""

    title: CardText
    withdrawal: CardText
    overdose: CardText
    complications: CardText
    """Signs of an infected pump or wound, or meningitis: get help now."""
    explant: CardText
    """The pump removed or stopped: bridge, never an abrupt stop."""
    pump_moved: CardText
    """The pump turned over in its pocket: it cannot be refilled."""
    clinicians: CardText
    mri: Mapping[str, CardText]
    mri_heading: str
    mri_note: str
    procedures: CardText
    refill_after_alarm: str
    refill_overdue: str
    refill_source: str
    disclaimer: str
    values: Mapping[str, Sourced]


def _str(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{where}.{key}", value, "a non-empty string")
    return value


def _lines(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidValue(f"{where}.{key}", value, "a non-empty list of strings")
    return tuple(value)


def _prov(entry: Mapping[str, Any], where: str) -> tuple[str, Status]:
    status = entry.get("status")
    if status not in STATUSES:
        raise InvalidValue(f"{where}.status", status, " or ".join(STATUSES))
    return _str(entry, "source", where), status


def _fill(template: str, values: Mapping[str, Sourced], where: str) -> str:
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing = names - set(values)
    if missing:
        raise InvalidValue(
            where, sorted(missing)[0], f"a value in [procedures.values]: {', '.join(values)}"
        )
    return template.format(**{k: v.value for k, v in values.items()})


def parse_card_content(table: Mapping[str, Any]) -> CardContent:
    """Parse ``itb/data/card.toml``.

    Raises:
        InvalidValue: a text, source or value is missing, or a placeholder has no value.
    """

    def section(name: str, key: str) -> CardText:
        entry = table.get(name)
        if not isinstance(entry, Mapping):
            raise InvalidValue(f"card.{name}", entry, "a table")
        source, status = _prov(entry, f"card.{name}")
        heading = _str(entry, "heading", f"card.{name}")
        lines = (
            (_str(entry, "warning", f"card.{name}"),)
            if key == "warning"
            else _lines(entry, key, f"card.{name}")
        )
        return CardText(
            heading,
            lines,
            source,
            status,
            str(entry.get("later", "")),
            str(entry.get("action", "")),
            str(entry.get("short", "")),
        )

    proc = table.get("procedures", {})
    values = {
        k: sourced(proc.get("values", {}), k, where="card.procedures.values")
        for k in proc.get("values", {})
    }
    p_source, p_status = _prov(proc, "card.procedures")
    procedures = CardText(
        _str(table.get("mri", {}), "heading", "card.mri"),
        tuple(
            _fill(t, values, "card.procedures.lines")
            for t in _lines(proc, "lines", "card.procedures")
        ),
        p_source,
        p_status,
    )
    mri: dict[str, CardText] = {}
    mri_table = table.get("mri", {})
    for kind in PUMP_KINDS:
        entry = mri_table.get(kind)
        where = f"card.mri.{kind}"
        if not isinstance(entry, Mapping):
            raise InvalidValue(where, entry, "a table with text, source and status")
        source, status = _prov(entry, where)
        mri[kind] = CardText("", (_str(entry, "text", where),), source, status)
    refill = table.get("refill", {})
    return CardContent(
        title=section("title", "warning"),
        withdrawal=section("withdrawal", "signs"),
        overdose=section("overdose", "signs"),
        complications=section("complications", "signs"),
        explant=section("explant", "lines"),
        pump_moved=section("pump_moved", "lines"),
        clinicians=section("clinicians", "lines"),
        mri=mri,
        mri_heading=_str(mri_table, "heading", "card.mri"),
        mri_note=_str(mri_table, "source_note", "card.mri"),
        procedures=procedures,
        refill_after_alarm=_str(refill, "refill_after_alarm", "card.refill"),
        refill_overdue=_str(refill, "refill_overdue", "card.refill"),
        refill_source=_str(refill, "source", "card.refill"),
        disclaimer=_str(table.get("disclaimer", {}), "text", "card.disclaimer"),
        values=values,
    )


@dataclass(frozen=True, slots=True)
class CardPanel:
    """One panel of the card: a heading, rows of (label, value) and bullet lines."""

    heading: str
    alert: str = ""
    """Printed first and prominently (bold, red)."""
    rows: tuple[tuple[str, str], ...] = ()
    bullets: tuple[str, ...] = ()
    footer: str = ""
    emphasis: bool = False
    """Printed as an alert (e.g. the front panel's warning)."""
    closing_alert: str = ""
    """Printed last, as prominently as ``alert`` (another reason to get help now)."""


@dataclass(frozen=True, slots=True)
class WalletCard:
    """The card's content, ready to render.

    Attributes:
        panels: four credit-card panels in order: front, therapy and dates, what to do
            (withdrawal signs, then the signs of an infected pump or meningitis), for
            clinicians / MRI (with the bridge when the pump is removed or stops).
        details: the same and more at full size (every contact, every procedure caution,
            overdose signs, infection and meningitis signs, a removed or turned-over
            pump), for home and for clinicians.
        warnings: problems with the data the person must see (printed on the card).
        sources: (section, source) pairs, printed on the full-size copy.
        disclaimer: printed small on every output.
    """

    title: str
    panels: tuple[CardPanel, ...]
    details: tuple[CardPanel, ...]
    warnings: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    disclaimer: str
    issued_on: date


def _phone(contact: Contact) -> str:
    """Name and phone; the number's spaces are non-breaking so it never wraps mid-number."""
    phone = contact.phone.strip().replace(" ", _NBSP)
    return f"{contact.name}, {phone}"


def _fmt_date(d: date | None) -> str:
    return d.strftime("%d %b %Y") if d is not None else "not known"


def _num(x: float) -> str:
    """A dose or concentration exactly as programmed (up to 3 decimals, no rounding of
    significant digits): 400 -> "400", 412.5 -> "412.5", 2000 -> "2,000"."""
    return f"{x:,.3f}".rstrip("0").rstrip(".")


def build_wallet_card(data: CardData, content: CardContent) -> WalletCard:
    """Build the card's content from ``data`` and the reviewed texts.

    Dose wording spells the unit out ("mcg per day") and gives the hourly figure
    as well, since per-hour vs per-day confusion is a known use error ([D56]).
    """
    warnings: list[str] = []
    if data.next_refill_date < data.issued_on:
        warnings.append(content.refill_overdue)
    if (
        data.low_reservoir_alarm_date is not None
        and data.next_refill_date > data.low_reservoir_alarm_date
    ):
        warnings.append(content.refill_after_alarm)

    front = CardPanel(
        heading=content.title.heading.upper(),
        alert=content.title.lines[0],
        rows=(
            ("Name", data.patient_name),
            ("Pump", data.pump_model),
            ("Drug", f"baclofen {_num(data.concentration_mcg_per_ml)} mcg/mL"),
            ("Daily dose", f"{_num(data.daily_dose_mcg_per_day)} mcg per day"),
            ("ITB clinic", _phone(data.implanting_clinic)),
        ),
        footer=content.title.action,
        emphasis=True,
    )
    dose_h = data.daily_dose_mcg_per_day / HOURS_PER_DAY
    therapy_rows = (
        ("Drug", data.drug),
        ("Concentration", f"{_num(data.concentration_mcg_per_ml)} mcg per mL"),
        (
            "Daily dose",
            f"{_num(data.daily_dose_mcg_per_day)} mcg per day ({_num(dose_h)} mcg per hour)",
        ),
        ("Program", data.program_summary),
        ("Next refill", _fmt_date(data.next_refill_date)),
        ("Low-drug alarm", _fmt_date(data.low_reservoir_alarm_date)),
        ("Replace pump by", _fmt_date(data.replacement_due_date)),
    )
    therapy = CardPanel(
        heading="Therapy and dates",
        rows=(
            *therapy_rows,
            *((c.role or "Contact", _phone(c)) for c in data.emergency_contacts[:2]),
        ),
        alert=" ".join(warnings),
    )
    complications = content.complications
    act = CardPanel(
        heading=content.withdrawal.heading,
        alert=content.withdrawal.action,
        bullets=content.withdrawal.lines,
        footer=content.withdrawal.later,
        emphasis=True,
        closing_alert=complications.short or " ".join(complications.lines),
    )
    mri = content.mri[data.pump_kind]
    explant = content.explant
    clin = CardPanel(
        heading=f"{content.clinicians.heading} / {content.mri_heading}",
        bullets=(
            *content.clinicians.lines[:2],
            explant.short or explant.lines[0],
            *mri.lines,
            content.procedures.lines[0],
        ),
        footer=f"{content.overdose.heading}: {', '.join(s.lower() for s in content.overdose.lines)}.",
    )
    sources = (
        ("Warning and withdrawal signs", content.withdrawal.cited),
        ("Overdose signs", content.overdose.cited),
        ("Infection and meningitis signs", complications.cited),
        ("Pump removed or stopped", explant.cited),
        ("Pump turned over", content.pump_moved.cited),
        ("For clinicians", content.clinicians.cited),
        ("MRI", mri.cited),
        ("Procedures", content.procedures.cited),
        ("Refill dates", content.refill_source),
    )
    details = (
        CardPanel(
            heading=content.withdrawal.heading,
            alert=content.withdrawal.action,
            bullets=content.withdrawal.lines,
            footer=content.withdrawal.later,
            emphasis=True,
        ),
        CardPanel(heading=content.overdose.heading, bullets=content.overdose.lines),
        CardPanel(
            heading=complications.heading,
            alert=complications.action,
            bullets=complications.lines,
            emphasis=True,
        ),
        CardPanel(heading=explant.heading, bullets=explant.lines),
        CardPanel(heading=content.pump_moved.heading, bullets=content.pump_moved.lines),
        CardPanel(
            heading="Pump and therapy",
            rows=(
                ("Name", data.patient_name),
                ("Pump", data.pump_model),
                *therapy_rows,
                *((("Implanted", _fmt_date(data.implant_date)),) if data.implant_date else ()),
            ),
            alert=" ".join(warnings),
        ),
        CardPanel(
            heading="Contacts",
            rows=(
                ("ITB clinic", _phone(data.implanting_clinic)),
                *((c.role or "Contact", _phone(c)) for c in data.emergency_contacts),
            ),
        ),
        CardPanel(heading=content.clinicians.heading, bullets=content.clinicians.lines),
        CardPanel(
            heading=content.mri_heading,
            bullets=(*mri.lines, *content.procedures.lines),
            footer=content.mri_note,
        ),
    )
    return WalletCard(
        title=content.title.heading,
        panels=(front, therapy, act, clin),
        details=details,
        warnings=tuple(warnings),
        sources=sources,
        disclaimer=content.disclaimer,
        issued_on=data.issued_on,
    )

"""``itb clinic ...``: the clinic registry from the command line.

Every command opens the registry at ``--db`` (or ``ITB_DATABASE_URL``, default
``sqlite:///itb-clinic.db``) and acts as the registry user named by ``--user``
(or ``ITB_USER``): the command line is for the people who hold the database,
so it names its user rather than asking for a password, and every use case
still checks that user's role. Rich tables for people, ``--json`` for
machines; errors are one line with the exit codes of the error table.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from itb import bootstrap
from itb.config import load_settings
from itb.domain.clinic.access import Actor
from itb.domain.clinic.audit import Checkpoint, verify_chain
from itb.domain.clinic.forecast import Band, PumpForecast, band_words, history_words, pct_words
from itb.domain.clinic.radar import RadarRow
from itb.domain.clinic.records import plain
from itb.domain.errors import CheckFailed, InvalidValue
from itb.domain.pump.prescription import PatientBolusSettings
from itb.domain.pump.refill import Verdict
from itb.entrypoints.cli.card import show_card
from itb.entrypoints.cli.clinical_common import DISCLAIMER, console, echo_json
from itb.services.clinical_inputs import parse_candidacy_record
from itb.services.screening_record import parse_screening_record

if TYPE_CHECKING:
    from itb.services.clinic import ChangeRequest, ClinicService, ProgramRequest, PumpOut
    from itb.services.clinic.demo import DemoClinic

__all__ = ["register"]

app = typer.Typer(
    help="The clinic registry: patients, pumps, refills, programming, visits, the refill "
    "radar and the audit trail (SQLite by default, PostgreSQL by URL).",
    no_args_is_help=True,
)
program_app = typer.Typer(help="Programming changes: stage, verify (a second person), commit.")
patient_app = typer.Typer(help="Patients: add, show, list, edit, contacts.")
visit_app = typer.Typer(help="Booked visits: book, list, mark done or missed.")
audit_app = typer.Typer(help="The audit trail: verify the hash chain, export its head.")
user_app = typer.Typer(help="Registry users and their roles.")
complication_app = typer.Typer(
    help="Complications of the implanted system: record one, append its treatments and "
    "outcome, list them (an explant among the treatments ends the implant)."
)
export_app = typer.Typer(
    help="Export from the registry: FHIR R4 Bundles and refill-reminder calendars."
)
app.add_typer(patient_app, name="patient")
app.add_typer(program_app, name="program")
app.add_typer(visit_app, name="visit")
app.add_typer(audit_app, name="audit")
app.add_typer(export_app, name="export")
app.add_typer(user_app, name="user")
app.add_typer(complication_app, name="complication")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="The registry: sqlite:///PATH (default sqlite:///itb-clinic.db) or "
        "postgresql://USER@HOST/DB; or set ITB_DATABASE_URL.",
        show_default=False,
    ),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        metavar="NAME",
        help="The registry user acting (their role decides what they may do); or set ITB_USER.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="WHEN",
        help="When it happened: YYYY-MM-DDTHH:MM (the patient's local time) or with an "
        "offset; default now.",
        show_default=False,
    ),
]
VersionOption = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        metavar="N",
        help="The implant version you read (itb clinic pump): refused if someone acted on "
        "the pump since.",
        show_default=False,
    ),
]


# ------------------------------------------------------------------ plumbing


@contextmanager
def _service(db: str | None, *, create: bool = False) -> Iterator[ClinicService]:
    settings = load_settings(database_url=db)
    handle = bootstrap.clinic(settings.database_url, create=create)
    try:
        yield handle.service
    finally:
        handle.close()


def _actor(service: ClinicService, user: str | None) -> Actor:
    name = user or os.environ.get("ITB_USER", "")
    if not name:
        raise InvalidValue("--user", None, "the registry user acting (or set ITB_USER)")
    return service.actor(name)


def _when(text: str | None, field: str = "--at") -> datetime | None:
    """A date-time as typed: an offset keeps it aware; without one it is the patient's
    local time (the use case places it)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidValue(field, text, "YYYY-MM-DDTHH:MM[:SS][+HH:MM]") from None
    return value


def _day(text: str | None, field: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidValue(field, text, "a date YYYY-MM-DD") from None


@contextmanager
def _flags(**names: str) -> Iterator[None]:
    """Name refused values as the user typed them (``fill.volume_ml`` -> ``--fill-ml``)."""
    try:
        yield
    except InvalidValue as exc:
        target = names.get(exc.field)
        if target is None:
            for key, flag in names.items():
                if exc.field.startswith(key + " ") or exc.field.startswith(key + "."):
                    target = flag
                    break
        if target is not None:
            raise exc.renamed(target) from None
        raise


def _program(
    dose: float | None,
    flex: list[str] | None,
    pb_dose: float | None = None,
    pb_lockout_h: float | None = None,
    pb_max: int | None = None,
    pb_duration_h: float | None = None,
) -> ProgramRequest | None:
    from itb.services.clinic import ProgramRequest
    from itb.services.safety_review import parse_flex_step

    if dose is None and not flex and pb_dose is None:
        return None
    steps = tuple(parse_flex_step(s, field="--flex-step") for s in flex or [])
    patient_bolus = None
    if pb_dose is not None:
        if pb_lockout_h is None or pb_max is None or pb_duration_h is None:
            raise InvalidValue(
                "--patient-bolus-mcg",
                pb_dose,
                "with --patient-bolus-lockout-h, --patient-bolus-max-per-day and "
                "--patient-bolus-duration-h",
            )
        patient_bolus = PatientBolusSettings(pb_dose, pb_duration_h, pb_lockout_h, pb_max)
    return ProgramRequest(dose_mcg_per_day=dose, flex_steps=steps, patient_bolus=patient_bolus)


def _d(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d")


def _dt(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _out(payload: Any) -> None:
    echo_json(plain(payload))


def _forecast_data(f: PumpForecast | None) -> dict[str, Any] | None:
    """A reservoir forecast for ``--json``: every field (times in ISO form, each band as a
    list: low end, median, high end) and what the refills say in words; None: none."""
    if f is None:
        return None
    out: dict[str, Any] = dict(plain(f))
    out["history"] = history_words(f)
    return out


def _band_words(times: Band) -> str:
    mid = times[1]
    return band_words(times) + ("" if mid is None else f" (median {_d(mid)})")


def _forecast_words(f: PumpForecast | None) -> str:
    """A reservoir forecast in one line, as the radar and the previews say it."""
    if f is None:
        return "none (the pump would deliver nothing)"
    by = f"before the {_d(f.by_at)} visit" if f.by_visit else f"by {_d(f.by_at)}, no visit booked"
    band = round(100 * f.band_probability)
    return (
        f"P(dry {by}) {pct_words(f.p_dry)}, P(low reservoir) {pct_words(f.p_low)}; "
        f"empty {band} % band {_band_words(f.empty_at)}; "
        f"refill by {_d(f.advised_by)}; {history_words(f)}"
    )


_PROGRAM_FLAGS = {
    "dose_mcg_per_day": "--dose",
    "flex_steps": "--flex-step",
    "flex": "--flex-step",
    "patient_bolus": "--patient-bolus-mcg",
}


# ------------------------------------------------------------------ set-up


@app.command("init")
def init(
    db: DbOption = None,
    clinic_name: Annotated[
        str, typer.Option("--clinic-name", help="The clinic's name (printed on wallet cards).")
    ] = "",
    clinic_phone: Annotated[
        str, typer.Option("--clinic-phone", help="The clinic's phone number (on wallet cards).")
    ] = "",
    admin: Annotated[
        str, typer.Option("--admin", help="User name of the first physician account.")
    ] = "",
    admin_name: Annotated[
        str, typer.Option("--admin-name", help="Their name as shown (default: the user name).")
    ] = "",
    password_env: Annotated[
        str,
        typer.Option(
            "--password-env",
            metavar="VAR",
            help="Read the first physician's password from this environment variable "
            "(default: ask for it).",
        ),
    ] = "",
    nurses_may_verify: Annotated[
        bool,
        typer.Option(
            "--nurses-may-verify/--physicians-verify",
            help="Whether a nurse other than its author may verify a programming change.",
        ),
    ] = False,
    empty: Annotated[
        bool,
        typer.Option("--empty", help="Create the tables only (to restore a backup into)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Set up a new registry: its tables, the clinic's details and the first physician."""
    with _service(db, create=True) as service:
        if empty:
            if as_json:
                _out({"created": True, "empty": True})
            else:
                console().print("Registry tables created (empty, ready for itb clinic restore).")
            return
        for flag, value in (
            ("--clinic-name", clinic_name),
            ("--clinic-phone", clinic_phone),
            ("--admin", admin),
        ):
            if not value.strip():
                raise InvalidValue(flag, value, "a value (the registry needs it)")
        password = _password(password_env, f"Password for {admin}")
        user = service.initialise(
            clinic_name=clinic_name,
            clinic_phone=clinic_phone,
            nurses_may_verify=nurses_may_verify,
            admin_username=admin,
            admin_display_name=admin_name or admin,
            admin_password=password,
        )
    if as_json:
        _out({"clinic": clinic_name, "admin": user})
        return
    console().print(
        f"Registry ready: [bold]{escape(clinic_name)}[/]; first physician "
        f"[bold]{escape(user.username)}[/]. Next: itb clinic user add ... --user {user.username}"
    )


def _password(env: str, prompt: str) -> str:
    if env:
        value = os.environ.get(env)
        if value is None:
            raise InvalidValue("--password-env", env, "the name of a set environment variable")
        return value
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


@app.command("upgrade")
def upgrade(db: DbOption = None) -> None:
    """Migrate a registry to this itb's schema (a backup first is wise)."""
    with _service(db, create=True):
        pass
    console().print("Registry schema is current.")


def build_virtual_clinic(
    url: str, patients: int, seed: int, day: date, *, quiet: bool
) -> DemoClinic:
    """Build the virtual clinic in the new registry at ``url`` (a progress bar unless
    ``quiet``); the histories end at 08:00 UTC on ``day``.

    Raises:
        InvalidValue: the registry is set up already.
    """
    from rich.progress import Progress

    from itb.services.clinic.demo import build_demo_clinic

    end = datetime.combine(day, time(8, 0), tzinfo=UTC)
    handle = bootstrap.clinic(url, create=True)
    try:
        if handle.service.clinic_info() is not None:
            raise InvalidValue(
                "--db", handle.registry.where, "a new, empty registry (this one is set up already)"
            )
        with Progress(console=console(), transient=True, disable=quiet) as progress:
            task = progress.add_task("simulating patients", total=patients)

            def step(stage: str, done: int, total: int) -> None:
                progress.update(task, description=stage, completed=done, total=total)

            return build_demo_clinic(
                handle.registry.uow,
                bootstrap.catalog(),
                bootstrap.password_hasher(),
                patients=patients,
                seed=seed,
                today=end,
                progress=step,
            )
    finally:
        handle.close()


@app.command("demo")
def demo(
    db: DbOption = None,
    patients: Annotated[
        int, typer.Option("--patients", min=1, max=10_000, help="How many virtual patients.")
    ] = 40,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Population and history seed.")] = 2026,
    today: Annotated[
        str | None,
        typer.Option(
            "--today",
            metavar="DATE",
            help="The day every history ends (default: today); a fixed date gives the same "
            "clinic every time.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build a virtual clinic: N patients with years of history from the simulation engine.

    Screening, implant, titration, refills with their discrepancies, late refills, alarms,
    catheter faults, replacements and booked visits, all entered through the registry's
    use cases. Needs a new (empty) registry. Prints the demo users and their passwords.
    """
    day = _day(today, "--today") or datetime.now(UTC).date()
    settings = load_settings(database_url=db)
    result = build_virtual_clinic(settings.database_url, patients, seed, day, quiet=as_json)
    if as_json:
        _out(result)
        return
    con = console()
    con.print(
        f"Virtual clinic ready at {escape(settings.database_url)}: {result.patients} patients "
        f"({result.implanted} with a pump, {result.not_candidates} not candidates after "
        "screening), histories to " + day.isoformat() + "."
    )
    counts = Table(title="Records", show_header=False)
    for key, value in result.records.items():
        counts.add_row(key, f"{value:,}")
    con.print(counts)
    users = Table(title="Demo users (virtual clinic only: never reuse these passwords)")
    for col in ("user", "role", "password", "patient"):
        users.add_column(col)
    for u in result.users:
        users.add_row(u.username, u.role, u.password, u.patient_id or "")
    con.print(users)
    if result.refused:
        con.print(f"{len(result.refused)} steps were refused by the registry (in the audit trail).")
    con.print(f"Next: itb clinic radar --user {result.users[0].username}")
    con.print(DISCLAIMER)


# ------------------------------------------------------------------ users


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="The new user's name (no spaces).")],
    role: Annotated[
        str, typer.Option("--role", help="physician, nurse, viewer, patient or caregiver.")
    ],
    patient_id: Annotated[
        str | None,
        typer.Option("--patient", help="For a patient or caregiver: whose record."),
    ] = None,
    display_name: Annotated[str, typer.Option("--name", help="Name as shown.")] = "",
    password_env: Annotated[
        str,
        typer.Option("--password-env", metavar="VAR", help="Read the password from this variable."),
    ] = "",
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a registry user (physicians manage users)."""
    with _service(db) as service:
        actor = _actor(service, user)
        password = _password(password_env, f"Password for {username}")
        with _flags(role="--role", patient_id="--patient", username="USERNAME"):
            account = service.create_user(
                actor,
                username=username,
                role=role,
                password=password,
                display_name=display_name,
                patient_id=patient_id,
            )
    if as_json:
        _out(account)
        return
    console().print(f"User [bold]{escape(account.username)}[/] ({account.role}) added.")


@user_app.command("list")
def user_list(db: DbOption = None, user: UserOption = None, as_json: JsonOption = False) -> None:
    """List the registry's users."""
    with _service(db) as service:
        rows = service.users(_actor(service, user))
    if as_json:
        _out({"users": rows})
        return
    table = Table(title="Users")
    for col in ("user", "name", "role", "patient", "active"):
        table.add_column(col)
    for u in rows:
        table.add_row(
            u.username, u.display_name, u.role, u.patient_id or "", "yes" if u.active else "no"
        )
    console().print(table)


# ------------------------------------------------------------------ patients


@patient_app.command("add")
def patient_add(
    mrn: Annotated[str, typer.Option("--mrn", help="Medical record number (unique).")],
    given_name: Annotated[str, typer.Option("--given-name", help="Given name.")],
    family_name: Annotated[str, typer.Option("--family-name", help="Family name.")],
    birth_date: Annotated[str, typer.Option("--birth-date", metavar="DATE", help="YYYY-MM-DD.")],
    sex: Annotated[str, typer.Option("--sex", help="female, male, other or unknown.")],
    cause: Annotated[
        str,
        typer.Option(
            "--cause",
            help="spinal_cord_injury, multiple_sclerosis, cerebral_palsy, "
            "traumatic_brain_injury, stroke or other.",
        ),
    ],
    weight_kg: Annotated[float | None, typer.Option("--weight-kg", help="Weight, kg.")] = None,
    injury_level: Annotated[
        str | None, typer.Option("--injury-level", help="Spinal level of an injury (T4).")
    ] = None,
    sci_t6: Annotated[
        bool, typer.Option("--sci-at-or-above-t6", help="Injury at T6 or above (withdrawal risk).")
    ] = False,
    communication: Annotated[
        bool,
        typer.Option("--communication-difficulty", help="Communication difficulties (risk)."),
    ] = False,
    previous_withdrawal: Annotated[
        bool, typer.Option("--previous-withdrawal", help="History of withdrawal (risk).")
    ] = False,
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone (the pump clock follows it).")
    ] = "UTC",
    notes: Annotated[str, typer.Option("--notes", help="Free text.")] = "",
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a patient."""
    from itb.services.clinic import NewPatient

    born = _day(birth_date, "--birth-date")
    assert born is not None
    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(
            mrn="--mrn",
            given_name="--given-name",
            family_name="--family-name",
            birth_date="--birth-date",
            sex="--sex",
            cause="--cause",
            weight_kg="--weight-kg",
            injury_level="--injury-level",
            sci_at_or_above_t6="--sci-at-or-above-t6",
            timezone="--timezone",
            notes="--notes",
        ):
            record = service.register_patient(
                actor,
                NewPatient(
                    mrn=mrn,
                    given_name=given_name,
                    family_name=family_name,
                    birth_date=born,
                    sex=sex,
                    cause=cause,
                    weight_kg=weight_kg,
                    injury_level=injury_level,
                    sci_at_or_above_t6=sci_t6,
                    communication_difficulty=communication,
                    previous_withdrawal=previous_withdrawal,
                    timezone=timezone,
                    notes=notes,
                ),
            )
    if as_json:
        _out(record)
        return
    console().print(
        f"Patient [bold]{record.id}[/] registered: {escape(record.name)} ({record.mrn})."
    )


@patient_app.command("list")
def patient_list(db: DbOption = None, user: UserOption = None, as_json: JsonOption = False) -> None:
    """List the patients you may see."""
    with _service(db) as service:
        rows = service.patients(_actor(service, user))
    if as_json:
        _out({"patients": rows})
        return
    table = Table(title=f"Patients ({len(rows)})")
    for col in ("id", "name", "MRN", "born", "cause", "withdrawal risk"):
        table.add_column(col)
    for p in rows:
        table.add_row(
            p.id,
            escape(p.name),
            escape(p.mrn),
            p.birth_date.isoformat(),
            p.cause,
            ", ".join(p.withdrawal_risk) or "—",
        )
    console().print(table)


@patient_app.command("show")
def patient_show(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT", help="The patient's id (P0001).")],
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Everything the registry holds on one patient, and their pump now."""
    with _service(db) as service:
        actor = _actor(service, user)
        chart = service.chart(actor, patient_id)
        implant = chart.active_implant
        now = None if implant is None else service.pump_now(actor, implant.id)
    if as_json:
        _out({"chart": chart, "pump_now": now})
        return
    con = console()
    p = chart.patient
    con.print(
        f"[bold]{p.id}[/] {escape(p.name)} — MRN {escape(p.mrn)}, born {p.birth_date}, "
        f"{p.sex}, {p.cause.replace('_', ' ')} ({p.origin} origin)"
        + (f", injury {p.injury_level}" if p.injury_level else "")
        + (f", {p.weight_kg:g} kg" if p.weight_kg else "")
    )
    con.print("Withdrawal risk: " + (", ".join(p.withdrawal_risk) or "none recorded"))
    for c in chart.contacts:
        con.print(
            f"Contact: {escape(c.name)} ({escape(c.relation)}) {escape(c.phone)}"
            + (" — caregiver" if c.caregiver else "")
        )
    for a in chart.assessments:
        con.print(f"{a.kind.capitalize()} {_d(a.at)}: {a.verdict} — {escape(a.summary)}")
    if now is not None:
        _show_pump(now)
    for i in chart.implants:
        con.print(
            f"Implant {i.id}: {i.pump_preset} serial {escape(i.serial)}, implanted "
            f"{_d(i.implanted_at)}, catheter {i.catheter_family} {i.catheter_length_cm:g} cm"
            + (f" tip {i.tip_level}" if i.tip_level else "")
            + f", filled {i.fill_volume_ml:g} mL {i.fill_concentration_mcg_per_ml:g} mcg/mL "
            f"({i.fill_product} lot {escape(i.fill_lot)}), {i.status.value}"
            + (f" {_d(i.ended_at)} ({escape(i.end_reason)})" if i.ended_at else "")
        )
    refills = Table(title=f"Refills (last 8 of {len(chart.refills)})")
    for col in ("id", "date", "expected mL", "withdrawn mL", "verdict", "filled", "new alarm"):
        refills.add_column(col)
    for r in chart.refills[-8:]:
        refills.add_row(
            r.id,
            _d(r.at),
            f"{r.expected_ml:.1f}",
            f"{r.withdrawn_ml:.1f}",
            r.verdict + ("" if r.resolved else " (open)"),
            f"{r.fill_volume_ml:g} mL {r.concentration_mcg_per_ml:g} mcg/mL",
            _d(r.low_alarm_at),
        )
    con.print(refills)
    upcoming = [v for v in chart.visits if v.status.value == "booked"]
    con.print(
        "Booked: " + ("; ".join(f"{v.kind} {_dt(v.at)} ({v.id})" for v in upcoming) or "none")
    )


def _show_pump(now: Any) -> None:
    con = console()
    s = now.snapshot
    state = "running" if now.running else f"STOPPED ({now.stop_reason})"
    con.print(
        f"Pump now ({_dt(now.at)}): {state}; {now.prescription}; calculated reservoir "
        f"{now.reservoir_calculated_ml:.2f} mL; low-reservoir alarm {_d(s.low_alarm_at)}, empty "
        f"{_d(s.empty_at)} (could be dry from {_d(s.earliest_dry_at)}); drug stable to "
        f"{_d(s.stability_until)}; battery ERI {_d(s.eri_at)}"
        + ("; ERI REACHED" if now.eri_reached else "")
        + (f"; alarms: {', '.join(now.active_alarms)}" if now.active_alarms else "")
        + f"; implant version {now.implant.version}"
    )


@patient_app.command("contact")
def patient_contact(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    name: Annotated[str, typer.Option("--name", help="The contact's name.")],
    relation: Annotated[str, typer.Option("--relation", help="Husband, mother, GP ...")],
    phone: Annotated[str, typer.Option("--phone", help="Phone number.")],
    caregiver: Annotated[bool, typer.Option("--caregiver", help="A caregiver.")] = False,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a contact or caregiver (they go on the wallet card)."""
    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(name="--name", relation="--relation", phone="--phone"):
            c = service.add_contact(
                actor, patient_id, name=name, relation=relation, phone=phone, caregiver=caregiver
            )
    if as_json:
        _out(c)
        return
    console().print(f"Contact {c.id} added to {patient_id}.")


@patient_app.command("edit")
def patient_edit(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    version: Annotated[
        int, typer.Option("--version", help="The record version you read (patient show --json).")
    ],
    weight_kg: Annotated[float | None, typer.Option("--weight-kg")] = None,
    notes: Annotated[str | None, typer.Option("--notes")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone")] = None,
    previous_withdrawal: Annotated[
        bool | None, typer.Option("--previous-withdrawal/--no-previous-withdrawal")
    ] = None,
    communication: Annotated[
        bool | None, typer.Option("--communication-difficulty/--no-communication-difficulty")
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a patient's details (refused if the record changed since your version)."""
    changes = {
        k: v
        for k, v in {
            "weight_kg": weight_kg,
            "notes": notes,
            "timezone": timezone,
            "previous_withdrawal": previous_withdrawal,
            "communication_difficulty": communication,
        }.items()
        if v is not None
    }
    if not changes:
        raise InvalidValue("options", "none", "at least one field to change")
    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(weight_kg="--weight-kg", notes="--notes", timezone="--timezone"):
            record = service.edit_patient(actor, patient_id, expected_version=version, **changes)
    if as_json:
        _out(record)
        return
    console().print(f"Patient {record.id} updated (version {record.version}).")


@app.command("candidacy")
def candidacy(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    record_file: Annotated[
        Path,
        typer.Option(
            "--file", metavar="RECORD.toml", help="The candidacy record (itb candidacy's format)."
        ),
    ],
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Assess candidacy by the rules and record the verdict."""
    record, on = parse_candidacy_record(bootstrap.read_toml(record_file, field="RECORD.toml"))
    with _service(db) as service:
        a = service.record_candidacy(_actor(service, user), patient_id, record, on=on)
    if as_json:
        _out(a)
        return
    console().print(f"Candidacy {a.id}: [bold]{a.verdict}[/] — {escape(a.summary)}")


@app.command("screening")
def screening(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    record_file: Annotated[
        Path,
        typer.Option(
            "--file",
            metavar="SCREENING.toml",
            help="The screening trial record (itb screening-trial's format).",
        ),
    ],
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Assess a screening trial by the protocol and record the verdict."""
    record = parse_screening_record(bootstrap.read_toml(record_file, field="SCREENING.toml"))
    with _service(db) as service:
        a = service.record_screening(_actor(service, user), patient_id, record)
    if as_json:
        _out(a)
        return
    console().print(f"Screening {a.id}: [bold]{a.verdict}[/] — {escape(a.summary)}")


# ------------------------------------------------------------------ implants and pumps


FillMl = Annotated[float, typer.Option("--fill-ml", help="Volume filled, mL.")]
Conc = Annotated[float, typer.Option("--concentration", help="Concentration filled, mcg/mL.")]
Product = Annotated[
    str, typer.Option("--product", help="Product (baclofen_500, baclofen_1000, baclofen_2000).")
]
Lot = Annotated[str, typer.Option("--lot", help="Lot number.")]
Expiry = Annotated[str | None, typer.Option("--expiry", metavar="DATE", help="Expiry date.")]
Dose = Annotated[
    float | None,
    typer.Option(
        "--dose",
        help="Daily dose, mcg/day (simple continuous; with --flex-step the intended dose).",
    ),
]
FlexSteps = Annotated[
    list[str] | None,
    typer.Option(
        "--flex-step",
        metavar="HH:MM=RATE",
        help="A flex step (repeat): from HH:MM at RATE mcg/h, every day.",
    ),
]
LowAlarm = Annotated[
    float | None, typer.Option("--low-alarm-ml", help="Low-reservoir alarm volume, mL.")
]
Reason = Annotated[str, typer.Option("--reason", help="Why, in your words.")]
Override = Annotated[
    str | None, typer.Option("--override-reason", help="Why a drug-library soft limit is passed.")
]

_FILL_FLAGS = {
    "fill.volume_ml": "--fill-ml",
    "volume_ml": "--fill-ml",
    "fill.concentration_mcg_per_ml": "--concentration",
    "concentration_mcg_per_ml": "--concentration",
    "fill.product": "--product",
    "fill.lot": "--lot",
    "fill.expiry": "--expiry",
    "at": "--at",
    "low_reservoir_alarm_ml": "--low-alarm-ml",
    "reason": "--reason",
    **_PROGRAM_FLAGS,
}


@app.command("implant")
def implant(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    pump: Annotated[str, typer.Option("--pump", help="Pump preset (itb pump presets).")],
    serial: Annotated[str, typer.Option("--serial", help="The pump's serial number.")],
    catheter: Annotated[
        str, typer.Option("--catheter", help="Catheter family (ascenda_like, prometra_catheter).")
    ],
    catheter_length_cm: Annotated[
        float, typer.Option("--catheter-length-cm", help="Implanted catheter length, cm.")
    ],
    fill_ml: FillMl,
    concentration: Conc,
    product: Product,
    lot: Lot,
    expiry: Expiry = None,
    dose: Dose = None,
    flex_step: FlexSteps = None,
    low_alarm_ml: LowAlarm = None,
    tip_level: Annotated[
        str | None, typer.Option("--tip-level", help="Catheter tip level (T10).")
    ] = None,
    udi: Annotated[str | None, typer.Option("--udi", help="Device identifier.")] = None,
    no_prime: Annotated[bool, typer.Option("--no-prime", help="No priming bolus.")] = False,
    at: AtOption = None,
    reason: Reason = "implant",
    override_reason: Override = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an implanted pump with its first fill and program (a physician)."""
    from itb.services.clinic import DrugFill, NewImplant

    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(
            pump_preset="--pump",
            serial="--serial",
            catheter="--catheter",
            **{
                "catheter.family": "--catheter",
                "catheter.implanted_length_cm": "--catheter-length-cm",
                "tip_level": "--tip-level",
                "udi": "--udi",
            },
            **_FILL_FLAGS,
        ):
            record = service.record_implant(
                actor,
                patient_id,
                NewImplant(
                    at=_when(at),
                    pump_preset=pump,
                    serial=serial,
                    catheter_family=catheter,
                    catheter_length_cm=catheter_length_cm,
                    fill=DrugFill(fill_ml, concentration, product, lot, _day(expiry, "--expiry")),
                    program=_program(dose, flex_step),
                    udi=udi,
                    tip_level=tip_level,
                    low_reservoir_alarm_ml=low_alarm_ml,
                    prime=not no_prime,
                    reason=reason,
                    override_reason=override_reason,
                ),
            )
            now = service.pump_now(actor, record.id)
    if as_json:
        _out({"implant": record, "pump_now": now})
        return
    console().print(f"Implant [bold]{record.id}[/] recorded for {patient_id}.")
    _show_pump(now)


@app.command("pump")
def pump_now(
    implant_id: Annotated[str, typer.Argument(metavar="IMPLANT", help="The implant's id (I0001).")],
    at: AtOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """The pump now, from the record: calculated reservoir, alarm and empty dates, battery."""
    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(at="--at"):
            now = service.pump_now(actor, implant_id, at=_when(at))
    if as_json:
        _out(now)
        return
    _show_pump(now)


@app.command("interrogate")
def interrogate(
    implant_id: Annotated[str, typer.Argument(metavar="IMPLANT")],
    reservoir_ml: Annotated[
        float | None,
        typer.Option(
            "--reservoir-ml",
            help="The calculated reservoir the programmer shows, mL (default: the record's).",
        ),
    ] = None,
    alarm: Annotated[
        list[str] | None, typer.Option("--alarm", help="An alarm the programmer shows (repeat).")
    ] = None,
    note: Annotated[str, typer.Option("--note", help="Free text.")] = "",
    at: AtOption = None,
    expect_version: VersionOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an interrogation (it acknowledges the pump's alarms)."""
    from itb.services.clinic import Reading

    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(reservoir_ml="--reservoir-ml", alarm="--alarm", note="--note", at="--at"):
            q = service.record_interrogation(
                actor,
                implant_id,
                at=_when(at),
                reading=Reading(reservoir_ml, tuple(alarm or ()), note),
                expected_version=expect_version,
            )
    if as_json:
        _out(q)
        return
    diff = q.reservoir_calculated_ml - q.expected_ml
    console().print(
        f"Interrogation {q.id}: reservoir {q.reservoir_calculated_ml:.2f} mL "
        f"(record expected {q.expected_ml:.2f} mL"
        + (
            f"; differs by {diff:+.2f} mL: is a command missing from the record?"
            if abs(diff) > 0.05
            else ""
        )
        + "); alarms: "
        + (", ".join(q.active_alarms) or "none")
    )


@app.command("refill")
def refill(
    implant_id: Annotated[str, typer.Argument(metavar="IMPLANT")],
    withdrawn_ml: Annotated[float, typer.Option("--withdrawn-ml", help="Residual withdrawn, mL.")],
    fill_ml: FillMl,
    concentration: Conc,
    product: Product,
    lot: Lot,
    expiry: Expiry = None,
    dose: Dose = None,
    flex_step: FlexSteps = None,
    bridge_bolus: Annotated[
        bool, typer.Option("--bridge-bolus", help="Bridge bolus at a concentration change.")
    ] = False,
    low_alarm_ml: LowAlarm = None,
    at: AtOption = None,
    reason: Reason = "refill",
    override_reason: Override = None,
    expect_version: VersionOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a refill: the residual withdrawn is judged against the record's expected one.

    Exit 0 whatever the verdict (the verdict is the answer); a discrepancy stays open on the
    radar until it is worked up.
    """
    from itb.services.clinic import DrugFill, RefillRequest

    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(withdrawn_ml="--withdrawn-ml", **_FILL_FLAGS):
            out = service.record_refill(
                actor,
                implant_id,
                RefillRequest(
                    at=_when(at),
                    withdrawn_ml=withdrawn_ml,
                    fill=DrugFill(fill_ml, concentration, product, lot, _day(expiry, "--expiry")),
                    program=_program(dose, flex_step),
                    bridge_bolus=bridge_bolus,
                    low_reservoir_alarm_ml=low_alarm_ml,
                    reason=reason,
                    override_reason=override_reason,
                ),
                expected_version=expect_version,
            )
    if as_json:
        _out({"refill": out.visit, "discrepancy": out.discrepancy})
        return
    v = out.visit
    con = console()
    con.print(
        f"Refill {v.id}: expected {v.expected_ml:.2f} mL, withdrawn {v.withdrawn_ml:.2f} mL "
        f"(allowed ±{v.allowed_ml:.2f} mL): [bold]{v.verdict}[/]"
    )
    if v.verdict != "within tolerance":
        con.print(f"Watch for: {', '.join(v.watch)}. {escape(v.advice)}")
    con.print(
        f"New dates: low-reservoir alarm {_d(v.low_alarm_at)}, empty {_d(v.empty_at)} "
        f"(could be dry from {_d(v.earliest_dry_at)})."
    )


@app.command("refill-preview")
def refill_preview(
    implant_id: Annotated[str, typer.Argument(metavar="IMPLANT")],
    withdrawn_ml: Annotated[float, typer.Option("--withdrawn-ml", help="Residual withdrawn, mL.")],
    fill_ml: FillMl,
    concentration: Conc,
    product: Product,
    lot: Annotated[
        str, typer.Option("--lot", help="Lot number (checked as a refill's; nothing is recorded).")
    ] = "preview",
    expiry: Expiry = None,
    dose: Dose = None,
    flex_step: FlexSteps = None,
    bridge_bolus: Annotated[
        bool, typer.Option("--bridge-bolus", help="Bridge bolus at a concentration change.")
    ] = False,
    low_alarm_ml: LowAlarm = None,
    at: AtOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Preview a refill, nothing recorded: its verdict and the reservoir forecast after it.

    The residual's verdict, whether the pump and the drug library take the fill (a new
    concentration, a new program), and the reservoir forecast now and after the refill (the
    residual already learned from). The same options as ``itb clinic refill``. Exit 0 whatever it finds (the preview is the
    answer; a refusal is printed, and is ``refusal`` in --json).
    """
    from itb.services.clinic import DrugFill, RefillRequest

    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(withdrawn_ml="--withdrawn-ml", **_FILL_FLAGS):
            out = service.preview_refill(
                actor,
                implant_id,
                RefillRequest(
                    at=_when(at),
                    withdrawn_ml=withdrawn_ml,
                    fill=DrugFill(fill_ml, concentration, product, lot, _day(expiry, "--expiry")),
                    program=_program(dose, flex_step),
                    bridge_bolus=bridge_bolus,
                    low_reservoir_alarm_ml=low_alarm_ml,
                ),
            )
    if as_json:
        _out(
            {
                "implant_id": out.implant_id,
                "at": out.at,
                "discrepancy": out.discrepancy,
                "refusal": out.refusal,
                "forecast_now": _forecast_data(out.forecast_now),
                "forecast_after": _forecast_data(out.forecast_after),
            }
        )
        return
    d = out.discrepancy
    con = console()
    con.print(
        f"Refill preview for {out.implant_id} at {_dt(out.at)} (nothing recorded): expected "
        f"{d.expected_ml:.2f} mL, withdrawn {d.withdrawn_ml:.2f} mL (allowed ±{d.allowed_ml:.2f} "
        f"mL): [bold]{d.verdict.value}[/]"
    )
    if d.verdict is not Verdict.WITHIN_TOLERANCE:
        con.print(f"Watch for: {', '.join(d.watch)}. {escape(d.advice)}")
    if out.refusal:
        con.print(f"[bold red]The refill would be refused:[/] {escape(out.refusal)}")
    _show_forecasts(
        out.forecast_now, out.forecast_after, "after this refill", refused=bool(out.refusal)
    )


def _show_forecasts(
    now: PumpForecast | None, after: PumpForecast | None, what: str, *, refused: bool
) -> None:
    con = console()
    con.print(f"Reservoir forecast now: {escape(_forecast_words(now))}")
    later = "none: it would be refused" if refused and after is None else _forecast_words(after)
    con.print(f"Reservoir forecast {what}: {escape(later)}")


@app.command("surgery")
def surgery(
    implant_id: Annotated[str, typer.Argument(metavar="IMPLANT")],
    kind: Annotated[
        str, typer.Option("--kind", help="catheter_revision, explant, pocket_revision or other.")
    ],
    detail: Annotated[str, typer.Option("--detail", help="What was done.")] = "",
    at: AtOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an operation on the implanted system (an explant ends the implant)."""
    with _service(db) as service, _flags(kind="--kind", detail="--detail", at="--at"):
        s = service.record_surgery(
            _actor(service, user), implant_id, kind=kind, at=_when(at), detail=detail
        )
    if as_json:
        _out(s)
        return
    console().print(f"Surgery {s.id} ({s.kind}) recorded.")


# ------------------------------------------------------------------ complications

_COMPLICATION_FLAGS = {
    "kind": "--kind",
    "treatment": "--treatment",
    "bridge": "--bridge",
    "oral_bridge_mg_per_day": "--oral-bridge-mg-per-day",
    "status": "--status",
    "sign": "--sign",
    "note": "--note",
    "found_at": "--found",
    "onset_at": "--onset",
    "at": "--at",
}
SignOption = Annotated[
    list[str] | None,
    typer.Option(
        "--sign",
        help="A sign seen (repeat): fever, wound redness or drainage ... (itb triage "
        "--list-signs); other findings go in --note.",
        show_default=False,
    ),
]
TreatmentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--treatment",
        help="A treatment given (repeat): observation, antibiotics, bed_rest, blood_patch, "
        "drainage, pocket_revision, catheter_revision, explant (a physician: it records the "
        "explant surgery and ends the implant), reimplant.",
        show_default=False,
    ),
]
OralMgOption = Annotated[
    float | None,
    typer.Option(
        "--oral-bridge-mg-per-day",
        metavar="MG",
        help="The oral baclofen bridge, mg/day (with --bridge oral).",
        show_default=False,
    ),
]
StatusOption = Annotated[
    str | None,
    typer.Option(
        "--status",
        help="ongoing, explanted (the pump is out) or resolved; default: explanted with an "
        "explant, else as before (ongoing for a new complication).",
        show_default=False,
    ),
]
NoteOption = Annotated[str, typer.Option("--note", help="Findings and decisions in words.")]


def _complication_row(c: Any) -> tuple[str, ...]:
    bridge = c.bridge.value
    if c.oral_bridge_mg_per_day is not None:
        bridge += f" {c.oral_bridge_mg_per_day:g} mg/day"
    return (
        c.id,
        c.follows or "—",
        c.implant_id,
        c.kind.value.replace("_", " "),
        _d(c.found_at),
        _d(c.at),
        c.status.value,
        ", ".join(t.replace("_", " ") for t in c.treatments) or "—",
        bridge,
        ", ".join(x.replace("_", " ") for x in c.signs) or "—",
        c.stamp.created_by,
        escape(c.note),
    )


def _complication_done(c: Any, as_json: bool) -> None:
    if as_json:
        _out(c)
        return
    what = f"Complication {c.id} ({c.kind.value.replace('_', ' ')}): {c.status.value}"
    if c.follows:
        what += f", updates {c.follows}"
    con = console()
    con.print(what + ".")
    if c.explant_surgery_id and c.status.value == "explanted":
        con.print(
            f"Implant {c.implant_id} explanted (surgery {c.explant_surgery_id}); bridge: "
            f"{c.bridge.value}"
            + ("" if c.oral_bridge_mg_per_day is None else f" {c.oral_bridge_mg_per_day:g} mg/day")
            + "."
        )


@complication_app.command("add")
def complication_add(
    implant_id: Annotated[str, typer.Argument(metavar="IMPLANT")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="wound_infection, meningitis, csf_leak, skin_erosion, pump_flip, "
            "catheter_tip_mass, haematoma or neurological_injury.",
        ),
    ],
    found: Annotated[
        str | None,
        typer.Option(
            "--found",
            metavar="WHEN",
            help="When the clinic found it: YYYY-MM-DDTHH:MM (the patient's local time) or "
            "with an offset; default now.",
            show_default=False,
        ),
    ] = None,
    onset: Annotated[
        str | None,
        typer.Option(
            "--onset",
            metavar="WHEN",
            help="When it began, as far as known (default: not known).",
            show_default=False,
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="When the treatment given here began (an explant's time); default --found.",
            show_default=False,
        ),
    ] = None,
    sign: SignOption = None,
    treatment: TreatmentOption = None,
    bridge: Annotated[
        str,
        typer.Option("--bridge", help="While the pump is out: none, oral or intrathecal."),
    ] = "none",
    oral_mg: OralMgOption = None,
    status: StatusOption = None,
    note: NoteOption = "",
    expect_version: VersionOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a complication of an implanted system (nurses and physicians; an explant among
    the treatments: a physician)."""
    with (
        _service(db) as service,
        _flags(**_COMPLICATION_FLAGS, expected_version="--expect-version"),
    ):
        c = service.record_complication(
            _actor(service, user),
            implant_id,
            kind=kind,
            found_at=_when(found, "--found"),
            onset_at=_when(onset, "--onset"),
            at=_when(at),
            signs=sign or [],
            treatments=treatment or [],
            bridge=bridge,
            oral_bridge_mg_per_day=oral_mg,
            status=status,
            note=note,
            expected_version=expect_version,
        )
    _complication_done(c, as_json)


@complication_app.command("update")
def complication_update(
    complication_id: Annotated[str, typer.Argument(metavar="COMPLICATION")],
    at: AtOption = None,
    sign: SignOption = None,
    treatment: TreatmentOption = None,
    bridge: Annotated[
        str | None,
        typer.Option(
            "--bridge",
            help="While the pump is out: none, oral or intrathecal (default: as before).",
            show_default=False,
        ),
    ] = None,
    oral_mg: OralMgOption = None,
    status: StatusOption = None,
    note: NoteOption = "",
    expect_version: VersionOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Append an entry to a complication: treatments added, the bridge, the status, more
    signs, a note (the entry named must be its latest; nothing is ever changed in place)."""
    with (
        _service(db) as service,
        _flags(**_COMPLICATION_FLAGS, expected_version="--expect-version"),
    ):
        c = service.update_complication(
            _actor(service, user),
            complication_id,
            at=_when(at),
            signs=sign or [],
            treatments=treatment or [],
            bridge=bridge,
            oral_bridge_mg_per_day=oral_mg,
            status=status,
            note=note,
            expected_version=expect_version,
        )
    _complication_done(c, as_json)


@complication_app.command("list")
def complication_list(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    implant_id: Annotated[
        str | None, typer.Option("--implant", help="One implant only.", show_default=False)
    ] = None,
    latest: Annotated[
        bool,
        typer.Option("--latest", help="Each complication's latest entry only (its state now)."),
    ] = False,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """A patient's complications: every entry, each complication's in order."""
    with _service(db) as service:
        rows = service.complications(
            _actor(service, user), patient_id, implant_id=implant_id, latest_only=latest
        )
    if as_json:
        _out({"complications": rows})
        return
    table = Table(title=f"Complications of {patient_id}")
    for col in ("id", "updates", "implant", "kind", "found", "since", "status", "treatments",
                "bridge", "signs", "by", "note"):  # fmt: skip
        table.add_column(col)
    for c in rows:
        table.add_row(*_complication_row(c))
    console().print(table if rows else "No complications recorded.")


# ------------------------------------------------------------------ programming


BolusMcg = Annotated[float | None, typer.Option("--bolus-mcg", help="A single bolus, mcg.")]
BolusHours = Annotated[float | None, typer.Option("--bolus-duration-h", help="Over this long, h.")]
PatientBolusMcg = Annotated[
    float | None, typer.Option("--patient-bolus-mcg", help="Patient bolus dose, mcg.")
]
PatientBolusHours = Annotated[
    float | None, typer.Option("--patient-bolus-duration-h", help="Patient bolus duration, h.")
]
PatientBolusLockout = Annotated[
    float | None,
    typer.Option("--patient-bolus-lockout-h", help="Lockout between patient boluses, h."),
]
PatientBolusMax = Annotated[
    int | None, typer.Option("--patient-bolus-max-per-day", help="Most patient boluses a day.")
]
_CHANGE_FLAGS = {
    "low_reservoir_alarm_ml": "--low-alarm-ml",
    "bolus_duration_h": "--bolus-duration-h",
    "dose_mcg": "--bolus-mcg",
    "duration_h": "--bolus-duration-h",
    "reason": "--reason",
    **_PROGRAM_FLAGS,
}


def _change_request(
    dose: float | None,
    flex_step: list[str] | None,
    low_alarm_ml: float | None,
    bolus_mcg: float | None,
    bolus_duration_h: float | None,
    patient_bolus: tuple[float | None, float | None, float | None, int | None],
    override_reason: str | None,
    reason: str = "",
) -> ChangeRequest:
    """The change ``program stage`` and ``program preview`` review, from their options;
    ``patient_bolus``: dose, duration, lockout, most per day."""
    from itb.services.clinic import ChangeRequest as Request

    pb_dose, pb_duration, pb_lockout, pb_max = patient_bolus
    return Request(
        program=_program(dose, flex_step, pb_dose, pb_lockout, pb_max, pb_duration),
        low_reservoir_alarm_ml=low_alarm_ml,
        bolus_mcg=bolus_mcg,
        bolus_duration_h=bolus_duration_h,
        reason=reason,
        override_reason=override_reason,
    )


@program_app.command("stage")
def program_stage(
    implant_id: Annotated[str, typer.Argument(metavar="IMPLANT")],
    reason: Annotated[str, typer.Option("--reason", help="Why, in your words (required).")],
    dose: Dose = None,
    flex_step: FlexSteps = None,
    low_alarm_ml: LowAlarm = None,
    bolus_mcg: BolusMcg = None,
    bolus_duration_h: BolusHours = None,
    pb_dose: PatientBolusMcg = None,
    pb_duration: PatientBolusHours = None,
    pb_lockout: PatientBolusLockout = None,
    pb_max: PatientBolusMax = None,
    override_reason: Override = None,
    expect_version: VersionOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stage a programming change; the safety checks review it at once.

    Exit 1 when a check blocks it or a soft limit needs --override-reason.
    """
    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(**_CHANGE_FLAGS):
            change = service.stage_change(
                actor,
                implant_id,
                _change_request(
                    dose, flex_step, low_alarm_ml, bolus_mcg, bolus_duration_h,
                    (pb_dose, pb_duration, pb_lockout, pb_max), override_reason, reason,
                ),
                expected_version=expect_version,
            )  # fmt: skip
    if as_json:
        _out(change)
        return
    _show_change(change)


def _show_review(review: Any) -> None:
    con = console()
    table = Table(title="Side by side")
    for col in ("setting", "now", "proposed"):
        table.add_column(col)
    for row in review.get("rows", []):
        table.add_row(escape(str(row["field"])), escape(str(row["old"])), escape(str(row["new"])))
    con.print(table)
    for f in review.get("findings", []):
        con.print(f"{f['severity']}: {escape(f['message'])} {escape(f['source'])}")


def _show_change(change: Any) -> None:
    con = console()
    con.print(f"Change [bold]{change.id}[/] on {change.implant_id}: {change.state.value}")
    _show_review(change.review)
    if change.needs_verification and change.verified_by is None:
        con.print(
            "Needs a second person's verification: "
            + "; ".join(change.review.get("verification", []))
        )
    if change.verified_by:
        con.print(f"Verified by {change.verified_by}.")


@program_app.command("preview")
def program_preview(
    implant_id: Annotated[str, typer.Argument(metavar="IMPLANT")],
    dose: Dose = None,
    flex_step: FlexSteps = None,
    low_alarm_ml: LowAlarm = None,
    bolus_mcg: BolusMcg = None,
    bolus_duration_h: BolusHours = None,
    pb_dose: PatientBolusMcg = None,
    pb_duration: PatientBolusHours = None,
    pb_lockout: PatientBolusLockout = None,
    pb_max: PatientBolusMax = None,
    override_reason: Override = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Review a change as ``program stage`` would, nothing staged, with the forecast after it.

    Old and new side by side, every safety finding, and the reservoir forecast now and after
    the change. The same options as ``program stage`` (no --reason needed). Exit 0 whatever the review
    finds (a refusal is printed, and is ``refusal`` in --json); a value that cannot even be
    reviewed is refused as ``program stage`` refuses it.
    """
    with _service(db) as service:
        actor = _actor(service, user)
        with _flags(**_CHANGE_FLAGS):
            out = service.preview_change(
                actor,
                implant_id,
                _change_request(
                    dose, flex_step, low_alarm_ml, bolus_mcg, bolus_duration_h,
                    (pb_dose, pb_duration, pb_lockout, pb_max), override_reason,
                ),
            )  # fmt: skip
    if as_json:
        _out(
            {
                "implant_id": out.implant_id,
                "review": out.review,
                "blocked": out.blocked,
                "needs_verification": out.needs_verification,
                "needs_override_reason": out.needs_override_reason,
                "refusal": out.refusal,
                "forecast_now": _forecast_data(out.forecast_now),
                "forecast_after": _forecast_data(out.forecast_after),
            }
        )
        return
    con = console()
    con.print(f"Change preview on {out.implant_id} (nothing staged)")
    _show_review(out.review)
    if out.refusal:
        con.print(f"[bold red]It would be refused:[/] {escape(out.refusal)}")
    elif out.needs_verification:
        con.print(
            "It would need a second person's verification: "
            + "; ".join(out.review.get("verification", []))
        )
    _show_forecasts(
        out.forecast_now, out.forecast_after, "after this change", refused=bool(out.refusal)
    )


@program_app.command("verify")
def program_verify(
    change_id: Annotated[str, typer.Argument(metavar="CHANGE")],
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a staged change (a second person: not its author)."""
    with _service(db) as service:
        change = service.verify_change(_actor(service, user), change_id)
    if as_json:
        _out(change)
        return
    _show_change(change)


@program_app.command("commit")
def program_commit(
    change_id: Annotated[str, typer.Argument(metavar="CHANGE")],
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Program the pump with a staged change (exit 1: not verified yet, or the pump changed)."""
    with _service(db) as service:
        actor = _actor(service, user)
        change = service.commit_change(actor, change_id)
        now = service.pump_now(actor, change.implant_id)
    if as_json:
        _out({"change": change, "pump_now": now})
        return
    console().print(f"Change {change.id} committed.")
    _show_pump(now)


@program_app.command("cancel")
def program_cancel(
    change_id: Annotated[str, typer.Argument(metavar="CHANGE")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a staged change."""
    with _service(db) as service, _flags(reason="--reason"):
        change = service.cancel_change(_actor(service, user), change_id, reason=reason)
    if as_json:
        _out(change)
        return
    console().print(f"Change {change.id} cancelled.")


@program_app.command("list")
def program_list(
    all_changes: Annotated[
        bool, typer.Option("--all", help="Include committed and cancelled.")
    ] = False,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Programming changes awaiting verification or commit."""
    with _service(db) as service:
        rows = service.changes(_actor(service, user), open_only=not all_changes)
    if as_json:
        _out({"changes": rows})
        return
    table = Table(title="Programming changes")
    for col in ("id", "implant", "state", "staged by", "verified by", "reason"):
        table.add_column(col)
    for c in rows:
        table.add_row(
            c.id, c.implant_id, c.state.value, c.staged_by, c.verified_by or "—", escape(c.reason)
        )
    console().print(table)


# ------------------------------------------------------------------ visits, symptoms, card


@visit_app.command("book")
def visit_book(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    at: Annotated[
        str,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="YYYY-MM-DDTHH:MM (the patient's local time) or with an offset.",
        ),
    ],
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="refill, checkup, titration, troubleshooting, surgery or screening."
        ),
    ] = "refill",
    note: Annotated[str, typer.Option("--note")] = "",
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Book a visit."""
    when = _when(at)
    assert when is not None
    with _service(db) as service, _flags(at="--at", kind="--kind", note="--note"):
        v = service.book_visit(_actor(service, user), patient_id, at=when, kind=kind, note=note)
    if as_json:
        _out(v)
        return
    console().print(f"Visit {v.id} booked: {v.kind} {_dt(v.at)}.")


@visit_app.command("list")
def visit_list(
    patient_id: Annotated[str | None, typer.Option("--patient", help="One patient only.")] = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Booked visits, soonest first."""
    with _service(db) as service:
        rows = service.visits(_actor(service, user), patient_id=patient_id)
    rows = sorted((v for v in rows if v.status.value == "booked"), key=lambda v: v.at)
    if as_json:
        _out({"visits": rows})
        return
    table = Table(title="Booked visits")
    for col in ("id", "patient", "when", "kind", "version"):
        table.add_column(col)
    for v in rows:
        table.add_row(v.id, v.patient_id, _dt(v.at), v.kind, str(v.version))
    console().print(table)


@visit_app.command("status")
def visit_status(
    visit_id: Annotated[str, typer.Argument(metavar="VISIT")],
    status: Annotated[str, typer.Option("--status", help="done, missed or cancelled.")],
    version: Annotated[int, typer.Option("--version", help="The visit version you read.")],
    note: Annotated[str, typer.Option("--note")] = "",
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Mark a booked visit done, missed or cancelled."""
    with _service(db) as service, _flags(status="--status", note="--note"):
        v = service.set_visit_status(
            _actor(service, user), visit_id, status=status, expected_version=version, note=note
        )
    if as_json:
        _out(v)
        return
    console().print(f"Visit {v.id}: {v.status.value}.")


@app.command("symptoms")
def symptoms(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    sign: Annotated[
        list[str],
        typer.Option(
            "--sign",
            help="A sign (repeat): itchiness, fever, low blood pressure ... (itb triage --list-signs).",
        ),
    ],
    at: AtOption = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record reported signs; the triage rules say how urgent and what to do."""
    with _service(db) as service, _flags(sign="--sign", at="--at"):
        out = service.record_symptoms(_actor(service, user), patient_id, signs=sign, at=_when(at))
    if as_json:
        _out({"record": out.record, "triage": out.triage})
        return
    con = console()
    con.print(f"[bold]{out.triage.urgency_label}[/] ({out.record.id})")
    for c in out.triage.causes:
        con.print(f"Possible: {escape(c.label)} {escape(c.source)}")
    for a in out.triage.actions:
        con.print(f"- {escape(a)}")
    con.print(DISCLAIMER)


@app.command("card")
def card(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT")],
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="Write the printable card here.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML card here.")
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """The patient's emergency wallet card, from the record."""
    from itb.adapters.card_render import write_card_html, write_card_pdf

    for path in (pdf, html_out):
        if path is not None and not path.parent.is_dir():
            raise InvalidValue("output", str(path), "a path in an existing folder")
    with _service(db) as service:
        wallet = service.wallet_card(_actor(service, user), patient_id)
    written = []
    for path, writer in ((pdf, write_card_pdf), (html_out, write_card_html)):
        if path is not None:
            writer(wallet, path)
            written.append(str(path))
    if as_json:
        _out({"card": wallet, "written": written})
        return
    show_card(wallet, written)


@export_app.command("ical")
def export_ical(
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="The .ics file to write (replaced).")
    ],
    patient_id: Annotated[
        str | None, typer.Option("--patient", metavar="ID", help="Whose calendar.")
    ] = None,
    every_visit: Annotated[
        bool,
        typer.Option("--clinic", help="The clinic's calendar: every booked visit ahead (staff)."),
    ] = False,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """A patient's refill reminders as an iCalendar file (RFC 5545) for any calendar app:
    each booked visit with an alert before it, and the refill-by date with an alert ahead
    (lead times in clinic.toml [reminders]); or, with --clinic, every booked visit."""
    from itb.adapters.calendar import clinic_ics, reminders_ics
    from itb.adapters.output_paths import check_output_file, write_file_atomic

    if (patient_id is None) == (not every_visit):
        raise InvalidValue(
            "--patient / --clinic", patient_id, "one of them: --patient ID or --clinic"
        )
    target = check_output_file(out, field="--out", suffix=".ics")
    if every_visit:
        with _service(db) as service:
            info, visits = service.clinic_visits(_actor(service, user))
            data = clinic_ics(info, visits, service.clock.now())
        write_file_atomic(target, data)
        if as_json:
            _out({"clinic": True, "visits": len(visits), "written": str(target)})
        else:
            console().print(
                f"Clinic calendar: {len(visits)} booked visit(s); written to {escape(str(target))}"
            )
        return
    assert patient_id is not None
    with _service(db) as service:
        reminders = service.reminders(_actor(service, user), patient_id)
    write_file_atomic(target, reminders_ics(reminders))
    refill_by = None if reminders.radar is None else reminders.radar.refill_by
    summary = {
        "patient": patient_id,
        "visits": len(reminders.visits),
        "refill_by": None if refill_by is None else refill_by.date().isoformat(),
        "written": str(target),
    }
    if as_json:
        _out(summary)
        return
    console().print(
        f"Calendar for {escape(reminders.patient.name)}: {summary['visits']} booked visit(s)"
        + (f", refill by {summary['refill_by']}" if refill_by else "")
        + f"; written to {escape(str(target))}"
    )


@app.command("calendar-feed")
def calendar_feed(
    patient_id: Annotated[str, typer.Option("--patient", metavar="ID", help="Whose reminders.")],
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Stop the address instead of issuing a new one.")
    ] = False,
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url", metavar="URL", help="Where itb serve is reached (for the address)."
        ),
    ] = "http://127.0.0.1:8000",
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """A calendar subscription address for a patient's refill reminders (the calendar
    app fetches it from itb serve): a new one stops the old; --revoke stops it."""
    with _service(db) as service:
        actor = _actor(service, user)
        if revoke:
            n = service.revoke_calendar_feed(actor, patient_id)
            result: dict[str, Any] = {"patient": patient_id, "revoked": n}
        else:
            token = service.issue_calendar_feed(actor, patient_id)
            result = {"patient": patient_id, "url": f"{base_url.rstrip('/')}/calendar/{token}.ics"}
    if as_json:
        _out(result)
        return
    if revoke:
        console().print(f"Calendar address for {patient_id} revoked ({result['revoked']}).")
    else:
        console().print(
            f"Subscribe to {result['url']} in the calendar app (keep it private: anyone with "
            "it sees the reminders; issue a new one or --revoke to stop it)."
        )


@export_app.command("fhir")
def export_fhir(
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="The Bundle (JSON) to write (replaced).")
    ],
    patient_id: Annotated[
        str | None,
        typer.Option("--patient", metavar="ID", help="One patient (default: the whole clinic)."),
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """A patient's whole record, or the clinic's, as a FHIR R4 Bundle (docs/fhir.md): the
    pump and catheter, procedures, programs, verifications, refills, observations, visits
    and the withdrawal-risk flag."""
    from itb.adapters.fhir import context_for, to_bundle
    from itb.adapters.output_paths import check_output_file, write_file_atomic

    target = check_output_file(out, field="--out", suffix=".json")
    with _service(db) as service:
        actor = _actor(service, user)
        files = service.patient_files(actor, patient_id)
        info = service.clinic_info()
        bundle = to_bundle(
            files,
            context_for(service.catalog, info.name if info else "ITB clinic", service.clock.now()),
        )
    write_file_atomic(target, json.dumps(bundle, ensure_ascii=False, indent=1).encode("utf-8"))
    kinds: dict[str, int] = {}
    for e in bundle["entry"]:
        kinds[e["resource"]["resourceType"]] = kinds.get(e["resource"]["resourceType"], 0) + 1
    summary = {"patients": len(files), "resources": kinds, "written": str(target)}
    if as_json:
        _out(summary)
        return
    console().print(
        f"FHIR Bundle: {len(files)} patient(s), {len(bundle['entry']):,} resources; "
        f"written to {escape(str(target))}"
    )


import_app = typer.Typer(help="Import into the registry: a FHIR Bundle.")
app.add_typer(import_app, name="import")


@import_app.command("fhir")
def import_fhir(
    bundle_file: Annotated[Path, typer.Argument(metavar="BUNDLE.json")],
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import the patients of a FHIR Bundle (one from itb clinic export fhir, or one
    written by hand as docs/fhir.md shows): all or nothing, each pump's commands judged
    again by the pump and the drug library."""
    from itb.adapters.fhir import Importer, from_bundle

    try:
        data = json.loads(bundle_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidValue("BUNDLE.json", str(bundle_file), "an existing file") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise InvalidValue("BUNDLE.json", str(bundle_file), "a FHIR Bundle in JSON") from None
    with _service(db) as service:
        actor = _actor(service, user)
        files = from_bundle(data, Importer(actor.username, actor.role.value, service.clock.now()))
        counts = service.import_patient_files(actor, files)
    if as_json:
        _out({"imported": counts})
        return
    console().print(
        f"Imported {counts.get('patients', 0)} patient(s): "
        + ", ".join(f"{n:,} {k}" for k, n in counts.items() if k != "patients" and n)
    )


@import_app.command("csv")
def import_csv(
    csv_file: Annotated[Path, typer.Argument(metavar="CLINIC.csv")],
    valid_only: Annotated[
        bool,
        typer.Option("--valid-only", help="Register the valid rows even if others are refused."),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="FILE", help="Write the row-by-row report (JSON)."),
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an existing clinic's patients and pumps from a CSV list (the template in
    docs/clinic-import-template.csv). Every row is checked first; each bad row is
    reported with its line and column and nothing is written (exit 2), unless
    --valid-only: then the valid rows are registered (exit 1 when some were refused)."""
    from itb.adapters.clinic_csv import read_clinic_csv
    from itb.adapters.output_paths import check_output_file, write_file_atomic

    target = None if report is None else check_output_file(report, field="--report", suffix=".json")
    try:
        text = csv_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidValue("CLINIC.csv", str(csv_file), "an existing file") from None
    except (OSError, UnicodeDecodeError):
        raise InvalidValue("CLINIC.csv", str(csv_file), "a UTF-8 CSV file") from None
    rows, unread = read_clinic_csv(text)
    with _service(db) as service:
        done = service.import_clinic_rows(
            _actor(service, user), rows, refused=unread, valid_only=valid_only
        )
    summary = {
        "rows": done.rows,
        "imported": [{"line": line, "patient": pid} for line, pid in done.imported],
        "refused": [{"line": p.line, "problem": p.message} for p in done.refused],
        "written": bool(done.imported),
    }
    if target is not None:
        write_file_atomic(target, json.dumps(summary, indent=1, ensure_ascii=False).encode())
    if as_json:
        _out(summary)
    else:
        for p in done.refused:
            console().print(f"line {p.line}: {escape(p.message)}", soft_wrap=True)
        console().print(
            f"{len(done.imported)} of {done.rows} row(s) registered"
            + (f"; {len(done.refused)} refused" if done.refused else "")
        )
    if done.refused:
        lines = ", ".join(str(p.line) for p in done.refused)
        if done.imported:
            raise CheckFailed(
                f"{len(done.refused)} of {done.rows} rows refused (lines {lines}); "
                "the valid rows were registered"
            )
        raise InvalidValue(
            "CLINIC.csv",
            f"{len(done.refused)} of {done.rows} rows refused (lines {lines})",
            "every row valid (each refusal is listed above), or --valid-only; nothing was written",
        )


# ------------------------------------------------------------------ radar


_URGENCY_STYLE = {4: "bold red", 3: "yellow", 2: "cyan", 1: "", 0: "dim"}


@app.command("radar")
def radar(
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            metavar="DATE",
            help="The day to look from (YYYY-MM-DD; default now).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show this many pumps (most urgent first).")
    ] = 50,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every pump against its next booked visit, most urgent first: who runs dry, whose alarm
    sounds, whose drug expires before the visit, who is due this week, who has no visit."""
    day = _day(on, "--on")
    when = None if day is None else datetime.combine(day, time(0, 0), tzinfo=UTC)
    with _service(db) as service:
        actor = _actor(service, user)
        rows = service.radar(actor, on=when)
        out = service.pumps_out(actor, on=when)
    if as_json:
        _out({"pumps": [_radar_row(r) for r in rows], "pumps_out": [plain(o) for o in out]})
        return
    title_day = (when or datetime.now(UTC)).date().isoformat()
    table = Table(
        title=f"Refill radar {title_day}: {len(rows)} pumps, {sum(1 for r in rows if r.urgency >= 3)} need action"
    )
    band = next(
        (r.pump.forecast.band_probability for r in rows if r.pump.forecast is not None), 0.9
    )
    for col in (
        "urgency",
        "patient",
        "pump",
        "reservoir",
        "low alarm",
        f"P(dry) by visit\nempty {round(100 * band)} % band",
        "next visit",
        "what",
    ):
        table.add_column(col)
    for r in rows[:limit]:
        p = r.pump
        style = _URGENCY_STYLE[r.urgency]
        table.add_row(
            f"[{style}]{r.urgency_words}[/]" if style else r.urgency_words,
            f"{p.patient_id} {escape(p.patient_name)}",
            p.implant_id,
            f"{p.reservoir_calculated_ml:.1f} mL",
            _d(p.low_alarm_at),
            _dry_cell(r),
            _d(p.next_visit_at),
            escape(r.words),
        )
    con = console()
    con.print(table)
    if len(rows) > limit:
        con.print(f"... {len(rows) - limit} more (--limit).")
    if out:
        con.print(_pumps_out_table(out))


def _pumps_out_table(out: list[PumpOut]) -> Table:
    """Patients whose pump is out: not on the radar, at risk of withdrawal until the new pump."""
    table = Table(title=f"Pumps out: {len(out)} patient(s) on a bridge until a new pump")
    for col in ("patient", "pump out since", "days out", "complication", "bridge"):
        table.add_column(col)
    for o in out:
        bridge = (
            f"oral {o.oral_bridge_mg_per_day:g} mg/day"
            if o.oral_bridge_mg_per_day is not None
            else o.bridge
        )
        table.add_row(
            f"{o.patient_id} {escape(o.patient_name)}",
            _d(o.since),
            f"{o.days_out:.0f}",
            o.kind.replace("_", " "),
            f"[bold red]{bridge}[/]" if o.bridge == "none" else bridge,
        )
    return table


def _dry_cell(r: RadarRow) -> str:
    """P(dry before the visit) and the empty band; without a forecast, the earliest the
    rated band says the pump could be dry."""
    f = r.pump.forecast
    if f is None:
        dry = r.pump.earliest_dry_at
        return "—" if dry is None else f"could be dry from {_d(dry)}"
    by = "" if f.by_visit else f" by {_d(f.by_at)}"
    return f"{pct_words(f.p_dry)}{by}\n{band_words(f.empty_at)}"


def _radar_row(r: RadarRow) -> dict[str, Any]:
    out: dict[str, Any] = dict(plain(r.pump))
    out["forecast"] = _forecast_data(r.pump.forecast)
    out.update(
        urgency=r.urgency,
        urgency_words=r.urgency_words,
        refill_by=None if r.refill_by is None else r.refill_by.isoformat(),
        flags=[plain(f) for f in r.flags],
        words=r.words,
    )
    return out


# ------------------------------------------------------------------ audit and backups


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint", metavar="FILE", help="A checkpoint written by audit checkpoint."
        ),
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Walk the audit chain; name the first broken entry (exit 1 when broken)."""
    cp = None if checkpoint is None else _read_checkpoint(checkpoint)
    with _service(db) as service:
        result = service.verify_audit(_actor(service, user), checkpoint=cp)
    if as_json:
        _out({"ok": result.ok, **plain(result)})
    elif result.ok:
        console().print(
            f"Audit chain verified: {result.entries} entries, head {result.head.seq} "
            f"{result.head.hash[:16]}…" + (f"; matches the checkpoint at {cp.seq}" if cp else "")
        )
    else:
        console().print(
            f"[bold red]Audit chain BROKEN[/] at entry {result.first_broken_seq}: {escape(result.problem)}"
        )
    if not result.ok:
        raise typer.Exit(1)


def _read_checkpoint(path: Path) -> Checkpoint:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seq, digest = int(data["seq"]), str(data["hash"])
    except FileNotFoundError:
        raise InvalidValue("--checkpoint", str(path), "an existing checkpoint file") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise InvalidValue(
            "--checkpoint", str(path), "a checkpoint written by itb clinic audit checkpoint"
        ) from None
    if not re.fullmatch(r"[0-9a-f]{64}", digest) or seq < 0:
        raise InvalidValue(
            "--checkpoint", str(path), "a checkpoint written by itb clinic audit checkpoint"
        )
    return Checkpoint(seq, digest)


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Write the checkpoint here (keep it outside the database).",
        ),
    ] = None,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export the chain's head (its position and hash) as a checkpoint."""
    with _service(db) as service:
        result = service.verify_audit(_actor(service, user))
    if not result.ok:
        console().print(
            f"[bold red]Audit chain BROKEN[/] at entry {result.first_broken_seq}: {escape(result.problem)}"
        )
        raise typer.Exit(1)
    data = {"seq": result.head.seq, "hash": result.head.hash, "at": datetime.now(UTC).isoformat()}
    if out is not None:
        if not out.parent.is_dir():
            raise InvalidValue("--out", str(out), "a path in an existing folder")
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(out)
    if as_json:
        _out(data)
        return
    console().print(
        f"Checkpoint: entry {data['seq']} {data['hash']}" + (f" (written to {out})" if out else "")
    )


@audit_app.command("show")
def audit_show(
    entity: Annotated[
        str | None, typer.Option("--entity", help="patient, implant, refill_visit ...")
    ] = None,
    entity_id: Annotated[str | None, typer.Option("--id", help="The record's id.")] = None,
    last: Annotated[int, typer.Option("--last", min=1, help="Show the last N entries.")] = 20,
    db: DbOption = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show audit entries (the last N, or those about one record)."""
    with _service(db) as service:
        rows = service.audit_trail(_actor(service, user), entity=entity, entity_id=entity_id)
    rows = rows[-last:]
    if as_json:
        _out({"entries": rows})
        return
    table = Table(title="Audit trail")
    for col in ("seq", "when", "who", "role", "action", "record", "why"):
        table.add_column(col)
    for e in rows:
        table.add_row(
            str(e.seq),
            _dt(e.at),
            e.actor,
            e.role,
            e.action,
            f"{e.entity} {e.entity_id}",
            escape(e.reason[:80]),
        )
    console().print(table)


@app.command("backup")
def backup(
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="The backup file (JSON) to write.")
    ],
    db: DbOption = None,
    user: UserOption = None,
) -> None:
    """Write the whole registry to one JSON file (a physician)."""
    if not out.parent.is_dir():
        raise InvalidValue("--out", str(out), "a path in an existing folder")
    if out.exists():
        raise InvalidValue("--out", str(out), "a new file (this one exists)")
    settings = load_settings(database_url=db)
    handle = bootstrap.clinic(settings.database_url)
    try:
        handle.service.note_backup(_actor(handle.service, user), what="backup")
        data = handle.registry.dump()
    finally:
        handle.close()
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(out)
    rows = sum(len(v) for v in data["tables"].values())
    console().print(
        f"Backup written to {out}: {rows:,} rows, audit head {data['tables']['audit_head'][0]['seq'] if data['tables']['audit_head'] else 0}."
    )


@app.command("restore")
def restore(
    backup_file: Annotated[Path, typer.Argument(metavar="BACKUP.json")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup into a new, empty registry; the audit chain is verified after."""
    try:
        data = json.loads(backup_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidValue("BACKUP.json", str(backup_file), "an existing backup file") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise InvalidValue(
            "BACKUP.json", str(backup_file), "a backup written by itb clinic backup"
        ) from None
    settings = load_settings(database_url=db)
    handle = bootstrap.clinic(settings.database_url, create=True)
    try:
        counts = handle.registry.load(data)
        with handle.registry.uow() as uow:
            check = verify_chain(uow.audit.entries(), head=uow.audit.recorded_head())
    finally:
        handle.close()
    if as_json:
        _out({"restored": counts, "audit_ok": check.ok, "audit_head": check.head})
    else:
        console().print(
            f"Restored {sum(counts.values()):,} rows into {settings.database_url}; audit chain "
            + ("verified" if check.ok else f"BROKEN at {check.first_broken_seq}: {check.problem}")
            + f" ({check.entries} entries)."
        )
    if not check.ok:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Add ``itb clinic`` to the root app."""
    root.add_typer(app, name="clinic")

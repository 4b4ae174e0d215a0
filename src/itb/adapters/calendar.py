"""A patient's refill reminders as an iCalendar file (RFC 5545 [S5]), for any calendar app.

One event per booked visit, with an alert before it, and an all-day "refill by" event
on the pump's refill-by date (the low-reservoir alarm date less the refill margin, or
the drug's stability end, whichever is first) with an alert a week or so ahead, so a
visit can still be booked. Lead times come from ``clinic.toml`` ``[reminders]``.
Identifiers are stable, so importing the file again updates the events.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from icalendar import Alarm, Calendar, Event

from itb import __version__
from itb.domain.clinic.records import ClinicInfo, VisitRecord
from itb.services.clinic.service import PatientReminders

__all__ = ["clinic_ics", "reminders_ics"]


def _alarm(text: str, before: timedelta) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", text)
    alarm.add("trigger", -before)
    return alarm


def reminders_ics(rem: PatientReminders) -> bytes:
    """The calendar (UTF-8 bytes)."""
    cal = Calendar()
    cal.add("prodid", f"-//itb//refill reminders {__version__}//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"ITB refills: {rem.patient.name}")
    contact = f"{rem.clinic_name} {rem.clinic_phone}".strip()
    visit_lead = timedelta(hours=rem.policy.visit_lead_hours.value)
    for v in rem.visits:
        e = Event()
        e.add("uid", f"itb-visit-{v.id}-{rem.patient.id}")
        e.add("dtstamp", rem.made_at)
        e.add("dtstart", v.at)
        e.add("dtend", v.at + timedelta(hours=1))
        e.add("summary", f"ITB {v.kind} visit ({rem.clinic_name})")
        e.add("description", f"Booked {v.kind} visit for {rem.patient.name}. {contact}".strip())
        e.add_component(
            _alarm(f"ITB {v.kind} visit in {rem.policy.visit_lead_hours.value:g} h", visit_lead)
        )
        cal.add_component(e)
    row = rem.radar
    if row is not None and row.refill_by is not None:
        day = row.refill_by.date()
        e = Event()
        e.add("uid", f"itb-refill-by-{row.pump.implant_id}-{rem.patient.id}")
        e.add("dtstamp", rem.made_at)
        e.add("dtstart", day)
        e.add("dtend", day + timedelta(days=1))
        e.add("summary", "ITB pump: refill by today")
        e.add(
            "description",
            f"The pump ({row.pump.pump_label}) should be refilled by {day.isoformat()} "
            f"(predicted by the clinic record). Radar: {row.words}. {contact}".strip(),
        )
        lead = timedelta(days=rem.policy.refill_by_lead_days.value)
        e.add_component(_alarm("ITB pump refill due soon: is a visit booked?", lead))
        cal.add_component(e)
    data: bytes = cal.to_ical()
    return data


def clinic_ics(
    info: ClinicInfo | None, visits: list[tuple[VisitRecord, str]], made_at: datetime
) -> bytes:
    """The clinic's calendar: every booked visit ahead, one event each, with the patient's
    name (for the clinic's own calendar, not for sharing outside it)."""
    name = info.name if info else "ITB clinic"
    cal = Calendar()
    cal.add("prodid", f"-//itb//clinic visits {__version__}//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{name}: booked visits")
    for v, patient in visits:
        e = Event()
        e.add("uid", f"itb-visit-{v.id}-{v.patient_id}")
        e.add("dtstamp", made_at)
        e.add("dtstart", v.at)
        e.add("dtend", v.at + timedelta(hours=1))
        e.add("summary", f"ITB {v.kind}: {patient} ({v.patient_id})")
        if v.note:
            e.add("description", v.note)
        cal.add_component(e)
    data: bytes = cal.to_ical()
    return data

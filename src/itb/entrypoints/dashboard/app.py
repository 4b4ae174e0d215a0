"""The clinic dashboard: server-rendered pages over the same use cases as the API.

Pages (Jinja2, no JavaScript needed; the one script only submits the radar's filters
on change): sign-in, the refill radar, the patient page, recording a refill,
programming with a second person, a staged change. Every action goes through
:class:`~itb.services.clinic.ClinicService`, so the dashboard gets the same verdicts,
the same refusals and the same audit trail as the API and the command line.

Sessions: signing in issues the same kind of session token as the API (only its
SHA-256 is stored), kept in an HttpOnly, SameSite=Strict cookie. Every form carries a
token derived from the session (and the sign-in form one from a cookie of its own), so a
form posted from another site is refused (cross-site request forgery).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from itb import __version__
from itb.domain.clinic.access import Actor, Role
from itb.domain.clinic.forecast import band_words, history_words, pct_words
from itb.domain.clinic.radar import RadarRow
from itb.domain.clinic.records import ChangeState, VisitStatus
from itb.domain.errors import AuthenticationFailed, InvalidValue, ITBError, TooManyAttempts
from itb.domain.pump.refill import Verdict
from itb.entrypoints.dashboard.charts import Marker, Series, day_profile_chart, time_chart
from itb.entrypoints.errors import outcome_of
from itb.services.clinic import (
    ChangeRequest,
    ClinicService,
    DrugFill,
    ProgramRequest,
    RefillRequest,
)

__all__ = ["SESSION_COOKIE", "csrf_token", "mount_dashboard"]

HERE = Path(__file__).parent
SESSION_COOKIE = "itb_session"
LOGIN_COOKIE = "itb_login"
RESERVOIR_DAYS = 365
"""The reservoir chart shows this many days back (the refill table holds the rest)."""
OPEN_STATES = frozenset({ChangeState.STAGED, ChangeState.VERIFIED})
"""A change in these states can still be verified, committed or cancelled."""
PAGE_SIZE = 100
"""Radar rows shown per page (the counts always cover the whole clinic)."""

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
FILTERS: dict[str, tuple[str, frozenset[str]]] = {
    "all": ("every pump", frozenset()),
    "action": ("needs action", frozenset()),
    "dry": ("runs dry before the visit", frozenset({"dry_before_visit", "forecast_dry", "stopped"})),
    "alarm": ("alarm before the visit", frozenset({"alarm_before_visit"})),
    "week": ("due this week", frozenset({"due_this_week"})),
    "novisit": ("no visit booked", frozenset({"no_visit"})),
    "battery": ("battery", frozenset({"battery_eri", "battery_soon"})),
    "attention": ("open alarms and discrepancies", frozenset({"open_alarm", "critical_alarm", "discrepancy"})),
}  # fmt: skip
"""The radar's filters: key, words, the flag codes it keeps ("action": any urgent flag)."""


class _ServerTiming:
    """Adds ``Server-Timing: app;dur=MS`` to every page: the time from the request to the
    response's start on the server (what the radar's speed target is about; the
    browser's developer tools show it too)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(("/api/", "/static/")):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000.0
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={ms:.1f}".encode()),
                ]
            await send(message)

        await self.app(scope, receive, timed)


LABELS = {
    "withdrawn_ml": "Withdrawn (mL)",
    "fill.volume_ml": "Fill volume (mL)",
    "volume_ml": "Fill volume (mL)",
    "fill.product": "Product",
    "fill.lot": "Lot",
    "fill.expiry": "Expiry",
    "fill.concentration_mcg_per_ml": "Product",
    "reason": "Reason",
    "override_reason": "Override reason",
    "dose_mcg_per_day": "Daily dose (mcg/day)",
    "program.dose_mcg_per_day": "Daily dose (mcg/day)",
    "low_reservoir_alarm_ml": "Low-reservoir alarm (mL)",
}
"""The domain's field names as the forms label them, so a refusal names the field the
user typed into."""


def _in_words(exc: ITBError) -> str:
    """A refusal for a page: an invalid value names the form's field."""
    if isinstance(exc, InvalidValue) and exc.field in LABELS:
        return str(exc).replace(exc.field, LABELS[exc.field], 1)
    return str(exc)


def _refusal_words(text: str | None) -> str | None:
    """A refusal returned in words (a preview's): the field named as the form labels it."""
    if text is None:
        return None
    for field in sorted(LABELS, key=len, reverse=True):
        if text.startswith(field + " "):
            return LABELS[field] + text[len(field) :]
    return text


def csrf_token(session_token: str) -> str:
    """The form token of a session: only a page served to that session can know it."""
    return hashlib.sha256(b"itb-form:" + session_token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Signed:
    actor: Actor
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["day"] = lambda t: "" if t is None else t.astimezone(UTC).date().isoformat()
    env.filters["when"] = lambda t: (
        "" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    )
    env.filters["ml"] = lambda v: "" if v is None else f"{v:,.1f} mL"
    env.filters["num"] = lambda v, d=1: "" if v is None else f"{v:,.{d}f}"
    env.filters["pct"] = pct_words
    env.filters["band"] = band_words
    env.filters["history"] = history_words
    env.globals["version"] = __version__
    env.globals["WITHIN_TOLERANCE"] = Verdict.WITHIN_TOLERANCE.value
    return env


def _number(
    form: Mapping[str, Any], name: str, label: str, *, required: bool = True
) -> float | None:
    raw = str(form.get(name, "")).strip()
    if not raw:
        if required:
            raise InvalidValue(label, "(empty)", "a number")
        return None
    try:
        value = float(raw.replace(",", ""))
    except ValueError:
        raise InvalidValue(label, raw[:40], "a number") from None
    if not math.isfinite(value):
        raise InvalidValue(label, raw[:40], "a finite number")
    return value


def _day(form: Mapping[str, Any], name: str, label: str) -> date | None:
    raw = _text(form, name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidValue(label, raw[:40], "a date YYYY-MM-DD") from None


def _version(form: Mapping[str, Any]) -> int | None:
    """The record version the page was drawn from (None: not sent)."""
    raw = _text(form, "version")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidValue("version", raw[:40], "the page's record version (reload the page)")
    return int(raw)


def _text(form: Mapping[str, Any], name: str) -> str:
    return str(form.get(name, "")).strip()


def _flex_steps(raw: str) -> tuple[tuple[float, float], ...]:
    steps = []
    for n, line in enumerate(raw.replace(";", "\n").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise InvalidValue(
                f"Flex steps, line {n}", line.strip()[:40], "start hour and mcg/h, e.g. 7 12.5"
            )
        try:
            steps.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise InvalidValue(f"Flex steps, line {n}", line.strip()[:40], "two numbers") from None
    return tuple(steps)


def _flagged(rows: list[RadarRow], key: str) -> list[RadarRow]:
    if key == "all":
        return rows
    if key == "action":
        return [r for r in rows if r.urgency >= 2]
    codes = FILTERS[key][1]
    return [r for r in rows if any(f.code in codes for f in r.flags)]


def mount_dashboard(app: FastAPI, service: ClinicService) -> None:
    """Add the dashboard's pages and static files to ``app``."""
    env = _templates()
    router = APIRouter(include_in_schema=False)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(
        request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        html = env.get_template(template).render(request=request, **context)
        return HTMLResponse(html, status_code=status_code, headers=_HEADERS)

    def error_page(
        request: Request, status_code: int, message: str, who: _Signed | None = None
    ) -> HTMLResponse:
        return page(
            request, "error.html", status_code, who=who, status=status_code, message=message
        )

    app.state.html_error = error_page

    async def signed(request: Request) -> _Signed:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise _Redirect(f"/login?next={quote(request.url.path)}")
        try:
            known = service.trusted_actor(token)
            actor = (
                known
                if known is not None
                else await run_in_threadpool(service.actor_for_token, token)
            )
        except AuthenticationFailed:
            raise _Redirect(f"/login?next={quote(request.url.path)}&ended=1") from None
        return _Signed(actor, token)

    async def posted(request: Request, who: _Signed) -> Mapping[str, Any]:
        form = await request.form()
        sent = str(form.get("csrf", ""))
        if not hmac.compare_digest(sent.encode(), who.csrf.encode()):
            raise _Forbidden(
                "this form is out of date or came from another site: reload the page and try again"
            )
        return form

    async def run(request: Request, body: Callable[[], Response], who: _Signed) -> Response:
        """Run a page's work in a worker thread, turning domain refusals into a page (with
        the signed-in header, so the user can go on from it)."""
        try:
            return await run_in_threadpool(body)
        except ITBError as exc:
            return error_page(request, outcome_of(exc).http_status, _in_words(exc), who)

    def home_of(actor: Actor) -> str:
        if actor.role in (Role.PATIENT, Role.CAREGIVER):
            return f"/patients/{actor.patient_id}"
        return "/radar"

    # ------------------------------------------------------------ sign-in

    @router.get("/login")
    def login_form(request: Request, next: str = "/", ended: int = 0) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = page(
            request,
            "login.html",
            who=None,
            next=_safe_next(next),
            nonce=nonce,
            ended=bool(ended),
            error=None,
        )
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", path="/login")
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        target = _safe_next(str(form.get("next", "/")))
        sent = str(form.get("nonce", "")).encode()
        if not nonce or not hmac.compare_digest(sent, nonce.encode()):
            return error_page(
                request, 403, "the sign-in form is out of date or came from another site: reload it"
            )
        username, password = _text(form, "username"), str(form.get("password", ""))
        address = request.client.host if request.client else ""
        try:
            issued = await run_in_threadpool(service.log_in, username, password, address=address)
        except (AuthenticationFailed, TooManyAttempts, InvalidValue) as exc:
            message = (
                str(exc)
                if not isinstance(exc, InvalidValue)
                else "user name or password not accepted"
            )
            status_code = 429 if isinstance(exc, TooManyAttempts) else 401
            return page(
                request,
                "login.html",
                status_code,
                who=None,
                next=target,
                nonce=nonce,
                ended=False,
                error=message,
                username=username,
            )
        actor = await run_in_threadpool(service.actor_for_token, issued.token)
        done = RedirectResponse(target if target != "/" else home_of(actor), status_code=303)
        done.set_cookie(SESSION_COOKIE, issued.token, httponly=True, samesite="strict", path="/")
        done.delete_cookie(LOGIN_COOKIE, path="/login")
        return done

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        who = await signed(request)
        await posted(request, who)
        await run_in_threadpool(service.log_out, who.token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/")
    async def home(request: Request) -> Response:
        who = await signed(request)
        return RedirectResponse(home_of(who.actor), status_code=303)

    # ------------------------------------------------------------ the radar

    @router.get("/radar")
    async def radar(request: Request, show: str = "all", q: str = "", page_no: int = 1) -> Response:
        who = await signed(request)
        if who.actor.role in (Role.PATIENT, Role.CAREGIVER):
            return RedirectResponse(home_of(who.actor), status_code=303)
        key = show if show in FILTERS else "all"

        def body() -> Response:
            rows = service.radar(who.actor)
            counts = {k: len(_flagged(rows, k)) for k in FILTERS}
            shown = _flagged(rows, key)
            if q.strip():
                needle = q.strip().lower()
                shown = [
                    r
                    for r in shown
                    if needle in r.pump.patient_name.lower() or needle in r.pump.patient_id.lower()
                ]
            pages = max(1, math.ceil(len(shown) / PAGE_SIZE))
            number = min(max(1, page_no), pages)
            rail = [
                r
                for r in rows
                if r.pump.active_alarms or r.pump.unresolved_discrepancies or not r.pump.running
            ]
            return page(
                request, "radar.html", who=who, rows=shown[(number - 1) * PAGE_SIZE : number * PAGE_SIZE],
                total=len(rows), matched=len(shown), counts=counts, filters=FILTERS, show=key, q=q,
                page_no=number, pages=pages, rail=rail,
                now=datetime.now(UTC),
            )  # fmt: skip

        return await run(request, body, who)

    # ------------------------------------------------------------ the patient page

    @router.get("/patients/{patient_id}")
    async def patient(request: Request, patient_id: str) -> Response:
        who = await signed(request)

        def body() -> Response:
            chart = service.chart(who.actor, patient_id)
            implant = chart.active_implant
            now = service.pump_now(who.actor, implant.id) if implant else None
            doses = service.dose_history(who.actor, implant.id) if implant else []
            reservoir = _reservoir_chart(chart, now)
            dose_points = [(d.at, d.dose_mcg_per_day) for d in doses]
            if now is not None and doses:
                dose_points.append((now.at, doses[-1].dose_mcg_per_day))
            dose_chart = time_chart(
                [Series("daily dose", dose_points, "s-dose", unit="mcg/day",
                        labels=[d.program for d in doses] + ["now"])],
                title="Daily dose over time", y_label="mcg/day", y_min=0.0,
            )  # fmt: skip
            scores = [a for a in chart.assessments if a.kind == "follow_up"]
            score_chart = time_chart(
                [
                    Series("MAS", [(a.at, float(a.detail["mas"])) for a in scores], "s-mas", unit="(0-4)"),
                    Series("PSFS", [(a.at, float(a.detail["psfs"])) for a in scores if "psfs" in a.detail], "s-psfs", unit="(0-4)"),
                ],
                title="Spasticity scores at follow-up", y_label="score (0-4)", y_min=0.0, y_max=4.0,
            )  # fmt: skip
            profile = ""
            if doses and doses[-1].day_profile:
                profile = day_profile_chart(doses[-1].day_profile, title="The flex program's day")
            staff = who.actor.role not in (Role.PATIENT, Role.CAREGIVER)
            complications = service.complications(who.actor, patient_id)
            followed = {c.follows for c in complications}
            open_changes = [c for c in chart.changes if c.state in OPEN_STATES]
            booked = [v for v in chart.visits if v.status is VisitStatus.BOOKED]
            return page(
                request, "patient.html", who=who, chart=chart, implant=implant, now=now, doses=doses[::-1],
                reservoir_chart=Markup(reservoir), dose_chart=Markup(dose_chart), score_chart=Markup(score_chart),
                profile_chart=Markup(profile), scores=scores[::-1], staff=staff, open_changes=open_changes,
                booked=booked, refills=list(chart.refills)[::-1], changes=list(chart.changes)[::-1],
                complications=complications[::-1], latest_complications={c.id for c in complications if c.id not in followed},
                pump_label=service.catalog.preset(implant.pump_preset).label if implant else "",
            )  # fmt: skip

        return await run(request, body, who)

    @router.get("/patients/{patient_id}/card.pdf")
    async def card_pdf(request: Request, patient_id: str) -> Response:
        who = await signed(request)

        def body() -> Response:
            from itb.adapters.card_render import render_card_pdf

            card = service.wallet_card(who.actor, patient_id)
            return Response(render_card_pdf(card), media_type="application/pdf", headers={
                "content-disposition": f'inline; filename="itb-card-{patient_id}.pdf"', "cache-control": "no-store"})  # fmt: skip

        return await run(request, body, who)

    @router.get("/patients/{patient_id}/reminders.ics")
    async def reminders(request: Request, patient_id: str) -> Response:
        who = await signed(request)

        def body() -> Response:
            from itb.adapters.calendar import reminders_ics

            data = reminders_ics(service.reminders(who.actor, patient_id))
            return Response(data, media_type="text/calendar", headers={
                "content-disposition": f'attachment; filename="itb-refills-{patient_id}.ics"', "cache-control": "no-store"})  # fmt: skip

        return await run(request, body, who)

    @router.get("/patients/{patient_id}/calendar")
    async def calendar_page(request: Request, patient_id: str) -> Response:
        who = await signed(request)

        def body() -> Response:
            p = service.chart(who.actor, patient_id, recent=1).patient
            return page(request, "calendar.html", who=who, p=p, url=None, revoked=None)

        return await run(request, body, who)

    @router.post("/patients/{patient_id}/calendar")
    async def calendar_feed(request: Request, patient_id: str) -> Response:
        who = await signed(request)
        form = await posted(request, who)
        stop = str(form.get("action", "")) == "revoke"

        def body() -> Response:
            p = service.chart(who.actor, patient_id, recent=1).patient
            if stop:
                n = service.revoke_calendar_feed(who.actor, patient_id)
                return page(request, "calendar.html", who=who, p=p, url=None, revoked=n)
            token = service.issue_calendar_feed(who.actor, patient_id)
            url = str(request.base_url).rstrip("/") + f"/calendar/{token}.ics"
            return page(request, "calendar.html", who=who, p=p, url=url, revoked=None)

        return await run(request, body, who)

    # ------------------------------------------------------------ recording a refill

    def fill_of(
        form: Mapping[str, Any], products: list[_Product], *, lot_required: bool
    ) -> DrugFill:
        """The fill as the refill form has it (a preview takes a lot not yet entered)."""
        product = _text(form, "product")
        strength = next((p.concentration_mcg_per_ml for p in products if p.key == product), None)
        if strength is None:
            raise InvalidValue(
                "Product", product or "(none)", "one of " + ", ".join(p.key for p in products)
            )
        volume = _number(form, "fill_volume_ml", "Fill volume (mL)")
        assert volume is not None
        lot = _text(form, "lot") or ("" if lot_required else "not entered yet")
        return DrugFill(volume, strength, product, lot, _day(form, "expiry", "Expiry"))

    @router.get("/implants/{implant_id}/refill")
    async def refill_form(request: Request, implant_id: str) -> Response:
        who = await signed(request)

        def body() -> Response:
            now = service.pump_now(who.actor, implant_id)
            return page(request, "refill.html", who=who, now=now, check=None, error=None,
                        form={}, products=_products(service, now))  # fmt: skip

        return await run(request, body, who)

    @router.post("/implants/{implant_id}/refill")
    async def refill(request: Request, implant_id: str) -> Response:
        who = await signed(request)
        form = await posted(request, who)

        def body() -> Response:
            now = service.pump_now(who.actor, implant_id)
            products = _products(service, now)
            check = None
            try:
                withdrawn = _number(form, "withdrawn_ml", "Withdrawn (mL)")
                assert withdrawn is not None
                check = service.check_residual(who.actor, implant_id, withdrawn)
                if _text(form, "step") != "record":
                    # with the fill entered: the refill's what-if, the forecast after it
                    preview = (
                        service.preview_refill(
                            who.actor, implant_id,
                            RefillRequest(at=None, withdrawn_ml=withdrawn,
                                          fill=fill_of(form, products, lot_required=False)),
                        )
                        if _text(form, "fill_volume_ml")
                        else None
                    )  # fmt: skip
                    return page(
                        request,
                        "refill.html",
                        who=who,
                        now=now,
                        check=check,
                        preview=preview,
                        refused=_refusal_words(preview.refusal) if preview else None,
                        error=None,
                        form=form,
                        products=products,
                    )
                fill = fill_of(form, products, lot_required=True)
                out = service.record_refill(
                    who.actor, implant_id,
                    RefillRequest(
                        at=None, withdrawn_ml=withdrawn, fill=fill,
                        reason=_text(form, "reason") or "refill",
                    ),
                    expected_version=_version(form),
                )  # fmt: skip
            except ITBError as exc:
                return page(request, "refill.html", outcome_of(exc).http_status, who=who, now=now, check=check,
                            form=form, products=products, error=_in_words(exc))  # fmt: skip
            return RedirectResponse(
                f"/patients/{now.implant.patient_id}?refilled={out.visit.id}#refills",
                status_code=303,
            )

        return await run(request, body, who)

    # ------------------------------------------------------------ programming

    def change_request(form: Mapping[str, Any]) -> ChangeRequest:
        dose = _number(form, "dose_mcg_per_day", "Daily dose (mcg/day)")
        steps = _flex_steps(_text(form, "flex_steps"))
        alarm = _number(form, "low_reservoir_alarm_ml", "Low-reservoir alarm (mL)", required=False)
        return ChangeRequest(
            program=ProgramRequest(dose_mcg_per_day=dose, flex_steps=steps),
            low_reservoir_alarm_ml=alarm,
            reason=_text(form, "reason"),
            override_reason=_text(form, "override_reason") or None,
        )

    @router.get("/implants/{implant_id}/program")
    async def program_form(request: Request, implant_id: str) -> Response:
        who = await signed(request)

        def body() -> Response:
            now = service.pump_now(who.actor, implant_id)
            doses = service.dose_history(who.actor, implant_id)
            current = doses[-1] if doses else None
            form = {"dose_mcg_per_day": f"{now.dose_mcg_per_day:g}" if now.dose_mcg_per_day else "",
                    "flex_steps": "\n".join(f"{h:g} {r:g}" for h, r in current.day_profile) if current else ""}  # fmt: skip
            return page(
                request, "program.html", who=who, now=now, preview=None, error=None, form=form
            )

        return await run(request, body, who)

    @router.post("/implants/{implant_id}/program")
    async def program(request: Request, implant_id: str) -> Response:
        who = await signed(request)
        form = await posted(request, who)

        def body() -> Response:
            now = service.pump_now(who.actor, implant_id)
            preview = None
            try:
                req = change_request(form)
                preview = service.preview_change(who.actor, implant_id, req)
                if _text(form, "step") != "stage" or preview.refusal:
                    status_code = 422 if preview.refusal and _text(form, "step") == "stage" else 200
                    return page(
                        request,
                        "program.html",
                        status_code,
                        who=who,
                        now=now,
                        preview=preview,
                        error=None,
                        form=form,
                    )
                change = service.stage_change(who.actor, implant_id, req)
            except ITBError as exc:
                return page(request, "program.html", outcome_of(exc).http_status, who=who, now=now,
                            preview=preview, error=_in_words(exc), form=form)  # fmt: skip
            return RedirectResponse(f"/changes/{change.id}", status_code=303)

        return await run(request, body, who)

    @router.get("/changes/{change_id}")
    async def change(request: Request, change_id: str) -> Response:
        who = await signed(request)

        def body() -> Response:
            c = service.change(who.actor, change_id)
            now = service.pump_now(who.actor, c.implant_id)
            return page(
                request, "change.html", who=who, c=c, now=now, error=None, open_states=OPEN_STATES
            )

        return await run(request, body, who)

    @router.post("/changes/{change_id}/{action}")
    async def change_action(request: Request, change_id: str, action: str) -> Response:
        who = await signed(request)
        form = await posted(request, who)

        def body() -> Response:
            try:
                if action == "verify":
                    service.verify_change(who.actor, change_id)
                elif action == "commit":
                    service.commit_change(who.actor, change_id)
                elif action == "cancel":
                    service.cancel_change(
                        who.actor,
                        change_id,
                        reason=_text(form, "reason") or "cancelled from the dashboard",
                    )
                else:
                    return error_page(request, 404, f"no such action: {action[:40]}", who)
            except ITBError as exc:
                c = service.change(who.actor, change_id)
                now = service.pump_now(who.actor, c.implant_id)
                return page(request, "change.html", outcome_of(exc).http_status, who=who, c=c, now=now,
                            error=_in_words(exc), open_states=OPEN_STATES)  # fmt: skip
            return RedirectResponse(f"/changes/{change_id}", status_code=303)

        return await run(request, body, who)

    @app.exception_handler(_Redirect)
    async def _to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Redirect)
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(_Forbidden)
    async def _forbidden(request: Request, exc: Exception) -> Response:
        return error_page(request, 403, str(exc))

    app.include_router(router)
    app.add_middleware(_ServerTiming)


class _Forbidden(Exception):
    pass


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no host, no protocol-relative URL)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target[:200]


@dataclass(frozen=True, slots=True)
class _Product:
    key: str
    concentration_mcg_per_ml: float
    label: str


def _products(service: ClinicService, now: Any) -> list[_Product]:
    kind = service.catalog.preset(now.implant.pump_preset).kind.value
    return [
        _Product(
            p.key, p.concentration_mcg_per_ml, f"{p.key} ({p.concentration_mcg_per_ml:g} mcg/mL)"
        )
        for p in service.catalog.fill_products(kind)
    ]


def _reservoir_chart(chart: Any, now: Any) -> str:
    """The calculated reservoir from fill to refill (straight lines between the recorded
    points), the residuals withdrawn, and the forecast to empty."""
    implant = chart.active_implant
    if implant is None or now is None:
        return ""
    since = now.at - timedelta(days=RESERVOIR_DAYS)
    calc: list[tuple[datetime, float]] = []
    if implant.implanted_at >= since:
        calc.append((implant.implanted_at, implant.fill_volume_ml))
    withdrawn: list[tuple[datetime, float]] = []
    words: list[str] = []
    mine = sorted((r for r in chart.refills if r.implant_id == implant.id), key=lambda r: r.at)
    for r in (r for r in mine if r.at >= since):
        calc += [(r.at, r.expected_ml), (r.at, r.fill_volume_ml)]
        withdrawn.append((r.at, r.withdrawn_ml))
        words.append(r.verdict.replace("_", " "))
    calc.append((now.at, now.reservoir_calculated_ml))
    snap = now.snapshot
    ahead = [(now.at, now.reservoir_calculated_ml)]
    if snap.empty_at is not None:
        ahead.append((snap.empty_at, 0.0))
    markers = [Marker(now.at, "today", "m-today")]
    if snap.low_alarm_at is not None:
        markers.append(
            Marker(snap.low_alarm_at, f"low-reservoir alarm: {snap.low_alarm_at.date()}", "m-alarm")
        )
    booked = [v for v in chart.visits if v.status is VisitStatus.BOOKED and v.at >= now.at]
    if booked:
        v = min(booked, key=lambda v: v.at)
        markers.append(Marker(v.at, f"visit: {v.at.date()} ({v.kind})", "m-visit"))
    return time_chart(
        [
            Series("calculated reservoir", calc, "s-calc", unit="mL", dots=False),
            Series("withdrawn at refill", withdrawn, "s-withdrawn", unit="mL", labels=words, line=False),
            Series("forecast", ahead, "s-forecast", unit="mL", dashed=True),
        ],
        title="Reservoir over time", y_label="mL", markers=markers, y_min=0.0,
    )  # fmt: skip

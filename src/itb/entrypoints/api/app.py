"""The clinic's REST API (``/api/v1``): a thin translation from HTTP to the registry's use cases.

Authentication is the OAuth2 password flow: ``POST /api/v1/auth/token`` with a user name
and password returns a bearer token, sent back in the ``Authorization`` header (never
in a query string). Who may do what is decided by the use cases, not here; the API
only finds out who is asking. Every error is one JSON object with the domain's
one-line reason, mapped to a status by the one error table
(:mod:`itb.entrypoints.errors`); nothing here returns a 500 on purpose.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from itb import __version__
from itb.domain.clinic.access import Actor
from itb.domain.clinic.audit import ChainCheck
from itb.domain.clinic.forecast import PumpForecast, history_words
from itb.domain.clinic.radar import RadarRow
from itb.domain.clinic.records import (
    ImplantRecord,
    PatientRecord,
    PumpSnapshot,
    plain,
)
from itb.domain.errors import (
    AuthenticationFailed,
    InvalidValue,
    ITBError,
    NotFound,
    TooManyAttempts,
)
from itb.domain.pump.prescription import PatientBolusSettings
from itb.entrypoints.api import schemas as s
from itb.entrypoints.errors import outcome_of
from itb.services.clinic import (
    ChangeRequest,
    ClinicService,
    DrugFill,
    NewImplant,
    NewPatient,
    ProgramRequest,
    PumpNow,
    Reading,
    RefillRequest,
)

__all__ = ["create_api"]

PREFIX = "/api/v1"
MAX_BODY_BYTES = 1_000_000
"""Requests larger than this are refused (413) before they are read."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": s.ErrorPublic, "description": "A request the API could not read"},
    401: {"model": s.ErrorPublic, "description": "Not signed in, or the session ended"},
    403: {"model": s.ErrorPublic, "description": "The role may not do this"},
    404: {"model": s.ErrorPublic, "description": "No such record (or not yours)"},
    409: {"model": s.ErrorPublic, "description": "Changed by someone else first, or the record is in another state"},
    413: {"model": s.ErrorPublic, "description": "The request is too large"},
    422: {"model": s.ErrorPublic, "description": "A value the domain refuses (the field, the value and what is allowed), or a check that said no"},
    503: {"model": s.ErrorPublic, "description": "The registry's database is unavailable; try again"},
}  # fmt: skip

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cache-control", b"no-store"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Guard:
    """Security headers on every API response; oversized bodies refused unread."""

    def __init__(self, app: ASGIApp, *, paths: tuple[str, ...]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.paths):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                body = json.dumps(
                    {
                        "error": {
                            "type": "TooLarge",
                            "message": f"request larger than {MAX_BODY_BYTES} bytes",
                        }
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [(b"content-type", b"application/json"), *_SECURITY_HEADERS],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h for h in message.get("headers", []) if h[0] not in dict(_SECURITY_HEADERS)
                ]
                message["headers"] = [*headers, *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _shown(value: Any) -> Any:
    """A value to echo in an error: JSON scalars as they are (not NaN or infinity), anything
    else as short text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value[:80]
    if value is None or isinstance(value, bool | int | float):
        return value
    return json.dumps(value, default=str)[:80]


def _error(status_code: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    detail: dict[str, Any] = {"type": kind, "message": message, **extra}
    headers = {}
    if status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": detail}, status_code=status_code, headers=headers)


def _page_error(request: Request, status_code: int, message: str) -> Response | None:
    """The dashboard's error page for a request outside the API (None: answer in JSON)."""
    path = request.url.path
    render = getattr(request.app.state, "html_error", None)
    if render is None or path.startswith((PREFIX, "/openapi.json", "/docs")):
        return None
    page: Response = render(request, status_code, message)
    return page


def _itb_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ITBError)
    code = outcome_of(exc).http_status
    html = _page_error(request, code, str(exc))
    if html is not None:
        return html
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidValue):
        extra = {"field": exc.field, "value": _shown(exc.value), "allowed": exc.allowed}
    response = _error(code, type(exc).__name__, str(exc), **extra)
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(max(1, int(exc.retry_after_s + 0.999)))
    return response


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "input": None}
    raw_loc = first.get("loc") or ()
    loc = [str(p) for p in raw_loc if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or "request"
    shown = _shown(first.get("input"))
    message = str(first.get("msg", "a valid value"))
    allowed = message.removeprefix("Input should be ").removeprefix("Value error, ")
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    text = f"{field} = {str(shown)[:80]!r} is not allowed; allowed: {allowed}{more}"
    html = _page_error(request, 422, text)
    if html is not None:
        return html
    return _error(422, "InvalidValue", text, field=field, value=shown, allowed=allowed)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    html = _page_error(request, exc.status_code, str(exc.detail))
    return html or _error(exc.status_code, "HTTPError", str(exc.detail))


def _internal(request: Request, exc: Exception) -> Response:
    message = f"internal error ({type(exc).__name__}); this is a bug in itb"
    html = _page_error(request, 500, message)
    return html or _error(500, "InternalError", message)


# ------------------------------------------------------------------ replies


def _reply(content: BaseModel | dict[str, Any] | list[Any], status_code: int = 200) -> Response:
    """A JSON response. Records go out as their plain data, shaped as the endpoint's
    ``XPublic`` model declares (the OpenAPI schema; the schemathesis run checks every
    response against it): building the model and dumping it again would double the cost
    of the big pages."""
    if isinstance(content, BaseModel):
        body = content.model_dump_json()
    else:
        body = json.dumps(
            [c.model_dump(mode="json") if isinstance(c, BaseModel) else c for c in content]
            if isinstance(content, list)
            else content,
            allow_nan=False,
            ensure_ascii=False,
            separators=(",", ":"),
        )
    return Response(body, status_code=status_code, media_type="application/json")


# ------------------------------------------------------------------ conversions


def _patient(p: PatientRecord) -> dict[str, Any]:
    return {**plain(p), "origin": p.origin, "withdrawal_risk": list(p.withdrawal_risk)}


def _implant(i: ImplantRecord) -> dict[str, Any]:
    out: dict[str, Any] = plain(i)
    return out


def _snapshot(snap: PumpSnapshot) -> dict[str, Any]:
    data: dict[str, Any] = plain(snap)
    data.pop("state")
    data.pop("implant_id")
    data.pop("profile")  # the forecast's input; the forecast itself is on the radar
    return data


def _pump_now(now: PumpNow) -> dict[str, Any]:
    data: dict[str, Any] = plain(now)
    data["implant"] = _implant(now.implant)
    data["forecast"] = _snapshot(now.snapshot)
    data.pop("snapshot")
    return data


def _forecast(f: PumpForecast | None) -> s.ForecastPublic | None:
    if f is None:
        return None
    return s.ForecastPublic(
        factor_mean=f.factor_mean, factor_sd=f.factor_sd, refills_learned=f.refills_learned,
        found_empty=f.found_empty, delivered_pct=f.delivered_pct,
        band_probability=f.band_probability, low_at=f.low_at, empty_at=f.empty_at,
        by_at=f.by_at, by_visit=f.by_visit, p_low=f.p_low, p_dry=f.p_dry,
        advised_by=f.advised_by, history=history_words(f),
    )  # fmt: skip


def _radar_row(r: RadarRow) -> s.RadarRowPublic:
    p = r.pump
    return s.RadarRowPublic(
        patient_id=p.patient_id, patient_name=p.patient_name, implant_id=p.implant_id,
        pump_label=p.pump_label, urgency=r.urgency, words=r.words,
        flags=[s.FlagPublic(code=f.code, urgency=f.urgency, text=f.text) for f in r.flags],
        running=p.running, reservoir_calculated_ml=p.reservoir_calculated_ml,
        low_alarm_at=p.low_alarm_at, empty_at=p.empty_at, earliest_dry_at=p.earliest_dry_at,
        stability_until=p.stability_until, eri_at=p.eri_at, next_visit_at=p.next_visit_at,
        refill_by=r.refill_by, active_alarms=list(p.active_alarms),
        unresolved_discrepancies=p.unresolved_discrepancies, withdrawal_risk=list(p.withdrawal_risk),
        forecast=_forecast(p.forecast),
    )  # fmt: skip


def _check(c: ChainCheck) -> s.ChainCheckPublic:
    return s.ChainCheckPublic(
        ok=c.ok, entries=c.entries, first_broken_seq=c.first_broken_seq, problem=c.problem,
        head_seq=c.head.seq, head_hash=c.head.hash,
    )  # fmt: skip


def _program(p: s.ProgramIn | None) -> ProgramRequest | None:
    if p is None:
        return None
    pb = p.patient_bolus
    bolus = (
        None
        if pb is None
        else PatientBolusSettings(pb.dose_mcg, pb.duration_h, pb.lockout_h, pb.max_per_day)
    )
    return ProgramRequest(
        dose_mcg_per_day=p.dose_mcg_per_day, flex_steps=tuple(p.flex_steps),
        periodic=p.periodic, patient_bolus=bolus,
    )  # fmt: skip


def _fill(f: s.FillIn) -> DrugFill:
    return DrugFill(f.volume_ml, f.concentration_mcg_per_ml, f.product, f.lot, f.expiry)


# ------------------------------------------------------------------ dependencies

_bearer = OAuth2PasswordBearer(tokenUrl=f"{PREFIX}/auth/token", auto_error=False)


async def _service(request: Request) -> ClinicService:
    service: ClinicService = request.app.state.service
    return service


Svc = Annotated[ClinicService, Depends(_service)]
Token = Annotated[str | None, Depends(_bearer)]


async def _actor(service: Svc, token: Token) -> Actor:
    # a token verified moments ago is answered from memory on the event loop; otherwise
    # the registry is read in a worker thread, never on the loop
    if token is None:
        raise AuthenticationFailed(
            "not signed in (send a bearer token in the Authorization header)"
        )
    known = service.trusted_actor(token)
    if known is not None:
        return known
    return await run_in_threadpool(service.actor_for_token, token)


Me = Annotated[Actor, Depends(_actor)]
Since = Annotated[
    datetime | None,
    Query(description="Only records changed at or after this time (ISO 8601 with an offset)."),
]

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: _ERRORS[k] for k in (400, 401, 413, 422, 503)},
    429: {"model": s.ErrorPublic, "description": "Too many failed log-ins: wait (Retry-After)"},
}
auth = APIRouter(prefix=f"{PREFIX}/auth", tags=["auth"], responses=_AUTH_ERRORS)
api = APIRouter(prefix=PREFIX, responses=_ERRORS)


@auth.post("/token", response_model=s.TokenPublic, summary="Sign in (OAuth2 password flow)")
def token(
    request: Request, service: Svc, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Response:
    address = request.client.host if request.client else ""
    issued = service.log_in(form.username, form.password, address=address)
    return _reply(
        s.TokenPublic(
            access_token=issued.token,
            token_type="bearer",
            expires_in=issued.expires_in_s,
            username=issued.username,
            role=issued.role,
        )
    )


@auth.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session")
def logout(service: Svc, who: Me, token: Token) -> None:
    assert token is not None
    service.log_out(token)


@api.get("/me", response_model=s.MePublic, tags=["auth"])
def me(who: Me) -> Response:
    return _reply(s.MePublic(username=who.username, role=who.role.value, patient_id=who.patient_id))


# ------------------------------------------------------------------ users


@api.get("/users", response_model=list[s.UserPublic], tags=["users"])
def users(service: Svc, who: Me) -> Response:
    return _reply([plain(u) for u in service.users(who)])


@api.post("/users", response_model=s.UserPublic, status_code=201, tags=["users"])
def create_user(service: Svc, who: Me, body: s.UserCreate) -> Response:
    u = service.create_user(
        who,
        username=body.username,
        role=body.role,
        password=body.password,
        display_name=body.display_name,
        patient_id=body.patient_id,
    )
    return _reply(plain(u), 201)


# ------------------------------------------------------------------ patients


@api.get("/patients", response_model=list[s.PatientPublic], tags=["patients"])
def patients(service: Svc, who: Me, modified_since: Since = None) -> Response:
    return _reply([_patient(p) for p in service.patients(who, modified_since=modified_since)])


@api.post("/patients", response_model=s.PatientPublic, status_code=201, tags=["patients"])
def register(service: Svc, who: Me, body: s.PatientCreate) -> Response:
    return _reply(_patient(service.register_patient(who, NewPatient(**body.model_dump()))), 201)


@api.get("/patients/{patient_id}", response_model=s.PatientChartPublic, tags=["patients"])
def chart(
    service: Svc,
    who: Me,
    patient_id: s.Id,
    recent: Annotated[
        int,
        Query(ge=1, le=1000, description="The latest so many refills, visits, changes, symptoms."),
    ] = 25,
) -> Response:
    c = service.chart(who, patient_id, recent=recent)
    return _reply(
        {
            "patient": _patient(c.patient),
            "contacts": [plain(x) for x in c.contacts],
            "assessments": [plain(x) for x in c.assessments],
            "implants": [_implant(x) for x in c.implants],
            "visits": [plain(x) for x in c.visits],
            "refills": [plain(x) for x in c.refills],
            "changes": [plain(x) for x in c.changes],
            "symptoms": [plain(x) for x in c.symptoms],
            "surgeries": [plain(x) for x in c.surgeries],
            "totals": dict(c.totals),
        }
    )


def _fhir(service: ClinicService, who: Actor, patient_id: str | None) -> Response:
    from itb.adapters.fhir import context_for, to_bundle

    files = service.patient_files(who, patient_id)
    info = service.clinic_info()
    ctx = context_for(service.catalog, info.name if info else "ITB clinic", service.clock.now())
    return _reply(to_bundle(files, ctx))


@api.get(
    "/patients/{patient_id}/fhir", response_model=s.FhirBundlePublic, tags=["patients", "fhir"]
)
def patient_fhir(service: Svc, who: Me, patient_id: s.Id) -> Response:
    """The patient's whole record as a FHIR R4 Bundle (a patient or caregiver: their own)."""
    return _fhir(service, who, patient_id)


@api.get("/fhir", response_model=s.FhirBundlePublic, tags=["fhir"])
def clinic_fhir(service: Svc, who: Me) -> Response:
    """Every patient's whole record as one FHIR R4 Bundle (clinic staff)."""
    return _fhir(service, who, None)


@api.patch("/patients/{patient_id}", response_model=s.PatientPublic, tags=["patients"])
def edit(service: Svc, who: Me, patient_id: s.Id, body: s.PatientUpdate) -> Response:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "version"}
    return _reply(
        _patient(service.edit_patient(who, patient_id, expected_version=body.version, **changes))
    )


@api.post(
    "/patients/{patient_id}/contacts",
    response_model=s.ContactPublic,
    status_code=201,
    tags=["patients"],
)
def contact(service: Svc, who: Me, patient_id: s.Id, body: s.ContactCreate) -> Response:
    c = service.add_contact(
        who,
        patient_id,
        name=body.name,
        relation=body.relation,
        phone=body.phone,
        caregiver=body.caregiver,
    )
    return _reply(plain(c), 201)


# ------------------------------------------------------------------ implants


@api.post(
    "/patients/{patient_id}/implants",
    response_model=s.ImplantPublic,
    status_code=201,
    tags=["implants"],
)
def implant(service: Svc, who: Me, patient_id: s.Id, body: s.ImplantCreate) -> Response:
    new = NewImplant(
        at=body.at,
        pump_preset=body.pump_preset,
        serial=body.serial,
        catheter_family=body.catheter_family,
        catheter_length_cm=body.catheter_length_cm,
        fill=_fill(body.fill),
        program=_program(body.program),
        udi=body.udi,
        tip_level=body.tip_level,
        low_reservoir_alarm_ml=body.low_reservoir_alarm_ml,
        prime=body.prime,
        reason=body.reason,
        override_reason=body.override_reason,
    )
    return _reply(_implant(service.record_implant(who, patient_id, new)), 201)


@api.get("/implants/{implant_id}/pump", response_model=s.PumpNowPublic, tags=["implants"])
def pump_now(
    service: Svc, who: Me, implant_id: s.Id, at: Annotated[datetime | None, Query()] = None
) -> Response:
    return _reply(_pump_now(service.pump_now(who, implant_id, at=at)))


@api.get("/implants/{implant_id}/commands", response_model=list[s.CommandPublic], tags=["implants"])
def commands(service: Svc, who: Me, implant_id: s.Id) -> Response:
    return _reply([plain(e) for e in service.command_log(who, implant_id)])


@api.post(
    "/implants/{implant_id}/interrogations",
    response_model=s.InterrogationPublic,
    status_code=201,
    tags=["implants"],
)
def interrogate(service: Svc, who: Me, implant_id: s.Id, body: s.InterrogationCreate) -> Response:
    q = service.record_interrogation(
        who,
        implant_id,
        at=body.at,
        reading=Reading(body.reservoir_ml, tuple(body.alarms), body.note),
        expected_version=body.expected_version,
    )
    return _reply(plain(q), 201)


def _refill_request(body: s.RefillPreviewCreate | s.RefillCreate) -> RefillRequest:
    """The refill a body describes (a recorded refill adds its reasons and verifier)."""
    return RefillRequest(
        at=body.at,
        withdrawn_ml=body.withdrawn_ml,
        fill=_fill(body.fill),
        program=_program(body.program),
        bridge_bolus=body.bridge_bolus,
        low_reservoir_alarm_ml=body.low_reservoir_alarm_ml,
    )


@api.post(
    "/implants/{implant_id}/refills",
    response_model=s.RefillOutcomePublic,
    status_code=201,
    tags=["refills"],
)
def refill(service: Svc, who: Me, implant_id: s.Id, body: s.RefillCreate) -> Response:
    out = service.record_refill(
        who,
        implant_id,
        replace(
            _refill_request(body),
            reason=body.reason,
            override_reason=body.override_reason,
            verified_by=body.verified_by,
        ),
        expected_version=body.expected_version,
    )
    return _reply(
        s.RefillOutcomePublic(
            refill=plain(out.visit),
            discrepancy=plain(out.discrepancy),
            forecast=_snapshot(out.snapshot),
        ),
        201,
    )


@api.post(
    "/implants/{implant_id}/refill-preview",
    response_model=s.RefillPreviewPublic,
    tags=["refills"],
)
def refill_preview(
    service: Svc, who: Me, implant_id: s.Id, body: s.RefillPreviewCreate
) -> Response:
    """What the refill would find and forecast, with nothing recorded: the residual's
    verdict, whether the pump and the drug library take the fill, and the reservoir
    forecast now and after it. Who may record a refill may preview one."""
    out = service.preview_refill(who, implant_id, _refill_request(body))
    return _reply(
        s.RefillPreviewPublic(
            implant_id=out.implant_id,
            at=out.at,
            discrepancy=plain(out.discrepancy),
            refusal=out.refusal,
            forecast_now=_forecast(out.forecast_now),
            forecast_after=_forecast(out.forecast_after),
        )
    )


@api.get("/refills", response_model=list[s.RefillPublic], tags=["refills"])
def refills(
    service: Svc,
    who: Me,
    modified_since: Since = None,
    open_only: Annotated[bool, Query(alias="open", description="Unresolved only.")] = False,
    implant_id: Annotated[s.Id | None, Query(description="One pump only.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000, description="The latest so many.")] = 500,
) -> Response:
    rows = service.refills(
        who, open_only=open_only, modified_since=modified_since, implant_id=implant_id
    )
    return _reply([plain(r) for r in rows[-limit:]])


@api.post(
    "/implants/{implant_id}/surgeries",
    response_model=s.SurgeryPublic,
    status_code=201,
    tags=["implants"],
)
def surgery(service: Svc, who: Me, implant_id: s.Id, body: s.SurgeryCreate) -> Response:
    out = service.record_surgery(
        who,
        implant_id,
        kind=body.kind,
        at=body.at,
        detail=body.detail,
        expected_version=body.expected_version,
    )
    return _reply(plain(out), 201)


# ------------------------------------------------------------------ complications

_COMPLICATION_FIELDS = {"treatment": "treatments", "sign": "signs"}


@contextmanager
def _as_sent(names: Mapping[str, str]) -> Iterator[None]:
    """Name a refused value as the body names it (``treatment`` -> ``treatments``)."""
    try:
        yield
    except InvalidValue as exc:
        if exc.field in names:
            raise exc.renamed(names[exc.field]) from None
        raise


@api.post(
    "/implants/{implant_id}/complications",
    response_model=s.ComplicationPublic,
    status_code=201,
    tags=["complications"],
)
def complication(service: Svc, who: Me, implant_id: s.Id, body: s.ComplicationCreate) -> Response:
    """Record a complication of this implanted system (nurses and physicians; a treatment
    ``explant`` records the explant surgery too, and ends the implant: a physician)."""
    with _as_sent(_COMPLICATION_FIELDS):
        out = service.record_complication(
            who, implant_id, kind=body.kind, found_at=body.found_at, onset_at=body.onset_at,
            at=body.at, signs=body.signs, treatments=body.treatments, bridge=body.bridge,
            oral_bridge_mg_per_day=body.oral_bridge_mg_per_day, status=body.status,
            note=body.note, expected_version=body.expected_version,
        )  # fmt: skip
    return _reply(plain(out), 201)


@api.post(
    "/complications/{complication_id}/updates",
    response_model=s.ComplicationPublic,
    status_code=201,
    tags=["complications"],
)
def complication_update(
    service: Svc, who: Me, complication_id: s.Id, body: s.ComplicationUpdate
) -> Response:
    """Append an entry to a complication; ``complication_id`` must be its latest entry (409
    when someone updated it first). Nothing is changed in place."""
    with _as_sent(_COMPLICATION_FIELDS):
        out = service.update_complication(
            who, complication_id, at=body.at, signs=body.signs, treatments=body.treatments,
            bridge=body.bridge, oral_bridge_mg_per_day=body.oral_bridge_mg_per_day,
            status=body.status, note=body.note, expected_version=body.expected_version,
        )  # fmt: skip
    return _reply(plain(out), 201)


@api.get(
    "/patients/{patient_id}/complications",
    response_model=list[s.ComplicationPublic],
    tags=["complications"],
)
def complications(
    service: Svc,
    who: Me,
    patient_id: s.Id,
    implant_id: Annotated[s.Id | None, Query(description="One implant only.")] = None,
    latest: Annotated[
        bool, Query(description="Each complication's latest entry only (what it is now).")
    ] = False,
) -> Response:
    """The patient's complications: every entry, each complication's in order (a patient or
    caregiver: their own)."""
    rows = service.complications(who, patient_id, implant_id=implant_id, latest_only=latest)
    return _reply([plain(c) for c in rows])


# ------------------------------------------------------------------ programming


@api.post(
    "/implants/{implant_id}/changes",
    response_model=s.ChangePublic,
    status_code=201,
    tags=["programming"],
)
def stage(service: Svc, who: Me, implant_id: s.Id, body: s.ChangeCreate) -> Response:
    request = ChangeRequest(
        program=_program(body.program),
        low_reservoir_alarm_ml=body.low_reservoir_alarm_ml,
        bolus_mcg=body.bolus_mcg,
        bolus_duration_h=body.bolus_duration_h,
        reason=body.reason,
        override_reason=body.override_reason,
    )
    change = service.stage_change(who, implant_id, request, expected_version=body.expected_version)
    return _reply(plain(change), 201)


@api.get("/changes", response_model=list[s.ChangePublic], tags=["programming"])
def changes(
    service: Svc,
    who: Me,
    modified_since: Since = None,
    all_states: Annotated[
        bool, Query(alias="all", description="Committed and cancelled too.")
    ] = False,
) -> Response:
    rows = service.changes(who, open_only=not all_states, modified_since=modified_since)
    return _reply([plain(c) for c in rows])


@api.get("/changes/{change_id}", response_model=s.ChangePublic, tags=["programming"])
def get_change(service: Svc, who: Me, change_id: s.Id) -> Response:
    return _reply(plain(service.change(who, change_id)))


@api.post("/changes/{change_id}/verify", response_model=s.ChangePublic, tags=["programming"])
def verify(service: Svc, who: Me, change_id: s.Id) -> Response:
    return _reply(plain(service.verify_change(who, change_id)))


@api.post("/changes/{change_id}/commit", response_model=s.ChangePublic, tags=["programming"])
def commit(service: Svc, who: Me, change_id: s.Id) -> Response:
    return _reply(plain(service.commit_change(who, change_id)))


@api.post("/changes/{change_id}/cancel", response_model=s.ChangePublic, tags=["programming"])
def cancel(service: Svc, who: Me, change_id: s.Id, body: s.ChangeCancel) -> Response:
    return _reply(plain(service.cancel_change(who, change_id, reason=body.reason)))


# ------------------------------------------------------------------ visits and symptoms


@api.get("/visits", response_model=list[s.VisitPublic], tags=["visits"])
def visits(
    service: Svc,
    who: Me,
    patient_id: Annotated[s.Id | None, Query()] = None,
    modified_since: Since = None,
    history: Annotated[
        bool, Query(description="Done, missed and cancelled visits too (default: booked only).")
    ] = False,
    limit: Annotated[
        int, Query(ge=1, le=5000, description="At most so many (soonest first).")
    ] = 500,
) -> Response:
    rows = service.visits(
        who, patient_id=patient_id, modified_since=modified_since, booked_only=not history
    )
    return _reply([plain(v) for v in rows[:limit]])


@api.post(
    "/patients/{patient_id}/visits", response_model=s.VisitPublic, status_code=201, tags=["visits"]
)
def book(service: Svc, who: Me, patient_id: s.Id, body: s.VisitCreate) -> Response:
    v = service.book_visit(who, patient_id, at=body.at, kind=body.kind, note=body.note)
    return _reply(plain(v), 201)


@api.patch("/visits/{visit_id}", response_model=s.VisitPublic, tags=["visits"])
def visit_status(service: Svc, who: Me, visit_id: s.Id, body: s.VisitUpdate) -> Response:
    v = service.set_visit_status(
        who, visit_id, status=body.status, expected_version=body.version, note=body.note
    )
    return _reply(plain(v))


@api.post(
    "/patients/{patient_id}/symptoms",
    response_model=s.SymptomOutcomePublic,
    status_code=201,
    tags=["symptoms"],
)
def symptoms(service: Svc, who: Me, patient_id: s.Id, body: s.SymptomCreate) -> Response:
    out = service.record_symptoms(who, patient_id, signs=body.signs, at=body.at)
    return _reply(
        s.SymptomOutcomePublic(
            record=plain(out.record),
            urgency_label=out.triage.urgency_label,
            actions=list(out.triage.actions),
        ),
        201,
    )


# ------------------------------------------------------------------ radar and audit


@api.get("/radar", response_model=list[s.RadarRowPublic], tags=["radar"])
def radar(
    service: Svc,
    who: Me,
    on: Annotated[datetime | None, Query(description="Look from this time (default now).")] = None,
) -> Response:
    return _reply([_radar_row(r) for r in service.radar(who, on=on)])


@api.get("/pumps-out", response_model=list[s.PumpOutPublic], tags=["radar"])
def pumps_out(
    service: Svc,
    who: Me,
    on: Annotated[datetime | None, Query(description="Look from this time (default now).")] = None,
) -> Response:
    """Patients whose pump came out for a complication and who have no pump in use since:
    not on the radar (nothing to refill), at risk of withdrawal until the new pump."""
    return _reply([plain(o) for o in service.pumps_out(who, on=on)])


@api.get("/audit", response_model=list[s.AuditEntryPublic], tags=["audit"])
def audit(
    service: Svc,
    who: Me,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=120)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    rows = service.audit_trail(who, entity=entity, entity_id=entity_id)[-limit:]
    return _reply([plain(e) for e in rows])


@api.get("/audit/verify", response_model=s.ChainCheckPublic, tags=["audit"])
def audit_verify(service: Svc, who: Me) -> Response:
    return _reply(_check(service.verify_audit(who)))


health = APIRouter(prefix=PREFIX, tags=["health"], responses={503: _ERRORS[503]})


@health.get("/health")
async def health_check() -> dict[str, str]:
    """Whether the service answers (no configuration, no secrets)."""
    return {"status": "ok"}


# ------------------------------------------------------------------ calendar subscriptions


@api.post(
    "/patients/{patient_id}/calendar-feed",
    response_model=s.CalendarFeedPublic,
    status_code=201,
    tags=["calendar"],
)
def issue_feed(service: Svc, who: Me, patient_id: s.Id, request: Request) -> Response:
    """A new calendar subscription address for the patient's refill reminders (shown
    once; the earlier one stops working). A patient or caregiver: their own."""
    token = service.issue_calendar_feed(who, patient_id)
    path = f"/calendar/{token}.ics"
    return _reply(
        {"patient_id": patient_id, "path": path, "url": str(request.base_url).rstrip("/") + path},
        201,
    )


@api.delete("/patients/{patient_id}/calendar-feed", status_code=204, tags=["calendar"])
def revoke_feed(service: Svc, who: Me, patient_id: s.Id) -> Response:
    """Stop the patient's calendar subscription address."""
    service.revoke_calendar_feed(who, patient_id)
    return Response(status_code=204)


feeds = APIRouter(include_in_schema=False)


@feeds.get("/calendar/{token}.ics")
def calendar_feed(service: Svc, token: str) -> Response:
    """A calendar app's subscription: the token in the address is the only key (read
    only, this calendar only); unknown or revoked: 404."""
    from itb.adapters.calendar import reminders_ics

    if len(token) > 100:
        raise NotFound("this calendar address is unknown or was revoked")
    data = reminders_ics(service.feed_reminders(token))
    return Response(
        data,
        media_type="text/calendar",
        headers={"Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"},
    )


# ------------------------------------------------------------------ the app


def create_api(service: ClinicService, app: FastAPI | None = None) -> FastAPI:
    """The API's routes on ``app`` (a new app when none is given), over ``service``."""
    app = app or FastAPI(title="itb clinic API", version=__version__)
    app.state.service = service
    app.include_router(auth)
    app.include_router(api)
    app.include_router(health)
    app.include_router(feeds)
    app.add_exception_handler(ITBError, _itb_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal)
    app.add_middleware(_Guard, paths=(PREFIX, "/openapi.json", "/docs"))
    return app

"""The TOML spec of a pump run, parsed and validated at the edge (docs/pump-spec.md).

A spec names a pump preset, a catheter, the initial fill, the prescription,
an optional priming bolus and a list of timed events (refills, reprogramming,
boluses, faults, MRI, ...). :func:`parse_pump_spec` turns the TOML table into
frozen pydantic models or raises :class:`itb.domain.errors.InvalidValue` with
ONE line: ``field = value is not allowed; allowed: ...``, the field named by
its path in the file (``events[3].volume_ml``).

Time rule: every event has exactly one of

* ``at``: a date-time. Without an offset it is local wall time in
  ``pump.timezone`` (an ambiguous time in the repeated DST hour means the first
  occurrence; a time that does not exist, in the skipped hour, is refused);
  with an offset (``2026-04-05T09:00:00+01:00``) it is that instant.
* ``day``: days of elapsed time after the implant instant (``day = 1.5`` is
  36 h later, whatever the wall clock says across a DST change).
* ``t_h``: hours of elapsed time after the implant instant.

Pure parsing: no clock, no files. Pump-dependent checks (rates against the
preset, concentrations against the drug products) happen in
:mod:`itb.services.pump_run` before anything runs.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from datetime import date, datetime, time
from types import UnionType
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from itb.domain.errors import InvalidValue
from itb.domain.pump.faults import FaultKind
from itb.domain.pump.programs import WEEKDAYS
from itb.services.limits import MAX_RUN_DAYS, MAX_RUN_H, PUMP_MAX_YEAR, PUMP_MIN_YEAR

__all__ = [
    "EVENT_KINDS",
    "MODES",
    "AccessPortEvent",
    "CatheterSection",
    "ContinuousRx",
    "EnvironmentEvent",
    "Event",
    "FaultEvent",
    "FieldError",
    "FillSection",
    "FlexRx",
    "FlexStepSpec",
    "InterrogateEvent",
    "MriEndEvent",
    "MriEvent",
    "MriStartEvent",
    "PatientBolusEvent",
    "PatientBolusSpec",
    "PeriodicRx",
    "PrescriptionSpec",
    "PrimingBolusSpec",
    "PumpSection",
    "PumpSpec",
    "RefillEvent",
    "RepairEvent",
    "ReprogramEvent",
    "SetClockEvent",
    "SingleBolusEvent",
    "StoppedRx",
    "format_validation_error",
    "parse_pump_spec",
]

MODES = ("stopped", "continuous", "flex", "periodic")
EVENT_KINDS = (
    "refill",
    "reprogram",
    "set_clock",
    "single_bolus",
    "patient_bolus",
    "access_port_injection",
    "fault",
    "repair",
    "mri_start",
    "mri_end",
    "mri",
    "environment",
    "interrogate",
)
FAULT_KINDS = tuple(k.value for k in FaultKind)

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MIN_YEAR, MAX_YEAR = PUMP_MIN_YEAR, PUMP_MAX_YEAR
"""Dates a run may be placed in (beyond them calendar arithmetic overflows); these, and
the longest run (``MAX_RUN_DAYS``, ``MAX_RUN_H``), are :mod:`itb.services.limits`'."""
MIN_REPEAT_DAYS = 1.0 / 24.0
"""The shortest repeat interval, days (one hour: nothing in a pump run repeats faster)."""


# ----------------------------------------------------------------- field types


def _clock_hours(value: object) -> object:
    """``"06:30"`` or a TOML local time ``06:30:00`` -> 6.5 (hours after midnight)."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError('a time of day like "06:00" (no time zone)')
        return value.hour + value.minute / 60.0 + value.second / 3600.0
    if isinstance(value, str) and (m := _HHMM.match(value.strip())):
        return int(m.group(1)) + int(m.group(2)) / 60.0
    raise ValueError('a time of day "HH:MM" from "00:00" to "23:59"')


def _date_time(value: object) -> object:
    """A TOML date-time, or an ISO string, kept as :class:`datetime` (naive = local)."""
    out: datetime | None = None
    if isinstance(value, datetime):
        out = value
    elif isinstance(value, str):
        try:
            out = datetime.fromisoformat(value.strip())
        except ValueError:
            out = None
    if out is None:
        if isinstance(value, date):
            raise ValueError("a date-time like 2026-01-05T09:00:00 (a date alone has no time)")
        raise ValueError("a date-time like 2026-01-05T09:00:00 (local) or with an offset")
    if not MIN_YEAR <= out.year <= MAX_YEAR:
        raise ValueError(f"a date-time in the years {MIN_YEAR} to {MAX_YEAR}")
    return out


ClockHours = Annotated[float, BeforeValidator(_clock_hours)]
"""A time of day, hours after midnight."""
DateTime = Annotated[datetime, BeforeValidator(_date_time)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Hours = Annotated[float, Field(gt=0, le=MAX_RUN_H, allow_inf_nan=False)]
"""A duration, hours: positive and no longer than the longest run."""
HoursOrZero = Annotated[float, Field(ge=0, le=MAX_RUN_H, allow_inf_nan=False)]
Days = Annotated[float, Field(ge=0, le=MAX_RUN_DAYS, allow_inf_nan=False)]
"""Days after the implant: within the longest run."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---------------------------------------------------------------- sections


class PumpSection(_Model):
    """``[pump]``: which pump, how accurate, when and where it was implanted."""

    preset: Annotated[str, Field(max_length=80)]
    """A key of pumps.toml (``itb pump presets``)."""
    accuracy_factor: Positive = 1.0
    """True / programmed flow (1.0 = exact; within the preset's rated band)."""
    implanted_at: DateTime
    """Implant (and first programming) time; local wall time in ``timezone`` unless offset."""
    timezone: Annotated[str, Field(max_length=80)]
    """IANA time zone name of the patient's wall clock (``Europe/London``)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("an IANA time zone name like Europe/London or UTC") from None
        return value


class PatientRef(_Model):
    """``[patient]``: whose pump, for the drug library's limits (adult/child, origin)."""

    population: Literal["adult_spinal", "adult_cerebral", "child"]
    """The drug library's population; without it only the widest hard limits apply."""


class CatheterSection(_Model):
    """``[catheter]``: catheter family and implanted length."""

    family: str
    """A key of catheters.toml."""
    implanted_length_cm: Positive


class FillSection(_Model):
    """``[fill]``: the initial fill at implant."""

    volume_ml: Positive
    concentration_mcg_per_ml: Positive
    """Labelled concentration (a baclofen product strength or a dilution)."""
    true_concentration_mcg_per_ml: NonNegative | None = None
    """What is really in the syringe (a compounding error); default: as labelled."""


class PatientBolusSpec(_Model):
    """Patient-activated bolus limits."""

    dose_mcg: Positive
    duration_h: Hours
    lockout_h: HoursOrZero
    max_per_day: Annotated[int, Field(ge=1, le=100)]


class FlexStepSpec(_Model):
    """One flex step: from ``start`` (``"HH:MM"``, pump clock) at ``rate_mcg_per_h``."""

    start: ClockHours
    rate_mcg_per_h: NonNegative


class _RxBase(_Model):
    patient_bolus: PatientBolusSpec | None = None
    low_reservoir_alarm_ml: Positive | None = None


class StoppedRx(_RxBase):
    """Stopped pump: no delivery."""

    mode: Literal["stopped"]


class ContinuousRx(_RxBase):
    """Simple continuous at ``dose_mcg_per_day``."""

    mode: Literal["continuous"]
    dose_mcg_per_day: NonNegative


FlexDay = Annotated[list[FlexStepSpec], Field(min_length=1)]


class FlexRx(_RxBase):
    """Flex: steps on the pump clock, the same every day and/or per weekday.

    A weekday's own list replaces ``every_day`` on that day. Without
    ``every_day`` all seven weekdays are required. Before a day's first step
    the previous day's last rate runs on (so ``[{start = "06:00"}, {start =
    "22:00"}]`` means 22:00 to 06:00 at the second rate).
    """

    mode: Literal["flex"]
    every_day: FlexDay | None = None
    mon: FlexDay | None = None
    tue: FlexDay | None = None
    wed: FlexDay | None = None
    thu: FlexDay | None = None
    fri: FlexDay | None = None
    sat: FlexDay | None = None
    sun: FlexDay | None = None

    @model_validator(mode="after")
    def _complete_week(self) -> FlexRx:
        missing = [d for d in WEEKDAYS if getattr(self, d) is None]
        if self.every_day is None and missing:
            raise FieldError(
                ("every_day",),
                None,
                f"a list of steps, or all seven weekdays mon..sun (missing: {', '.join(missing)})",
            )
        for name in ("every_day", *WEEKDAYS):
            steps: list[FlexStepSpec] | None = getattr(self, name)
            if steps is None:
                continue
            starts = [s.start for s in steps]
            for i in range(1, len(starts)):
                if starts[i] <= starts[i - 1]:
                    raise FieldError(
                        (name, i, "start"),
                        _hhmm(starts[i]),
                        f"later than the previous step's {_hhmm(starts[i - 1])} "
                        "(steps in increasing time order)",
                    )
        return self

    def day_steps(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        """``(start_h, rate_mcg_per_h)`` per weekday, Monday first, as written."""
        out = []
        for name in WEEKDAYS:
            steps = getattr(self, name) or self.every_day
            assert steps is not None
            out.append(tuple((s.start, s.rate_mcg_per_h) for s in steps))
        return tuple(out)


class PeriodicRx(_RxBase):
    """Periodic boluses on a basal rate, from ``first_start`` on Monday of the pump clock."""

    mode: Literal["periodic"]
    basal_mcg_per_day: NonNegative
    bolus_mcg: Positive
    bolus_duration_h: Hours
    interval_h: Hours
    first_start: ClockHours = 0.0

    @model_validator(mode="after")
    def _fits(self) -> PeriodicRx:
        if self.bolus_duration_h >= self.interval_h:
            raise FieldError(
                ("bolus_duration_h",), self.bolus_duration_h, f"< interval_h ({self.interval_h:g})"
            )
        return self


PrescriptionSpec = Annotated[
    StoppedRx | ContinuousRx | FlexRx | PeriodicRx, Field(discriminator="mode")
]


class PrimingBolusSpec(_Model):
    """``[priming_bolus]``: advance drug to the catheter tip at implant."""

    volume_ml: Positive | None = None
    """Default: the whole dead space (pump path + implanted catheter)."""
    duration_h: Hours = 1.0


# ------------------------------------------------------------------- events


class _EventBase(_Model):
    at: DateTime | None = None
    day: Days | None = None
    t_h: HoursOrZero | None = None
    repeat_every_days: (
        Annotated[float, Field(ge=MIN_REPEAT_DAYS, le=MAX_RUN_DAYS, allow_inf_nan=False)] | None
    ) = None
    """Repeat every so many days (elapsed) until the run ends (or ``repeat_count`` times)."""
    repeat_count: Annotated[int, Field(ge=1, le=10_000)] | None = None
    reason: Annotated[str, Field(max_length=500)] = ""

    @model_validator(mode="after")
    def _one_time(self) -> _EventBase:
        given = [n for n in ("at", "day", "t_h") if getattr(self, n) is not None]
        if len(given) != 1:
            raise FieldError(
                ("at" if not given else given[1],),
                None if not given else getattr(self, given[1]),
                "exactly one of at (date-time), day (days after implant) or "
                "t_h (hours after implant)",
            )
        if self.repeat_count is not None and self.repeat_every_days is None:
            raise FieldError(
                ("repeat_count",), self.repeat_count, "only together with repeat_every_days"
            )
        return self


class RefillEvent(_EventBase):
    """Withdraw the residual, judge the discrepancy, fill, optionally reprogram."""

    kind: Literal["refill"]
    volume_ml: Positive
    concentration_mcg_per_ml: Positive
    prescription: PrescriptionSpec | None = None
    """Required when the concentration changes (at the new concentration)."""
    bridge_bolus: bool = False
    true_concentration_mcg_per_ml: NonNegative | None = None
    into_pocket: bool = False
    set_clock: bool = False


class ReprogramEvent(_EventBase):
    """A programming session; ``unfinished`` leaves it after the update began (pump STOPPED)."""

    kind: Literal["reprogram"]
    prescription: PrescriptionSpec | None = None
    low_reservoir_alarm_ml: Positive | None = None
    set_clock: bool = False
    unfinished: bool = False

    @model_validator(mode="after")
    def _something(self) -> ReprogramEvent:
        if self.prescription is None and self.low_reservoir_alarm_ml is None and not self.set_clock:
            raise FieldError(
                ("prescription",),
                None,
                "something to program: prescription, low_reservoir_alarm_ml or set_clock = true",
            )
        if (
            self.prescription is not None
            and self.prescription.low_reservoir_alarm_ml is not None
            and self.low_reservoir_alarm_ml is not None
        ):
            raise FieldError(
                ("low_reservoir_alarm_ml",),
                self.low_reservoir_alarm_ml,
                "only one of low_reservoir_alarm_ml and prescription.low_reservoir_alarm_ml",
            )
        return self


class SetClockEvent(_EventBase):
    """Set the pump clock to local wall time now (e.g. after a DST change)."""

    kind: Literal["set_clock"]


class SingleBolusEvent(_EventBase):
    """A clinician's single bolus from the reservoir."""

    kind: Literal["single_bolus"]
    dose_mcg: Positive
    duration_h: Hours


class PatientBolusEvent(_EventBase):
    """The patient asks for a bolus (accepted only within the programmed limits)."""

    kind: Literal["patient_bolus"]


class AccessPortEvent(_EventBase):
    """An injection through the catheter access port: flushes the catheter into the CSF."""

    kind: Literal["access_port_injection"]
    volume_ml: Positive
    concentration_mcg_per_ml: NonNegative
    duration_h: Hours = 1.0 / 60.0
    acknowledge_overdose_hazard: bool = Field(default=False, validate_default=True)

    @field_validator("acknowledge_overdose_hazard")
    @classmethod
    def _acknowledged(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "true (the injection flushes the catheter's drug straight into the CSF: "
                "overdose hazard)"
            )
        return value


class FaultEvent(_EventBase):
    """A device fault starts."""

    kind: Literal["fault"]
    fault: Literal[
        "occlusion",
        "leak",
        "disconnection",
        "migration",
        "motor_stall",
        "battery_depletion",
        "overinfusion_drift",
        "memory_error",
        "tip_mass",
        "csf_leak",
        "pocket_flip",
    ]
    fraction: Fraction = 1.0
    factor: Positive = 1.0
    critical: bool = False


class RepairEvent(_EventBase):
    """A fault ends (revision, reset)."""

    kind: Literal["repair"]
    fault: Literal[
        "occlusion",
        "leak",
        "disconnection",
        "migration",
        "motor_stall",
        "battery_depletion",
        "overinfusion_drift",
        "memory_error",
        "tip_mass",
        "csf_leak",
        "pocket_flip",
    ]


class MriStartEvent(_EventBase):
    """MRI exposure begins."""

    kind: Literal["mri_start"]


class MriEndEvent(_EventBase):
    """MRI exposure ends."""

    kind: Literal["mri_end"]


class MriEvent(_EventBase):
    """An MRI scan of ``duration_h`` (start and end)."""

    kind: Literal["mri"]
    duration_h: Hours


class EnvironmentEvent(_EventBase):
    """Body temperature and/or ambient pressure change (gas-driven pumps' flow)."""

    kind: Literal["environment"]
    body_temperature_degc: Annotated[float, Field(ge=30, le=45, allow_inf_nan=False)] | None = None
    ambient_pressure_kpa: Annotated[float, Field(ge=30, le=400, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _something(self) -> EnvironmentEvent:
        if self.body_temperature_degc is None and self.ambient_pressure_kpa is None:
            raise FieldError(
                ("body_temperature_degc",),
                None,
                "body_temperature_degc and/or ambient_pressure_kpa",
            )
        return self


class InterrogateEvent(_EventBase):
    """A programmer reads the pump (clears alarms, ends a post-MRI hold)."""

    kind: Literal["interrogate"]


Event = Annotated[
    RefillEvent
    | ReprogramEvent
    | SetClockEvent
    | SingleBolusEvent
    | PatientBolusEvent
    | AccessPortEvent
    | FaultEvent
    | RepairEvent
    | MriStartEvent
    | MriEndEvent
    | MriEvent
    | EnvironmentEvent
    | InterrogateEvent,
    Field(discriminator="kind"),
]


class PumpSpec(_Model):
    """A whole pump run."""

    name: Annotated[str, Field(max_length=200)] = ""
    description: Annotated[str, Field(max_length=2000)] = ""
    days: Annotated[float, Field(gt=0, le=MAX_RUN_DAYS, allow_inf_nan=False)] | None = None
    """Default run length, days (``--days`` overrides)."""
    declared_hazard: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    """What the run deliberately models (a mix-up, an overdose): limits are then reported,
    not refused, and every output flags it."""
    patient: PatientRef | None = None
    pump: PumpSection
    catheter: CatheterSection
    fill: FillSection
    prescription: PrescriptionSpec | None = None
    priming_bolus: PrimingBolusSpec | None = None
    events: list[Event] = []


assert set(FAULT_KINDS) == set(typing.get_args(FaultEvent.model_fields["fault"].annotation))


# ---------------------------------------------------------- one-line errors


class FieldError(ValueError):
    """Raised inside a model validator to name a sub-field, its value and what is allowed
    (:func:`format_validation_error` puts the sub-field's path in the message)."""

    def __init__(self, loc: tuple[str | int, ...], value: object, allowed: str) -> None:
        super().__init__(allowed)
        self.loc = loc
        self.value = value
        self.allowed = allowed


def _hhmm(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_UNION_TAGS: dict[str, tuple[str, ...]] = {"kind": EVENT_KINDS, "mode": MODES}


def _field_name(loc: tuple[str | int, ...], event_kinds: tuple[str, ...] = EVENT_KINDS) -> str:
    """``('events', 3, 'refill', 'prescription', 'flex', 'every_day', 0, 'start')``
    -> ``events[3].prescription.every_day[0].start`` (union tags dropped: an event's
    kind right after its index, a prescription's mode right after ``prescription``)."""
    parts: list[str] = []
    prev: str | int | None = None
    prev2: str | int | None = None
    for item in loc:
        is_tag = isinstance(item, str) and (
            (prev2 == "events" and isinstance(prev, int) and item in event_kinds)
            or (prev == "prescription" and item in MODES)
        )
        if not is_tag:
            if isinstance(item, int):
                parts.append(f"[{item}]")
            else:
                parts.append(("." if parts else "") + item)
        prev2, prev = prev, item
    return "".join(parts)


def _allowed_keys(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def _model_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class reached by following ``loc`` from ``root`` (for 'known keys')."""
    current: Any = root
    for item in loc:
        current = _unwrap(current, item)
        if current is None:
            return None
        if isinstance(item, int):
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            if item in current.model_fields:
                current = current.model_fields[item].annotation
            elif _is_tag_of(current, item):
                continue
            else:
                return None
    current = _unwrap(current, None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _is_tag_of(model: type[BaseModel], item: str) -> bool:
    for tag_field in _UNION_TAGS:
        f = model.model_fields.get(tag_field)
        if f is not None and item in typing.get_args(f.annotation):
            return True
    return False


def _unwrap(tp: Any, item: str | int | None) -> Any:
    """Strip Annotated/Optional/list, choosing a union member by its tag ``item``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
            for m in members:
                if isinstance(m, type) and issubclass(m, BaseModel) and _is_tag_of(m, str(item)):
                    return m
            return None
        elif origin is list:
            if isinstance(item, int):
                return typing.get_args(tp)[0]
            return tp
        else:
            return tp


def _allowed_text(err: Mapping[str, Any], root: type[BaseModel]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    if kind == "missing":
        return "a value (required)"
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        return f"known keys: {_allowed_keys(model)}" if model else "no such key"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = _UNION_TAGS.get(str(ctx.get("discriminator", "")).strip("'"), ())
        return ", ".join(tags) if tags else str(ctx.get("expected_tags", ""))
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        return ", ".join(re.findall(r"'([^']*)'", expected)) or expected
    if kind == "greater_than":
        return f"> {ctx['gt']:g}"
    if kind == "greater_than_equal":
        return f">= {ctx['ge']:g}"
    if kind == "less_than":
        return f"< {ctx['lt']:g}"
    if kind == "less_than_equal":
        return f"<= {ctx['le']:g}"
    if kind == "finite_number":
        return "a finite number"
    if kind in ("float_type", "float_parsing"):
        return "a number"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "a whole number"
    if kind in ("bool_type", "bool_parsing"):
        return "true or false"
    if kind == "string_type":
        return "a string"
    if kind in ("list_type", "too_short"):
        return "a non-empty list" if kind == "too_short" else "a list"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "a table"
    if kind == "value_error":
        msg = str(err.get("msg", ""))
        return msg.removeprefix("Value error, ")
    return str(err.get("msg", kind))


def format_validation_error(
    exc: ValidationError,
    root: type[BaseModel] = BaseModel,
    *,
    event_kinds: tuple[str, ...] = EVENT_KINDS,
) -> InvalidValue:
    """The first pydantic error as one :class:`InvalidValue` (field path, value, allowed);
    ``event_kinds`` are the tags of the file's ``[[events]]`` union."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    raw = ctx.get("error")
    if isinstance(raw, FieldError):
        return InvalidValue(_field_name(loc + raw.loc, event_kinds), _plain(raw.value), raw.allowed)
    kind = err["type"]
    value: object = err.get("input")
    field = _field_name(loc, event_kinds)
    if kind == "missing":
        value = None
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = str(ctx.get("discriminator", "")).strip("'")
        field = f"{field}.{tag}" if field else tag
        value = ctx.get("tag") if kind == "union_tag_invalid" else None
    return InvalidValue(field, _plain(value), _allowed_text(err, root))


def _plain(value: object) -> object:
    """Values as they were written (dates in ISO form, tables abbreviated)."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return value
    if isinstance(value, Mapping):
        return "{...}"
    if isinstance(value, list):
        return "[...]"
    return value


def parse_pump_spec(table: Mapping[str, Any]) -> PumpSpec:
    """Validate a pump-run spec (a parsed TOML table).

    Raises:
        InvalidValue: the first problem, as one line naming the field by its path.
    """
    try:
        return PumpSpec.model_validate(dict(table))
    except ValidationError as exc:
        raise format_validation_error(exc, PumpSpec) from None

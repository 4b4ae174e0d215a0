"""Programming sessions: stage, review old vs new side by side, commit atomically.

Modelled on the clinician programmer's workflow ([D23][D24]):
changes are staged and checked as they are entered, a finish screen shows the
old and new values side by side, and only then is the pump updated. The pump
stops during the update; a session left unfinished after the update began
leaves it stopped, and that hazard is logged and shown in the pump's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from itb.domain.errors import InvalidValue, SessionError
from itb.domain.pump.prescription import Bolus, Prescription
from itb.domain.pump.pump import Pump, PumpStatus
from itb.domain.units import require_finite

__all__ = ["ChangeRow", "ProgrammingSession", "SessionState"]


class SessionState(StrEnum):
    """Where a session is."""

    OPEN = "open"
    UPDATING = "updating"
    COMMITTED = "committed"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One line of the side-by-side review."""

    field: str
    old: str
    new: str
    reason: str


class ProgrammingSession:
    """A clinician's programming session on one pump.

    Each ``stage_*`` call validates at once (against the pump and the drug it
    holds) and raises before anything is staged, so a commit cannot fail half-way.
    """

    def __init__(self, pump: Pump, t_h: float, *, clinician: str = "", reason: str = "") -> None:
        self.pump = pump
        self.opened_t_h = t_h
        self.clinician = clinician
        self.reason = reason
        self.state = SessionState.OPEN
        self.before: PumpStatus = pump.interrogate(t_h)
        self.verified_by: str | None = None
        self._prescription: tuple[Prescription, str] | None = None
        self._low_alarm: tuple[float, str] | None = None
        self._clock: tuple[float, str] | None = None
        self._reservoir: tuple[float, str] | None = None
        self._bolus: tuple[Bolus, str] | None = None
        self.override_reason: str | None = None
        """The recorded reason for passing drug-library soft limits (shared by the session)."""
        pump.log.append(
            t_h,
            "session_open",
            f"programming session opened by {clinician or 'not recorded'}",
            reason,
        )

    def _require_open(self) -> None:
        if self.state is not SessionState.OPEN:
            raise SessionError(f"session is {self.state.value}; staging needs an open session")

    def _override(self, override_reason: str | None) -> str | None:
        if override_reason is not None and override_reason.strip():
            self.override_reason = override_reason.strip()
        return self.override_reason

    def stage_prescription(
        self, prescription: Prescription, reason: str, *, override_reason: str | None = None
    ) -> None:
        """Stage a new prescription (validated now, drug library included)."""
        self._require_open()
        self.pump.validate_prescription(
            prescription, override_reason=override_reason or self.override_reason
        )
        self._override(override_reason)
        self._prescription = (prescription, reason)

    def stage_low_reservoir_alarm(self, volume_ml: float, reason: str) -> None:
        """Stage a new low-reservoir alarm volume (validated now)."""
        self._require_open()
        self.pump.validate_low_reservoir_alarm(volume_ml)
        self._low_alarm = (volume_ml, reason)

    def stage_clock(self, pump_clock_offset_h: float, reason: str) -> None:
        """Stage setting the pump's clock (e.g. to new local time after a DST change)."""
        self._require_open()
        self._clock = (require_finite("pump_clock_offset_h", pump_clock_offset_h), reason)

    def stage_reservoir_volume(self, volume_ml: float, reason: str) -> None:
        """Stage the reservoir volume the pump should count from."""
        self._require_open()
        self.pump.validate_reservoir_volume(volume_ml)
        self._reservoir = (volume_ml, reason)

    def stage_bolus(self, bolus: Bolus, reason: str, *, override_reason: str | None = None) -> None:
        """Stage a one-off bolus (single, priming or bridge) to start at commit."""
        self._require_open()
        self.pump.validate_bolus(bolus, override_reason=override_reason or self.override_reason)
        self._override(override_reason)
        self._bolus = (bolus, reason)

    @property
    def staged_prescription(self) -> Prescription | None:
        """The staged prescription, if any."""
        return None if self._prescription is None else self._prescription[0]

    @property
    def staged_bolus(self) -> Bolus | None:
        """The staged bolus, if any."""
        return None if self._bolus is None else self._bolus[0]

    def review(self) -> list[ChangeRow]:
        """The finish screen: old versus new for every staged change."""
        b = self.before
        rows: list[ChangeRow] = []
        if self._prescription is not None:
            p, why = self._prescription
            rows.append(ChangeRow("prescription", b.prescription, p.describe(), why))
        if self._low_alarm is not None:
            v, why = self._low_alarm
            rows.append(
                ChangeRow("low_reservoir_alarm_ml", f"{b.low_reservoir_alarm_ml:g}", f"{v:g}", why)
            )
        if self._clock is not None:
            v, why = self._clock
            rows.append(
                ChangeRow(
                    "pump_clock_offset_h", f"{self.pump.pump_clock_offset_h:g}", f"{v:g}", why
                )
            )
        if self._reservoir is not None:
            v, why = self._reservoir
            rows.append(
                ChangeRow("reservoir_volume_ml", f"{b.reservoir_calculated_ml:.3f}", f"{v:g}", why)
            )
        if self._bolus is not None:
            bolus, why = self._bolus
            rows.append(
                ChangeRow(
                    "bolus",
                    "none",
                    f"{bolus.kind.value} {bolus.volume_ml:.4g} mL over {bolus.duration_h:.4g} h",
                    why,
                )
            )
        return rows

    def verify(self, second_person: str) -> None:
        """Record a second person's verification of the staged changes."""
        self._require_open()
        if not second_person.strip():
            raise InvalidValue("verified_by", second_person, "a non-empty name")
        if self.clinician and second_person.strip() == self.clinician.strip():
            raise InvalidValue(
                "verified_by",
                second_person,
                f"a second person, not {self.clinician} who entered the change",
            )
        self.verified_by = second_person
        self.pump.log.append(self.pump.t_h, "verification", f"changes verified by {second_person}")

    def begin_update(self, t_h: float) -> None:
        """Start writing to the pump: it stops until :meth:`complete_update`."""
        self._require_open()
        if not self.review():
            raise SessionError("nothing staged: there is nothing to update")
        # The pump may have moved on since staging: check everything again before
        # the pump stops, so an update can never be refused half-way.
        pump = self.pump
        if self._prescription is not None:
            pump.validate_prescription(self._prescription[0], override_reason=self.override_reason)
        if self._bolus is not None:
            pump.validate_bolus(self._bolus[0], override_reason=self.override_reason)
        if self._reservoir is not None:
            pump.validate_reservoir_volume(self._reservoir[0])
        if self._low_alarm is not None:
            pump.validate_low_reservoir_alarm(self._low_alarm[0])
        pump.begin_update(t_h)
        self.state = SessionState.UPDATING

    def complete_update(self, t_h: float) -> list[ChangeRow]:
        """Apply every staged change at once and restart the pump; return the changes."""
        if self.state is not SessionState.UPDATING:
            raise SessionError(f"session is {self.state.value}; complete_update needs updating")
        rows = self.review()
        pump = self.pump
        reason = "; ".join(r.reason for r in rows if r.reason) or self.reason
        pump.apply_program(
            t_h,
            prescription=None if self._prescription is None else self._prescription[0],
            low_reservoir_alarm_ml=None if self._low_alarm is None else self._low_alarm[0],
            pump_clock_offset_h=None if self._clock is None else self._clock[0],
            reservoir_volume_ml=None if self._reservoir is None else self._reservoir[0],
            bolus=None if self._bolus is None else self._bolus[0],
            reason=reason,
            override_reason=self.override_reason,
        )
        pump.end_update(t_h, completed=True)
        self.state = SessionState.COMMITTED
        return rows

    def commit(self, t_h: float) -> list[ChangeRow]:
        """Update the pump in one step: begin and complete at ``t_h``."""
        self.begin_update(t_h)
        return self.complete_update(t_h)

    def abandon(self, t_h: float) -> None:
        """Leave the session. If the update had begun, the pump stays stopped (hazard)."""
        if self.state is SessionState.UPDATING:
            self.pump.end_update(t_h, completed=False)
        elif self.state is SessionState.OPEN:
            self.pump.log.append(t_h, "session_abandoned", "session closed with nothing written")
        self.state = SessionState.ABANDONED

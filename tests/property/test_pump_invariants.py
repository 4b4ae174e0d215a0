"""Invariants of the pump system over random command sequences (Hypothesis stateful).

* drug balance: everything filled (reservoir, pocket, access port) = delivered to
  CSF + lost to tissue or pocket + in reservoir + in dead space + withdrawn;
* the reservoir (actual and calculated) is never negative;
* never more pumped than programmed x accuracy (and flow) factor;
* time never runs backwards, and neither does anything delivered;
* a refused command changes nothing.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from itb.adapters.datafiles import load_data_table
from itb.domain.errors import ITBError
from itb.domain.pump import (
    Bolus,
    CatheterSpec,
    Continuous,
    Fault,
    FaultKind,
    Flex,
    FlexStep,
    PatientBolusSettings,
    Prescription,
    ProgrammingSession,
    Pump,
    parse_catheters,
    parse_discrepancy_tolerance,
    parse_presets,
    perform_refill,
)

PRESETS = parse_presets(load_data_table("pumps"))
CATHETERS = parse_catheters(load_data_table("catheters"))
TOLERANCE = parse_discrepancy_tolerance(load_data_table("refill"))
CONCENTRATIONS = (500.0, 1000.0, 2000.0)


def _snapshot(pump: Pump) -> tuple[object, ...]:
    ld = pump.ledger
    return (
        pump.t_h,
        pump.reservoir_actual_ml,
        pump.reservoir_calculated_ml,
        pump.reservoir_concentration_mcg_per_ml,
        pump.prescription,
        pump.dead_space.slugs,
        ld.filled_mcg,
        ld.delivered_csf_mcg,
        ld.withdrawn_mcg,
        ld.pocket_mcg,
        frozenset(pump.stop_reasons),
    )


class PumpMachine(RuleBasedStateMachine):
    pump: Pump

    @initialize(
        preset=st.sampled_from(sorted(PRESETS)),
        length_cm=st.floats(10.0, 110.0),
        accuracy=st.floats(0.86, 1.14),
        conc=st.sampled_from(CONCENTRATIONS),
        fill=st.floats(1.0, 20.0),
        dose=st.floats(50.0, 1500.0),
    )
    def implant(
        self, preset: str, length_cm: float, accuracy: float, conc: float, fill: float, dose: float
    ) -> None:
        label, per_cm, _ = CATHETERS["ascenda_like"]
        self.pump = Pump(
            PRESETS[preset],
            CatheterSpec("ascenda_like", label, length_cm, per_cm),
            accuracy_factor=accuracy,
        )
        self.pump.fill(0.0, fill, conc)
        self.last_t = 0.0
        self.last_delivered = 0.0
        if self.pump.preset.programmable:
            self._try_program(Prescription(Continuous(dose), conc))

    def _try_program(self, prescription: Prescription, bolus: Bolus | None = None) -> None:
        # opening a session interrogates the pump (which may end a post-MRI hold)
        session = ProgrammingSession(self.pump, self.pump.t_h)
        before = _snapshot(self.pump)
        try:
            session.stage_prescription(prescription, "random")
            if bolus is not None:
                session.stage_bolus(bolus, "random bolus")
        except ITBError:
            # refused while staging: the pump is untouched
            assert _snapshot(self.pump) == before
            return
        session.commit(self.pump.t_h)

    def _advance(self, dt: float) -> None:
        segs = self.pump.advance_to(self.pump.t_h + dt)
        t = self.last_t
        for s in segs:
            assert s.t0_h >= t - 1e-9, "delivery went back in time"
            assert s.rate_mcg_per_h >= 0.0
            t = s.t1_h
        assert self.pump.t_h >= self.last_t
        self.last_t = self.pump.t_h

    @rule(dt=st.floats(0.0, 24.0 * 40))
    def advance(self, dt: float) -> None:
        self._advance(dt)

    @rule(dt=st.floats(0.0, 3.0))
    def advance_a_little(self, dt: float) -> None:
        self._advance(dt)

    @rule(
        volume=st.floats(0.5, 40.0),
        conc=st.sampled_from(CONCENTRATIONS),
        dose=st.floats(50.0, 1500.0),
        bridge=st.booleans(),
        pocket=st.booleans(),
    )
    def refill(self, volume: float, conc: float, dose: float, bridge: bool, pocket: bool) -> None:
        pump = self.pump
        pump.interrogate(pump.t_h)  # a refill starts with one (it may end a post-MRI hold)
        before = _snapshot(pump)
        new = Prescription(Continuous(dose), conc) if pump.preset.programmable else None
        try:
            perform_refill(
                pump,
                pump.t_h,
                fill_volume_ml=volume,
                concentration_mcg_per_ml=conc,
                tolerance=TOLERANCE,
                new_prescription=new,
                bridge_bolus=bridge,
                into_pocket=pocket,
            )
        except ITBError:
            assert _snapshot(pump) == before

    @rule(volume=st.floats(0.1, 30.0))
    def top_up(self, volume: float) -> None:
        before = _snapshot(self.pump)
        try:
            self.pump.fill(self.pump.t_h, volume, self.pump.labelled_concentration_mcg_per_ml)
        except ITBError:
            assert _snapshot(self.pump) == before

    @precondition(lambda self: self.pump.preset.programmable)
    @rule(
        rates=st.lists(st.floats(0.0, 60.0), min_size=1, max_size=13),
        ptm=st.booleans(),
    )
    def program_flex(self, rates: list[float], ptm: bool) -> None:
        steps = tuple(FlexStep(24.0 * i / len(rates), r) for i, r in enumerate(rates))
        settings_ = PatientBolusSettings(25.0, 0.25, 2.0, 4) if ptm else None
        conc = self.pump.labelled_concentration_mcg_per_ml
        self._try_program(Prescription(Flex.every_day(steps), conc, settings_))

    @precondition(lambda self: self.pump.preset.programmable)
    @rule(dose=st.floats(10.0, 300.0), duration=st.floats(0.05, 4.0))
    def single_bolus(self, dose: float, duration: float) -> None:
        p = self.pump.prescription
        bolus = Bolus.single(dose, duration, self.pump.labelled_concentration_mcg_per_ml)
        self._try_program(p, bolus)

    @rule()
    def patient_bolus(self) -> None:
        self.pump.request_patient_bolus(self.pump.t_h)

    @rule(
        kind=st.sampled_from(list(FaultKind)),
        fraction=st.floats(0.0, 1.0),
        factor=st.floats(0.5, 1.6),
        critical=st.booleans(),
    )
    def fault(self, kind: FaultKind, fraction: float, factor: float, critical: bool) -> None:
        self.pump.apply_fault(self.pump.t_h, Fault(kind, fraction, factor, critical))

    @rule(kind=st.sampled_from(list(FaultKind)))
    def repair(self, kind: FaultKind) -> None:
        self.pump.repair(self.pump.t_h, kind)

    @rule(duration=st.floats(0.1, 3.0))
    def mri(self, duration: float) -> None:
        self.pump.begin_mri(self.pump.t_h)
        self._advance(duration)
        self.pump.end_mri(self.pump.t_h)

    @rule()
    def interrogate(self) -> None:
        self.pump.interrogate(self.pump.t_h)

    @rule(volume=st.floats(0.01, 5.0), conc=st.sampled_from((0.0, *CONCENTRATIONS)))
    def access_port(self, volume: float, conc: float) -> None:
        self.pump.inject_access_port(self.pump.t_h, volume, conc, acknowledge_overdose_hazard=True)

    @precondition(lambda self: self.pump.preset.programmable)
    @rule(dose=st.floats(50.0, 1500.0))
    def unfinished_session(self, dose: float) -> None:
        conc = self.pump.labelled_concentration_mcg_per_ml
        try:
            session = ProgrammingSession(self.pump, self.pump.t_h)
            session.stage_prescription(Prescription(Continuous(dose), conc), "left unfinished")
        except ITBError:
            return
        session.begin_update(self.pump.t_h)
        session.abandon(self.pump.t_h)
        assert not self.pump.running

    @rule(temp=st.floats(35.0, 41.0), pressure=st.floats(60.0, 110.0))
    def environment(self, temp: float, pressure: float) -> None:
        self.pump.set_environment(
            self.pump.t_h, body_temperature_degc=temp, ambient_pressure_kpa=pressure
        )

    @invariant()
    def drug_balance_closes(self) -> None:
        ld = self.pump.ledger
        scale = max(1.0, ld.filled_mcg + ld.pocket_mcg + ld.access_port_mcg)
        assert abs(self.pump.balance_error_mcg()) <= 1e-9 * scale

    @invariant()
    def reservoir_never_negative(self) -> None:
        assert self.pump.reservoir_actual_ml >= 0.0
        assert self.pump.reservoir_calculated_ml >= 0.0
        assert self.pump.reservoir_actual_ml <= self.pump.preset.reservoir_ml + 1e-9

    @invariant()
    def never_more_than_programmed_times_factor(self) -> None:
        ld = self.pump.ledger
        assert ld.pumped_ml <= ld.commanded_x_factor_ml + 1e-9 * max(1.0, ld.pumped_ml)

    @invariant()
    def delivered_never_decreases(self) -> None:
        d = self.pump.ledger.delivered_csf_mcg
        assert d >= self.last_delivered - 1e-9
        self.last_delivered = d


PumpMachine.TestCase.settings = settings(
    max_examples=2500,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestPumpInvariants = PumpMachine.TestCase

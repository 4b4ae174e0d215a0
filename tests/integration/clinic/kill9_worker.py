"""A registry writer for the kill -9 test: registers patients, implants their pumps and
records refills as fast as it can, printing one line after each use case has committed.

Usage: python kill9_worker.py URL RUN
"""

from __future__ import annotations

import sys
from datetime import date

from tests.support.clinic_memory import FakeClock

from itb import bootstrap
from itb.adapters.passwords import Argon2Hasher
from itb.services.clinic import DrugFill, NewImplant, NewPatient, ProgramRequest, RefillRequest


def main(url: str, run: str) -> None:
    clock = FakeClock()
    handle = bootstrap.clinic(
        url, create=True, clock=clock, hasher=Argon2Hasher(time_cost=1, memory_cost_kib=8)
    )
    svc = handle.service
    if svc.clinic_info() is None:
        svc.initialise(
            clinic_name="Kill test",
            clinic_phone="0",
            nurses_may_verify=False,
            admin_username="doc",
            admin_display_name="Doc",
            admin_password="correct-horse-1",
        )
    doc = svc.actor("doc")
    print("READY", flush=True)
    k = 0
    while True:
        k += 1
        clock.advance(hours=1)
        p = svc.register_patient(
            doc,
            NewPatient(
                mrn=f"K-{run}-{k}",
                given_name="K",
                family_name=str(k),
                birth_date=date(1980, 1, 1),
                sex="male",
                cause="multiple_sclerosis",
                timezone="UTC",
            ),
        )
        print("COMMITTED patient", p.id, flush=True)
        i = svc.record_implant(
            doc,
            p.id,
            NewImplant(
                at=clock.now(),
                pump_preset="synchromed_ii_20",
                serial=f"S{k}",
                catheter_family="ascenda_like",
                catheter_length_cm=55.0,
                fill=DrugFill(20.0, 500.0, "baclofen_500", "L", None),
                program=ProgramRequest(dose_mcg_per_day=150.0),
            ),
        )
        print("COMMITTED implant", i.id, flush=True)
        for _ in range(3):
            clock.advance(days=20)
            r = svc.record_refill(
                doc,
                i.id,
                RefillRequest(
                    at=clock.now(),
                    withdrawn_ml=14.0,
                    fill=DrugFill(14.0, 500.0, "baclofen_500", "L", None),
                ),
            )
            print("COMMITTED refill", r.visit.id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

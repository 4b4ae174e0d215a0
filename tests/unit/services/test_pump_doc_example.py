"""The complete example in docs/pump-spec.md parses, passes every check and runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from itb.bootstrap import catalog as pump_catalog
from itb.services.pump_run import run_pump
from itb.services.pump_spec import EVENT_KINDS, parse_pump_spec

DOC = Path(__file__).resolve().parents[3] / "docs" / "pump-spec.md"


def _complete_example() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A complete example", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_documented_example_runs() -> None:
    spec = parse_pump_spec(tomllib.loads(_complete_example()))
    kinds = {e.kind for e in spec.events}
    assert set(EVENT_KINDS) - kinds <= {"mri_start", "mri_end"}  # shown as kind = "mri"
    result = run_pump(spec, pump_catalog(), days=800)
    assert result.events_not_reached == 0
    assert any("HAZARD" in e.detail for e in result.events)
    assert [b.accepted for b in result.patient_boluses] == [False]
    assert abs(result.drug_balance.error_mcg) < 1e-6


def test_every_event_kind_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for kind in EVENT_KINDS:
        assert f"`{kind}`" in text, kind

"""A bad-input campaign over FHIR import: the hand-written example Bundle with one or two
of its values replaced by another type, removed, or pointed elsewhere, many times over.
Each mutant is either imported whole or refused with an itb error (one line, naming
the field); nothing else escapes, and a refusal leaves the registry as it was."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.clinic_setup import make_clinic

from itb.adapters.fhir import Importer, from_bundle
from itb.domain.errors import ITBError

HAND_WRITTEN = Path(__file__).resolve().parents[2] / "docs" / "fhir" / "hand-written-bundle.json"
MUTANTS = 400
VALUES: list[Any] = [
    None, "", "x", 0, -1, 1.5, 1e308, True, [], {}, "2020-13-45", "P0001", "I0001",
    {"reference": "Device/nope"}, [{}], "ug/d", "active", "2026-01-01T00:00:00+00:00",
]  # fmt: skip


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))
    if path:
        yield path


def _mutant(
    src: dict[str, Any], rng: random.Random, paths: list[tuple[Any, ...]]
) -> dict[str, Any]:
    b = copy.deepcopy(src)
    for _ in range(rng.choice((1, 1, 2))):
        path = rng.choice(paths)
        node: Any = b
        try:
            for k in path[:-1]:
                node = node[k]
            if isinstance(node, dict) and rng.random() < 0.2:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = copy.deepcopy(rng.choice(VALUES))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the way there
    return b


def test_every_mutant_is_imported_whole_or_refused_with_an_itb_error() -> None:
    text = HAND_WRITTEN.read_text(encoding="utf-8")
    for kind in "PIKV":  # identifiers the test clinic does not hold yet
        text = text.replace(f'"{kind}0001', f'"{kind}0901').replace(f"/{kind}0001", f"/{kind}0901")
    src = json.loads(text)
    paths = list(_paths(src))
    rng = random.Random(20261201)
    outcomes = {"imported": 0, "refused": 0}
    for _ in range(MUTANTS):
        clinic = make_clinic()
        before = copy.deepcopy(clinic.state())
        mutant = _mutant(src, rng, paths)
        message = ""
        try:
            files = from_bundle(mutant, Importer("drlee", "physician", clinic.clock.now()))
            clinic.service.import_patient_files(clinic.physician, files)
        except ITBError as exc:
            message = str(exc)
        if message:
            assert "\n" not in message
            assert clinic.state()["patients"] == before["patients"]  # type: ignore[index]
            outcomes["refused"] += 1
        else:
            outcomes["imported"] += 1
    assert outcomes["refused"] > MUTANTS // 2  # most mutants are bad, and are refused
    assert outcomes["imported"] > 0  # some changes are harmless (a display text, a phone)

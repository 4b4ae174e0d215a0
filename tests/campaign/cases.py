"""The campaign's cases: what to run, what to write first, and what the answer must be.

A :class:`Case` is data only (argv with ``{dir}`` standing for the case's own empty
directory, the files to create there, the outputs it asks for, the field or flag the
error must name, and whether the input must be refused). The generators:

* :func:`file_mutation_cases`: every shipped example and built-in scenario, mutated
  leaf field by leaf field (wrong types, missing, an unknown key beside it, negative,
  zero, NaN, inf, huge, tiny, a 10,000-character string, impossible dates, an
  out-of-range choice), each written to the case directory and run through the
  command that reads it, with short horizons so that a valid mutation runs quickly;
* :mod:`tests.campaign.option_cases`: bad option values and output paths for every
  command.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from tests.campaign.toml_text import dumps

__all__ = [
    "LONG",
    "REPO",
    "Case",
    "SourceFile",
    "file_mutation_cases",
    "source_files",
]

REPO = Path(__file__).resolve().parents[2]
LONG = "x" * 10_000
"""The 10,000-character string."""

REFUSE = "refuse"
"""The input is impossible: exit code 2 with one line naming the field (an acceptance fails)."""
EITHER = "either"
"""The input may be valid: refused as above, or accepted (exit 0, or 1 for a failed check)."""
ACCEPT = "accept"
"""The input is valid: exit code 0 (or 1 for a failed check)."""
CHECK = "refuse-or-check"
"""A check command given a value its check must stop: refused (2), or the check fails (1),
never a plain pass (0)."""


@dataclass(frozen=True)
class Case:
    """One run of the command line and what its answer must be.

    Attributes:
        id: unique and readable (``pump:seven_years_flex:events[0].volume_ml:nan``).
        command: the command as typed (``pump run``), for the counts.
        argv: the arguments; ``{dir}`` is the case's own directory.
        files: (name, text) written into the case directory before the run.
        specials: (name, what) made there first: ``dir``, ``fifo``, ``file`` (a regular
            file, e.g. a parent that is not a directory), ``nonempty-dir``.
        outputs: names (in the case directory) the command is asked to write; after a
            refusal none of them exists (and nothing else is left beside them).
        names: the error line must name one of these (a field path or a flag).
        expect: ``refuse``, ``either`` or ``accept``.
        kind: the mutation or bad-value kind (``nan``, ``missing``, ``unwritable-out``).
        group: the test batch the case runs in.
    """

    id: str
    command: str
    argv: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()
    specials: tuple[tuple[str, str], ...] = ()
    outputs: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    expect: str = REFUSE
    kind: str = ""
    group: str = ""
    real_plots: bool = True
    """False: the course and trial figures are drawn by a stand-in (matplotlib takes about
    a second per output). They are drawn for real in every file's base case, in the zero
    mutations of the flagship scenario, and in every option case."""


# ----------------------------------------------------------------- the shipped inputs


@dataclass(frozen=True)
class SourceFile:
    """A shipped input file and how the campaign runs it.

    Attributes:
        label: short name for case ids (``pump:seven_years_flex``).
        path: the file.
        command: the command as typed, for the counts.
        index_base: how the command numbers arrays of tables in its messages (0 or 1).
        free_text: keys whose values are the user's own words (any string is valid).
        signed: keys for which a negative value can be real (hours before an event).
        shorten: makes the campaign's base from the file (short horizons), given the
            mutated leaf's path (the run length is left alone when it is the one mutated).
        argv: the command line, given the file name and the output names.
        outputs: what the command is asked to write.
    """

    label: str
    path: Path
    command: str
    index_base: int
    free_text: frozenset[str]
    signed: frozenset[str]
    shorten: Callable[[dict[str, Any], tuple[str | int, ...]], dict[str, Any]]
    argv: Callable[[tuple[str | int, ...]], tuple[str, ...]]
    outputs: tuple[str, ...]
    readers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Other commands that read the same file: each mutation also runs one of them, in
    turn (``(command, argv)``; they write nothing)."""


_TEXT_PUMP = frozenset({"name", "description", "reason", "declared_hazard"})
_TEXT_CLINICAL = frozenset(
    {"name", "notes", "patient_name", "model", "drug", "program", "phone", "role", "description"}
)

_SCENARIO_DAYS = 12.0
"""A shortened scenario runs this many days (its events moved inside, in their order)."""
_TRIAL_PATIENTS = 6
_TRIAL_YEARS = 0.05


_PUMP_READERS = (
    ("program audit", ("program", "audit", "{dir}/input.toml", "--days", "3", "--json")),
    ("refill plan", ("refill", "plan", "{dir}/input.toml", "--json")),
    (
        "program check",
        ("program", "check", "{dir}/input.toml", "--dose-mcg-per-day", "200", "--json"),
    ),
)
"""The other commands that read a pump spec (each mutation runs one of them as well)."""


def _pump_argv(path: tuple[str | int, ...]) -> tuple[str, ...]:
    days = () if path[:1] == ("days",) else ("--days", "3")
    return ("pump", "run", "{dir}/input.toml", *days, "--json", "--out", "{dir}/out")


def _keep(table: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    return copy.deepcopy(table)


def _short_scenario(table: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """The scenario over ``_SCENARIO_DAYS`` days: events moved inside the horizon in their
    order, the coarsest sampling grid (unless the mutation is in those fields)."""
    out = copy.deepcopy(table)
    events = out.get("events", [])
    timed = sorted(
        {float(e.get("day", e.get("t_h", 0.0) / 24.0)) for e in events if isinstance(e, dict)}
    )
    new_day = {d: 1.0 + 0.75 * i for i, d in enumerate(timed)}
    for i, e in enumerate(events):
        mutated_key = path[2] if path[:2] == ("events", i) and len(path) > 2 else None
        if not isinstance(e, dict) or mutated_key in ("day", "t_h"):
            continue
        if "day" in e:
            e["day"] = new_day[float(e["day"])]
        elif "t_h" in e:
            e["t_h"] = new_day[float(e["t_h"]) / 24.0] * 24.0
        if "late_by_days" in e and mutated_key != "late_by_days":
            e["late_by_days"] = min(float(e["late_by_days"]), 2.0)
    if path[:1] != ("horizon_days",):
        last = max(new_day.values(), default=0.0)
        out["horizon_days"] = max(_SCENARIO_DAYS, last + 4.0)
    if path[:1] != ("output",):
        out["output"] = {**out.get("output", {}), "sample_every_h": 24.0}
    return out


def _short_trial(table: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    out = copy.deepcopy(table)
    trial = out["trial"]
    if path[:2] != ("trial", "patients"):
        trial["patients"] = _TRIAL_PATIENTS
    if path[:2] != ("trial", "horizon_years"):
        trial["horizon_years"] = _TRIAL_YEARS
    return out


def source_files() -> list[SourceFile]:
    """Every shipped input the campaign mutates."""
    out: list[SourceFile] = []
    for p in sorted((REPO / "src/itb/data/pump_examples").glob("*.toml")):
        out.append(
            SourceFile(
                f"pump:{p.stem}",
                p,
                "pump run",
                0,
                _TEXT_PUMP,
                frozenset(),
                _keep,
                _pump_argv,
                ("out",),
                _PUMP_READERS,
            )
        )
    for p in sorted((REPO / "src/itb/data/scenarios").glob("*.toml")):
        out.append(
            SourceFile(
                f"scenario:{p.stem}",
                p,
                "simulate",
                0,
                _TEXT_PUMP,
                frozenset(),
                _short_scenario,
                lambda path: ("simulate", "{dir}/input.toml", "--json", "--out", "{dir}/out"),
                ("out",),
            )
        )
    for p in sorted((REPO / "examples/trials").glob("*.toml")):
        out.append(
            SourceFile(
                f"trial:{p.stem}",
                p,
                "cohort",
                0,
                _TEXT_PUMP,
                frozenset(),
                _short_trial,
                lambda path: ("cohort", "{dir}/input.toml", "--out", "{dir}/out", "--json"),
                ("out",),
            )
        )
    out.append(
        SourceFile(
            "candidacy:example",
            REPO / "examples/candidacy_record.toml",
            "candidacy",
            1,
            _TEXT_CLINICAL,
            frozenset(),
            _keep,
            lambda path: ("candidacy", "{dir}/input.toml", "--json"),
            (),
        )
    )
    out.append(
        SourceFile(
            "screening:example",
            REPO / "examples/screening_trial.toml",
            "screening-trial",
            1,
            _TEXT_CLINICAL,
            frozenset({"after_h"}),
            _keep,
            lambda path: ("screening-trial", "{dir}/input.toml", "--json"),
            (),
        )
    )
    out.append(
        SourceFile(
            "card:example",
            REPO / "examples/wallet_card.toml",
            "card",
            1,
            _TEXT_CLINICAL,
            frozenset(),
            _keep,
            lambda path: (
                "card",
                "{dir}/input.toml",
                "--html",
                "{dir}/card.html",
                "--pdf",
                "{dir}/card.pdf",
                "--json",
            ),
            ("card.html", "card.pdf"),
        )
    )
    return out


# --------------------------------------------------------------------- leaves and paths

Path_ = tuple[str | int, ...]


def leaves(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every leaf ``(path, value)``: scalars, lists of scalars (and their elements), lists
    of lists (and their elements); tables and arrays of tables are walked into."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from leaves(v, (*path, k))
        return
    if isinstance(node, list) and node and all(isinstance(x, Mapping) for x in node):
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
        return
    yield path, node
    if isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, list):
                yield (*path, i), v
                for j, w in enumerate(v):
                    yield (*path, i, j), w
            else:
                yield (*path, i), v


def field_name(path: Path_, base: int, root: Any) -> str:
    """``('events', 3, 'volume_ml')`` -> ``events[3].volume_ml``: indices into arrays of
    tables from ``base`` (as the command numbers them), into lists of values from 0."""
    out = ""
    node = root
    for item in path:
        if isinstance(item, int):
            tables = isinstance(node, list) and all(isinstance(x, Mapping) for x in node)
            out += f"[{item + (base if tables else 0)}]"
        else:
            out += f".{item}" if out else item
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def key_path(path: Path_) -> Path_:
    """The path up to its last key (a list element's list)."""
    for n in range(len(path), 0, -1):
        if isinstance(path[n - 1], str):
            return path[:n]
    return path


def _get(table: Any, path: Path_) -> Any:
    for item in path:
        table = table[item]
    return table


def _set(table: Any, path: Path_, value: Any) -> None:
    _get(table, path[:-1])[path[-1]] = value


def _delete(table: Any, path: Path_) -> None:
    del _get(table, path[:-1])[path[-1]]


# -------------------------------------------------------------------------- mutations

_MISSING = object()
_EXTRA_KEY = "campaign_extra_key"


def _number_mutations(value: float | int) -> list[tuple[str, Any]]:
    is_int = isinstance(value, int)
    neg = -abs(value) if value else (-1 if is_int else -1.0)
    out: list[tuple[str, Any]] = [
        ("negative", neg),
        ("zero", 0 if is_int else 0.0),
        ("nan", math.nan),
        ("inf", math.inf),
        ("minus-inf", -math.inf),
        ("huge-1e300", 1e300),
        ("huge-1e19", 1e19),
        ("tiny", 1e-300),
    ]
    if is_int:
        out.append(("int-2e19", 2 * 10**19))
    return out


def _date_mutations(value: date | datetime) -> list[tuple[str, Any]]:
    if isinstance(value, datetime):
        return [
            ("year-1", datetime(1, 1, 1, 0, 0, 0)),
            ("year-9999", datetime(9999, 12, 31, 23, 59, 59)),
            ("date-alone", value.date()),
            ("string-year-0", "0000-01-01T00:00:00"),
        ]
    return [
        ("year-1", date(1, 1, 1)),
        ("year-9999", date(9999, 12, 31)),
        ("date-time-for-date", datetime(value.year, value.month, value.day, 9, 0)),
        ("string-not-a-date", "2026-02-30"),
    ]


def mutations(value: Any) -> list[tuple[str, Any]]:
    """(kind, new value) for one leaf, by its type."""
    out: list[tuple[str, Any]] = []
    if isinstance(value, bool):
        out += [("string-for-bool", "yes"), ("number-for-bool", 1)]
    elif isinstance(value, (int, float)):
        out += [("string-for-number", "12"), *_number_mutations(value)]
    elif isinstance(value, str):
        out += [("number-for-string", 12345), ("bad-choice", "campaign_choice"), ("empty", "")]
    elif isinstance(value, (date, datetime)):
        out += [("number-for-date", 20260101), *_date_mutations(value)]
    elif isinstance(value, time):
        out += [("number-for-time", 6), ("string-not-a-time", "25:61")]
    elif isinstance(value, list):
        out += [("table-for-list", {"campaign": 1}), ("string-for-list", "campaign")]
    if not isinstance(value, list):
        out += [("table-for-value", {"campaign": 1}), ("list-for-value", [value])]
    out.append(("long-string", LONG))
    return out


def _expect(src: SourceFile, path: Path_, kind: str) -> str:
    key = next((p for p in reversed(path) if isinstance(p, str)), "")
    if kind in ("zero", "tiny", "missing"):
        return EITHER
    if kind == "negative" and key in src.signed:
        return EITHER
    if kind in ("bad-choice", "empty", "long-string") and key in src.free_text:
        return EITHER
    return REFUSE


_TIME_KEYS = frozenset({"day", "t_h", "at", "given_at"})
"""Moving an event in time can make it collide with the pump's state then: the refusal
names the event (``events[0] (refill at ...)``), which is where the user looks."""


def _names(src: SourceFile, root: Any, path: Path_) -> tuple[str, ...]:
    full = field_name(path, src.index_base, root)
    keyed = field_name(key_path(path), src.index_base, root)
    names = [full] if full == keyed else [full, keyed]
    if isinstance(path[-1], str) and path[-1] in _TIME_KEYS and len(path) > 1:
        names.append(field_name(path[:-1], src.index_base, root) + " (")
    return (*names, *_related_names(src, root, path))


def _related_names(src: SourceFile, root: Any, path: Path_) -> tuple[str, ...]:
    """Fields a legitimate refusal may name instead, when the mutation makes the file
    contradict itself there:

    * a screening observation changed so that its bolus now reads as a response (or no
      longer has a baseline): the later boluses are refused (no further dose after a
      response), or the bolus's observations as a whole (``bolus[1].observations =``);
    * a scenario's patient changed into one who does not respond to screening: the
      scenario's ``protocol.screening.run`` is refused (not a candidate).
    """
    out: list[str] = []
    if src.command == "screening-trial" and len(path) >= 3 and path[2] == "observations":
        bolus = int(path[1])
        later = len(root.get("bolus", [])) - bolus - 1
        out.append(f"bolus[{bolus + src.index_base}].observations =")
        for k in range(bolus + 1, bolus + 1 + later):
            out += [
                f"bolus[{k + src.index_base}].dose_mcg",
                f"bolus[{k + src.index_base}].given_at",
            ]
    if src.command == "simulate" and path[:1] == ("patient",):
        out.append("protocol.screening.run")
    return tuple(out)


def _missing_names(src: SourceFile, root: Any, path: Path_) -> tuple[str, ...]:
    """A key left out may be refused where its table is checked as a whole (``exactly one
    of at, day or t_h``): the table's path (or a sibling's) and the key's own name."""
    parent = field_name(path[:-1], src.index_base, root)
    return (*_names(src, root, path), f"{parent}~{path[-1]}" if parent else f"~{path[-1]}")


_REAL_PLOTS = frozenset({"scenario:seven_years_end_to_end"})
"""Files whose first ``zero`` mutations are plotted for real as well (a zero is the value
most likely to reach a figure's axes oddly; every file's base case is plotted for real)."""
_REAL_PLOT_ZEROS = 6
"""How many zero mutations of those files are plotted for real (a second or more each)."""


def _case(
    src: SourceFile,
    table: dict[str, Any],
    path: Path_,
    kind: str,
    names: tuple[str, ...],
    expect: str,
) -> Case:
    where = (names[0] if names else "") or "(file)"
    return Case(
        id=f"{src.label}:{where}:{kind}",
        command=src.command,
        argv=src.argv(path),
        files=(("input.toml", dumps(table)),),
        outputs=src.outputs,
        names=names,
        expect=expect,
        kind=kind,
        group=src.label,
        real_plots=kind == "base",
    )


def _mutated(src: SourceFile, original: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    table = src.shorten(original, path)
    if value is _MISSING:
        _delete(table, path)
    else:
        _set(table, path, value)
    return table


def cases_for(src: SourceFile) -> list[Case]:
    """Every mutation of one shipped file (and the file itself, shortened, as the base)."""
    with src.path.open("rb") as fh:
        original = tomllib.load(fh)
    out = [_case(src, src.shorten(original, ()), (), "base", (), ACCEPT)]
    for command, argv in src.readers:
        base = _case(src, src.shorten(original, ()), (), "base", (), ACCEPT)
        out.append(_as_reader(base, command, argv))
    extra_done: set[Path_] = set()
    for path, value in leaves(original):
        if not path:
            continue
        names = _names(src, original, path)
        for kind, new in mutations(value):
            table = _mutated(src, original, path, new)
            out.append(_case(src, table, path, kind, names, _expect(src, path, kind)))
        parent = path[:-1]
        if isinstance(path[-1], str):
            table = _mutated(src, original, path, _MISSING)
            missing = _missing_names(src, original, path)
            out.append(_case(src, table, path, "missing", missing, EITHER))
            if parent not in extra_done:
                extra_done.add(parent)
                extra = (*parent, _EXTRA_KEY)
                table = src.shorten(original, path)
                _get(table, parent)[_EXTRA_KEY] = 1
                out.append(
                    _case(
                        src,
                        table,
                        extra,
                        "unknown-key",
                        (field_name(extra, src.index_base, original),),
                        REFUSE,
                    )
                )
    zeros = [c for c in out if c.kind == "zero" and src.label in _REAL_PLOTS]
    real = {c.id for c in zeros[:_REAL_PLOT_ZEROS]}
    return [replace(c, real_plots=True) if c.id in real else c for c in out]


def _as_reader(case: Case, command: str, argv: tuple[str, ...]) -> Case:
    """The same mutated file read by another command (which writes nothing)."""
    return replace(
        case,
        id=f"{case.id}:{command}",
        command=command,
        argv=argv,
        outputs=(),
        expect=EITHER if case.expect == ACCEPT else case.expect,
    )


def _with_readers(src: SourceFile, cases: list[Case]) -> list[Case]:
    """Each mutation also read by one of the file's other readers, in turn."""
    if not src.readers:
        return cases
    out: list[Case] = []
    mutations = 0
    for case in cases:
        out.append(case)
        if case.kind != "base" and case.command == src.command:
            command, argv = src.readers[mutations % len(src.readers)]
            out.append(_as_reader(case, command, argv))
            mutations += 1
    return out


def file_mutation_cases(sources: Sequence[SourceFile] | None = None) -> list[Case]:
    """Every mutation of every shipped input file."""
    return [c for src in sources or source_files() for c in _with_readers(src, cases_for(src))]

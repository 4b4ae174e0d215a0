"""Bad option values, bad input paths and unwritable output paths, for every command.

Each command has a valid base command line (:data:`COMMANDS`); each of its options
(:data:`OPTIONS`, checked against the live command tree so that a new option cannot
be forgotten) is given every bad value of its kind in turn. Output options are given
paths that cannot be written; input files are given a directory, a FIFO, a missing
path, an empty or binary file. The answer must be one line naming the flag (or the
argument), exit code 2, nothing written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from tests.campaign.cases import ACCEPT, CHECK, EITHER, LONG, REFUSE, REPO, Case
from tests.campaign.toml_text import dumps

__all__ = ["COMMANDS", "OPTIONS", "option_cases"]


def _text(path: str) -> str:
    return (REPO / path).read_text(encoding="utf-8")


_SPEC = ("spec.toml", _text("src/itb/data/pump_examples/seven_years_flex.toml"))
_CARD = ("card.toml", _text("examples/wallet_card.toml"))
_RECORD = ("record.toml", _text("examples/candidacy_record.toml"))
_SCREENING = ("screening.toml", _text("examples/screening_trial.toml"))
_SCENARIO = (
    "scenario.toml",
    _text("src/itb/data/scenarios/concentration_change_bridge.toml")
    .replace("horizon_days = 30", "horizon_days = 12")
    .replace("sample_every_h = 0.5", "sample_every_h = 24.0"),
)
_TRIAL = (
    "trial.toml",
    _text("examples/trials/refill_margin.toml")
    .replace("patients = 100000", "patients = 6")
    .replace("horizon_years = 5", "horizon_years = 0.05"),
)
_HISTORY = (
    "history.toml",
    dumps(
        {
            "infusion": [{"start_h": 0.0, "end_h": 24.0, "dose_mcg_per_day": 300.0}],
            "bolus": [{"at_h": 6.0, "amount_mcg": 50.0}],
        }
    ),
)


@dataclass(frozen=True)
class Command:
    """A command's valid base command line and the files it needs."""

    argv: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()
    outputs: tuple[str, ...] = ()
    expect: str = ACCEPT


COMMANDS: dict[str, Command] = {
    "pump run": Command(
        ("pump", "run", "{dir}/spec.toml", "--days", "3", "--json", "--out", "{dir}/out"),
        (_SPEC,),
        ("out",),
    ),
    "pump presets": Command(("pump", "presets", "--json")),
    "program check": Command(
        ("program", "check", "{dir}/spec.toml", "--dose-mcg-per-day", "200", "--json"),
        (_SPEC,),
    ),
    "program audit": Command(
        ("program", "audit", "{dir}/spec.toml", "--days", "30", "--json"), (_SPEC,)
    ),
    "refill plan": Command(("refill", "plan", "{dir}/spec.toml", "--json"), (_SPEC,)),
    "refill check": Command(
        ("refill", "check", "--expected-ml", "4.2", "--withdrawn-ml", "2.1", "--json")
    ),
    "titrate start": Command(
        ("titrate", "start", "--screening-dose-mcg", "50", "--effect-duration-h", "6", "--json")
    ),
    "titrate next": Command(
        (
            "titrate",
            "next",
            "--dose-mcg-per-day",
            "300",
            "--assessment",
            "inadequate",
            "--hours-since-implant",
            "48",
            "--json",
        )
    ),
    "library check": Command(
        (
            "library",
            "check",
            "--population",
            "adult_spinal",
            "--concentration",
            "2000",
            "--pump-kind",
            "peristaltic",
            "--dose",
            "600",
            "--json",
        )
    ),
    "library show": Command(("library", "show", "--json")),
    "screen": Command(("screen", "--json", "--plot", "{dir}/screen.png"), (), ("screen.png",)),
    "triage": Command(("triage", "--sign", "itching", "--json")),
    "card": Command(
        ("card", "{dir}/card.toml", "--json", "--pdf", "{dir}/card.pdf"), (_CARD,), ("card.pdf",)
    ),
    "candidacy": Command(("candidacy", "{dir}/record.toml", "--json"), (_RECORD,)),
    "screening-trial": Command(
        ("screening-trial", "{dir}/screening.toml", "--json"), (_SCREENING,)
    ),
    "validate": Command(
        ("validate", "--json", "--pk-cohort-size", "50", "--titration-cohort-size", "50")
    ),
    "simulate": Command(
        ("simulate", "{dir}/scenario.toml", "--json", "--out", "{dir}/out"), (_SCENARIO,), ("out",)
    ),
    "cohort": Command(
        ("cohort", "{dir}/trial.toml", "--out", "{dir}/out", "--json"), (_TRIAL,), ("out",)
    ),
    "forecast-trial": Command(
        (
            "forecast-trial",
            "--out",
            "{dir}/out",
            "--pumps",
            "40",
            "--years",
            "0.5",
            "--resamples",
            "20",
            "--json",
        ),
        (),
        ("out",),
    ),
    "patient simulate": Command(
        ("patient", "simulate", "--dose-mcg-per-day", "300", "--hours", "24", "--json")
    ),
    "patient plot": Command(
        (
            "patient",
            "plot",
            "--out",
            "{dir}/patient.png",
            "--dose-mcg-per-day",
            "300",
            "--hours",
            "24",
            "--step-h",
            "1",
        ),
        (),
        ("patient.png",),
    ),
    "demo": Command(
        ("demo", "--pump-examples", "--out", "{dir}/out"),
        (),
        ("out",),
    ),
}
"""A valid base command line per command (``{dir}``: the case's directory)."""

FLOAT, INT, CHOICE, DATE, TEXT, FLEX, SCHEDULER, SET = (
    "float",
    "int",
    "choice",
    "date",
    "text",
    "flex",
    "scheduler",
    "set",
)
OUT_DIR, OUT_FILE, IN_FILE, IN_DIR, FLAG = "out-dir", "out-file", "in-file", "in-dir", "flag"

OPTIONS: dict[str, dict[str, str]] = {
    "pump run": {"SPEC.toml": IN_FILE, "--days": FLOAT, "--out": OUT_DIR, "--set": SET},
    "pump presets": {},
    "program check": {
        "SPEC.toml": IN_FILE,
        "--dose-mcg-per-day": FLOAT,
        "--flex-step": FLEX,
        "--origin": CHOICE,
        "--age-years": FLOAT,
        "--at": DATE,
        "--concentration": FLOAT,
        "--override-reason": TEXT,
    },
    "program audit": {
        "SPEC.toml": IN_FILE,
        "--origin": CHOICE,
        "--age-years": FLOAT,
        "--days": FLOAT,
    },
    "refill plan": {
        "SPEC.toml": IN_FILE,
        "--at": DATE,
        "--margin-days": INT,
        "--holiday": DATE,
        "--new-concentration": FLOAT,
    },
    "refill check": {
        "--expected-ml": FLOAT,
        "--withdrawn-ml": FLOAT,
        "--programmed-since-fill-ml": FLOAT,
        "--pump": CHOICE,
    },
    "titrate start": {
        "--screening-dose-mcg": FLOAT,
        "--effect-duration-h": FLOAT,
        "--origin": CHOICE,
        "--age-years": FLOAT,
    },
    "titrate next": {
        "--dose-mcg-per-day": FLOAT,
        "--assessment": CHOICE,
        "--hours-since-implant": FLOAT,
        "--hours-since-last-change": FLOAT,
        "--origin": CHOICE,
        "--age-years": FLOAT,
        "--phase": CHOICE,
        "--change-pct": FLOAT,
    },
    "library check": {
        "--population": CHOICE,
        "--concentration": FLOAT,
        "--pump-kind": CHOICE,
        "--dose": FLOAT,
        "--previous-dose": FLOAT,
        "--bolus": FLOAT,
        "--reason": TEXT,
    },
    "library show": {"--population": CHOICE},
    "screen": {
        "--cause": CHOICE,
        "--age-years": FLOAT,
        "--baseline-mas": FLOAT,
        "--seed": INT,
        "--index": INT,
        "--plot": OUT_FILE,
    },
    "triage": {"--sign": CHOICE},
    "card": {"CARD.toml": IN_FILE, "--pdf": OUT_FILE, "--html": OUT_FILE},
    "candidacy": {"RECORD.toml": IN_FILE, "--on": DATE},
    "screening-trial": {"TRIAL.toml": IN_FILE},
    "validate": {
        "--seed": INT,
        "--pk-cohort-size": INT,
        "--titration-cohort-size": INT,
        "--out": OUT_DIR,
    },
    "simulate": {
        "[SCENARIO.toml]": IN_FILE,
        "--builtin": CHOICE,
        "--out": OUT_DIR,
        "--seed": INT,
        "--set": SET,
    },
    "forecast-trial": {
        "--out": OUT_DIR,
        "--pumps": INT,
        "--years": FLOAT,
        "--seed": INT,
        "--resamples": INT,
        "--misspecified-interval-sd": FLOAT,
        "--misspecified-spread-sd": FLOAT,
    },
    "cohort": {
        "TRIAL.toml": IN_FILE,
        "--out": OUT_DIR,
        "--chunk-size": INT,
        "--workers": INT,
        "--scheduler": SCHEDULER,
        "--patients": INT,
        "--years": FLOAT,
        "--seed": INT,
        "--set": SET,
    },
    "patient simulate": {
        "--history": IN_FILE,
        "--dose-mcg-per-day": FLOAT,
        "--hours": FLOAT,
        "--bolus-mcg": FLOAT,
        "--bolus-at-h": FLOAT,
        "--stop-at-h": FLOAT,
        "--cause": CHOICE,
        "--weight-kg": FLOAT,
        "--seed": INT,
        "--index": INT,
        "--step-h": FLOAT,
    },
    "patient plot": {
        "--out": OUT_FILE,
        "--history": IN_FILE,
        "--dose-mcg-per-day": FLOAT,
        "--hours": FLOAT,
        "--bolus-mcg": FLOAT,
        "--bolus-at-h": FLOAT,
        "--stop-at-h": FLOAT,
        "--cause": CHOICE,
        "--weight-kg": FLOAT,
        "--seed": INT,
        "--index": INT,
        "--step-h": FLOAT,
    },
    "demo": {"--out": OUT_DIR, "--examples": IN_DIR, "--port": INT, "--clinic-patients": INT},
}
"""Every option and argument that takes a value, by kind (flags are left out)."""

_BAD: dict[str, list[tuple[str, str]]] = {
    FLOAT: [
        ("negative", "-1"),
        ("zero", "0"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("minus-inf", "-inf"),
        ("huge-1e7", "1e7"),
        ("huge-1e300", "1e300"),
        ("not-a-number", "abc"),
        ("long-string", LONG),
    ],
    INT: [
        ("negative", "-1"),
        ("zero", "0"),
        ("int-2e19", str(2 * 10**19)),
        ("huge-1e9", str(10**9)),
        ("fraction", "1.5"),
        ("not-a-number", "abc"),
        ("long-string", LONG),
    ],
    CHOICE: [("bad-choice", "campaign_choice"), ("empty", ""), ("long-string", LONG)],
    DATE: [
        ("year-1", "0001-01-01"),
        ("year-9999", "9999-12-31"),
        ("year-9999-offset", "9999-12-31T23:59:59-14:00"),
        ("no-such-day", "2026-02-30"),
        ("not-a-date", "abc"),
        ("long-string", LONG),
    ],
    TEXT: [("long-string", LONG), ("empty", "")],
    FLEX: [
        ("bad-time", "25:00=5"),
        ("negative", "06:00=-1"),
        ("nan", "06:00=nan"),
        ("huge-1e300", "06:00=1e300"),
        ("not-a-step", "abc"),
        ("long-string", LONG),
    ],
    SCHEDULER: [
        ("unreachable", "tcp://127.0.0.1:1"),
        ("not-an-address", "nonsense"),
        ("long-string", LONG),
    ],
    SET: [
        ("no-equals", "abc"),
        ("empty-path", "=1"),
        ("no-such-table", "campaign_nope.x=1"),
        ("unknown-key", "campaign_key=1"),
        ("index-past-the-end", "campaign_list[99]=1"),
        ("not-a-path", "a..b=1"),
        ("long-string", LONG),
    ],
}

_EITHER_KINDS: dict[str, frozenset[str]] = {
    "zero": frozenset(
        {
            "--expected-ml",
            "--withdrawn-ml",
            "--programmed-since-fill-ml",
            "--seed",
            "--index",
            "--margin-days",
            "--bolus-mcg",
            "--bolus-at-h",
            "--stop-at-h",
            "--dose-mcg-per-day",
            "--change-pct",
            "--hours-since-last-change",
            "--hours-since-implant",
            "--baseline-mas",
            "--effect-duration-h",
            "--dose",
            "--previous-dose",
        }
    ),
    "negative": frozenset({"--change-pct"}),
    "empty": frozenset({"--override-reason", "--reason"}),
    "long-string": frozenset({"--override-reason", "--reason"}),
    "huge-1e9": frozenset({"--seed"}),
    "int-2e19": frozenset(),
}
"""Bad-value kinds that some options legitimately accept (zero mcg of bolus, a seed of 0 or
10^9, a reason in the user's own words)."""


_CHECKED: dict[str, frozenset[str]] = {
    "program check": frozenset({"--dose-mcg-per-day", "--concentration"}),
}
"""Options whose absurd values the command's own check must stop (exit 1, blocked), if the
command does not refuse them outright."""


def _expect(command: str, flag: str, kind: str) -> str:
    if flag in _EITHER_KINDS.get(kind, frozenset()):
        return EITHER
    if flag in _CHECKED.get(command, frozenset()):
        return CHECK
    return REFUSE


def _with(argv: tuple[str, ...], flag: str, value: str) -> tuple[str, ...]:
    """``argv`` with ``flag`` set to ``value`` (replaced if present, else added)."""
    out = list(argv)
    if flag in out:
        out[out.index(flag) + 1] = value
        return tuple(out)
    return (*out, flag, value)


def _without(argv: tuple[str, ...], flag: str) -> tuple[str, ...]:
    out = list(argv)
    i = out.index(flag)
    del out[i : i + 2]
    return tuple(out)


def _positional(cmd: Command) -> int:
    """Index of the input-file argument in the base command line."""
    return next(i for i, a in enumerate(cmd.argv) if a.startswith("{dir}/") and a.endswith(".toml"))


def _case(
    command: str,
    cmd: Command,
    argv: tuple[str, ...],
    kind: str,
    names: tuple[str, ...],
    **kw: object,
) -> Case:
    label = kw.pop("label", names[0] if names else "")
    kw.setdefault("outputs", cmd.outputs)
    return Case(
        id=f"option:{command}:{label}:{kind}",
        command=command,
        argv=argv,
        files=cmd.files,
        names=names,
        kind=kind,
        group=f"option:{command}",
        **kw,  # type: ignore[arg-type]
    )


def _value_cases(command: str, cmd: Command, flag: str, kind: str) -> Iterator[Case]:
    for bad, value in _BAD[kind]:
        base = cmd.argv
        if command == "library check" and flag == "--bolus":
            base = _without(base, "--dose")
        yield _case(
            command, cmd, _with(base, flag, value), bad, (flag,), expect=_expect(command, flag, bad)
        )


_OUT_DIR_PATHS = [
    ("parent-is-a-file", "{dir}/a-file/out", (("a-file", "file"),), REFUSE),
    ("target-is-a-file", "{dir}/a-file", (("a-file", "file"),), REFUSE),
    ("target-is-a-users-folder", "{dir}/mine", (("mine", "nonempty-dir"),), REFUSE),
    ("deep-new-parents", "{dir}/new/deeper/out", (), EITHER),
    ("name-too-long", "{dir}/" + "d" * 300, (), REFUSE),
    ("below-a-fifo", "{dir}/pipe/out", (("pipe", "fifo"),), REFUSE),
]
_OUT_FILE_PATHS = [
    ("target-is-a-directory", "{dir}/a-dir", (("a-dir", "dir"),), REFUSE),
    ("target-is-a-users-folder", "{dir}/mine", (("mine", "nonempty-dir"),), REFUSE),
    ("parent-is-a-file", "{dir}/a-file/out.png", (("a-file", "file"),), REFUSE),
    ("parent-missing", "{dir}/missing/out.png", (), EITHER),
    ("name-too-long", "{dir}/" + "f" * 300 + ".png", (), REFUSE),
    ("target-is-a-fifo", "{dir}/pipe.png", (("pipe.png", "fifo"),), REFUSE),
]


def _path_cases(command: str, cmd: Command, flag: str, kind: str) -> Iterator[Case]:
    paths = _OUT_DIR_PATHS if kind == OUT_DIR else _OUT_FILE_PATHS
    for bad, path, specials, expect in paths:
        yield _case(
            command,
            cmd,
            _with(cmd.argv, flag, path),
            bad,
            (flag,),
            specials=specials,
            expect=expect,
        )


_IN_FILES = [
    ("missing-file", "{dir}/no-such.toml", (), ()),
    ("a-directory", "{dir}/a-dir.toml", (("a-dir.toml", "dir"),), ()),
    ("a-fifo", "{dir}/pipe.toml", (("pipe.toml", "fifo"),), ()),
    ("empty-file", "{dir}/empty.toml", (), (("empty.toml", ""),)),
    ("not-toml", "{dir}/bad.toml", (), (("bad.toml", "this is = = not toml\n"),)),
    ("binary", "{dir}/binary.toml", (("binary.toml", "binary"),), ()),
    ("name-too-long", "{dir}/" + "n" * 300 + ".toml", (), ()),
    ("below-a-file", "{dir}/a-file/x.toml", (("a-file", "file"),), ()),
]


def _input_cases(command: str, cmd: Command, flag: str) -> Iterator[Case]:
    name = flag.strip("[]")
    for bad, path, specials, files in _IN_FILES:
        if flag.startswith("-"):
            argv = _with(cmd.argv, flag, path)
        else:
            i = _positional(cmd)
            argv = (*cmd.argv[:i], path, *cmd.argv[i + 1 :])
        names = () if bad == "empty-file" else (name,)  # empty: the first required field
        case = _case(command, cmd, argv, bad, names, specials=specials, expect=REFUSE, label=name)
        yield replace(case, files=(*cmd.files, *files))


def _in_dir_cases(command: str, cmd: Command, flag: str) -> Iterator[Case]:
    bad_spec = _SPEC[1].replace('preset = "synchromed_ii_40"', 'preset = "campaign_choice"')
    assert bad_spec != _SPEC[1]
    yield _case(command, cmd, _with(cmd.argv, flag, "{dir}/no-such-dir"), "missing-dir", (flag,))
    yield _case(
        command,
        cmd,
        _with(cmd.argv, flag, "{dir}/a-file"),
        "a-file",
        (flag,),
        specials=(("a-file", "file"),),
    )
    yield _case(
        command,
        cmd,
        _with(cmd.argv, flag, "{dir}/specs"),
        "fifo-inside",
        ("--examples", "pipe.toml"),
        specials=(("specs/pipe.toml", "fifo"),),
    )
    yield replace(
        _case(
            command,
            cmd,
            _with(cmd.argv, flag, "{dir}/specs"),
            "bad-spec-inside",
            ("pump.preset",),
        ),
        files=(("specs/broken.toml", bad_spec),),
    )


def _missing_required(command: str, cmd: Command) -> Iterator[Case]:
    """Each required option left out (a base line minus the option and its value)."""
    required = {
        "program check": ["--dose-mcg-per-day"],
        "refill check": ["--expected-ml", "--withdrawn-ml"],
        "titrate start": ["--screening-dose-mcg", "--effect-duration-h"],
        "titrate next": ["--dose-mcg-per-day", "--assessment", "--hours-since-implant"],
        "library check": ["--population", "--concentration"],
        "cohort": ["--out"],
        "forecast-trial": ["--out"],
        "patient plot": ["--out"],
    }
    for flag in required.get(command, []):
        yield _case(command, cmd, _without(cmd.argv, flag), "missing-option", (flag,))


def _combinations() -> Iterator[Case]:
    """Options that contradict each other, and inputs the brief names."""
    screen = COMMANDS["screen"]
    for flag, value in (("--cause", "stroke"), ("--age-years", "9"), ("--baseline-mas", "2")):
        yield _case(
            "screen",
            screen,
            (*screen.argv, "--seed", "3", flag, value),
            "seed-with-explicit-patient",
            (flag, "--seed"),
            label=f"--seed+{flag}",
        )
    yield _case(
        "screen",
        screen,
        (*screen.argv, "--index", "3"),
        "index-without-seed",
        ("--index",),
        label="--index",
    )
    lib = COMMANDS["library check"]
    yield _case(
        "library check",
        lib,
        (*lib.argv, "--bolus", "50"),
        "dose-and-bolus",
        ("--dose/--bolus", "--dose", "--bolus"),
        label="--dose+--bolus",
    )
    cohort = COMMANDS["cohort"]
    yield _case(
        "cohort",
        cohort,
        (*cohort.argv, "--workers", "1", "--scheduler", "tcp://127.0.0.1:1"),
        "workers-and-scheduler",
        ("--workers", "--scheduler"),
        label="--workers+--scheduler",
    )
    sim = COMMANDS["simulate"]
    yield _case(
        "simulate",
        sim,
        (*sim.argv, "--builtin", "stable_maintenance"),
        "file-and-builtin",
        ("--builtin",),
        label="file+--builtin",
    )
    yield _case(
        "simulate",
        sim,
        ("simulate", "--json"),
        "neither-file-nor-builtin",
        ("--builtin",),
        label="(none)",
    )
    st = COMMANDS["screening-trial"]
    for kind, text in (
        ("empty-record", ""),
        ("comments-only", "# nothing recorded yet\n"),
        ("no-bolus", 'criterion = "mas_drop_cp"\nreduced_start = false\n'),
    ):
        yield replace(
            _case("screening-trial", st, st.argv, kind, ("TRIAL.toml", "bolus"), label="file"),
            files=(("screening.toml", text),),
        )
    tri = COMMANDS["triage"]
    yield _case(
        "triage", tri, ("triage", "--json"), "no-sign", ("--sign",), label="--sign", expect=EITHER
    )
    card = COMMANDS["card"]
    yield _case(
        "card",
        card,
        ("card", "{dir}/card.toml", "--pdf", "{dir}/same", "--html", "{dir}/same"),
        "pdf-and-html-same-path",
        ("--html", "--pdf"),
        label="--pdf=--html",
    )
    yield _case(
        "card",
        card,
        ("card", "{dir}/card.toml", "--pdf", "{dir}/ok.pdf", "--html", "{dir}/a-dir"),
        "html-unwritable-pdf-fine",
        ("--html",),
        label="--html",
        specials=(("a-dir", "dir"),),
        outputs=("ok.pdf",),
    )
    yield _case(
        "card",
        card,
        ("card", "{dir}/card.toml", "--pdf", "{dir}/a-dir", "--html", "{dir}/ok.html"),
        "pdf-unwritable-html-fine",
        ("--pdf",),
        label="--pdf",
        specials=(("a-dir", "dir"),),
        outputs=("ok.html",),
    )
    demo = Command(("demo", "--out", "{dir}/a-file/out"))
    yield _case(
        "demo",
        demo,
        demo.argv,
        "flagship-out-below-a-file",
        ("--out",),
        specials=(("a-file", "file"),),
        label="--out",
    )


def _base_cases() -> Iterator[Case]:
    for command, cmd in COMMANDS.items():
        yield _case(command, cmd, cmd.argv, "base", (), expect=cmd.expect, label="(valid)")


def option_cases() -> list[Case]:
    """Every bad option value, input path and output path of every command."""
    out: list[Case] = list(_base_cases())
    for command, options in OPTIONS.items():
        cmd = COMMANDS[command]
        for flag, kind in options.items():
            if kind in _BAD:
                out += _value_cases(command, cmd, flag, kind)
            elif kind in (OUT_DIR, OUT_FILE):
                out += _path_cases(command, cmd, flag, kind)
            elif kind == IN_FILE:
                out += _input_cases(command, cmd, flag)
            elif kind == IN_DIR:
                out += _in_dir_cases(command, cmd, flag)
        out += _missing_required(command, cmd)
    out += _combinations()
    return out

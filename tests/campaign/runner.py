"""Running a case in-process and judging the answer against the promise.

The promise for bad input: ONE line on stderr, starting ``error: ``, naming the field
as the user wrote it (a flag, or the path in their file), the value and what is
allowed; exit code 2 (1 only for a check that failed); nothing written, nothing
half-written (no output and no temporary sibling left behind); no traceback; no
internal error (exit code 70 is a bug); no hang.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from unittest import mock

from tests.campaign.cases import ACCEPT, CHECK, REFUSE, Case

from itb.entrypoints.cli.main import run

__all__ = ["HANG_GUARD_S", "Outcome", "judge", "run_case"]

HANG_GUARD_S = 20.0
"""A case still running after this long is stopped and reported as a hang (a guard, not a
speed assertion)."""
MAX_LINE_CHARS = 1_000
"""An error line longer than this repeats the user's value instead of naming it."""


class CaseTimeout(BaseException):
    """Raised in the case's thread by the hang guard (not an Exception: ``run`` must not
    turn it into an internal error)."""


@dataclass(frozen=True)
class Outcome:
    """What one run did."""

    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    hung: bool
    left_behind: tuple[str, ...]
    """Outputs (or temporary siblings) present after a refusal."""

    @property
    def label(self) -> str:
        """``refused``, ``accepted``, ``check-failed``, ``internal-error``, ``hang`` ..."""
        if self.hung:
            return "hang"
        return {0: "accepted", 1: "check-failed", 2: "refused", 70: "internal-error"}.get(
            self.rc if self.rc is not None else -1, f"exit-{self.rc}"
        )


@contextlib.contextmanager
def _hang_guard(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _prepare(case: Case, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in case.files:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    for name, what in case.specials:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if what == "dir":
            target.mkdir()
        elif what == "nonempty-dir":
            target.mkdir()
            (target / "keep.txt").write_text("a user's own file\n", encoding="utf-8")
        elif what == "fifo":
            os.mkfifo(target)
        elif what == "binary":
            target.write_bytes(b"\xff\xfe\x00binary\x00")
        elif what == "file":
            target.write_text("a regular file\n", encoding="utf-8")
        else:
            raise ValueError(f"unknown special {what!r}")


def _snapshot(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


_PNG_STAND_IN = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x01\x01\x01"
    b"\x00\x18\xdd\x8d\xb0\x00\x00\x00\x00IEND\xaeB`\x82"
)
"""A 1 x 1 PNG: what the stand-in plotters write."""


def _stand_in_course_plots(*args: object, **kwargs: object) -> dict[str, bytes]:
    from itb.adapters.plots.course import PLOT_TITLES

    return dict.fromkeys(PLOT_TITLES, _PNG_STAND_IN)


def _stand_in_plot_trial(summary: object, out_dir: Path) -> list[Path]:
    path = out_dir / "outcomes.png"
    path.write_bytes(_PNG_STAND_IN)
    return [path]


def _stand_in_plot_forecast_trial(summary: object, plots: object, out_dir: Path) -> list[Path]:
    path = out_dir / "trial.png"
    path.write_bytes(_PNG_STAND_IN)
    return [path]


@contextlib.contextmanager
def _plots(real: bool) -> Iterator[None]:
    if real:
        yield
        return
    with (
        mock.patch("itb.adapters.report_files.course_plots", _stand_in_course_plots),
        mock.patch("itb.adapters.cohort_output.plot_trial", _stand_in_plot_trial),
        mock.patch(
            "itb.adapters.forecast_output.plot_forecast_trial", _stand_in_plot_forecast_trial
        ),
    ):
        yield


def run_case(case: Case, directory: Path, *, guard_s: float = HANG_GUARD_S) -> Outcome:
    """Run ``case`` in the empty (or new) ``directory``; capture everything it says."""
    _prepare(case, directory)
    before = _snapshot(directory)
    argv = [a.replace("{dir}", str(directory)) for a in case.argv]
    out, err = io.StringIO(), io.StringIO()
    rc: int | None = None
    hung = False
    started = time.perf_counter()
    try:
        with (
            _plots(case.real_plots),
            _hang_guard(guard_s),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            rc = run(argv)
    except CaseTimeout:
        hung = True
    except SystemExit as exc:  # run() must return, never exit
        rc = exc.code if isinstance(exc.code, int) else -1
        err.write(f"\n[campaign] SystemExit({exc.code!r}) escaped run()")
    except BaseException as exc:  # run() let an exception through: a traceback for a user
        err.write(f"\nTraceback (escaped run()): {type(exc).__name__}: {exc}")
        rc = -1
    seconds = time.perf_counter() - started
    after = _snapshot(directory)
    left: list[str] = []
    if rc not in (0, 1):
        left = sorted(after - before)
    else:  # accepted: the outputs may exist, but no temporary sibling may stay
        left = sorted(
            p for p in after - before if ".tmp" in Path(p).name or ".old-" in Path(p).name
        )
    return Outcome(rc, out.getvalue(), err.getvalue(), seconds, hung, tuple(left))


def _names_one(line: str, names: tuple[str, ...]) -> bool:
    """True if ``line`` names one of ``names`` as a whole field (``days`` is not found in
    ``horizon_days``; ``events[1]`` is not found in ``events[10]``)."""
    for name in names:
        if "~" in name:  # "table~key": names the table (or a field in it) and says the key
            table, key = name.split("~")
            if (not table or _names_one(line, (table,)) or f"{table}." in line) and _word(
                line, key
            ):
                return True
            continue
        if name.endswith((" (", " =")):  # "events[0] (refill at", "bolus[1].observations ="
            if name in line:
                return True
            continue
        start = 0
        while (i := line.find(name, start)) >= 0:
            before = line[i - 1] if i > 0 else " "
            j = i + len(name)
            after = line[j] if j < len(line) else " "
            if not (before.isalnum() or before in "_-") and not (after.isalnum() or after in "_"):
                return True
            start = i + 1
    return False


def _word(line: str, word: str) -> bool:
    return _names_one(line, (word,))


def judge(case: Case, o: Outcome) -> list[str]:
    """Every way the outcome breaks the promise (empty: kept)."""
    problems: list[str] = []
    text = o.stdout + o.stderr
    lines = [line for line in o.stderr.splitlines() if line.strip()]
    if o.hung:
        return [f"hang: still running after {HANG_GUARD_S:g} s"]
    if "Traceback" in text:
        problems.append("traceback")
    if o.rc == 70 or "internal error" in o.stderr:
        problems.append(f"internal error (exit {o.rc}): {lines[-1] if lines else ''}")
        return problems
    if o.rc in (0, 1):
        if case.expect == REFUSE or (case.expect == CHECK and o.rc == 0):
            problems.append(
                f"silently accepted (exit {o.rc}) an impossible value"
                + (f"; stderr: {lines[-1][:200]}" if lines else "")
            )
        if any(line.startswith("error:") for line in lines) and len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr with an error")
        if o.left_behind:
            problems.append(f"left temporary files: {', '.join(o.left_behind)}")
        return problems
    if o.rc != 2:
        problems.append(f"exit code {o.rc} (bad input is 2)")
    if case.expect == ACCEPT:
        problems.append("refused a valid input")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr: {' | '.join(lines)[:300]}")
    elif not lines[0].startswith("error: "):
        problems.append(f"stderr line does not start with 'error: ': {lines[0][:200]}")
    line = lines[-1] if lines else ""
    if len(line) > MAX_LINE_CHARS:
        problems.append(f"error line of {len(line)} characters (echoes the value whole)")
    if case.names and not _names_one(line, case.names):
        problems.append(f"does not name {' or '.join(case.names)}: {line[:300]}")
    if o.left_behind:
        problems.append(f"left behind after a refusal: {', '.join(o.left_behind)}")
    return problems

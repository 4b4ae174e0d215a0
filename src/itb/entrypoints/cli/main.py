"""The ``itb`` command: one Typer app; each command group lives in its own module.

Errors: every :class:`itb.domain.errors.ITBError`, and every usage error (a
missing argument, an unknown option, a value of the wrong type), becomes one
line on stderr with the exit code of :mod:`itb.entrypoints.errors`, the only
table of them. Anything else is a bug: one line saying so, exit code 70, never
a traceback. Ctrl-C ends with one line and exit code 130.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main

from itb import __version__
from itb.domain.errors import ITBError
from itb.entrypoints.cli import (
    candidacy,
    card,
    clinic,
    cohort,
    demo,
    drug_library,
    forecast,
    patient,
    program,
    pump,
    refill,
    screen,
    screening_trial,
    serve,
    simulate,
    titrate,
    triage,
    validate,
)
from itb.entrypoints.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    outcome_of,
)

if TYPE_CHECKING:  # the click Typer ships with (its own copy)
    from typer._click.core import Command

__all__ = ["app", "main"]

app = typer.Typer(
    name="itb",
    help=(
        "Simulation and decision support for intrathecal baclofen (ITB) pump therapy. "
        "Not a medical device and not clinical advice."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from itb.bootstrap import data_version

        typer.echo(f"itb {__version__} (data {data_version()})")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the itb version and the version of its reviewed data, then exit.",
        ),
    ] = False,
) -> None:
    """Simulation and decision support for intrathecal baclofen (ITB) pump therapy."""


for _module in (
    candidacy,
    drug_library,
    triage,
    screening_trial,
    screen,
    card,
    pump,
    demo,
    validate,
    titrate,
    patient,
    refill,
    program,
    simulate,
    cohort,
    forecast,
    clinic,
    serve,
):
    _module.register(app)


@functools.cache
def _command() -> Command:
    """The click command tree, built once per process (Typer would rebuild it on every call,
    inspecting every command's signature)."""
    root = typer.main.get_command(app)
    _untyped_flags(root)
    return root


def _untyped_flags(cmd: Command) -> None:
    """On/off flags without a type tag in the help (Typer labels every flag ``<bool>``;
    a flag takes no value): an empty metavar is what the help then prints."""
    for param in cmd.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    built = cmd.get_help_option  # --help is made per context

    def help_option(ctx: Any) -> Any:
        option = built(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    setattr(cmd, "get_help_option", help_option)  # noqa: B010 (an instance's own)
    for sub in getattr(cmd, "commands", {}).values():
        _untyped_flags(sub)


def run(argv: list[str] | None = None) -> int:
    """Run the app on ``argv`` (default: the process's); return the exit code."""
    try:
        result = _command().main(args=argv, prog_name="itb", standalone_mode=False)
    except ITBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return outcome_of(exc).exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:
        # usage errors (missing argument, unknown option, bad type): one line, exit 2
        message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
        if not message:  # bare `itb`: the help has been printed
            return EXIT_OK
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: one line, never a traceback
        text = " ".join(str(exc).split())[:300]
        print(
            f"error: internal error ({type(exc).__name__}: {text}); this is a bug in itb",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) and not isinstance(result, bool) else EXIT_OK


def main() -> None:
    """Console-script entry."""
    sys.exit(run())

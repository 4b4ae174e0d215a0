"""The ``itb`` command: one Typer app; each command group lives in its own module.

Errors: every :class:`itb.domain.errors.ITBError`, and every usage error (a
missing argument, an unknown option, a value of the wrong type), becomes one
line on stderr and exit code 2 (bad input or a refused action); this is the
only place that mapping is made.
"""

from __future__ import annotations

import importlib
import sys

import typer

from itb.domain.errors import ITBError

__all__ = ["EXIT_BAD_INPUT", "app", "main"]

EXIT_BAD_INPUT = 2

app = typer.Typer(
    name="itb",
    help=(
        "Simulation and decision support for intrathecal baclofen (ITB) pump therapy. "
        "Not a medical device and not clinical advice."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules; each exposes ``register(app)``.
_COMMAND_MODULES: tuple[str, ...] = (
    "itb.entrypoints.cli.candidacy",
    "itb.entrypoints.cli.drug_library",
    "itb.entrypoints.cli.triage",
    "itb.entrypoints.cli.screening_trial",
    "itb.entrypoints.cli.screen",
    "itb.entrypoints.cli.card",
    "itb.entrypoints.cli.pump",
    "itb.entrypoints.cli.demo",
    "itb.entrypoints.cli.validate",
    "itb.entrypoints.cli.titrate",
    "itb.entrypoints.cli.patient",
    "itb.entrypoints.cli.refill",
    "itb.entrypoints.cli.program",
    "itb.entrypoints.cli.simulate",
    "itb.entrypoints.cli.cohort",
)


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry: run the app; map domain and usage errors to one line, exit 2."""
    try:
        app(standalone_mode=False)
    except ITBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as exc:
        # usage errors (missing argument, unknown option, bad type): one line, exit 2
        message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
        if not message:  # bare `itb`: the help has been printed
            sys.exit(0)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)

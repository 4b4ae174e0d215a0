"""pytest hooks of the campaign: a records directory for the whole session, and the
one-line summary at the end (registered by tests/conftest.py, so the controlling process
of an xdist run prints it too)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from tests.campaign.records import ENV, summary_line


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller made the folder
        return
    os.environ[ENV] = tempfile.mkdtemp(prefix="itb-campaign-")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    line = summary_line(os.environ.get(ENV))
    if line:
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    folder = os.environ.pop(ENV, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)

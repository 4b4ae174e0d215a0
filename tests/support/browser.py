"""Browser fixtures: Playwright for Python driving Debian's chromium, headless.

* ``browser`` (session): ``/usr/bin/chromium`` (``ITB_CHROMIUM`` overrides) launched
  through ``executable_path`` with ``CHROMIUM_ARGS``; Playwright gives every launch
  a fresh, empty user data directory of its own and removes it at close.
  ``playwright install`` is never needed. No chromium: the tests that need it
  fail with one line saying why; they are never skipped.
* ``page`` (function): a page in a new browser context (fresh cookies and
  storage), 1280 x 720, 10 s default timeout; the context is closed afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium keeps trying to reach Google's
# hosts, and this closed network refuses those connections.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1280, "height": 720}


def chromium_executable(path: str | None = None) -> str:
    """The chromium binary to drive, or a one-line test failure saying it is missing."""
    path = path or os.environ.get("ITB_CHROMIUM") or CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"chromium is required for the browser tests and {path} is missing: "
            "scripts/test installs Debian's chromium (or: apt-get install chromium)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=executable, headless=True, args=list(CHROMIUM_ARGS), timeout=60_000
            )
        except PlaywrightError as error:
            first = str(error.message).strip().splitlines()[0]
            pytest.fail(f"chromium ({executable}) did not start: {first}", pytrace=False)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    new_page = context.new_page()
    new_page.set_default_timeout(10_000)
    yield new_page
    context.close()

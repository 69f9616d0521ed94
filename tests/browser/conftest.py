"""Browser tests: Playwright drives Debian's chromium against postwarden over real HTTP.

Never a browser that Playwright downloads: ``make browser`` (part of ``make test``) installs
Debian's ``chromium`` when it is missing. Without it every browser test skips, loudly: the reason
is in the skip summary and a warning says so in the warnings summary.

Chromium is checked once per test process (each xdist worker) and started once per test module;
each test gets a fresh context, hence fresh cookies. Playwright's sync API runs its own event loop
on the test's thread, the live server runs uvicorn in a thread of its own.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Screenshot widths: a laptop and a phone.
VIEWPORTS: dict[int, ViewportSize] = {1280: {"width": 1280, "height": 800}, 390: {"width": 390, "height": 844}}
#: For page actions and for expect(): slower than a developer's machine is fine, a hang is not.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)

Shoot = Callable[[Page, str], None]


class BrowserTestsSkipped(UserWarning):
    """Shown in the warnings summary when chromium cannot be had, so the skips are not missed."""


def _skip_loudly(why: str) -> NoReturn:
    reason = f"!!! BROWSER TESTS SKIPPED: {why}. `make browser` installs Debian's chromium (as root) !!!"
    # The suite turns warnings into errors; this one is meant to be seen, not to fail the test.
    with warnings.catch_warnings():
        warnings.simplefilter("always", BrowserTestsSkipped)
        warnings.warn(reason, BrowserTestsSkipped, stacklevel=2)
    pytest.skip(reason)


def _why_it_did_not_start(error: PlaywrightError) -> str:
    """Playwright's first line, what the browser last said on stderr and how it exited, without
    the long command line and call log."""
    lines = [line.strip() for line in (error.message or str(error)).splitlines() if line.strip()]
    said = [line.split("[err] ", 1)[1] for line in lines if "[err] " in line and not line.startswith("- ")]
    exited = [line.split("<", 1)[1].rstrip(">") for line in lines if "<process did exit" in line]
    return "; ".join([lines[0] if lines else "no message", *dict.fromkeys(said[-3:]), *exited[:1]])


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, checked once per test process: every browser test skips, loudly, when it
    is missing or does not start (pytest keeps a session fixture's skip for the later tests)."""
    if not os.access(CHROMIUM, os.X_OK):
        _skip_loudly(f"{CHROMIUM} is missing")
    problem = None
    with sync_playwright() as playwright:
        try:
            _launch(playwright).close()
        except PlaywrightError as error:
            problem = _why_it_did_not_start(error)
    if problem:
        _skip_loudly(f"{CHROMIUM} did not start: {problem}")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    """Chromium, headless, for the tests of one module.

    Not for the whole session: while Playwright's sync API is started, its event loop counts as
    running on this thread even between calls, so ``asyncio.run()`` in a later test of the same
    process would fail. Stopping Playwright after each module leaves the thread as it was. For the
    same reason a browser test runs no asyncio code on its own thread: the live server (a thread
    of its own) or the HTTP API does that work."""
    with sync_playwright() as playwright:
        launched = _launch(playwright)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) whose relative URLs go to the live server."""
    fresh = browser.new_context(base_url=live_server.base_url, viewport=VIEWPORTS[1280])
    fresh.set_default_timeout(TIMEOUT_MS)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def results_dir(pytestconfig: pytest.Config) -> Path:
    folder = pytestconfig.rootpath / "test-results"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def shoot(results_dir: Path) -> Shoot:
    """``shoot(page, name)`` writes full-page screenshots ``test-results/<name>-1280.png`` and
    ``<name>-390.png``, then puts the viewport back.

    The SQLite and PostgreSQL runs of a test show the same page, so the files are named by page
    only: the last writer wins, and each file is written whole and renamed into place, so two
    test processes never leave half an image."""

    def take(page: Page, name: str) -> None:
        before = page.viewport_size
        for width, size in VIEWPORTS.items():
            page.set_viewport_size(size)
            image = page.screenshot(full_page=True, animations="disabled")
            handle, temporary = tempfile.mkstemp(dir=results_dir, prefix=f".{name}-{width}-", suffix=".png")
            with os.fdopen(handle, "wb") as out:
                out.write(image)
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide them from whoever collects them
            Path(temporary).replace(results_dir / f"{name}-{width}.png")
        if before is not None:
            page.set_viewport_size(before)

    return take

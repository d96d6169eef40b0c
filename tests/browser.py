"""Real-browser fixtures: Debian's chromium driven by Playwright's sync API.

Register from tests/conftest.py with ``pytest_plugins = ["browser"]`` (or ``from browser import *``).

- ``browser`` (session): one headless chromium for the whole run, started from the system binary
  (``/usr/bin/chromium`` or ``$BREAKWATER_CHROMIUM``), never a Playwright-downloaded one.
- ``page`` (function): a fresh browser context (own cookies/storage) and page per test, 10 s default timeout.
  When the test fails, a screenshot is saved in the test's ``tmp_path`` and its path, the page URL and any
  JavaScript errors are added to the failure report.

Chromium cannot choose its source address, so the browser is one visitor at the machine's own address
(127.0.0.1) while every other test client has an address of its own (tests/visitors.py). The limits keep
their defaults; a page that is answered 429 (rate limited) anywhere fails its test at teardown, so a browser
test never passes on a refusal it did not look for.

Needs ``apt-get install -y chromium`` and ``.venv/bin/pip install playwright`` (no ``playwright install``).
Missing pieces make the tests fail, not skip. Playwright's sync API cannot run inside a running asyncio loop.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

__all__ = ["CHROMIUM_ARGS", "DEFAULT_TIMEOUT_MS", "browser", "chromium_path", "page", "pytest_runtest_makereport"]

DEFAULT_CHROMIUM = "/usr/bin/chromium"
DEFAULT_TIMEOUT_MS = 10_000
# Playwright creates and removes its own temporary profile (--user-data-dir) with launch(); passing
# --user-data-dir here is rejected by Playwright.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APT_HINT = "apt-get install -y chromium"
PIP_HINT = ".venv/bin/pip install playwright"

_PAGE_KEY = pytest.StashKey[tuple]()


def chromium_path() -> str | None:
    """The chromium executable to drive ($BREAKWATER_CHROMIUM or /usr/bin/chromium), or None if it is missing."""
    return shutil.which(os.environ.get("BREAKWATER_CHROMIUM") or DEFAULT_CHROMIUM)


@pytest.fixture(scope="session")
def browser():
    """One headless system chromium for the session, closed (with Playwright) at the end."""
    executable = chromium_path()
    if executable is None:
        wanted = os.environ.get("BREAKWATER_CHROMIUM") or DEFAULT_CHROMIUM
        pytest.fail(f"Browser tests need chromium at {wanted}: install it with `{APT_HINT}`.", pytrace=False)
    try:
        from playwright.sync_api import Error, expect, sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None:  # failing outside the except block keeps the report to one sentence
        pytest.fail(f"Browser tests need the Playwright package: install it with `{PIP_HINT}`.", pytrace=False)

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except Error as exc:
            first_line = (exc.message or str(exc)).strip().splitlines()[0]
            pytest.fail(
                f"Chromium at {executable} did not start ({first_line}); check it with `{executable} --version` "
                f"or reinstall it with `{APT_HINT}`.",
                pytrace=False,
            )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser, request, tmp_path: Path):
    """A new page in a new browser context (fresh cookies) for one test; default timeout 10 s."""
    context = browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    new_page = context.new_page()
    js_errors: list[str] = []
    limited: list[str] = []
    new_page.on("pageerror", lambda error: js_errors.append(f"pageerror: {error}"))
    new_page.on("response", lambda r: limited.append(f"{r.request.method} {r.url}") if r.status == 429 else None)
    new_page.on("console", lambda msg: js_errors.append(f"console.error: {msg.text}") if msg.type == "error" else None)
    request.node.stash[_PAGE_KEY] = (new_page, tmp_path, js_errors)
    try:
        yield new_page
    finally:
        request.node.stash[_PAGE_KEY] = None
        context.close()
    if limited:
        pytest.fail(f"the browser was rate limited (429): {', '.join(limited)}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test that used ``page``: screenshot into tmp_path and list URL/JS errors in the report."""
    report = yield
    if report.when == "call" and report.failed:
        entry = item.stash.get(_PAGE_KEY, None)
        if entry is not None:
            shown_page, directory, js_errors = entry
            lines = []
            try:
                shot = directory / "failure.png"
                shown_page.screenshot(path=str(shot), full_page=True, timeout=5_000)
                lines += [f"screenshot: {shot}", f"url: {shown_page.url}"]
            except Exception as exc:  # the page may have crashed or been closed by the test
                lines.append(f"screenshot failed: {exc}".splitlines()[0])
            lines += js_errors
            report.sections.append(("browser", "\n".join(lines)))
    return report

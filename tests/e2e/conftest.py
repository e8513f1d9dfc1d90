"""A real ``streamlit run app.py`` server and headless Debian Chromium for the browser tests.

The server is started once per test session on a free port with a throw-away data directory and
stopped by its process id. Without Chromium the tests are skipped locally but FAIL under
``CI=true``: a CI that silently skips its browser tests checks nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from server import streamlit_server
from streamlit_page import VIEWPORT, blank_tab

if TYPE_CHECKING:  # the browser fixture explains a missing Playwright
    from playwright.sync_api import Page

CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``e2e`` so ``-m "not e2e"`` gives a quick run."""
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Browser tests cannot run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server for the whole test session."""
    with streamlit_server(tmp_path_factory.mktemp("e2e-server")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole session."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable(
            "the playwright package is not installed (pip install -r requirements-dev.txt)"
        )
    # expect() polls for state (a selector, a text), so a generous limit costs a passing test
    # nothing and keeps a busy machine (2 cores, several test runs) from failing a correct page;
    # Playwright's default is 5 s.
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def _tab(browser) -> Iterator[Page]:
    """One browser tab that the session's tests take turns on. A new tab (or context) costs
    ~3 CPU-s more per test than a navigation: its renderer compiles Streamlit's JavaScript
    again. Over the suite that was a third of its CPU time; tests that need a second browser
    open their own context."""
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


@pytest.fixture
def page(_tab: Page, base_url: str) -> Iterator[Page]:
    """The browser tab, blank (see ``blank_tab``); any console error or failed app request fails
    the test."""
    if _tab.is_closed():  # a test closed it: open another in the same context
        _tab = _tab.context.new_page()
    pg = blank_tab(_tab)
    errors: list[str] = []

    def on_console(message) -> None:
        # Opening a page URL directly makes the client probe /<page>/_stcore/health and
        # host-config, which 404 harmlessly; every other console error is a real one.
        if message.type == "error" and "/_stcore/" not in message.location.get("url", ""):
            errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_error(error) -> None:
        errors.append(str(error))

    pg.on("console", on_console)
    pg.on("pageerror", on_error)
    yield pg
    pg.remove_listener("console", on_console)
    pg.remove_listener("pageerror", on_error)
    assert not errors, f"browser console errors: {errors}"

"""Helpers for driving a Streamlit page in Playwright: navigate, wait for reruns, screenshot."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# Where the tests save full-page screenshots to look at (docs/screenshots retakes the README's);
# unset, none are taken: a full-page shot costs about a CPU-second a page.
_SHOTS = os.environ.get("CNNLAB_SCREENSHOT_DIR")
SCREENSHOT_DIR = Path(_SHOTS) if _SHOTS else None
APP = "[data-testid=stApp]"


def wait_until_idle(page: Page, timeout: float = 60_000) -> None:
    """Wait until the script has finished its run (and any rerun an interaction started)."""
    # A rerun may take a moment to start after a click: wait for "running" briefly, then idle.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_selector(f'{APP}[data-test-script-state="running"]', timeout=500)
    page.wait_for_selector(f'{APP}[data-test-script-state="notRunning"]', timeout=timeout)
    # Elements of the previous run fade ("stale") until replaced; wait for that to settle too.
    page.wait_for_function(
        "() => !document.querySelector('[data-stale=\"true\"]')", timeout=timeout
    )


def click_plotly_point(page: Page, point: Locator, hover_text: str, timeout: float = 60) -> None:
    """Click a Plotly point once Plotly is hovering it (its hover label shows ``hover_text``).

    Plotly turns a press into a click only on the point it is hovering, and it works out the
    hover a frame after the mouse moves (on a busy machine, much later; before its handlers are
    wired, never): a click sent at once is lost. So the mouse goes there, the test waits for the
    hover label, and only then presses, once (a second click could undo the first's selection).
    """
    hovering = "t => [...document.querySelectorAll('.hoverlayer')].some(e => e.textContent == t)"
    deadline = time.monotonic() + timeout
    while True:
        # The page may have grown above the chart since it was scrolled to (figure text,
        # expanders): a mouse outside the viewport hovers nothing.
        point.scroll_into_view_if_needed()
        box = _still_box(page, point)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        try:
            page.wait_for_function(hovering, arg=hover_text, timeout=5000)
            break
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                shown = page.locator(".hoverlayer").evaluate_all("ls => ls.map(e => e.textContent)")
                raise AssertionError(
                    f"Plotly never hovered {hover_text!r} in {timeout} s (labels: {shown})"
                ) from None
            page.mouse.move(0, 0)  # a hover needs a move: leave and come back
    page.mouse.down()
    page.mouse.up()


def _still_box(page: Page, locator: Locator, checks: int = 3) -> dict:
    """``locator``'s box once it has stopped moving (a Plotly chart lays itself out again after
    Streamlit has gone idle, when its width arrives)."""
    last, still = None, 0
    for _ in range(100):
        box = locator.bounding_box()
        still = still + 1 if box is not None and box == last else 0
        if still >= checks:
            break
        last = box
        page.wait_for_timeout(100)
    assert last is not None, "the element has no box"
    return last


def assert_no_exception(page: Page) -> None:
    """Fail with the page's own traceback text when Streamlit shows an exception block."""
    blocks = page.locator("[data-testid=stException]")
    if blocks.count():
        raise AssertionError(f"Streamlit exception on the page:\n{blocks.first.inner_text()}")


def goto(page: Page, base_url: str, url_path: str = "", timeout: float = 90_000) -> None:
    """Open ``base_url/url_path``, wait for the script to finish, and assert no exception."""
    page.goto(f"{base_url}/{url_path}", wait_until="domcontentloaded")
    page.wait_for_selector(APP, timeout=timeout)
    expect(page.locator("[data-testid=stMainBlockContainer]")).to_be_visible(timeout=timeout)
    wait_until_idle(page, timeout)
    assert_no_exception(page)


def screenshot(page: Page, name: str, max_height: int = 9000) -> Path | None:
    """Wait until every widget has drawn; then, with ``SCREENSHOT_DIR`` set, save a PNG of the
    whole page (not just the viewport) there."""
    # Widgets whose code loads lazily (radios, images…) stand as skeletons for a moment after
    # the script has finished: wait for them, or the shot shows grey boxes.
    page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton]')")
    if SCREENSHOT_DIR is None:
        return None
    # Streamlit scrolls inside its main container, so Playwright's full_page sees one screen;
    # grow the viewport to the content's height for the shot, then put it back.
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    size = page.viewport_size or {"width": 1400, "height": 1000}
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 0)"
    )
    page.set_viewport_size(
        {"width": size["width"], "height": min(max(height, size["height"]), max_height)}
    )
    page.wait_for_timeout(500)  # let charts re-layout to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def set_number(page: Page, label: str, value: float) -> None:
    """Type ``value`` into the number input labelled ``label`` and wait for the rerun."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_until_idle(page)


VIEWPORT = {"width": 1400, "height": 1000}


def blank_tab(tab: Page) -> Page:
    """``tab`` as a new browser would open it: no cookies (so a new owner), no storage, the
    default size, and nothing of the last test's app left running (its session is closed)."""
    if tab.url.startswith("http"):
        tab.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
    tab.context.clear_cookies()
    tab.goto("about:blank")
    tab.set_viewport_size(VIEWPORT)
    return tab

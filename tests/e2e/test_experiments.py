"""Browser test of the labs' experiments: one trains in the worker queue, shows its curves and is
shared by link with another browser. (The other labs' experiments use the same panel; their
AppTests in tests/test_page_experiments.py keep the suite fast.)"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from streamlit_page import assert_no_exception, goto, screenshot, wait_until_idle


def _train_and_wait(page: Page, seconds: float) -> None:
    train = page.get_by_role("button", name="Train", exact=True)
    train.scroll_into_view_if_needed()
    train.click()
    # The finished experiment's results. Not the live progress on the way: a quick experiment can
    # finish between two polls (tests/test_page_experiments.py shows the progress mid-run).
    expect(page.get_by_text("finished", exact=True).first).to_be_visible(timeout=seconds * 1000)
    wait_until_idle(page)
    assert_no_exception(page)


def test_an_experiment_trains_in_the_queue_and_opens_for_another_browser(
    page: Page, base_url: str, browser
) -> None:
    goto(page, base_url, "choices", timeout=240_000)
    # The three losses: the quickest experiment.
    picker = page.locator("[data-testid=stSelectbox]").filter(has_text="Experiment").first
    picker.scroll_into_view_if_needed()
    picker.click()
    page.get_by_role("option", name=re.compile("^Losses")).click()
    wait_until_idle(page)
    _train_and_wait(page, 240)
    expect(page.get_by_text("binary cross-entropy").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"Seed \d+ \(quick setting")).first).to_be_visible()
    page.get_by_text("Share with my class").click()
    wait_until_idle(page)
    link = page.locator("[data-testid=stCode]").last.inner_text().strip()
    assert re.search(r"/choices\?experiment=[0-9a-f]{16}$", link), link
    page.get_by_text("Share with my class").scroll_into_view_if_needed()
    screenshot(page, "choices-experiment")

    # Another browser (its own owner cookie) opens the link: the experiment, read-only.
    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        student = other.new_page()
        student.goto(link, wait_until="domcontentloaded")
        expect(student.get_by_text("Shared experiment")).to_be_visible(timeout=120_000)
        wait_until_idle(student)
        expect(student.get_by_text("binary cross-entropy").first).to_be_visible()
        assert_no_exception(student)
    finally:
        other.close()

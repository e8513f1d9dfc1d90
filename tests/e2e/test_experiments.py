"""Browser tests of the labs' experiments: trained in the worker queue with live curves, shared
by link with another browser; the single-shot detector's boxes on held-out canvases."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from streamlit_page import assert_no_exception, goto, screenshot, wait_until_idle


def _train_and_wait(page: Page, seconds: float) -> None:
    train = page.get_by_role("button", name="Train", exact=True)
    train.scroll_into_view_if_needed()
    train.click()
    # Live progress from the worker, then the finished experiment's results.
    expect(page.get_by_text(re.compile(r"network \d of \d"))).to_be_visible(timeout=90_000)
    expect(page.get_by_text("finished", exact=True).first).to_be_visible(timeout=seconds * 1000)
    wait_until_idle(page)
    assert_no_exception(page)


def test_an_experiment_trains_in_the_queue_and_opens_for_another_browser(
    page: Page, base_url: str, browser
) -> None:
    goto(page, base_url, "choices", timeout=240_000)
    _train_and_wait(page, 240)
    expect(page.get_by_text("SGD + momentum 0.9").first).to_be_visible()
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
        expect(student.get_by_text("SGD + momentum 0.9").first).to_be_visible()
        assert_no_exception(student)
    finally:
        other.close()


def test_the_single_shot_detector_draws_its_boxes_and_reports_map(
    page: Page, base_url: str
) -> None:
    goto(page, base_url, "detection", timeout=240_000)
    _train_and_wait(page, 300)
    expect(page.get_by_text("mAP@0.5 on held-out canvases")).to_be_visible()
    expect(page.get_by_alt_text(re.compile("Held-out canvas 1")).first).to_be_visible()
    page.get_by_text("mAP@0.5 on held-out canvases").scroll_into_view_if_needed()
    screenshot(page, "detection-single-shot")

"""Browser test of the Train page: train a tiny network, watch the curves, see the results, and
find the run again after a reload (the owner cookie)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from streamlit_page import assert_no_exception, goto, screenshot, set_number, wait_until_idle


def test_train_a_tiny_network_and_see_what_it_learned(page: Page, base_url: str) -> None:
    goto(page, base_url, "train")
    set_number(page, "Training images (0 = all)", 1000)
    set_number(page, "Epochs", 3)
    expect(page.locator("[data-testid=stDataFrame]").first).to_be_visible()
    # The settings teach: tuned ones only behind a labelled toggle, the fixed ones stated.
    expect(page.get_by_text("Use the settings tuned for the")).to_be_visible()
    expect(page.get_by_text("Fixed for every run:")).to_be_visible()
    expect(page.get_by_text("one multiply-add as 2 floating-point operations")).to_be_visible()
    screenshot(page, "train-settings")
    page.get_by_role("button", name="Train", exact=True).click()
    # The live panel polls the store: progress, then the finished run's results.
    expect(page.get_by_text(re.compile(r"epoch \d/3 · step"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text("finished", exact=True).first).to_be_visible(timeout=120_000)
    wait_until_idle(page)
    expect(page.get_by_text("Test accuracy").first).to_be_visible()
    expect(page.get_by_text("Most confident mistakes").first).to_be_visible()
    expect(page.get_by_text("First-layer kernels").first).to_be_visible()
    expect(page.locator("[data-testid=stPlotlyChart] .main-svg").first).to_be_visible()
    assert_no_exception(page)
    # The app scrolls inside its own container, so show the results rather than the form.
    page.get_by_text("Test accuracy").first.scroll_into_view_if_needed()
    screenshot(page, "train")

    # A reload is a new session: the cookie brings the owner, and with it the run, back.
    page.reload(wait_until="domcontentloaded")
    wait_until_idle(page, 90_000)
    expect(page.get_by_text("finished", exact=True).first).to_be_visible(timeout=30_000)
    assert_no_exception(page)

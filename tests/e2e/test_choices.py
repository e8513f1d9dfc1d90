"""The training-choices lab in a real browser: all four sections draw."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from streamlit_page import goto, screenshot


def test_every_section_draws(page: Page, base_url: str) -> None:
    goto(page, base_url, "choices", timeout=240_000)
    expect(page.locator("[data-testid=stPlotlyChart]")).to_have_count(3)
    expect(page.get_by_text("The loss falls fastest at", exact=False)).to_be_visible()
    expect(page.locator("[data-testid=stImage] img")).to_have_count(1)
    screenshot(page, "choices")

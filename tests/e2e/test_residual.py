"""The skip-connections lab in a real browser: both charts draw, a block diagram renders."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from streamlit_page import goto, screenshot, wait_until_idle


def test_gradients_and_a_block_diagram(page: Page, base_url: str) -> None:
    goto(page, base_url, "residual", timeout=240_000)
    expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible()
    page.get_by_text("Inverted residual (MobileNetV2)").click()
    wait_until_idle(page)
    expect(page.locator("[data-testid=stGraphVizChart] svg").first).to_be_visible()
    expect(page.get_by_text("depthwise 3×3 conv", exact=False).first).to_be_visible()
    screenshot(page, "residual-inverted")

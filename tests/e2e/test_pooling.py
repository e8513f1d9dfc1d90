"""The pooling step-through in a real browser: stepping moves the window and the arithmetic."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from streamlit_page import goto, screenshot, wait_until_idle


def _window_outline(page: Page) -> str:
    """The SVG path of the window outline drawn on the input grid (the first Plotly chart)."""
    chart = page.locator("[data-testid=stPlotlyChart]").first
    return chart.locator(".shapelayer path").first.get_attribute("d") or ""


def test_step_through_moves_the_window_and_explains_it(page: Page, base_url: str) -> None:
    goto(page, base_url, "pooling")
    explanation = page.locator("[data-testid=stAlert]").filter(has_text="Window 1 of 9")
    expect(explanation).to_contain_text("max(")
    before_text = explanation.inner_text()
    before_outline = _window_outline(page)
    assert before_outline

    page.get_by_role("button", name="Next ▶").click()
    wait_until_idle(page)
    after = page.locator("[data-testid=stAlert]").filter(has_text="Window 2 of 9")
    expect(after).to_contain_text("columns 2–3")
    assert after.inner_text() != before_text
    assert _window_outline(page) != before_outline, "the outlined window did not move"
    page.locator("[data-testid=stPlotlyChart]").first.scroll_into_view_if_needed()
    screenshot(page, "pooling-step-2")


def test_average_pooling_writes_out_the_mean(page: Page, base_url: str) -> None:
    goto(page, base_url, "pooling")
    page.locator("[data-testid=stRadio]").first.get_by_text("Average", exact=True).click()
    wait_until_idle(page)
    expect(page.locator("[data-testid=stAlert]").filter(has_text="Window 1 of 9")).to_contain_text(
        ") / 4 = "
    )
    page.get_by_role("button", name="Next ▶").click()
    wait_until_idle(page)
    expect(page.locator("[data-testid=stAlert]").filter(has_text="Window 2 of 9")).to_contain_text(
        ") / 4 = "
    )
    page.locator("[data-testid=stPlotlyChart]").first.scroll_into_view_if_needed()
    screenshot(page, "pooling-average")

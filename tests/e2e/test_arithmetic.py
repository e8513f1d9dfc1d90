"""Browser test of the arithmetic page: step the window picture, play it, take a screenshot."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from streamlit_page import assert_no_exception, goto, screenshot, set_number, wait_until_idle


def test_stepping_the_window_picture(page: Page, base_url: str) -> None:
    goto(page, base_url, "arithmetic")
    # 8×8 input, 5×5 kernel, stride 2, padding 1 → a 3×3 output: 9 window positions.
    set_number(page, "Input height H", 8)
    set_number(page, "Input width W", 8)
    label = page.locator("p", has_text=re.compile(r"Position \d+ of 9"))
    expect(label).to_contain_text("Position 1 of 9")
    expect(label).to_contain_text("Output (0, 0): taps at rows −1, 0, 1, 2, 3")

    page.get_by_role("button", name="Next ▶").click()
    wait_until_idle(page)
    expect(label).to_contain_text("Position 2 of 9")
    expect(label).to_contain_text("columns 1, 2, 3, 4, 5")
    # The remainder (8 + 2 − 5) mod 2 = 1 is explained, and the figure is drawn.
    expect(page.get_by_text(re.compile(r"mod 2 = 1")).first).to_be_visible()
    expect(page.locator("[data-testid=stPlotlyChart] .main-svg").first).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "arithmetic-stepping")

    # Play advances by itself (a fragment re-running on a timer), Pause stops it.
    page.get_by_text("▶ Play").click()
    expect(label).not_to_contain_text("Position 2 of 9", timeout=10_000)
    page.get_by_text("▶ Play").click()
    wait_until_idle(page)
    assert_no_exception(page)

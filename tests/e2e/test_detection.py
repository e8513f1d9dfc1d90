"""The detection lab in a real browser: stepping NMS redraws the picture and names the IoUs."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from streamlit_page import goto, screenshot, wait_until_idle


def test_stepping_nms_moves_to_the_next_kept_box(page: Page, base_url: str) -> None:
    goto(page, base_url, "detection")
    first = page.get_by_text("Step 1 of", exact=False)
    expect(first).to_be_visible()
    slider = page.get_by_role("slider", name="Step")
    slider.focus()
    slider.press("ArrowRight")
    wait_until_idle(page)
    expect(page.get_by_text("Step 2 of", exact=False)).to_be_visible()
    expect(page.get_by_text("mAP@0.5 =", exact=False)).to_be_visible()
    screenshot(page, "detection-step-2")

"""Convolution variants in a real browser: a variant pick redraws its connectivity and maps."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from streamlit_page import goto, screenshot, set_number, wait_until_idle


def test_grouped_variant_shows_a_block_diagonal_and_the_costs_follow(
    page: Page, base_url: str
) -> None:
    goto(page, base_url, "conv_variants")
    ratio = page.locator("[data-testid=stMetric]").filter(has_text="Standard ÷ separable")
    expect(ratio).to_contain_text("8.69×")
    page.get_by_role("radiogroup", name="Variant", exact=True).get_by_text("Grouped").click()
    wait_until_idle(page)
    expect(page.get_by_text("4 groups: each output sees only its own group's 64")).to_be_visible()
    expect(page.get_by_text("(16,384 of 65,536 pairs)")).to_be_visible()
    set_number(page, "Output channels", 32)  # the ratio is 1 / (1/c_out + 1/k²)
    expect(ratio).to_contain_text("7.02×")
    page.get_by_text("Which channels connect").scroll_into_view_if_needed()
    screenshot(page, "conv_variants-grouped")


def test_transposed_variant_doubles_the_image(page: Page, base_url: str) -> None:
    goto(page, base_url, "conv_variants")
    group = page.get_by_role("radiogroup", name="Variant on the image")
    group.get_by_text("Transposed (stride 2)").click()
    wait_until_idle(page)
    expect(page.get_by_text("upsampled ×2 (bilinear kernel)").first).to_be_visible()
    page.get_by_text("upsampled ×2 (bilinear kernel)").first.scroll_into_view_if_needed()
    screenshot(page, "conv_variants-transposed")

"""Activations & normalisation in a real browser: curves, batch of one, and the BN experiment."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from streamlit_page import goto, screenshot, wait_until_idle


def test_batch_of_one_warns_and_sigmoid_shows_its_vanishing_gradient(
    page: Page, base_url: str
) -> None:
    goto(page, base_url, "activations")
    expect(page.get_by_text("|f′| < 0.01 on [-6.00, -4.60], [4.60, 6.00]")).to_be_visible()
    chart = page.locator("[data-testid=stPlotlyChart]").first
    expect(chart.locator(".legendtext").filter(has_text="Sigmoid")).to_have_count(1)
    slider = page.get_by_role("slider", name="Batch size")
    slider.focus()
    slider.press("Home")  # 8 → 1 in one rerun (each step would rerun, and replace the images)
    wait_until_idle(page)
    warning = page.locator("[data-testid=stAlert]").filter(has_text="Batch size 1 in train mode")
    expect(warning).to_be_visible()
    warning.scroll_into_view_if_needed()
    screenshot(page, "activations-batch-of-one")


def test_experiment_trains_with_and_without_batch_norm(page: Page, base_url: str) -> None:
    goto(page, base_url, "activations")
    page.get_by_role("button", name="Train both").click()
    metrics = page.locator("[data-testid=stMetric]").filter(has_text="BN experiment")
    expect(metrics).to_have_count(2, timeout=300_000)
    for i in range(2):
        expect(metrics.nth(i).locator("[data-testid=stMetricValue]")).to_contain_text(
            "%", timeout=300_000
        )
    wait_until_idle(page)
    curves = page.locator("[data-testid=stPlotlyChart]").last
    expect(
        curves.locator(".legendtext").filter(has_text="without batch norm").first
    ).to_be_visible()
    curves.scroll_into_view_if_needed()
    screenshot(page, "activations-experiment")

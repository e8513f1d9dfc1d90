"""The architecture zoo in a real browser: picking a network redraws totals, diagram and table."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from streamlit_page import goto, screenshot, set_number, wait_until_idle


def _metric(page: Page, label: str) -> str:
    metric = page.locator("[data-testid=stMetric]").filter(has_text=label).first
    return metric.locator("[data-testid=stMetricValue]").inner_text()


def test_picking_mobilenet_v2_shows_its_published_numbers_and_blocks(
    page: Page, base_url: str
) -> None:
    goto(page, base_url, "zoo")
    assert _metric(page, "Parameters") == "11,689,512"
    expect(page.locator("[data-testid=stGraphVizChart] svg")).to_contain_text("basic block")
    page.get_by_role("combobox", name="Architecture").click()
    page.get_by_role("option", name="MobileNet V2").click()
    wait_until_idle(page)
    assert _metric(page, "Parameters") == "3,504,872"
    graph = page.locator("[data-testid=stGraphVizChart] svg")
    expect(graph).to_contain_text("inverted residual block")
    expect(graph).to_contain_text("1280×7×7")
    expect(page.get_by_text("published multiply-adds 0.301 G")).to_be_visible()
    graph.scroll_into_view_if_needed()
    screenshot(page, "zoo-mobilenet_v2")


def test_mlp_versus_cnn_follows_the_input_size(page: Page, base_url: str) -> None:
    goto(page, base_url, "zoo")
    set_number(page, "Height", 32)
    set_number(page, "Width", 32)
    assert _metric(page, "Input features") == "3,072"
    assert _metric(page, "Fully connected first layer") == "3,073,000"
    page.locator("[data-testid=stMetric]").filter(
        has_text="Input features"
    ).scroll_into_view_if_needed()
    screenshot(page, "zoo-mlp-vs-cnn")

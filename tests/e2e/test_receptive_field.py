"""Browser test of the receptive-field page: clicking a neuron draws its field on the image."""

from __future__ import annotations

from playwright.sync_api import expect
from streamlit_page import goto, screenshot, wait_until_idle


def _field_chart(page):
    # The first Plotly chart of the page is the clickable field overlay.
    return page.locator("[data-testid=stPlotlyChart]").first


def test_clicking_a_neuron_draws_its_field(page, base_url: str) -> None:
    # Through the home page and the sidebar: on a fresh server, the first direct page URL logs
    # a "page does not seem to exist" console error before app.py's navigation takes over.
    goto(page, base_url)
    nav = page.get_by_test_id("stSidebarNavItems")
    nav.get_by_role("link", name="Receptive fields").click()
    wait_until_idle(page)
    chart = _field_chart(page)
    chart.scroll_into_view_if_needed()
    expect(chart.locator("text=Field inside the image")).to_be_visible()
    # The default neuron is the centre one, whose field stays inside the image.
    expect(chart.locator("text=Field in the padding")).to_have_count(0)
    corner = chart.locator("g.trace.scatter path.point").first
    box = corner.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_until_idle(page)
    expect(page.get_by_text("Neuron (0, 0) of layer 8")).to_be_visible()
    # A corner neuron's field reaches into the padding: the padded part is drawn too.
    expect(chart.locator("text=Field in the padding")).to_be_visible()
    expect(chart.locator("text=Neuron (0, 0)")).to_be_visible()
    screenshot(page, "receptive-field-clicked")

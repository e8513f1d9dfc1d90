"""Browser test of the receptive-field page: clicking a neuron draws its field on the image."""

from __future__ import annotations

from playwright.sync_api import expect
from streamlit_page import click_plotly_point, goto, screenshot, wait_until_idle


def _field_chart(page):
    # The first Plotly chart of the page is the clickable field overlay.
    return page.locator("[data-testid=stPlotlyChart]").first


def test_clicking_a_neuron_draws_its_field(page, base_url: str) -> None:
    # Through the home page and the sidebar, as a learner arrives.
    goto(page, base_url)
    nav = page.locator(".st-key-app_nav")  # the navigation (ui.navigation.sidebar_links)
    nav.get_by_role("link", name="Receptive fields").click()
    wait_until_idle(page)
    chart = _field_chart(page)
    chart.scroll_into_view_if_needed()
    expect(chart.locator("text=Field inside the image")).to_be_visible()
    # The default neuron is the centre one, whose field stays inside the image.
    expect(chart.locator("text=Field in the padding")).to_have_count(0)
    corner = chart.locator("g.trace.scatter path.point").first
    click_plotly_point(page, corner, "neuron (0, 0)")
    # The click reruns the script: wait for its result, however long a busy machine takes.
    expect(page.get_by_text("Neuron (0, 0) of layer 8")).to_be_visible(timeout=60_000)
    wait_until_idle(page)
    # A corner neuron's field reaches into the padding: the padded part is drawn too.
    expect(chart.locator("text=Field in the padding")).to_be_visible()
    expect(chart.locator("text=Neuron (0, 0)")).to_be_visible()
    screenshot(page, "receptive-field-clicked")

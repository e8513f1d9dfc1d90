"""A link holds the page's settings (a teacher copies the address bar and sends it), and the
presenter / lesson switches change how the page is shown, with a visible way back."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect
from streamlit_page import goto, screenshot, wait_until_idle

# A loaded machine (and a fresh server's first page, which reruns through app.py) can take more
# than Playwright's default 5 s to redraw.
SLOW = 30_000


def test_a_copied_link_opens_the_same_settings(page, browser, base_url: str) -> None:
    goto(page, base_url, "pooling")
    # Keyboard only: a radio group and a slider are both operable without a mouse.
    kinds = page.get_by_role("radiogroup", name="Pooling type")
    kinds.get_by_role("radio", checked=True).focus()
    page.keyboard.press("ArrowRight")
    expect(kinds.get_by_role("radio", checked=True)).to_have_accessible_name(
        "Average", timeout=SLOW
    )
    wait_until_idle(page)
    stride = page.get_by_role("slider", name="Stride")
    stride.focus()
    page.keyboard.press("ArrowRight")
    expect(stride).to_have_value("3", timeout=SLOW)
    wait_until_idle(page)
    expect(page).to_have_url(re.compile(r"[?&]stride=3"), timeout=SLOW)
    # A setting inside a fragment (it reruns alone) reaches the link too.
    side = page.get_by_role("slider", name="Working size (longer side, pixels)")
    side.focus()
    page.keyboard.press("ArrowRight")
    wait_until_idle(page)
    expect(page).to_have_url(re.compile(r"[?&]side=96"), timeout=SLOW)
    link = urlsplit(page.url)
    assert parse_qs(link.query) == {"kind": ["avg"], "stride": ["3"], "side": ["96"]}

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        goto(other, base_url, f"{link.path.lstrip('/')}?{link.query}")
        expect(other.get_by_role("slider", name="Stride")).to_have_value("3", timeout=SLOW)
        working_size = other.get_by_role("slider", name="Working size (longer side, pixels)")
        expect(working_size).to_have_attribute("aria-valuetext", "96", timeout=SLOW)
        checked = other.get_by_role("radiogroup", name="Pooling type").get_by_role(
            "radio", checked=True
        )
        expect(checked).to_have_accessible_name("Average", timeout=SLOW)
    finally:
        fresh.close()


def test_presenter_mode_and_a_lesson_without_controls(page, base_url: str) -> None:
    goto(page, base_url, "convolution?present=on&controls=hide&text=hide&stride=2&padding=valid")
    page.wait_for_function("getComputedStyle(document.documentElement).fontSize === '22px'")
    main = page.locator("[data-testid=stMain]")
    expect(main.get_by_role("slider", name="Stride")).to_be_hidden(timeout=SLOW)
    expect(main.get_by_text("Pick an image and a kernel")).to_be_hidden(timeout=SLOW)
    for width in (1280, 1920):
        page.set_viewport_size({"width": width, "height": 1080})
        screenshot(page, f"presenter-{width}")
    back = main.get_by_role("button", name="Show the controls")
    expect(back).to_be_visible(timeout=SLOW)
    back.click()
    wait_until_idle(page)
    expect(main.get_by_role("slider", name="Stride")).to_have_value("2", timeout=SLOW)
    assert "controls" not in parse_qs(urlsplit(page.url).query)


def test_the_keyboard_reaches_the_navigation_then_the_controls_in_reading_order(
    page, base_url: str
) -> None:
    goto(page, base_url, "pooling")
    # Until the icon font arrives, icon names are wide text and the sidebar overflows; an
    # overflowing sidebar is one Tab stop in Chromium (a focusable scroller), its links skipped.
    page.wait_for_function(
        "() => { const s = document.querySelector('[data-testid=stSidebarContent]');"
        " return document.fonts.status === 'loaded' && s.scrollHeight <= s.clientHeight; }"
    )
    seen: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                "() => { const e = document.activeElement;"
                " return e.getAttribute('aria-label') || e.innerText.trim().split('\\n').pop(); }"
            )
        )
        if seen[-1] == "Stride":
            break
    assert seen[0] == "Skip to main content"
    order = [seen.index(name) for name in ("Convolution & kernels", "Pooling", "Window", "Stride")]
    assert order == sorted(order), seen


def test_a_link_to_a_layer_stack_and_a_neuron(page, browser, base_url: str) -> None:
    # A teacher's hand-written stack, its third layer (counted from 1, as the page shows).
    goto(page, base_url, "receptive_field?stack=conv.k5.s2~wide,relu,maxpool.k2.s2&layer=3")
    layer = page.get_by_role("combobox", name="Layer", exact=True)
    expect(layer).to_have_value(re.compile(r"3 · maxpool .*→ 7×7"), timeout=SLOW)
    column = page.get_by_role("slider", name="Neuron column")
    expect(column).to_have_value("3", timeout=SLOW)
    column.focus()
    page.keyboard.press("ArrowRight")  # in a fragment: it reruns alone, and the link follows
    wait_until_idle(page)
    expect(column).to_have_value("4", timeout=SLOW)
    expect(page).to_have_url(re.compile(r"[?&]col=4"), timeout=SLOW)
    link = urlsplit(page.url)
    assert parse_qs(link.query)["stack"] == ["conv.k5.s2~wide,relu,maxpool.k2.s2"]

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        goto(other, base_url, f"{link.path.lstrip('/')}?{link.query}")
        layer = other.get_by_role("combobox", name="Layer", exact=True)
        expect(layer).to_have_value(re.compile(r"3 · maxpool .*→ 7×7"), timeout=SLOW)
        column = other.get_by_role("slider", name="Neuron column")
        expect(column).to_have_value("4", timeout=SLOW)
    finally:
        fresh.close()

"""The convolution lab in a real browser: upload an image, then walk the step-by-step view."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from playwright.sync_api import expect
from streamlit_page import goto, screenshot, wait_until_idle


def _gradient_png(path) -> None:
    """A 48×64 horizontal ramp with a bright square: small, and Sobel x has something to find."""
    pixels = np.tile(np.linspace(0, 200, 64, dtype=np.uint8), (48, 1))
    pixels[10:20, 30:40] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def test_upload_and_step_by_step(page, base_url: str, tmp_path) -> None:
    goto(page, base_url, "convolution")
    main = page.locator("[data-testid=stMain]")
    expect(main.get_by_text("Output 1 × 512 × 512", exact=False)).to_be_visible()
    screenshot(page, "convolution-default")

    main.get_by_text("Upload", exact=True).click()
    wait_until_idle(page)
    image = tmp_path / "ramp.png"
    _gradient_png(image)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(image))
    wait_until_idle(page)
    expect(main.get_by_text("Input 1 × 48 × 64", exact=False)).to_be_visible()
    expect(main.get_by_text("Output 1 × 48 × 64", exact=False)).to_be_visible()

    # The step-by-step tab: the window starts at output (0, 0) with padded cells around it.
    assert page.locator("table.cgrid").count() == 0, "a closed tab is not drawn"
    main.get_by_role("tab", name="Step by step").click()
    wait_until_idle(page)
    expect(main.get_by_text("window at output (0, 0)", exact=False)).to_be_visible()
    assert page.locator("table.cgrid td.pad").count() > 0
    assert page.locator("table.cgrid td.win").count() == 9
    slider = main.get_by_role("slider", name="Window position (reading order)")
    slider.focus()
    page.keyboard.press("ArrowRight")
    wait_until_idle(page)
    expect(main.get_by_text("window at output (0, 1)", exact=False)).to_be_visible()
    sums = main.locator("[data-testid=stCode]")
    expect(sums.first).to_contain_text("=")
    screenshot(page, "convolution-upload-step")

    main.get_by_text("Play: slide the window over every position").click()
    wait_until_idle(page)
    # Playing advances the window by one position per second: it leaves (0, 1).
    expect(main.get_by_text("window at output (0, 1)", exact=False)).to_have_count(0)
    screenshot(page, "convolution-playing")


def test_bank_of_filters_and_maths(page, base_url: str) -> None:
    goto(page, base_url, "convolution")
    main = page.locator("[data-testid=stMain]")
    main.locator("[data-testid=stSelectbox]").filter(has_text="Channels and filters").click()
    page.get_by_role("option", name="A bank of N filters on grayscale: N feature maps").click()
    wait_until_idle(page)
    expect(main.get_by_text("Output 4 × 512 × 512", exact=False)).to_be_visible()
    main.get_by_role("tab", name="The maths").click()
    wait_until_idle(page)
    expect(main.get_by_text("Locally connected (no sharing)")).to_be_visible()
    screenshot(page, "convolution-bank")

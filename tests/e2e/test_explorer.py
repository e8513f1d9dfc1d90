"""The feature-map explorer in a real browser: upload a generated image and see its maps and an
explanation; draw digits on the canvas and see the prediction follow every stroke."""

from __future__ import annotations

import io
import itertools

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect
from streamlit_page import goto, screenshot, wait_until_idle

# Strokes in canvas coordinates (0–280), one list of points per stroke, like a learner's.
DIGITS = {
    "1": [[(150, 40), (148, 140), (146, 240)]],
    "7": [[(70, 50), (210, 50)], [(210, 50), (160, 150), (120, 245)]],
    "0": [[(140, 40), (200, 80), (215, 140), (200, 200), (140, 240), (80, 200), (65, 140),
           (80, 80), (140, 40)]],
}  # fmt: skip


def _photo_png(path) -> None:
    """A 96×64 colour image: a red disc left, vertical stripes right (edges for the filters)."""
    y, x = np.mgrid[0:64, 0:96]
    pixels = np.full((64, 96, 3), 40, np.uint8)
    pixels[(x - 24) ** 2 + (y - 32) ** 2 < 300] = (220, 30, 30)
    pixels[:, 56:][(x[:, 56:] // 4) % 2 == 0] = 230
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def _pick(page: Page, label: str, option: str) -> None:
    main = page.locator("[data-testid=stMain]")
    main.locator("[data-testid=stSelectbox]").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_until_idle(page)


def test_upload_shows_every_layer_and_an_explanation(page: Page, base_url: str, tmp_path) -> None:
    goto(page, base_url, "explorer")
    main = page.locator("[data-testid=stMain]")
    expect(main.get_by_text("Prediction: 7", exact=False)).to_be_visible()
    screenshot(page, "explorer-digit-sample")

    main.get_by_text("Upload", exact=True).click()
    wait_until_idle(page)
    image = tmp_path / "photo.png"
    _photo_png(image)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(image))
    wait_until_idle(page)
    expect(main.get_by_text("your image (96×64)", exact=False)).to_be_visible()

    _pick(page, "Network", "Classic vision (Gabor + colour, no training)")
    expect(main.get_by_text("(1, 3, 64, 96)", exact=False)).to_be_visible()
    expect(main.get_by_text("Layer 0 (Conv2d): 28 channels of 64×96", exact=False)).to_have_count(2)
    expect(main.get_by_text("no classifier", exact=False)).to_be_visible()
    screenshot(page, "explorer-classic-upload")

    _pick(page, "Network", "Bundled: shapes")
    expect(main.get_by_text("(1, 1, 28, 28)", exact=False)).to_be_visible()
    main.get_by_text("Occlusion", exact=True).click()
    wait_until_idle(page)
    expect(main.get_by_text("Occlusion for", exact=False)).to_be_visible()
    expect(
        main.get_by_text("what really happens when a region is hidden", exact=False)
    ).to_be_visible()
    screenshot(page, "explorer-shapes-occlusion")


def _draw(page: Page, strokes: list[list[tuple[int, int]]]) -> None:
    canvas = page.locator("[data-testid=stMain] canvas.upper-canvas")  # fabric.js's input layer
    box = canvas.bounding_box()
    assert box is not None
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            for t in np.linspace(0, 1, 8)[1:]:
                page.mouse.move(box["x"] + x0 + t * (x1 - x0), box["y"] + y0 + t * (y1 - y0))
        page.mouse.up()
        wait_until_idle(page)


def _clear(page: Page) -> None:
    page.get_by_role("button", name="Reset canvas & history").click()
    wait_until_idle(page)


def test_drawn_digits_are_read_stroke_by_stroke(page: Page, base_url: str) -> None:
    goto(page, base_url, "explorer")
    main = page.locator("[data-testid=stMain]")
    main.get_by_text("Draw", exact=True).click()
    wait_until_idle(page)
    expect(main.get_by_text("Nothing drawn yet", exact=False)).to_be_visible()
    for digit, strokes in DIGITS.items():
        _draw(page, strokes)
        expect(
            main.get_by_text(f"Prediction: {digit} with probability", exact=False)
        ).to_be_visible()
        expect(main.get_by_text("centred by its centre of mass in 28×28")).to_be_visible()
        screenshot(page, f"explorer-drawn-{digit}")
        _clear(page)

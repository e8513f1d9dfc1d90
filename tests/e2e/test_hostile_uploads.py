"""Hostile uploads through the pages: a sample of the corpus (tests/hostile_cases.py) sent as a
learner would send it, and the server keeps serving: a clear message for each bad file, no
exception block, a good file still works afterwards, and the next page still renders."""

from __future__ import annotations

import urllib.request

from hostile_cases import CASES
from playwright.sync_api import Page, expect
from streamlit_page import assert_no_exception, goto, screenshot, wait_until_idle

BY_ID = {case.id: case for case in CASES}
IMAGE_CASES = (
    "image-random-bytes",
    "image-png-header-10k",
    "image-png-truncated",
    "image-gif-screen-65535",
    "image-png-bomb-64mp",
    "image-tiff-float-nan-inf",  # accepted: shown like any image
    "image-png16-gradient",  # accepted
)
ZIP_CASES = (
    "zip-not-a-zip",
    "zip-lying-member-bad-crc",
    "zip-member-header-bomb",
    "zip-garbage-member",
    "zip-encrypted-member",
    "zip-good",  # accepted
)


def upload(page: Page, name: str, data: bytes) -> None:
    """Send ``data`` as the file ``name`` through the page's (only visible) file uploader."""
    dropzone = page.locator("[data-testid=stFileUploaderDropzoneInput]").first
    dropzone.set_input_files({"name": name, "mimeType": "application/octet-stream", "buffer": data})
    wait_until_idle(page, 120_000)
    assert_no_exception(page)


def expect_outcome(page: Page, case_id: str) -> None:
    """A refused case shows an error alert with its sentence; an accepted one shows none."""
    case = BY_ID[case_id]
    errors = page.locator("[data-testid=stAlertContentError]")
    if case.refused is None:
        expect(errors).to_have_count(0)
    else:
        expect(errors.first).to_be_visible()
        text = errors.first.inner_text()
        assert "Traceback" not in text
        assert "object at 0x" not in text


def test_hostile_images_on_the_convolution_page(page: Page, base_url: str) -> None:
    goto(page, base_url, "convolution")
    main = page.locator("[data-testid=stMain]")
    main.get_by_text("Upload", exact=True).click()
    wait_until_idle(page)
    for case_id in IMAGE_CASES:
        suffix = "tif" if "tiff" in case_id else "gif" if "gif" in case_id else "png"
        upload(page, f"{case_id}.{suffix}", BY_ID[case_id].make())
        expect_outcome(page, case_id)
        if case_id == "image-png-header-10k":
            screenshot(page, "hostile-convolution-refused")
    expect(main.get_by_text("Input 1 × 64 × 64", exact=False)).to_be_visible()
    screenshot(page, "hostile-convolution")
    goto(page, base_url, "pooling")  # the server still serves the next page
    with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=10) as health:
        assert health.read() == b"ok"


def test_hostile_zips_on_the_train_page(page: Page, base_url: str) -> None:
    goto(page, base_url, "train")
    page.get_by_role("combobox", name="Data set").click()
    page.get_by_role("option", name="Your own images (a zip of class folders)").click()
    wait_until_idle(page)
    for case_id in ZIP_CASES:
        value = BY_ID[case_id].make()
        data = value[0] if isinstance(value, tuple) else value
        upload(page, f"{case_id}.zip", data)
        expect_outcome(page, case_id)
        if case_id == "zip-member-header-bomb":
            screenshot(page, "hostile-train-refused")
    expect(page.get_by_text("Classes found", exact=False)).to_be_visible()
    screenshot(page, "hostile-train-upload")
    goto(page, base_url, "receptive_field")
    with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=10) as health:
        assert health.read() == b"ok"

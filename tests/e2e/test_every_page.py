"""Every page opens in a real browser, finishes running, shows no exception, and is captured."""

from __future__ import annotations

import pytest
from streamlit_page import goto, screenshot

from ui.navigation import PAGES

URLS = [("home", "")] + [(p.url_path, p.url_path) for p in PAGES]


@pytest.mark.parametrize(("name", "url_path"), URLS, ids=[n for n, _ in URLS])
def test_page_renders_without_errors(page, base_url: str, name: str, url_path: str) -> None:
    goto(page, base_url, url_path)
    assert page.locator("h1").count() >= 1, "every page starts with a title"
    screenshot(page, name)

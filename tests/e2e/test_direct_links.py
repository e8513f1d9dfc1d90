"""A link straight to a page works on a freshly started server (a teacher shares it with a
class): the page runs inside app.py's navigation, with its sections, not as a bare script."""

from __future__ import annotations

import pytest
from server import streamlit_server
from streamlit_page import goto

from ui.navigation import PAGES


@pytest.mark.skipif(not PAGES, reason="no pages registered")
def test_first_request_of_a_fresh_server_to_a_page_url(browser, tmp_path):
    spec = PAGES[-1]
    with streamlit_server(tmp_path) as url:
        context = browser.new_context()
        page = context.new_page()
        goto(page, url, spec.url_path)
        nav = page.locator(".st-key-app_nav")
        for section in {p.section for p in PAGES}:
            assert section in nav.inner_text()
        assert "app" not in nav.inner_text().split()
        assert page.locator("h1").first.inner_text() != ""
        context.close()

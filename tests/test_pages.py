"""AppTest smoke test: the home page and every registered page render with no exception.

Pages are taken from ``ui.navigation.PAGES`` (what ``app.py`` builds the navigation from), so a
new page is covered as soon as it is registered.
"""

from __future__ import annotations

import ast

import pytest
from pagetest import ROOT, app_test

from ui.navigation import PAGES, SECTIONS


def test_home_page_renders():
    at = app_test("app.py").run()
    assert not at.exception
    assert at.title[0].value == "CNN Lab"
    assert any("CPU" in e.value or "GPU" in e.value for e in [*at.info, *at.success])


@pytest.mark.parametrize("spec", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_through_the_navigation(spec):
    at = app_test("app.py", timeout=120).run()
    at.switch_page(spec.path).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page starts with a title"


def test_registry_is_consistent():
    assert tuple(sorted(PAGES, key=lambda p: SECTIONS.index(p.section))) == PAGES
    assert len({p.url_path for p in PAGES}) == len(PAGES)
    for spec in PAGES:
        assert spec.section in SECTIONS
        assert spec.path.startswith("pages/")
        assert spec.blurb


@pytest.mark.parametrize("spec", PAGES, ids=[p.url_path for p in PAGES])
def test_page_first_makes_sure_it_runs_inside_the_navigation(spec):
    # See ui.navigation.ensure_app_navigation: without it, a page URL opened first on a fresh
    # server runs as a bare script (tests/e2e/test_direct_links.py shows the real effect).
    tree = ast.parse((ROOT / spec.path).read_text(encoding="utf-8"))
    statements = [
        node
        for node in tree.body
        if not isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]
    first = statements[0]
    assert isinstance(first, ast.Expr)
    assert ast.unparse(first.value) == "ensure_app_navigation()"

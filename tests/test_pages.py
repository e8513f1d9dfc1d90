"""AppTest smoke test: the home page and every registered page render with no exception.

Pages are taken from ``ui.navigation.PAGES`` (what ``app.py`` builds the navigation from), so a
new page is covered as soon as it is registered.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pagetest import ROOT, app_test

from ui.navigation import PAGES, SECTIONS


def test_home_page_renders():
    at = app_test("app.py").run()
    assert not at.exception
    assert at.title[0].value == "CNN Lab"
    assert any("CPU" in e.value or "GPU" in e.value for e in [*at.info, *at.success])


def test_the_app_computes_on_one_torch_thread():
    # Page computations are small; a second thread per session only fights for the cores.
    # Every script run (and fragment rerun) is a new thread, which starts from the setting
    # made last in any thread: look from a new one.
    import threading

    import torch

    def threads_in_a_new_thread() -> int:
        seen: list[int] = []
        thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        return seen[0]

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert threads_in_a_new_thread() == 2
        assert not app_test("app.py").run().exception
        assert threads_in_a_new_thread() == 1
    finally:
        torch.set_num_threads(before)


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
        # Until st.navigation has run once, a fresh server resolves a page URL against the
        # pages/ folder's file names; a URL that differs from the file's stem then logs
        # "page does not exist" before ensure_app_navigation() can take over.
        assert spec.url_path == Path(spec.path).stem


@pytest.mark.parametrize("spec", PAGES, ids=[p.url_path for p in PAGES])
def test_page_first_makes_sure_it_runs_inside_the_navigation(spec):
    # See ui.navigation.ensure_app_navigation: without it, a page URL opened first on a fresh
    # server runs as a bare script (tests/e2e/test_train_queue.py shows the real effect).
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


# Pages with a part that needs the runs store (trained networks, training, experiments).
NEEDS_THE_STORE = {"receptive_field", "train", "activations", "choices", "explorer", "residual",
                   "detection"}  # fmt: skip


def test_an_unreachable_runs_database_is_one_sentence_and_other_pages_never_touch_it(
    monkeypatch,
):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CNNLAB_DATABASE_URL", f"postgresql://learner:secret@127.0.0.1:{port}/db")
    at = app_test("app.py", timeout=300)
    for page in PAGES:
        at.switch_page(page.path).run()
        assert not at.exception, (page.url_path, [e.value for e in at.exception])
        errors = [e.value for e in at.error if "runs database" in e.value]
        if page.url_path in NEEDS_THE_STORE:
            assert errors == [f"The runs database (PostgreSQL at 127.0.0.1:{port}) cannot be "
                              "reached, so training and saved runs are unavailable until it "
                              "is back."], page.url_path  # fmt: skip
            assert "secret" not in errors[0]
        else:
            assert not errors, page.url_path
    assert at.markdown, "the last page drew the rest of itself"


BUSY = (
    "The runs database is busy: all 8 connections this server process may open to it "
    "(CNNLAB_DB_MAX_CONNECTIONS) stayed in use for 10 s, so try again in a moment."
)


def test_a_store_busy_past_its_wait_is_one_sentence_on_the_page(monkeypatch):
    from cnnlab import runs

    def busy(*args, **kwargs):
        raise runs.StoreUnavailableError(BUSY)

    monkeypatch.setattr(runs.SqlRunStore, "list_runs", busy)
    at = app_test("app.py", timeout=120)
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert BUSY in [e.value for e in at.error]


def test_a_polling_fragment_shows_a_store_outage_and_the_page_goes_on():
    from streamlit.testing.v1 import AppTest

    def script() -> None:
        import streamlit as st

        from cnnlab.runs import StoreUnavailableError
        from ui.training import explain_store_errors

        def poll() -> None:
            raise StoreUnavailableError("The runs database is busy.")

        st.fragment(explain_store_errors(poll))()
        st.markdown("The rest of the page.")

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The runs database is busy."]
    assert at.markdown[0].value == "The rest of the page."

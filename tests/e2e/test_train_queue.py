"""Browser tests on a freshly started server: a direct link to a page, then the training queue
(with the only slot taken by another learner's run, a learner who presses Train sees their
position and an expected start from measured runs)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from server import streamlit_server
from streamlit_page import assert_no_exception, goto, screenshot, wait_until_idle

from cnnlab.models import PRESETS
from cnnlab.runs import SqliteRunStore
from cnnlab.training import TrainConfig
from ui.navigation import PAGES


def _page_default_run(store: SqliteRunStore, owner: str) -> str:
    """A run the size of what the Train page submits with its defaults."""
    from ui.training import rows_spec, spec_rows

    spec = rows_spec(spec_rows(PRESETS["fast"]), "fast").to_dict()
    return store.create_run(
        owner, dataset="shapes", config=TrainConfig().to_dict(), spec=spec,
        meta={"data_options": {}},
    )  # fmt: skip


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with one slot, held by another learner's run, and three measured runs."""
    workdir = tmp_path_factory.mktemp("queue-server")
    store = SqliteRunStore(workdir / "data")
    # Long runs (median 620 s), so the estimate outlasts a slow start of the server.
    for i, seconds in enumerate((600, 620, 900)):
        done = _page_default_run(store, f"past{i}")
        store.update_status(done, "running", started_at=time.time() - seconds)
        store.finish(done, "finished")
    # The slot's "worker" is a process of this test: alive, so the server leaves the run be.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    store.create_run("someone", dataset="mnist", config={"epochs": 1}, spec={})
    store.claim_next(max_running=1, worker_pid=holder.pid)
    mp = pytest.MonkeyPatch()
    mp.setenv("CNNLAB_MAX_CONCURRENT_RUNS", "1")
    try:
        with streamlit_server(Path(workdir)) as url:
            with store._tx() as db:  # the slot's run has just started: ~620 s to go
                db.execute("UPDATE runs SET started_at=? WHERE status='running'", (time.time(),))
            yield url
    finally:
        mp.undo()
        holder.kill()
        holder.wait()


def test_a_link_to_a_page_is_the_first_request_of_a_fresh_server(browser, busy_server: str) -> None:
    """A link straight to a page works on a freshly started server (a teacher shares it with a
    class): the page runs inside app.py's navigation, with its sections, not as a bare script.

    First in this module: ``busy_server`` has served no page yet (it saves starting a server
    just for this).
    """
    context = browser.new_context()
    page = context.new_page()
    try:
        goto(page, busy_server, PAGES[-1].url_path)
        nav = page.locator(".st-key-app_nav")
        # The page hands over to app.py's navigation by a rerun (ui.navigation.
        # ensure_app_navigation): wait for its sections, the first run may show the bare list.
        for section in {p.section for p in PAGES}:
            expect(nav).to_contain_text(section)
        assert "app" not in nav.inner_text().split()
        expect(page.locator("h1").first).not_to_have_text("")
    finally:
        context.close()


def test_a_queued_learner_sees_position_and_expected_start(browser, busy_server: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        goto(page, busy_server, "train")
        page.get_by_role("button", name="Train", exact=True).click()
        wait_until_idle(page)
        notice = page.get_by_text(re.compile(r"position 1 in the queue"))
        expect(notice).to_be_visible(timeout=30_000)
        text = notice.inner_text()
        assert "this server trains 1 run at a time" in text
        assert re.search(r"Expected to start in about (10|9) min \d\d s", text), text
        assert "judging by the 3 similar runs" in text
        assert "about 10 min 20 s each" in text
        expect(page.get_by_text("queued", exact=True).first).to_be_visible()
        assert_no_exception(page)
        notice.scroll_into_view_if_needed()
        screenshot(page, "train_queue")
    finally:
        context.close()

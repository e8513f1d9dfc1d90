"""The class server's warm-up (scripts/serving/warmup.py) against the real test server, widgets
included: it runs a page and moves each of its widgets one step and back. (The class server's own
test, tests/e2e/test_serve.py, warms its processes' pages only: moving every widget of every page
in both of its processes was ~50 CPU-seconds of the suite.)"""

from __future__ import annotations

from scripts.serving.st_ws import StreamlitSession
from scripts.serving.warmup import SKIP_KEYS, warm


def test_the_warm_up_moves_each_widget_of_a_page_one_step_and_back(base_url: str) -> None:
    with StreamlitSession(base_url, timeout=120) as session:
        shown = session.run_page("pooling").widgets
    movable = [w for w in shown if not w.id.endswith(SKIP_KEYS)]
    assert len(movable) >= 5  # the page's settings: a warm-up with nothing to move checks nothing
    report = warm(base_url, widgets=True, pages=["pooling"])
    assert list(report.seconds) == ["pooling"]  # only the page asked for
    assert report.exceptions == {}
    assert report.changes == {"pooling": 2 * len(movable)}

"""Server time of every page, one student: a full run, a widget change in a fragment, a first visit.

A real ``streamlit run app.py`` server, driven over its websocket by the browser-less client
(``scripts/serving/st_ws.py``): the time from the ``rerun_script`` message to ``script_finished`` is
the server's time for the run (plus a loopback round trip). The baseline is a trivial page (a title
and a slider in a fragment) served the same way in the same run. Columns:

- *cold first visit*: each page's first run in a fresh session on a freshly started server, no
  warm-up (what the first students of a class paid before issue 11);
- *warm first visit*: the same on another fresh server after ``scripts.serving.warmup`` ran
  every page and moved every widget once (what ``scripts/serve.sh`` does before its health
  check says ok);
- *full run*: median over ``--repeat`` runs of the page (navigating to it again);
- *fragment change*: median over ``--repeat`` changes of the page's first widget that lives in a
  ``st.fragment`` (toggled between two values), or "-" when the page has none.

Targets (issue 11, one student, quiet 2-core machine): full run ≤ 100 ms, fragment widget change
≤ 50 ms. Run: ``.venv/bin/python benchmarks/page_runs.py [--repeat 15] [--skip-first-visits]``.
With ``--profile N`` the app server runs under ``benchmarks/profiled_app.py`` and the N most
expensive functions (cumulative time inside the page's script runs) are printed per page.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.serving.st_ws import StreamlitSession  # noqa: E402
from scripts.serving.supervisor import app_command, free_ports, start_process, stop_group  # noqa: E402
from scripts.serving.warmup import wait_healthy, warm  # noqa: E402

FULL_RUN_TARGET_MS = 100.0
FRAGMENT_TARGET_MS = 50.0
TRIVIAL_PAGE = """import gc

import streamlit as st

# Out of the collector's sight, as app.py does (ui/heap.py): else Streamlit's gc.collect() after
# every run walks the whole import heap and the baseline is slower than the pages.
gc.freeze()
st.title("Trivial page")


@st.fragment
def panel() -> None:
    value = st.slider("Value", 0, 10, 0, key="trivial.value")
    st.write(f"Value: {value}")


panel()
"""


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


@contextlib.contextmanager
def _server(
    workdir: Path, script: str = "app.py", profile_dir: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A fresh ``streamlit run SCRIPT`` with its own data directory; yields (URL, process)."""
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    port = free_ports(1)[0]
    launcher = ("-m", "scripts.serving.streamlit_nodelay")  # as scripts/run.sh and serve.sh run it
    env = {**os.environ, "CNNLAB_DATA_DIR": str(workdir / "data"), "PYTHONUNBUFFERED": "1"}
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        launcher = (str(ROOT / "benchmarks" / "profiled_app.py"),)
        env["CNNLAB_PROFILE_DIR"] = str(profile_dir)
    cmd = app_command(port, launcher)
    cmd[cmd.index("app.py")] = script
    proc = start_process(cmd, workdir / "streamlit.log", env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, 180)
        yield url, proc
    finally:
        stop_group(proc)


def first_visits(url: str, pages: list[str]) -> dict[str, float]:
    """Seconds of each page's first run in one fresh session (home page first)."""
    seconds = {}
    with StreamlitSession(url) as session:
        seconds[""] = session.run_page("").seconds
        for path in pages:
            seconds[path] = session.run_page(path).seconds
    return seconds


def steady(url: str, path: str, repeat: int) -> tuple[float, float | None, str, list[str]]:
    """(full run ms, fragment change ms or None, the widget's label, exceptions) for a page."""
    exceptions: list[str] = []
    with StreamlitSession(url) as session:
        session.run_page("")
        full = []
        for _ in range(repeat + 1):  # the first run is a warm-up of this session
            result = session.run_page(path)
            full.append(result.seconds)
            exceptions += result.exceptions
        widget = next((w for w in result.widgets if w.fragment_id), None)
        changes = []
        if widget is not None:
            for _ in range(repeat + 1):
                change = session.change_widget(widget)
                changes.append(change.seconds)
                exceptions += change.exceptions
    fragment = _median_ms(changes[1:]) if changes else None
    return _median_ms(full[1:]), fragment, widget.label if widget else "", exceptions


def _fmt(ms: float | None, base: float, target: float) -> str:
    if ms is None:
        return "-"
    mark = "ok" if ms <= target else "over"
    return f"{ms:7.1f} ms {ms / base:5.1f}× {mark}"


def main() -> int:
    """Measure every page and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs per median")
    parser.add_argument("--pages", default="", help="comma-separated url paths (default: all)")
    parser.add_argument("--skip-first-visits", action="store_true", help="no cold/warm servers")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="top N functions")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="page-runs-") as tmp:
        work = Path(tmp)
        trivial = work / "trivial_page.py"
        trivial.write_text(TRIVIAL_PAGE)
        with _server(work / "trivial", str(trivial)) as (url, _):
            full_base, frag_base, _, _ = steady(url, "", args.repeat)
        assert frag_base is not None

        cold: dict[str, float] = {}
        warmed: dict[str, float] = {}
        with _server(work / "app", "app.py") as (url, _):
            with StreamlitSession(url) as probe:
                probe.run_page("")
                pages = [p.url_path for p in probe.pages if p.url_path]
            if args.pages:
                pages = [p for p in pages if p in args.pages.split(",")]
            if not args.skip_first_visits:
                # The probe above already ran the home page: a cold home visit needs its own
                # server, so this server's "cold" numbers start with the first real page.
                cold = first_visits(url, pages)
                cold.pop("", None)
        if not args.skip_first_visits:
            with _server(work / "warmed", "app.py") as (url, _):
                warm(url, widgets=True)
                warmed = first_visits(url, pages)

        profile_dir = work / "profiles" if args.profile else None
        rows = []
        with _server(work / "steady", profile_dir=profile_dir) as (url, proc):
            warm(url)
            if profile_dir is not None:
                proc.send_signal(signal.SIGUSR1)  # profile what follows, not the warm-up
                time.sleep(1)
            for path in ["", *pages]:
                rows.append((path, *steady(url, path, args.repeat)))
        _print_table(args.repeat, full_base, frag_base, cold, warmed, rows)
        if profile_dir is not None:
            print("\nProfiles (profiled runs are slower; compare functions, not the table):")
            for path in sorted(profile_dir.glob("*.prof")):
                print(f"\n== {path.stem}: script runs, by cumulative time")
                pstats.Stats(str(path)).sort_stats("cumulative").print_stats(args.profile)
    return 0


def _print_table(
    repeat: int,
    full_base: float,
    frag_base: float,
    cold: dict[str, float],
    warmed: dict[str, float],
    rows: list[tuple[str, float, float | None, str, list[str]]],
) -> None:

    print(f"page_runs: one student, median of {repeat} runs")
    print(f"trivial page: full run {full_base:.1f} ms, fragment change {frag_base:.1f} ms")
    header = (
        f"{'page':18} {'cold 1st':>9} {'warm 1st':>9}  {'full run (× trivial)':>26}"
        f"  {'fragment change (× trivial)':>28}  widget"
    )
    print(header)
    for path, full, frag, label, exceptions in rows:
        name = path or "home"
        c = f"{cold[path]:8.2f}s" if path in cold else f"{'-':>9}"
        w = f"{warmed[path]:8.2f}s" if path in warmed else f"{'-':>9}"
        print(
            f"{name:18} {c} {w}  {_fmt(full, full_base, FULL_RUN_TARGET_MS):>26}"
            f"  {_fmt(frag, frag_base, FRAGMENT_TARGET_MS):>28}  {label}"
        )
        for exc in sorted(set(exceptions)):
            print(f"    exception: {exc}")


if __name__ == "__main__":
    sys.exit(main())

"""Where each page's server time goes: in-process script-run times and the top costs per page.

Runs every page (Home and each page of ``ui.navigation.PAGES``) through Streamlit's AppTest and
times only the script's execution (``exec_func_with_error_handling``: app.py, the navigation
and the page, with every ``st.*`` call), not AppTest's own parsing of the elements afterwards.
Per page it prints the medians of

- *new session*: a new student's first run of the page on a server that has seen it before
  (what a class visiting pages costs; per-session work such as decoding is included);
- *rerun*: the same student's page run again with nothing changed;
- *widget change*: a full run after a typical widget change, alternating between two values;
- *fragment*: the body of each ``st.fragment`` during those runs (what a widget change inside
  that fragment reruns on a real server; AppTest itself always reruns the whole script),

then, unless ``--no-profile``, the functions of this repository with the largest cumulative
time over the rerun series (cProfile; absolute numbers are inflated by the profiler, compare
them with each other). The websocket-level benchmarks (``benchmarks/page_runs.py``,
``benchmarks/classroom.py``) measure what a browser waits for; this script says why.

Usage: ``.venv/bin/python benchmarks/page_profile.py [--runs N] [--pages convolution,train]
[--top K] [--no-profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.runtime.scriptrunner import script_runner  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from ui.navigation import PAGES  # noqa: E402

# A widget change per page: (kind, key, the two values to alternate between).
CHANGES: dict[str, tuple[str, str, tuple]] = {
    "home": ("", "", ()),
    "convolution": ("slider", "conv.stride", (2, 1)),
    "arithmetic": ("number_input", "arith.kernel.0", (3, 5)),
    "pooling": ("slider", "pool.window", (3, 2)),
    "receptive_field": ("slider", "rf.row", (3, 5)),
    "train": ("number_input", "train.hp.epochs", (3, 2)),
}
# The fragments' bodies, by function name (see the pages and ui/ modules).
FRAGMENTS = {
    "lab",
    "_picture_fragment",
    "_step_view",
    "player",
    "_live_body",
    "_calculator",
    "_chain",
    "_quiz",
    "_neuron",
    "_window_by_window",
    "_every_type",
    "_invariance",
    "_heads",
    "_tree",
    "_erf",
    "_data_and_model",
    "_settings",
}


@dataclass
class Timer:
    """Collects the wall time of every script execution while ``on`` is set."""

    on: bool = False
    runs: list[float] = field(default_factory=list)
    profiler: cProfile.Profile | None = None

    def wrap(self, exec_func: Callable) -> Callable:
        """``exec_func_with_error_handling`` that records how long each script run took."""

        def timed(func, ctx):
            # The script runs in AppTest's script thread: profile it there.
            profiler = self.profiler
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            try:
                return exec_func(func, ctx)
            finally:
                if profiler:
                    profiler.disable()
                if self.on:
                    self.runs.append((time.perf_counter() - start) * 1000)

        return timed

    def measure(self, action: Callable[[], object]) -> float:
        """The script time (ms) of the runs ``action`` makes (an ``at.run()`` may rerun)."""
        self.runs.clear()
        self.on = True
        try:
            action()
        finally:
            self.on = False
        return sum(self.runs)


def open_page(spec_path: str | None) -> AppTest:
    """A new session (AppTest of app.py) showing the page (``None``: Home)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    if spec_path:
        at.switch_page(spec_path).run()
    _check(at)
    return at


def _check(at: AppTest) -> None:
    if at.exception:
        raise RuntimeError(f"the page raised: {[e.value for e in at.exception]}")


def fragment_times(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative ms per call of each fragment body seen in ``stats``."""
    out = {}
    for (filename, _line, name), (_cc, calls, _tt, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if name in FRAGMENTS and str(ROOT) in filename and calls:
            out[f"{Path(filename).relative_to(ROOT)}:{name}"] = cum * 1000 / calls
    return out


def top_costs(stats: pstats.Stats, top: int, runs: int) -> list[tuple[float, float, str]]:
    """The repository's functions with the largest cumulative time per run (ms, own ms, name)."""
    rows = []
    for (filename, line, name), (_cc, _calls, tt, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if str(ROOT) in filename and ".venv" not in filename and name != "<module>":
            where = f"{Path(filename).relative_to(ROOT)}:{line}({name})"
            rows.append((cum * 1000 / runs, tt * 1000 / runs, where))
    return sorted(rows, reverse=True)[:top]


def profile_page(name: str, path: str | None, runs: int, top: int, profile: bool) -> None:
    """Print the medians of one page's series, its fragments and (optionally) its top costs."""
    timer = TIMER
    first = timer.measure(lambda: open_page(path))  # imports and cold caches (whole app)
    new_session = [timer.measure(lambda: open_page(path)) for _ in range(max(3, runs // 3))]
    at = open_page(path)
    rerun = [timer.measure(at.run) for _ in range(runs)]
    kind, key, values = CHANGES.get(name, ("", "", ()))
    changes: list[float] = []
    if kind:
        for i in range(runs):
            widget = getattr(at, kind)(key=key).set_value(values[i % 2])
            changes.append(timer.measure(widget.run))
            _check(at)
    print(
        f"{name:16} first {first:7.0f} ms | new session {statistics.median(new_session):6.0f} | "
        f"rerun {statistics.median(rerun):6.0f} | "
        + (f"change {key} {statistics.median(changes):6.0f}" if changes else "change -")
    )
    # Fragment bodies and top costs from a profiled series (rerun + one change each).
    timer.profiler = cProfile.Profile()
    for i in range(runs):
        if kind:
            getattr(at, kind)(key=key).set_value(values[i % 2]).run()
        else:
            at.run()
    stats = pstats.Stats(timer.profiler)
    timer.profiler = None
    for where, ms in sorted(fragment_times(stats).items()):
        print(f"{'':16} fragment {where}: {ms:.0f} ms (profiled)")
    if profile:
        for cum, own, where in top_costs(stats, top, runs):
            print(f"{'':16} {cum:8.1f} ms cum {own:7.1f} ms own  {where}")


TIMER = Timer()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per series (default 15)")
    parser.add_argument("--pages", default="", help="comma-separated url paths (default: all)")
    parser.add_argument("--top", type=int, default=12, help="functions listed per page")
    parser.add_argument("--no-profile", action="store_true", help="only the timings")
    args = parser.parse_args()
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # AppTest's bare-mode warnings
    script_runner.exec_func_with_error_handling = TIMER.wrap(
        script_runner.exec_func_with_error_handling
    )
    os.environ.setdefault("CNNLAB_DATA_DIR", tempfile.mkdtemp(prefix="cnnlab-profile-"))
    pages: list[tuple[str, str | None]] = [("home", None)]
    pages += [(spec.url_path, spec.path) for spec in PAGES]
    wanted = {p for p in args.pages.split(",") if p}
    print(f"script time per run, median of {args.runs} (ms; in-process, AppTest)")
    for name, path in pages:
        if not wanted or name in wanted:
            profile_page(name, path, args.runs, args.top, not args.no_profile)


if __name__ == "__main__":
    main()

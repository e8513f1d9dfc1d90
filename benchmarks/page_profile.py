"""Where each page's server time goes: in-process script-run times and the top costs per page.

Runs every page (Home and each page of ``ui.navigation.PAGES``) through Streamlit's AppTest and
times only the script's execution (``exec_func_with_error_handling``: app.py, the navigation
and the page, with every ``st.*`` call), not AppTest's own parsing of the elements afterwards.
Per page it prints

- *first*: the page's first run in this process (its imports, every cache cold);

and the medians of

- *new session*: a new student's first run of the page on a server that has seen it before
  (what a class visiting pages costs; per-session work such as decoding is included);
- *rerun*: the same student's page run again with nothing changed;
- *change*: a full run after a typical widget change outside the fragments, alternating between
  two values (the first of them computes, the others find the value cached);
- *fragment change*: a widget change inside a fragment, run as the browser asks for it (only
  that fragment reruns), alternating in the same way; ``first`` is the one that computes;

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
from streamlit.testing.v1 import AppTest, local_script_runner  # noqa: E402

from ui.navigation import PAGES  # noqa: E402

# A full-page widget change per page: (kind, key, the two values to alternate between).
CHANGES: dict[str, tuple[str, str, tuple]] = {
    "convolution": ("selectbox", "conv.kernel", ("Sobel y", "Sobel x")),
    "pooling": ("slider", "pool.window", (3, 2)),
    "receptive_field": ("selectbox", "rf.layer", (5, 7)),
    "train": ("number_input", "train.hp.epochs", (3, 2)),
    "zoo": ("selectbox", "zoo.arch", ("mobilenet_v2", "resnet18")),
    "explorer": ("selectbox", "explorer.model", ("bundled:shapes", "bundled:digits")),
}
# Widget changes inside fragments: (fragment function, kind, key, the two values).
FRAGMENT_CHANGES: dict[str, list[tuple[str, str, str, tuple]]] = {
    "convolution": [("lab", "slider", "conv.stride", (2, 1))],
    "arithmetic": [
        ("calculator_tab", "number_input", "arith.kernel.all", (3, 5)),
        ("_picture_fragment", "slider", "arith.pos", (2, 1)),
        ("chain_tab", "number_input", "arith.chain.height", (28, 32)),
    ],
    "pooling": [
        ("_step_view", "slider", "pool.step", (2, 1)),
        ("window_by_window", "slider", "pool.grid_size", (7, 6)),
        ("every_type", "select_slider", "pool.side", (96, 64)),
        ("invariance", "slider", "pool.max_shift", (5, 6)),
        ("heads", "number_input", "pool.head_c", (256, 512)),
    ],
    "receptive_field": [
        ("neuron_view", "slider", "rf.row", (3, 5)),
        ("tree_view", "slider", "rf.cell", (3, 8)),
    ],
    "activations": [
        ("activation_section", "slider", "norm.act.slope", (0.2, 0.1)),
        ("softmax_section", "slider", "norm.softmax.t", (2.0, 1.0)),
        ("batch_norm_section", "slider", "norm.bn.gamma", (2.0, 1.0)),
        ("dropout_section", "slider", "norm.dropout.p", (0.3, 0.5)),
    ],
    "zoo": [
        ("dense_vs_conv_section", "number_input", "zoo.mlp.hidden", (500, 1000)),
        ("stack_section", "number_input", "zoo.stack.classes", (5, 10)),
    ],
    "conv_variants": [
        ("_costs", "number_input", "variants.c_out", (128, 256)),
        ("_image", "slider", "variants.image_dilation", (2, 3)),
        ("_signal_body", "slider", "variants.1d.pos", (80, 64)),
        ("volume_view", "slider", "variants.3d.speed", (1, 2)),
    ],
    "explorer": [
        ("prediction", "slider", "explorer.temperature", (2.0, 1.0)),
        ("feature_maps", "selectbox", "explorer.layer.bundled:digits", ("3", "0")),
        ("explanation", "slider", "explorer.opacity", (0.5, 0.6)),
        ("attack", "slider", "explorer.epsilon", (5.0, 4.0)),
    ],
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


class FragmentRuns:
    """Makes AppTest's runs reruns of one fragment, as a browser asks after a widget change
    inside it (AppTest itself always reruns the whole script)."""

    def __init__(self) -> None:
        self.fragment_id: str | None = None
        real = local_script_runner.RerunData

        def rerun_data(**kwargs):
            if self.fragment_id:
                kwargs["fragment_id_queue"] = [self.fragment_id]
            return real(**kwargs)

        local_script_runner.RerunData = rerun_data  # type: ignore[assignment]

    @staticmethod
    def ids(at: AppTest) -> dict[str, str]:
        """The fragments of the last run, by the name of the function each one runs."""
        out = {}
        for fragment_id, wrapped in at._fragment_storage._fragments.items():  # type: ignore[attr-defined]
            for cell in wrapped.__closure__ or ():
                value = cell.cell_contents
                if callable(value) and not (getattr(value, "__module__", "") or "").startswith(
                    "streamlit"
                ):
                    out[value.__qualname__.rsplit(".", 1)[-1]] = fragment_id
        return out


def open_page(spec_path: str | None) -> tuple[AppTest, float]:
    """A new session (AppTest of app.py) showing the page (``None``: Home), and the script
    time (ms) of the page's first run in it (a session starts on Home, then switches)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    if spec_path is None:
        ms = TIMER.measure(at.run)
    else:
        at.run()
        ms = TIMER.measure(at.switch_page(spec_path).run)
    _check(at)
    return at, ms


def _check(at: AppTest) -> None:
    if at.exception:
        raise RuntimeError(f"the page raised: {[e.value for e in at.exception]}")


def top_costs(stats: pstats.Stats, top: int, runs: int) -> list[tuple[float, float, str]]:
    """The repository's functions with the largest cumulative time per run (ms, own ms, name)."""
    rows = []
    for (filename, line, name), (_cc, _calls, tt, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if str(ROOT) in filename and ".venv" not in filename and name != "<module>":
            where = f"{Path(filename).relative_to(ROOT)}:{line}({name})"
            rows.append((cum * 1000 / runs, tt * 1000 / runs, where))
    return sorted(rows, reverse=True)[:top]


def _set(at: AppTest, kind: str, key: str, value: object) -> None:
    getattr(at, kind)(key=key).set_value(value)


def profile_page(name: str, path: str | None, runs: int, top: int, profile: bool) -> None:
    """Print the medians of one page's series and (optionally) its top costs."""
    timer = TIMER
    at, first = open_page(path)  # imports and cold caches
    new_session = [open_page(path)[1] for _ in range(max(3, runs // 3))]
    rerun = [timer.measure(at.run) for _ in range(runs)]
    line = (
        f"{name:16} first {first:7.0f} ms | new session {statistics.median(new_session):6.0f} | "
        f"rerun {statistics.median(rerun):6.0f}"
    )
    kind, key, values = CHANGES.get(name, ("", "", ()))
    if kind and key:
        changes = []
        for i in range(runs):
            _set(at, kind, key, values[i % 2])
            changes.append(timer.measure(at.run))
            _check(at)
        line += f" | change {key} {statistics.median(changes):6.0f} (first {changes[0]:.0f})"
    print(line)
    ids = FragmentRuns.ids(at)
    for fragment, kind, key, values in FRAGMENT_CHANGES.get(name, []):
        if fragment not in ids:
            print(f"{'':16} fragment {fragment}: not on the page")
            continue
        # A full run first: AppTest's tree after a fragment run holds that fragment only.
        at.run()
        times = []
        for i in range(runs):
            _set(at, kind, key, values[i % 2])
            FRAGMENTS.fragment_id = ids[fragment]
            try:
                times.append(timer.measure(at.run))
            finally:
                FRAGMENTS.fragment_id = None
            _check(at)
        print(
            f"{'':16} fragment {fragment}, change {key}: {statistics.median(times):6.0f} ms "
            f"(first {times[0]:.0f})"
        )
    if profile:
        # Top costs over a profiled series of full reruns.
        at.run()
        timer.profiler = cProfile.Profile()
        for _ in range(runs):
            at.run()
        stats = pstats.Stats(timer.profiler)
        timer.profiler = None
        for cum, own, where in top_costs(stats, top, runs):
            print(f"{'':16} {cum:8.1f} ms cum {own:7.1f} ms own  {where}")


TIMER = Timer()
FRAGMENTS: FragmentRuns


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
    global FRAGMENTS
    FRAGMENTS = FragmentRuns()
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

"""A class on one server: page latency at 1, 30, 60, 100 students, and memory after a soak.

For each load level a fresh class server (``python -m scripts.serving.supervisor``, what
``scripts/serve.sh`` runs after installing) is started on 127.0.0.1 just before the level, with its
own data directory; its start-up includes the warm-up, as for a teacher. Then simulated students
(``scripts/serving/st_ws.py``: Streamlit's protobuf messages over the websocket, through nginx, each
with its own owner cookie) open the home page and, for ``--duration`` seconds, think 2–8 s and
either open a random page or change a random widget on the page they are on (a widget in a
fragment reruns only the fragment, as in the browser). A share of them (``--train-share``) first
press Train on the Train page with its defaults (built-in shapes, fast preset), so runs are queued
and training while the others click. ``--browsers`` real headless Chromium students navigate
with the sidebar and are timed until Streamlit is idle again. While they think, simulated students
rerun ``run_every`` fragments when due, as an open browser does (the Train page's live panel
while their run trains, a playing animation): the "(auto rerun)" rows.

Level 1 is one simulated student alone, visiting every page ``--baseline-rounds`` times with a
widget change of each kind (in a fragment, outside) per visit, then one Chromium student alone
for half a level, then one student pressing Train and watching it for 8 s: the baseline every
ratio divides by, measured in the same run. Printed per level: per page and overall median and
p95 (seconds and × one student), errors (failed connections, timeouts), exceptions shown on a
page, the server's memory (RSS summed over the supervisor's process tree: nginx, the app
processes, training workers), and the training runs by status.

Soak (``--soak N``, default 500): on a fresh server, N sessions are opened (each runs one random
page) and closed, ``--soak-concurrency`` at a time; memory before and after, after waiting
``--soak-settle`` s each time (Streamlit keeps a closed session for 2 minutes in case its browser
reconnects). MB per active session: memory with ``--hold`` sessions open at once, minus before.

Bounded: every level lasts ``--duration`` s plus start-up; at most ``--max-students`` threads;
loopback only. The load generator runs on the same cores as the server, like every test here.
Full run (long): ``.venv/bin/python benchmarks/classroom.py``; small:
``.venv/bin/python benchmarks/classroom.py --levels 1,4 --duration 20 --soak 20 --soak-settle 5``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from scripts.serving.st_ws import StreamlitSession  # noqa: E402
from scripts.serving.supervisor import free_ports  # noqa: E402
from scripts.serving.warmup import SKIP_KEYS  # noqa: E402

THINK_S = (2.0, 8.0)
HOME = "home"
SESSION_START = "home (new session)"


@dataclass
class Tally:
    """What the students of one level saw (appended to from many threads)."""

    samples: list[tuple[str, float]] = field(default_factory=list)  # (series, seconds)
    errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, series: str, seconds: float, exceptions: list[str]) -> None:
        with self.lock:
            self.samples.append((series, seconds))
            self.exceptions += [f"{series}: {e}" for e in exceptions]

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def by_series(self) -> dict[str, list[float]]:
        series: dict[str, list[float]] = {}
        for name, seconds in self.samples:
            series.setdefault(name, []).append(seconds)
        return series


# -- the server ---------------------------------------------------------------------------------
def _health(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants, in MB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = (proc / "status").read_text()
            parents[int(proc.name)] = int(re.search(r"^PPid:\s+(\d+)", status, re.M)[1])
            found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
            rss[int(proc.name)] = int(found[1]) if found else 0
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier += children
    return sum(rss.get(pid, 0) for pid in tree) / 1024


@contextlib.contextmanager
def class_server(work: Path, processes: int | None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A fresh class server on a free loopback port; yields (URL, supervisor process)."""
    port = free_ports(1)[0]
    env = {
        **os.environ,
        "PORT": str(port),
        "CNNLAB_SERVE_ADDRESS": "127.0.0.1",
        "CNNLAB_DATA_DIR": str(work / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    if processes:
        env["CNNLAB_WEB_PROCESSES"] = str(processes)
    work.mkdir(parents=True, exist_ok=True)
    with (work / "supervisor.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.serving.supervisor"], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        # Ready: the health check says ok and the supervisor has said so (after nginx's reload).
        while _health(url) != 200 or "Serving on" not in (work / "supervisor.log").read_text():
            if proc.poll() is not None or time.monotonic() - started > 600:
                raise RuntimeError((work / "supervisor.log").read_text())
            time.sleep(0.25)
        print(f"  server ready (warm) {time.monotonic() - started:.1f} s after start", flush=True)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def run_counts(work: Path) -> str:
    """Training runs of the level by status, read from the shared runs store."""
    try:
        with contextlib.closing(sqlite3.connect(work / "data" / "runs.sqlite3")) as db:
            rows = db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
    except sqlite3.Error:
        return "none"
    return ", ".join(f"{status} {count}" for status, count in sorted(rows)) or "none"


# -- students -----------------------------------------------------------------------------------
def think(s: StreamlitSession, seconds: float, page: str, tally: Tally) -> None:
    """Wait ``seconds`` like a browser left open: rerun ``run_every`` fragments when due (the
    Train page's live panel while a run trains, a playing animation)."""
    end = time.monotonic() + seconds
    due = {f: time.monotonic() + interval for f, interval in s.auto_reruns.items()}
    while (now := time.monotonic()) < end:
        for fragment_id in [f for f, at in due.items() if at <= now]:
            if fragment_id in s.auto_reruns:
                result = s.auto_rerun(fragment_id)
                tally.add(f"{page or HOME} (auto rerun)", result.seconds, result.exceptions)
            due.pop(fragment_id)
        for fragment_id, interval in s.auto_reruns.items():
            due.setdefault(fragment_id, time.monotonic() + interval)
        time.sleep(max(0.0, min([end, *due.values()]) - time.monotonic()))


def ws_student(url: str, stop_at: float, seed: int, train: bool, tally: Tally) -> None:
    """A simulated student: home, maybe Train, then pages and widget changes until ``stop_at``."""
    rng = random.Random(seed)
    try:
        with StreamlitSession(url, timeout=180) as s:
            result = s.run_page("")
            tally.add(SESSION_START, result.seconds, result.exceptions)
            pages = [p.url_path for p in s.pages if p.url_path]
            current = ""
            if train and "train" in pages:
                think(s, rng.uniform(*THINK_S), current, tally)
                result = s.run_page("train")
                tally.add("train", result.seconds, result.exceptions)
                current = "train"
                with contextlib.suppress(LookupError):  # disabled: the queue refused it
                    result = s.click("Train")
                    tally.add("train (press Train)", result.seconds, result.exceptions)
            while True:
                pause = rng.uniform(*THINK_S)
                if time.monotonic() + pause > stop_at:
                    return
                think(s, pause, current, tally)
                # Not the data-set choice: another data set is a download, and this is loopback.
                widgets = [w for w in s.widgets() if not w.id.endswith(SKIP_KEYS)]
                if widgets and rng.random() < 0.5:
                    widget = rng.choice(widgets)
                    result = s.change_widget(widget)
                    kind = "fragment change" if widget.fragment_id else "change"
                    tally.add(f"{current or HOME} ({kind})", result.seconds, result.exceptions)
                else:
                    current = rng.choice(["", *pages])
                    result = s.run_page(current)
                    tally.add(current or HOME, result.seconds, result.exceptions)
    except Exception as exc:  # a student's failure is a result, not a crash of the benchmark
        tally.error(f"ws student {seed}: {exc!r}")


def baseline_student(url: str, rounds: int, seed: int, tally: Tally) -> None:
    """One student alone: every page ``rounds`` times, with a widget change of each kind."""
    rng = random.Random(seed)
    try:
        with StreamlitSession(url, timeout=180) as s:
            result = s.run_page("")
            tally.add(SESSION_START, result.seconds, result.exceptions)
            pages = ["", *(p.url_path for p in s.pages if p.url_path)]
            for _ in range(rounds):
                for page in pages:
                    time.sleep(0.5)
                    result = s.run_page(page)
                    tally.add(page or HOME, result.seconds, result.exceptions)
                    for in_fragment in (True, False):
                        widgets = [
                            w
                            for w in s.widgets()
                            if bool(w.fragment_id) == in_fragment and not w.id.endswith(SKIP_KEYS)
                        ]
                        if not widgets:
                            continue
                        time.sleep(0.5)
                        result = s.change_widget(rng.choice(widgets))
                        kind = "fragment change" if in_fragment else "change"
                        tally.add(f"{page or HOME} ({kind})", result.seconds, result.exceptions)
    except Exception as exc:
        tally.error(f"baseline student: {exc!r}")


def press_train_alone(url: str, tally: Tally) -> None:
    """One student alone opens the Train page and presses Train (the baseline of that click)."""
    try:
        with StreamlitSession(url, timeout=180) as s:
            s.run_page("")
            s.run_page("train")
            result = s.click("Train")
            tally.add("train (press Train)", result.seconds, result.exceptions)
            think(s, 8.0, "train", tally)  # watch the live panel for a while
    except Exception as exc:
        tally.error(f"baseline Train press: {exc!r}")


def browser_student(url: str, stop_at: float, seed: int, tally: Tally) -> None:
    """A real Chromium student: opens the app, then navigates with the sidebar until stop_at."""
    from conftest import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright
    from streamlit_page import goto, wait_until_idle

    rng = random.Random(seed)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            goto(page, url, "")
            links = page.locator(".st-key-app_nav a")  # ui.navigation.sidebar_links
            links.last.wait_for()
            # A link's text is its icon's ligature, then the page title.
            names = [links.nth(i).inner_text().split("\n")[-1] for i in range(links.count())]
            while True:
                think = rng.uniform(*THINK_S)
                if time.monotonic() + think > stop_at:
                    break
                time.sleep(think)
                index = rng.randrange(len(names))
                name = names[index]
                started = time.perf_counter()
                links.nth(index).click()
                wait_until_idle(page, timeout=180_000)
                blocks = page.locator("[data-testid=stException]")
                shown = [blocks.nth(i).inner_text()[:200] for i in range(blocks.count())]
                tally.add(f"browser: {name}", time.perf_counter() - started, shown)
            browser.close()
    except Exception as exc:
        tally.error(f"browser student {seed}: {exc!r}")


def run_level(
    url: str, students: int, browsers: int, duration: float, train_share: float, seed: int
) -> Tally:
    """``students`` simulated students (``browsers`` of them in Chromium) for ``duration`` s."""
    tally = Tally()
    stop_at = time.monotonic() + duration
    threads = []
    for i in range(students):
        if i < browsers:
            target, args = browser_student, (url, stop_at, seed + i, tally)
        else:
            train = students > 1 and i < browsers + round(train_share * students)
            target, args = ws_student, (url, stop_at, seed + i, train, tally)
        threads.append(threading.Thread(target=target, args=args, daemon=True))
        threads[-1].start()
        time.sleep(min(0.1, duration / 20 / max(students, 1)))  # they arrive within seconds
    for thread in threads:
        thread.join(duration + 300)
    return tally


# -- report -------------------------------------------------------------------------------------
def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def _base_for(series: str, baseline: dict[str, list[float]]) -> list[float] | None:
    if series in baseline:
        return baseline[series]
    return baseline.get("browser (all)") if series.startswith("browser: ") else None


def clicks(series: dict[str, list[float]]) -> list[float]:
    """The websocket students' own actions (page visits, widget changes, Train presses), not
    the timer-driven auto reruns, whose share depends on how many runs were training."""
    return [
        s
        for name, values in series.items()
        if not name.startswith("browser") and not name.endswith("(auto rerun)")
        for s in values
    ]


def report(level: int, tally: Tally, baseline: dict[str, list[float]], memory_mb: float) -> None:
    """Print one level's table: per series and overall, seconds and × one student."""
    series = tally.by_series()
    ws_all = clicks(series)
    browser_all = [s for name, v in series.items() if name.startswith("browser") for s in v]
    print(f"\n== {level} student(s): {len(tally.samples)} timed actions, server {memory_mb:.0f} MB")
    print(f"{'series':42} {'n':>4} {'median':>8} {'p95':>8} {'median×':>8} {'p95×':>6}")
    rows = sorted(series.items())
    rows += [("all clicks (websocket students)", ws_all)]
    if browser_all:
        rows += [("all (browser students)", browser_all)]
    for name, values in rows:
        if not values:
            continue
        base = (
            baseline.get("ws (all)")
            if name.startswith("all clicks")
            else baseline.get("browser (all)")
            if name.startswith("all (browser")
            else _base_for(name, baseline)
        )
        med, top = statistics.median(values), p95(values)
        ratios = f"{med / statistics.median(base):7.1f}× {top / p95(base):5.1f}×" if base else "  -"
        print(f"{name[:42]:42} {len(values):4d} {med:7.3f}s {top:7.3f}s {ratios}")
    print(f"errors: {len(tally.errors)}; exceptions shown: {len(tally.exceptions)}")
    for text in (tally.errors + tally.exceptions)[:10]:
        print(f"  {text[:300]}")


# -- soak ---------------------------------------------------------------------------------------
def soak(url: str, root: int, count: int, concurrency: int, settle: float, hold: int) -> None:
    """Open and close ``count`` sessions; print memory before/after and MB per open session."""
    rng = random.Random(7)
    tally = Tally()

    def visit(n: int) -> None:
        for i in range(n):
            try:
                with StreamlitSession(url, timeout=180) as s:
                    s.run_page("")
                    page = rng.choice([p.url_path for p in s.pages])
                    result = s.run_page(page)
                    tally.add(page or HOME, result.seconds, result.exceptions)
            except Exception as exc:
                tally.error(f"soak session {i}: {exc!r}")

    def wave(total: int) -> None:
        share = [total // concurrency + (i < total % concurrency) for i in range(concurrency)]
        threads = [threading.Thread(target=visit, args=(n,)) for n in share if n]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def settled() -> float:
        time.sleep(settle)
        wave(1)  # touching the session store drops the expired closed sessions
        return tree_rss_mb(root)

    wave(min(20, count))  # every page has run in sessions before "before"
    before = settled()
    held = []
    for _ in range(hold):
        session = StreamlitSession(url, timeout=180).open()
        session.run_page(rng.choice(["", *(p.url_path for p in session.pages)]))
        held.append(session)
    with_open = tree_rss_mb(root)
    for session in held:
        session.close()
    started = time.monotonic()
    wave(count)
    elapsed = time.monotonic() - started
    after = settled()
    change = (after - before) / before * 100
    verdict = "within" if abs(change) <= 10 else "NOT within"
    print(f"\n== soak: {count} sessions opened and closed in {elapsed:.0f} s")
    print(f"memory before {before:.0f} MB, after {after:.0f} MB: {change:+.1f} % ({verdict} 10 %)")
    if hold:
        per = (with_open - before) / hold
        print(f"{hold} sessions open at once: {with_open:.0f} MB, {per:.1f} MB per session")
    print(f"errors: {len(tally.errors)}; exceptions shown: {len(tally.exceptions)}")
    for text in (tally.errors + tally.exceptions)[:10]:
        print(f"  {text[:300]}")


def main() -> int:
    """Run the levels, then the soak, each on a fresh server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,30,60,100", help="students per level")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per level")
    parser.add_argument("--browsers", type=int, default=2, help="Chromium students per level")
    parser.add_argument("--train-share", type=float, default=0.3, help="share pressing Train")
    parser.add_argument("--processes", type=int, default=0, help="CNNLAB_WEB_PROCESSES")
    parser.add_argument("--max-students", type=int, default=150)
    parser.add_argument("--soak", type=int, default=500, help="sessions (0: no soak)")
    parser.add_argument("--soak-concurrency", type=int, default=20)
    parser.add_argument("--soak-settle", type=float, default=130.0)
    parser.add_argument("--hold", type=int, default=30, help="sessions held open at once")
    parser.add_argument("--baseline-rounds", type=int, default=5, help="one student's rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    if max(levels) > args.max_students:
        parser.error(f"at most {args.max_students} students (--max-students)")

    baseline: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        for level in levels:
            work = Path(tmp) / f"level-{level}"
            print(f"\nlevel {level}: starting a fresh class server", flush=True)
            with class_server(work, args.processes or None) as (url, proc):
                if level == 1:
                    tally = Tally()
                    baseline_student(url, args.baseline_rounds, args.seed, tally)
                    if args.browsers:
                        alone = run_level(url, 1, 1, args.duration / 2, 0.0, args.seed + 1)
                        tally.samples += alone.samples
                        tally.errors += alone.errors
                        tally.exceptions += alone.exceptions
                    press_train_alone(url, tally)
                    baseline = tally.by_series()
                    baseline["ws (all)"] = clicks(baseline)
                    baseline["browser (all)"] = [
                        s for n, v in baseline.items() if n.startswith("browser: ") for s in v
                    ]
                else:
                    tally = run_level(
                        url, level, args.browsers, args.duration, args.train_share, args.seed
                    )
                report(level, tally, baseline, tree_rss_mb(proc.pid))
                print(f"training runs: {run_counts(work)}")
        if args.soak:
            print("\nsoak: starting a fresh class server", flush=True)
            with class_server(Path(tmp) / "soak", args.processes or None) as (url, proc):
                soak(url, proc.pid, args.soak, args.soak_concurrency, args.soak_settle, args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())

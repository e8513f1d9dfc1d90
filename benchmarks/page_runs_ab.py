"""Server time of every page, this checkout against another revision, measured side by side.

Two ``streamlit run app.py`` servers, one from a throwaway ``git worktree`` of ``--base`` and one
from this checkout (both warmed up as ``scripts/serve.sh`` does), are driven over their
websockets by the browser-less client (``scripts/serving/st_ws.py``), one session each. Every
round runs each page once on one server, then on the other, so both see the same machine load;
per page it prints the median full run and the median change of the page's first fragment
widget (as ``page_runs.py`` measures them) for both, and the ratio this / base. On a shared or
noisy machine the ratio is the number to quote, not the milliseconds.

Run: ``.venv/bin/python benchmarks/page_runs_ab.py --base main [--repeat 9] [--pages a,b]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.serving.st_ws import StreamlitSession  # noqa: E402
from scripts.serving.supervisor import app_command, free_ports, stop_group  # noqa: E402
from scripts.serving.warmup import wait_healthy, warm  # noqa: E402


@contextlib.contextmanager
def _worktree(revision: str, where: Path) -> Iterator[Path]:
    """A detached checkout of ``revision`` at ``where``, removed afterwards."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), revision],
        check=True,
    )
    try:
        yield where
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False
        )


@contextlib.contextmanager
def warmed_server(
    tree: Path, data: Path, settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``streamlit run app.py`` of ``tree`` with its own data directory and the environment's
    ``settings``, its pages warmed; yields its URL (also used by training_contention.py)."""
    data.mkdir(parents=True, exist_ok=True)
    port = free_ports(1)[0]
    env = {**os.environ, **(settings or {}), "CNNLAB_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    with (data / "streamlit.log").open("ab") as log:
        proc = subprocess.Popen(
            app_command(port), cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, 240)
        warm(url)
        yield url
    finally:
        stop_group(proc)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) * 1000 if values else None


def measure(urls: list[str], pages: list[str], repeat: int) -> dict[str, list[list[float]]]:
    """Per page and server: full-run seconds and fragment-change seconds, interleaved."""
    times: dict[str, list[list[float]]] = {}
    sessions = [StreamlitSession(url).open() for url in urls]
    try:
        for session in sessions:
            session.run_page("")
        for round_ in range(repeat + 1):  # the first round warms each session up
            for page in pages:
                row = times.setdefault(page, [[] for _ in range(2 * len(urls))])
                for i, session in enumerate(sessions):
                    result = session.run_page(page)
                    for exc in result.exceptions:
                        print(f"exception on {page}: {exc}")
                    widget = next((w for w in result.widgets if w.fragment_id), None)
                    change = session.change_widget(widget) if widget else None
                    if round_:
                        row[2 * i].append(result.seconds)
                        if change is not None:
                            row[2 * i + 1].append(change.seconds)
    finally:
        for session in sessions:
            session.close()
    return times


def main() -> int:
    """Measure both revisions and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="revision to compare with (git)")
    parser.add_argument("--repeat", type=int, default=9, help="rounds per median")
    parser.add_argument(
        "--pages", default="", help="comma-separated url paths, home for Home (default: all)"
    )
    args = parser.parse_args()
    from ui.navigation import PAGES

    wanted = [p.strip() for p in args.pages.split(",") if p.strip()]
    pages = [p if p != "home" else "" for p in wanted] or ["", *(p.url_path for p in PAGES)]
    with tempfile.TemporaryDirectory(prefix="page-runs-ab-") as tmp:
        work = Path(tmp)
        with (
            _worktree(args.base, work / "base") as base,
            warmed_server(base, work / "base-data") as base_url,
            warmed_server(ROOT, work / "this-data") as this_url,
        ):
            times = measure([base_url, this_url], pages, args.repeat)
    print(f"page_runs_ab: median of {args.repeat} interleaved rounds, ms (base = {args.base})")
    print(f"{'page':18} {'full: base':>11} {'this':>7} {'ratio':>6}  {'fragment: base':>15} "
          f"{'this':>7} {'ratio':>6}")  # fmt: skip
    for page, (full_a, frag_a, full_b, frag_b) in times.items():
        a, b = _median(full_a), _median(full_b)
        line = f"{page or 'home':18} {a:11.1f} {b:7.1f} {b / a:6.2f}"
        fa, fb = _median(frag_a), _median(frag_b)
        if fa is not None and fb is not None:
            line += f"  {fa:15.1f} {fb:7.1f} {fb / fa:6.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Warm a freshly started app process: run every page once, the way the first student would.

Why a client and not imports at launch: the first visit of a page pays for more than imports
(Streamlit compiling the page, the shared ``st.cache_resource`` entries a page fills on its first
run, the training scheduler the Train page starts); only really running each page pays all of it.
Measured under load on a fresh server, first visits were 0.5–6 s per page with no warm-up, still
0.4–2.3 s after importing every module the pages import, and 0.05–0.4 s (a page's usual time)
after this warm-up.

One browser-less session (:mod:`scripts.serving.st_ws`) opens the home page, learns the other pages
from the navigation, and runs each. With ``widgets=True`` (what ``scripts/serve.sh`` does) it also
moves every widget of every page one step and back, so the shared caches hold what a class's first
moves ask for (the first change of a kernel or pooling type was 3–10× its later cost). ``python -m
scripts.serving.warmup URL`` does it against a running server."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from scripts.serving.st_ws import StreamlitSession


@dataclass
class WarmupReport:
    """Seconds per page of the warm-up run, widget changes made on each, and any exception a
    page showed."""

    seconds: dict[str, float] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    exceptions: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: every page and its warm-up time."""
        pages = ", ".join(f"{name or 'home'} {s:.1f} s" for name, s in self.seconds.items())
        return f"warmed {len(self.seconds)} pages in {sum(self.seconds.values()):.1f} s ({pages})"


def is_healthy(base_url: str) -> bool:
    """True when ``base_url/_stcore/health`` answers ok now."""
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=5) as response:
            return response.read() == b"ok"
    except OSError:
        return False


def wait_healthy(base_url: str, timeout: float = 120.0) -> None:
    """Block until ``base_url/_stcore/health`` answers ok, or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    while not is_healthy(base_url):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base_url} did not answer its health check within {timeout} s")
        time.sleep(0.2)


# Widgets the warm-up leaves alone: choosing another data set downloads it.
SKIP_KEYS = ("train.data.name",)


def warm(
    base_url: str,
    timeout: float = 300.0,
    widgets: bool = False,
    pages: Collection[str] | None = None,
) -> WarmupReport:
    """Run the home page and then every page of the navigation once, in one session.

    With ``widgets``, also move each widget of each page one step and back after its run.
    ``pages`` (url paths, "" for home): only those, e.g. the pages of today's lesson.
    """
    report = WarmupReport()
    with StreamlitSession(base_url, timeout=timeout) as session:
        session.run_page("")
        for path in ["", *(p.url_path for p in session.pages if p.url_path)]:
            if pages is not None and path not in pages:
                continue
            result = session.run_page(path)
            seconds, errors, changes = result.seconds, list(result.exceptions), 0
            for widget in result.widgets if widgets else []:
                shown = {w.id for w in session.widgets()}
                if widget.id.endswith(SKIP_KEYS) or widget.id not in shown:
                    continue  # skipped, or gone since an earlier change
                for _ in ("step", "back"):
                    change = session.change_widget(widget)
                    seconds += change.seconds
                    errors += change.exceptions
                    changes += 1
            report.seconds[path] = seconds
            report.changes[path] = changes
            if errors:
                report.exceptions[path] = sorted(set(errors))
    return report


def main(argv: list[str] | None = None) -> int:
    """Wait for a running server, warm it, and print what each page cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the app's address, e.g. http://127.0.0.1:8501")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--marker", type=Path, help="file to create once warm (health checks)")
    parser.add_argument("--widgets", action="store_true", help="also move every widget once")
    parser.add_argument(
        "--pages", help="only these pages, by their address: e.g. pooling,train (home: '')"
    )
    args = parser.parse_args(argv)
    pages = None if args.pages is None else [p.strip() for p in args.pages.split(",")]
    try:
        wait_healthy(args.url, args.timeout)
        report = warm(args.url, args.timeout, widgets=args.widgets, pages=pages)
    except (OSError, TimeoutError) as exc:  # the server went away or never came
        print(f"warm-up of {args.url} failed: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    for page, errors in report.exceptions.items():
        print(f"warning: page {page or 'home'!r} raised during warm-up: {errors}", file=sys.stderr)
    if args.marker is not None:
        args.marker.write_text("warm\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

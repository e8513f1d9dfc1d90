"""Warm a freshly started app process: run every page once, the way the first student would.

Why a client and not imports at launch: the first visit of a page pays for more than imports
(Streamlit compiling the page, the shared ``st.cache_resource`` entries a page fills on its first
run, the training scheduler the Train page starts); only really running each page pays all of it.
One browser-less session (:mod:`serving.st_ws`) opens the home page, learns the other pages from
the navigation, and runs each. ``python -m serving.warmup URL`` does it against a running server.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from serving.st_ws import StreamlitSession


@dataclass
class WarmupReport:
    """Seconds per page of the warm-up run, and any exception a page showed."""

    seconds: dict[str, float] = field(default_factory=dict)
    exceptions: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: every page and its warm-up time."""
        pages = ", ".join(f"{name or 'home'} {s:.1f} s" for name, s in self.seconds.items())
        return f"warmed {len(self.seconds)} pages in {sum(self.seconds.values()):.1f} s ({pages})"


def wait_healthy(base_url: str, timeout: float = 120.0) -> None:
    """Block until ``base_url/_stcore/health`` answers ok, or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=5) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base_url} did not answer its health check within {timeout} s")
        time.sleep(0.2)


def warm(base_url: str, timeout: float = 300.0) -> WarmupReport:
    """Run the home page and then every page of the navigation once, in one session."""
    report = WarmupReport()
    with StreamlitSession(base_url, timeout=timeout) as session:
        home = session.run_page("")
        report.seconds[""] = home.seconds
        for page in session.pages:
            if not page.url_path:
                continue
            result = session.run_page(page.url_path)
            report.seconds[page.url_path] = result.seconds
            if result.exceptions:
                report.exceptions[page.url_path] = result.exceptions
        if home.exceptions:
            report.exceptions[""] = home.exceptions
    return report


def main(argv: list[str] | None = None) -> int:
    """Wait for a running server, warm it, and print what each page cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the app's address, e.g. http://127.0.0.1:8501")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--marker", type=Path, help="file to create once warm (health checks)")
    args = parser.parse_args(argv)
    try:
        wait_healthy(args.url, args.timeout)
        report = warm(args.url, args.timeout)
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

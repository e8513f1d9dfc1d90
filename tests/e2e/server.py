"""Start and stop a real ``streamlit run app.py`` server for the browser tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within {timeout} s")


@contextlib.contextmanager
def streamlit_server(workdir: Path, script: str = "app.py") -> Iterator[str]:
    """Run ``streamlit run SCRIPT`` on a free port, data and log under ``workdir``; yield its URL.

    The server gets its own process group, so stopping it by pid also stops any worker process
    it started.
    """
    port = _free_port()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    log = (workdir / "streamlit.log").open("wb")
    env = {**os.environ, "CNNLAB_DATA_DIR": str(workdir / "data"), "PYTHONUNBUFFERED": "1"}
    # No worker started ahead on each visit of the Train page (~4 s of CPU each; most browser
    # tests never train, and the class server in test_serve.py keeps the default).
    env["CNNLAB_WARM_WORKER"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            os.killpg(proc.pid, sig)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        log.close()

"""Serve a class: several Streamlit processes behind nginx on one port, in the foreground.

``scripts/serve.sh`` installs what is needed and runs ``python -m scripts.serving.supervisor``. Why
several processes: one Streamlit process runs every session's script under one GIL, so it cannot
use a second core; a class needs them all. Sessions stay on the process that owns them (see
:mod:`scripts.serving.nginx`); all processes share one data directory, so runs, uploads and the
training queue are the same whichever process a learner lands on (each process's scheduler claims
queued runs from the shared store in a transaction, so the server-wide cap holds).

Order at start: app processes on free loopback ports, nginx on ``PORT`` (its health check says
503 "warming up"), each process warmed by running every page once and moving every widget one
step and back (:mod:`scripts.serving.warmup`; ``CNNLAB_WARM_WIDGETS=0``: pages only), then
nginx reloaded with the configuration whose health check asks the app processes. Any child that
dies stops the whole server (a half-served class is worse than a restart); SIGINT/SIGTERM stop
every process it started, the training workers with their app process (each app runs in its own
process group).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cnnlab.runs import default_data_dir
from scripts.serving import nginx
from scripts.serving.warmup import is_healthy, warm

ROOT = Path(__file__).resolve().parents[2]


class Stop(Exception):
    """Raised in the main thread by SIGINT/SIGTERM."""


@dataclass(frozen=True)
class ServeConfig:
    """The server's settings, from the environment (see README, "Serve a class")."""

    port: int
    address: str
    processes: int
    data_dir: Path
    secure_cookies: bool
    warm_widgets: bool  # the warm-up also moves every widget one step and back

    @classmethod
    def from_env(cls) -> ServeConfig:
        """``PORT``, ``CNNLAB_SERVE_ADDRESS``, ``CNNLAB_WEB_PROCESSES``, ``CNNLAB_DATA_DIR``,
        ``CNNLAB_SECURE_COOKIES``, ``CNNLAB_WARM_WIDGETS``."""
        processes = os.environ.get("CNNLAB_WEB_PROCESSES", "").strip()
        if processes and not (processes.isdigit() and int(processes) >= 1):
            raise ValueError(f"CNNLAB_WEB_PROCESSES={processes!r} is not a whole number ≥ 1.")
        return cls(
            port=int(os.environ.get("PORT", "8501")),
            address=os.environ.get("CNNLAB_SERVE_ADDRESS", "0.0.0.0"),
            processes=int(processes) if processes else os.cpu_count() or 1,
            data_dir=default_data_dir(),
            secure_cookies=os.environ.get("CNNLAB_SECURE_COOKIES", "") not in ("", "0"),
            warm_widgets=os.environ.get("CNNLAB_WARM_WIDGETS", "") != "0",
        )

    @property
    def state_dir(self) -> Path:
        """nginx's config, pid, logs, the app logs and the cookie secret."""
        return self.data_dir / "serve"


def cookie_secret(state_dir: Path) -> str:
    """The Streamlit ``server.cookieSecret`` every process shares, generated once and kept.

    Signed cookies (Streamlit's auth cookie) must validate whichever process answers.
    """
    path = state_dir / "cookie_secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held together so none is handed out twice)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_process(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start ``cmd`` in the repository root, output to ``log``, in its own process group."""
    # Own process group: stopping it by group also stops what it started (training workers).
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def children(pid: int) -> set[int]:
    """Pids of the live child processes of ``pid`` (from /proc)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":  # (state, ppid, ...)
                    found.add(int(proc.name))
    return found


def _check_port_free(address: str, port: int) -> None:
    """Raise now if ``address:port`` is taken (nginx would retry for seconds, then exit)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise RuntimeError(
                f"cannot serve on {address}:{port}: {exc.strerror}; set PORT to a free port"
            ) from None


def app_command(
    port: int, launcher: tuple[str, ...] = ("-m", "scripts.serving.streamlit_nodelay")
) -> list[str]:
    """``streamlit run app.py`` on a loopback ``port``, with TCP_NODELAY (see
    :mod:`scripts.serving.streamlit_nodelay`); ``launcher`` replaces its ``-m`` module."""
    return [
        sys.executable, *launcher, "run", "app.py", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--server.headless", "true",
    ]  # fmt: skip


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL what is left after ``grace`` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; members of its group (workers) may outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


class ClassServer:
    """The processes of one class server; use as a context manager (stops all on exit)."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.apps: list[subprocess.Popen] = []
        self.app_ports: list[int] = []
        self.nginx: subprocess.Popen | None = None
        self.front: nginx.FrontConfig | None = None

    def __enter__(self) -> ClassServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start_apps(self) -> None:
        """Start the app processes on free loopback ports, sharing data dir and cookie secret."""
        _check_port_free(self.cfg.address, self.cfg.port)  # before minutes of start-up, not after
        state = self.cfg.state_dir
        state.mkdir(parents=True, exist_ok=True)
        cores = os.cpu_count() or 1
        env = {
            **os.environ,
            "CNNLAB_DATA_DIR": str(self.cfg.data_dir),
            "STREAMLIT_SERVER_COOKIE_SECRET": cookie_secret(state),
            "PYTHONUNBUFFERED": "1",
        }
        # N processes on N cores: torch's pools in each must not each claim every core.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, str(max(1, cores // self.cfg.processes)))
        self.app_ports = free_ports(self.cfg.processes)
        for i, port in enumerate(self.app_ports):
            self.apps.append(start_process(app_command(port), state / f"app-{i}.log", env))

    def start_front(self) -> None:
        """Write nginx.conf under the data directory and start nginx on the class port."""
        state = self.cfg.state_dir
        self.front = nginx.FrontConfig(
            listen=f"{self.cfg.address}:{self.cfg.port}",
            app_ports=tuple(self.app_ports),
            state_dir=state,
            secure_cookies=self.cfg.secure_cookies,
        )
        nginx.write(self.front, warm=False)
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        cmd = [binary, "-c", str(self.front.conf_file), "-p", str(state), "-e",
               str(state / "nginx-error.log")]  # fmt: skip
        check = subprocess.run([*cmd, "-t", "-q"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected {self.front.conf_file}: {check.stderr.strip()}")
        _check_port_free(self.cfg.address, self.cfg.port)
        self.nginx = start_process(cmd, state / "nginx-stdout.log", dict(os.environ))

    def wait_apps(self, timeout: float = 180.0) -> None:
        """Wait until every app process answers its health check (or one has died)."""
        pending = {f"http://127.0.0.1:{port}" for port in self.app_ports}
        deadline = time.monotonic() + timeout
        while pending:
            self.check_alive()
            pending = {url for url in pending if not is_healthy(url)}
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"app processes did not answer within {timeout} s: {pending}")
            time.sleep(0.2)

    def warm_apps(self) -> None:
        """Warm every app process at once, then turn nginx's health check live."""
        urls = [f"http://127.0.0.1:{port}" for port in self.app_ports]
        pool = ThreadPoolExecutor(len(urls))
        try:
            reports = list(pool.map(lambda url: warm(url, widgets=self.cfg.warm_widgets), urls))
        except Exception as exc:  # a broken connection: name the process that died, if one did
            self.check_alive()
            raise RuntimeError(f"warming up the app processes failed: {exc!r}") from exc
        finally:
            # On a signal, do not wait here for warm-ups: stopping the apps ends them.
            pool.shutdown(wait=False, cancel_futures=True)
        for i, report in enumerate(reports):
            print(f"app {i}: {report.summary()}", flush=True)
            for page, errors in report.exceptions.items():
                print(f"warning: app {i}, page {page or 'home'!r}: {errors}", file=sys.stderr)
        # The health check goes live: write the warm configuration and reload nginx (SIGHUP).
        assert self.front is not None
        assert self.nginx is not None
        nginx.write(self.front, warm=True)
        old_workers = children(self.nginx.pid)
        self.nginx.send_signal(signal.SIGHUP)
        # Until the old workers have left, one of them may still answer "warming up": only then
        # is the server ready (and says so).
        deadline = time.monotonic() + 30
        while children(self.nginx.pid) & old_workers and time.monotonic() < deadline:
            time.sleep(0.05)

    def check_alive(self) -> None:
        """Raise ``RuntimeError`` naming the first child that has exited."""
        named = [(f"app {i}", p) for i, p in enumerate(self.apps)] + [("nginx", self.nginx)]
        for name, proc in named:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode} "
                    f"(logs in {self.cfg.state_dir}); stopping the class server"
                )

    def stop(self) -> None:
        """Stop nginx first (no new requests), then every app process and its workers."""
        if self.nginx is not None:
            stop_group(self.nginx, grace=5.0)
        for proc in self.apps:
            # An app waits up to 15 s for its training workers to checkpoint (cnnlab.jobs);
            # killing the group before that would lose a partial epoch.
            stop_group(proc, grace=20.0)
        self.apps, self.nginx = [], None


def _raise_stop(signum: int, frame: object) -> None:
    # A second Ctrl-C must not interrupt the clean-up the first one started.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def main() -> int:
    """Start the class server and keep it in the foreground until a signal or a child dies."""
    try:
        cfg = ServeConfig.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_stop)
    print(
        f"CNN Lab for a class: {cfg.processes} app processes, data in {cfg.data_dir}, "
        f"logs in {cfg.state_dir}",
        flush=True,
    )
    try:
        with ClassServer(cfg) as server:
            server.start_apps()
            server.start_front()
            server.wait_apps()
            server.warm_apps()
            print(f"Serving on http://{cfg.address}:{cfg.port} (health: ok)", flush=True)
            while True:
                server.check_alive()
                time.sleep(0.5)
    except Stop as stop:
        print(f"{stop}: stopped every process of the class server", flush=True)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

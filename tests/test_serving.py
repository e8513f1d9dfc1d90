"""The class server's parts without a browser: nginx configuration, settings, secrets, process
groups, and the websocket client's widget messages."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.proto.Checkbox_pb2 import Checkbox
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.Selectbox_pb2 import Selectbox
from streamlit.proto.Slider_pb2 import Slider

from cnnlab.runs import pid_alive
from scripts.serving import nginx
from scripts.serving.st_ws import Widget
from scripts.serving.supervisor import (
    ROOT,
    ClassServer,
    ServeConfig,
    cookie_secret,
    free_ports,
    start_process,
    stop_group,
)

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _front(tmp_path: Path, secure: bool = False) -> nginx.FrontConfig:
    return nginx.FrontConfig("127.0.0.1:18501", (18601, 18602), tmp_path, secure_cookies=secure)


@pytest.mark.parametrize(("warm", "secure"), [(False, False), (True, False), (True, True)])
def test_rendered_configuration_is_accepted_by_nginx(tmp_path, warm, secure):
    if NGINX is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("nginx is missing under CI=true (bash scripts/test.sh installs it)")
        pytest.skip("nginx is not installed")
    conf = nginx.write(_front(tmp_path, secure), warm=warm)
    check = subprocess.run(
        [NGINX, "-t", "-q", "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_health_check_is_answered_by_nginx_until_warm_then_by_the_apps(tmp_path):
    cold, warm = (nginx.render(_front(tmp_path), warm=w) for w in (False, True))
    health = "location = /_stcore/health {"
    assert 'return 503 "warming up\\n";' in cold.split(health)[1].split("}")[0]
    assert "proxy_pass http://cnnlab_app;" in warm.split(health)[1].split("}")[0]


def test_sessions_are_sticky_on_the_owner_cookie_and_both_apps_are_upstreams(tmp_path):
    conf = nginx.render(_front(tmp_path), warm=True)
    assert "hash $cnnlab_owner consistent;" in conf
    assert "server 127.0.0.1:18601" in conf
    assert "server 127.0.0.1:18602" in conf
    assert 'map $cookie_cnnlab_owner $cnnlab_owner {\n        "~^[0-9a-f]{32}$"' in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf


def test_owner_cookie_is_httponly_and_secure_only_when_asked(tmp_path):
    plain = nginx.render(_front(tmp_path), warm=True)
    secure = nginx.render(_front(tmp_path, secure=True), warm=True)
    assert 'SameSite=Strict; HttpOnly"' in plain
    assert 'SameSite=Strict; HttpOnly; Secure"' in secure


def test_csp_allows_exactly_the_inline_scripts_of_the_page():
    html = "<script>window.a = 1</script><script type=module src=x.js></script><script>b()</script>"
    hashes = nginx.inline_script_hashes(html)
    # echo -n 'window.a = 1' | openssl dgst -sha256 -binary | base64
    assert hashes[0] == "'sha256-Aif1QuaDxF56ZK3+IyoelKcjrWC+BWl5ZGfcO1AMmA4='"
    assert len(hashes) == 2
    csp = nginx.content_security_policy()
    assert "frame-ancestors 'self'" in csp
    assert "'unsafe-eval'" not in csp.replace("'wasm-unsafe-eval'", "")
    assert "script-src 'self' 'sha256-" in csp


def test_serve_config_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path))
    for name in ("PORT", "CNNLAB_WEB_PROCESSES", "CNNLAB_SECURE_COOKIES", "CNNLAB_SERVE_ADDRESS",
                 "CNNLAB_WARM_WIDGETS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    cfg = ServeConfig.from_env()
    assert (cfg.port, cfg.address, cfg.secure_cookies) == (8501, "0.0.0.0", False)
    assert cfg.warm_widgets
    assert cfg.processes == (os.cpu_count() or 1)
    assert cfg.state_dir == tmp_path.resolve() / "serve"
    monkeypatch.setenv("CNNLAB_WEB_PROCESSES", "3")
    monkeypatch.setenv("CNNLAB_SECURE_COOKIES", "1")
    assert (ServeConfig.from_env().processes, ServeConfig.from_env().secure_cookies) == (3, True)
    monkeypatch.setenv("CNNLAB_WARM_WIDGETS", "0")
    assert not ServeConfig.from_env().warm_widgets
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("CNNLAB_WEB_PROCESSES", bad)
        with pytest.raises(ValueError, match="CNNLAB_WEB_PROCESSES"):
            ServeConfig.from_env()


def test_cookie_secret_is_made_once_and_private(tmp_path):
    first = cookie_secret(tmp_path)
    assert len(first) == 64
    assert cookie_secret(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "cookie_secret").stat().st_mode) == 0o600


def test_stop_group_stops_the_children_of_a_process_too(tmp_path):
    # A parent that ignores SIGTERM and starts a child: both must be gone after stop_group.
    script = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(c.pid, flush=True); time.sleep(60)"
    )
    proc = start_process([sys.executable, "-c", script], tmp_path / "log", dict(os.environ))
    deadline = time.monotonic() + 30
    while not (tmp_path / "log").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int((tmp_path / "log").read_text().split()[0])
    stop_group(proc, grace=0.5)
    assert proc.poll() is not None
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_widget_messages_move_a_widget_one_step_and_back():
    box = Widget("checkbox", "c", "ReLU", "", Checkbox(id="c", default=False))
    assert box.state(True).bool_value is True
    assert box.state(False).bool_value is False
    slider = Slider(id="s", min=1, max=3, step=1, data_type=Slider.INT)
    slider.default.extend([3])
    moved = Widget("slider", "s", "Stride", "f1", slider).state(True)
    assert list(moved.double_array_value.data) == [1]  # past the end wraps to the minimum
    choice = Slider(id="t", type=Slider.SELECT_SLIDER, options=["1", "2", "4"], default=[2])
    assert list(Widget("slider", "t", "Size", "", choice).state(True).string_array_value.data) == [
        "1"
    ]
    number = NumberInput(id="n", default=2.0, step=0.5, has_max=True, max=2.0)
    assert Widget("number_input", "n", "Bias", "", number).state(True).double_value == 1.5
    select = Selectbox(id="k", default=1)
    select.options.extend(["Blur", "Sharpen", "Sobel"])
    assert Widget("selectbox", "k", "Kernel", "", select).state(True).string_value == "Sobel"
    assert Widget("selectbox", "k", "Kernel", "", select).state(False).string_value == "Sharpen"


def test_a_taken_port_is_reported_at_once(tmp_path):
    if NGINX is None:
        pytest.skip("nginx is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg = ServeConfig(taken.getsockname()[1], "127.0.0.1", 1, tmp_path, False, True)
        with ClassServer(cfg) as server:
            server.app_ports = [free_ports(1)[0]]
            with pytest.raises(RuntimeError, match=r"cannot serve on .*in use"):
                server.start_front()


_NODELAY_PROBE = """
import asyncio, socket, sys


def server_side_nodelay():
    # TCP_NODELAY of the accepted socket of an asyncio server whose listener has proto 0.
    async def main():
        accepted = asyncio.get_running_loop().create_future()

        def on_connect(reader, writer):
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, as Streamlit's
        listener.bind(("127.0.0.1", 0))
        server = await asyncio.start_server(on_connect, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        value = await asyncio.wait_for(accepted, 10)
        writer.close()
        server.close()
        return value

    return asyncio.run(main())


before = server_side_nodelay()
import scripts.serving.streamlit_nodelay  # patches asyncio
print(before, server_side_nodelay())
"""


def test_streamlit_nodelay_sets_tcp_nodelay_where_asyncio_would_not():
    # A fresh interpreter: the patch applies once per process, and a test session may already
    # run an event loop in this thread (Playwright's), where asyncio.run() is refused.
    out = subprocess.run(
        [sys.executable, "-c", _NODELAY_PROBE], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert out == ["0", "1"]  # off as Streamlit leaves it; on through streamlit_nodelay

"""The class server (``scripts/serve.sh``): two app processes behind nginx, through a browser.

One server for the module (started like serve.sh does, by ``python -m scripts.serving.supervisor``,
on a free port with a throw-away data directory). It checks: the health check turns ok only after
every process ran every page; nginx adds the security headers and the HttpOnly owner cookie; a
browser's page, websocket, upload and media requests all reach the one process that owns its session
(read off nginx's access log, which names the upstream of each request), for two browsers on two
different processes; no CSP violation on a page with an upload; every page as a class opens it
(no error, axe-core clean, nothing blocked by the CSP, fits a phone); and SIGTERM stops every
process it started."""

from __future__ import annotations

import io
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from streamlit_page import VIEWPORT, blank_tab, goto, screenshot, wait_until_idle

from scripts.serving.supervisor import free_ports
from ui.navigation import PAGES

# Minutes in all (two warmed app processes behind nginx, every page in a browser):
# started first (tests/conftest.py).
pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 2
# Collected in the page before any script of it runs: every CSP violation, with what it blocked.
CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@dataclass
class ClassServer:
    url: str
    proc: subprocess.Popen
    data_dir: Path
    log: Path
    first_ok_log: str  # the supervisor's output at the moment the health check first said ok
    statuses: list[int]  # health answers seen while starting

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "serve"

    def access_log(self) -> list[str]:
        return (self.state_dir / "nginx-access.log").read_text().splitlines()


def _health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture(scope="module")
def class_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClassServer]:
    if not (Path("/usr/sbin/nginx").exists() or subprocess.run(["which", "nginx"]).returncode == 0):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("nginx is missing under CI=true (bash scripts/test.sh installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    work = tmp_path_factory.mktemp("class-server")
    port = free_ports(1)[0]
    env = {
        **os.environ,
        "PORT": str(port),
        "CNNLAB_SERVE_ADDRESS": "127.0.0.1",
        "CNNLAB_WEB_PROCESSES": str(PROCESSES),
        "CNNLAB_DATA_DIR": str(work / "data"),
        "PYTHONUNBUFFERED": "1",
        # The warm-up's visit of the Train page would start a warm training worker in each app
        # process (~4 CPU-s each); nothing here trains.
        "CNNLAB_WARM_WORKER": "0",
        # Pages only: moving every widget of every page in both processes cost ~50 CPU-s of the
        # suite (tests/e2e/test_warmup.py moves one page's widgets on the plain test server).
        "CNNLAB_WARM_WIDGETS": "0",
    }
    log = work / "supervisor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.serving.supervisor"], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    statuses: list[int] = []
    first_ok_log = ""
    deadline = time.monotonic() + 240
    try:
        while True:
            status, body = _health(url)
            if status == 200:
                first_ok_log = first_ok_log or log.read_text()
                if "Serving on" in log.read_text():  # and nginx's reload is complete
                    break
            if status and status != 200:
                statuses.append(status)
                assert (status, body) == (503, "warming up\n")
            assert proc.poll() is None, f"the class server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"never healthy:\n{log.read_text()}"
            time.sleep(0.2)
        yield ClassServer(url, proc, work / "data", log, first_ok_log, statuses)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


def test_health_says_ok_only_once_every_process_ran_every_page(class_server):
    assert 503 in class_server.statuses, "the health check answered before warming started"
    warmed = re.findall(r"app (\d+): warmed (\d+) pages", class_server.first_ok_log)
    assert sorted(int(i) for i, _ in warmed) == list(range(PROCESSES))
    assert all(int(n) == len(PAGES) + 1 for _, n in warmed)  # every page and the home page
    assert "warning" not in class_server.first_ok_log  # no page raised while warming


def test_proxy_adds_security_headers_and_an_httponly_owner_cookie(class_server):
    with urllib.request.urlopen(class_server.url + "/") as response:
        headers = response.headers
        assert b'<div id="root">' in response.read()
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "frame-ancestors 'self'", "object-src 'none'"):
        assert directive in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    cookie = headers["Set-Cookie"]
    assert re.match(r"cnnlab_owner=[0-9a-f]{32}; Path=/;", cookie)
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # only with CNNLAB_SECURE_COOKIES=1 (TLS in front)
    assert headers["Server"] == "nginx"


def _upstream_of(server: ClassServer, owner: str) -> str:
    """The app process nginx routes ``owner`` to (a request with that cookie, then the log)."""
    request = urllib.request.Request(
        f"{server.url}/_stcore/host-config", headers={"Cookie": f"cnnlab_owner={owner}"}
    )
    with urllib.request.urlopen(request) as response:
        assert "Set-Cookie" not in response.headers  # a valid cookie is left alone
    # nginx writes the log line after it has answered: wait for it.
    deadline = time.monotonic() + 10
    while not (lines := [x for x in server.access_log() if f"owner={owner}" in x]):
        assert time.monotonic() < deadline, f"no access log line for {owner}"
        time.sleep(0.05)
    return re.search(r"upstream=(\S+)", lines[-1])[1]


def _owners_on_different_processes(server: ClassServer) -> list[str]:
    by_upstream: dict[str, str] = {}
    for _ in range(64):
        owner = secrets.token_hex(16)
        by_upstream.setdefault(_upstream_of(server, owner), owner)
        if len(by_upstream) == PROCESSES:
            return list(by_upstream.values())
    raise AssertionError(f"64 owners all hashed to {list(by_upstream)}")


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_each_browser_stays_on_its_process_for_websocket_upload_and_media(class_server, browser):
    owners = _owners_on_different_processes(class_server)
    convolution = next(p for p in PAGES if p.url_path == "convolution")
    for owner in owners:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        host = class_server.url.split("//")[1].split(":")[0]
        context.add_cookies([{"name": "cnnlab_owner", "value": owner, "domain": host, "path": "/"}])
        context.add_init_script(CSP_WATCH)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        goto(page, class_server.url, convolution.url_path)
        main = page.locator("[data-testid=stMain]")
        main.get_by_text("Upload", exact=True).click()
        wait_until_idle(page)
        page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(
            {"name": "red.png", "mimeType": "image/png", "buffer": _png()}
        )
        wait_until_idle(page)
        # The owning process read the upload: the page computes on a 32 × 48 input.
        expect(main.get_by_text("Input 1 × 32 × 48", exact=False)).to_be_visible()
        expect(page.locator("[data-testid=stException]")).to_have_count(0)
        expect(page.locator("[data-testid=stImage] img").first).to_be_visible()
        # The drawing canvas works under the CSP too.
        main.get_by_text("Draw", exact=True).click()
        wait_until_idle(page)
        expect(main.locator("canvas").first).to_be_visible()
        assert page.evaluate("window.__csp") == []
        assert errors == []
        # ui/owner.py left the valid owner cookie alone (it only sets one when there is none).
        kept = [c["value"] for c in context.cookies() if c["name"] == "cnnlab_owner"]
        assert kept == [owner]
        context.close()  # nginx logs a websocket when it closes

    deadline = time.monotonic() + 15  # each websocket's line comes once nginx saw it close
    while not all(
        any(f"owner={o}" in x and "GET /_stcore/stream " in x for x in class_server.access_log())
        for o in owners
    ):
        assert time.monotonic() < deadline, "a websocket never showed in the access log"
        time.sleep(0.1)
    upstreams = []
    for owner in owners:
        lines = [x for x in class_server.access_log() if f"owner={owner}" in x]
        kinds = {
            "websocket": [x for x in lines if "GET /_stcore/stream " in x],
            "upload": [x for x in lines if "PUT /_stcore/upload_file/" in x],
            "media": [x for x in lines if "GET /media/" in x],
        }
        for kind, found in kinds.items():
            assert found, f"no {kind} request of {owner} in the access log"
        # Every upload reached a process that took it; every media file was served (a browser
        # may revalidate an image it already has: 304), at least once in full.
        refused = [x for x in kinds["upload"] if not re.search(r'" (200|204) ', x)]
        refused += [x for x in kinds["media"] if not re.search(r'" (200|304) ', x)]
        assert not refused, refused
        assert any(re.search(r'" 200 ', x) for x in kinds["media"]), kinds["media"]
        used = {re.search(r"upstream=(\S+)", x)[1] for x in lines}
        assert len(used) == 1, f"{owner}'s requests went to {used}"
        upstreams.append(used.pop())
    assert len(set(upstreams)) == PROCESSES


@pytest.fixture(scope="module")
def watched_tab(browser) -> Iterator[Page]:
    """One tab for every page's check (a new tab costs seconds of CPU: see conftest's ``_tab``),
    with every CSP violation of each page it opens collected in ``window.__csp``."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(CSP_WATCH)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("spec", [None, *PAGES], ids=lambda s: s.url_path if s else "home")
def test_every_page_works_behind_the_proxy_for_every_reader(class_server, watched_tab, spec):
    """Every page, as a class opens it: it finishes running, shows no exception and no console
    error, has no serious accessibility violation (axe-core, navigation included), draws
    everything under the content security policy, is captured as a full-page screenshot, and
    fits a 390-pixel phone without content pushed off the side."""
    # One load per width, through the class server (the pages are warm there): the same checks
    # against the plain test server would load every page twice more.
    name, path = (spec.url_path, spec.url_path) if spec else ("home", "")
    page = blank_tab(watched_tab)  # a new browser: no owner cookie yet
    context = page.context
    errors: list[str] = []

    def on_console(message) -> None:
        if _app_error(message):
            errors.append(message.text)

    def on_error(error) -> None:
        errors.append(str(error))

    page.on("console", on_console)
    page.on("pageerror", on_error)
    goto(page, class_server.url, path)
    expect(page.locator("h1").first).to_be_visible()  # every page starts with a title
    screenshot(page, name)  # also waits for lazily loaded widgets and charts to draw
    # Only violations are gathered: every rule still runs, without the list of what passed
    # (about half of a scan's CPU time).
    violations = Axe().run(page, options={"resultTypes": ["violations"]}).response["violations"]
    serious = [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in violations
        if v["impact"] in {"serious", "critical"}
    ]
    assert not serious, serious
    # Plotly, Graphviz (WebAssembly), images, canvases: a blocked one would be a violation.
    assert page.evaluate("window.__csp") == []
    # A new browser got its owner cookie from nginx, out of scripts' reach, and kept it.
    owner = [c for c in context.cookies() if c["name"] == "cnnlab_owner"]
    assert len(owner) == 1
    assert owner[0]["httpOnly"]
    assert re.fullmatch(r"[0-9a-f]{32}", owner[0]["value"])
    # A phone loads the page at its own width (Streamlit's tables keep their width on a resize).
    page.set_viewport_size({"width": 390, "height": 844})
    goto(page, class_server.url, path)
    # Lazily loaded widgets (a metric, a radio) stand as narrow skeletons at first: until they
    # have drawn, nothing of theirs can stick out.
    page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton]')")
    try:
        # Charts and tables take their width after the script is idle: on a loaded machine, seconds.
        page.wait_for_function(f"() => ({CUT_OFF})().length === 0", timeout=30_000)
    except PlaywrightTimeout:
        raise AssertionError(f"cut off at 390 px: {page.evaluate(CUT_OFF)}") from None
    assert page.evaluate("window.__csp") == []
    page.remove_listener("console", on_console)
    page.remove_listener("pageerror", on_error)
    assert not errors, f"browser console errors: {errors}"


def _app_error(message) -> bool:
    # Opening a page URL directly makes the client probe /<page>/_stcore/health and
    # host-config, which 404 harmlessly; every other console error is a real one.
    return message.type == "error" and "/_stcore/" not in message.location.get("url", "")


# What sticks out past the right edge of a phone screen: the page itself scrolling sideways, or an
# element whose box ends past the edge with no scrolling box of its own around it (a formula or
# a table that scrolls inside its own box is fine; text clipped by its container is not).
CUT_OFF = """() => {
  const edge = window.innerWidth + 1, main = document.querySelector('[data-testid=stMain]');
  const out = [];
  if (document.scrollingElement.scrollWidth > edge) out.push('the page scrolls sideways');
  if (main.scrollWidth > edge) out.push('the main block scrolls sideways');
  for (const e of main.querySelectorAll('*')) {
    const box = e.getBoundingClientRect();
    if (box.right <= edge || box.width === 0 || e.tagName === 'INPUT') continue;
    if (e.closest('.katex-mathml')) continue;  // MathML for screen readers, never drawn
    let a = e.parentElement, scrolls = false;
    for (; a && a !== main; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if ((ox === 'auto' || ox === 'scroll') && a.getBoundingClientRect().right <= edge) {
        scrolls = true;
        break;
      }
    }
    if (!scrolls && e.parentElement.getBoundingClientRect().right <= edge)
      out.push(`${e.getAttribute('data-testid') || e.tagName} ends at ${Math.round(box.right)}: `
               + e.textContent.slice(0, 60));
  }
  return out;
}"""


def _processes_of(data_dir: Path, nginx_master: int) -> set[int]:
    """Pids of the apps and their workers (by their CNNLAB_DATA_DIR) and of nginx (by parent)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        parent = int(re.search(r"^PPid:\s+(\d+)", status, flags=re.M)[1])
        if f"CNNLAB_DATA_DIR={data_dir}".encode() in environ or nginx_master in (
            parent,
            int(proc.name),
        ):
            pids.add(int(proc.name))
    return pids


def test_sigterm_stops_every_process_it_started(class_server):
    master = int((class_server.state_dir / "nginx.pid").read_text())
    started = _processes_of(class_server.data_dir, master) - {class_server.proc.pid}
    # two apps, nginx's master and worker (and any training worker)
    assert len(started) >= PROCESSES + 2, started
    class_server.proc.send_signal(signal.SIGTERM)
    assert class_server.proc.wait(60) == 0, class_server.log.read_text()
    deadline = time.monotonic() + 10
    while (left := _processes_of(class_server.data_dir, master)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left after SIGTERM: {left}"
    assert _health(class_server.url)[0] == 0  # nothing listens any more

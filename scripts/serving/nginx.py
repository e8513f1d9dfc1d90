"""The nginx front of a class server: one port, sticky sessions, security headers.

Why nginx sets the owner cookie itself: open-source nginx has no ``sticky cookie``, but it can
route on a cookie it hands out. A browser without a valid ``cnnlab_owner`` cookie gets one on its
first response (the page's HTML), made from that request's ``$request_id`` (32 hex characters,
the format ``ui/owner.py`` accepts); from then on every request of that browser (the websocket,
its file uploads, its media) hashes to the same app process. The cookie is the learner's owner id
too, so it can be ``HttpOnly`` here (and ``Secure`` behind TLS): ``ui/owner.py`` reads it from
the websocket handshake and leaves a valid one alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import streamlit

OWNER_COOKIE = "cnnlab_owner"
# Streamlit's upload limit is 10 MB (.streamlit/config.toml); leave room for the form encoding.
MAX_BODY = "12m"


@dataclass(frozen=True)
class FrontConfig:
    """What the nginx front needs to know: where it listens, what it proxies, where it writes."""

    listen: str  # "0.0.0.0:8501"
    app_ports: tuple[int, ...]
    state_dir: Path  # config, pid file and logs live here
    secure_cookies: bool = False

    @property
    def pid_file(self) -> Path:
        """nginx's own pid file (not the system service's)."""
        return self.state_dir / "nginx.pid"

    @property
    def conf_file(self) -> Path:
        """Where the rendered configuration is written."""
        return self.state_dir / "nginx.conf"


def inline_script_hashes(index_html: str) -> list[str]:
    """CSP source expressions (``'sha256-…'``) allowing exactly the inline scripts of a page."""
    hashes = []
    for body in re.findall(r"<script>(.*?)</script>", index_html, flags=re.S):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        hashes.append(f"'sha256-{digest}'")
    return hashes


def content_security_policy() -> str:
    """A Content-Security-Policy the Streamlit frontend and this app's pages work under.

    Everything comes from this origin; the exceptions are the ones Streamlit needs: inline
    styles (its CSS-in-JS and Plotly write ``<style>`` and ``style=``), ``data:``/``blob:``
    images and fonts, WebAssembly compilation (Graphviz is rendered by a WASM build of dot) and
    the one inline script of its ``index.html``, allowed by its hash.
    """
    index = Path(streamlit.__file__).parent / "static" / "index.html"
    scripts = " ".join(["'self'", *inline_script_hashes(index.read_text()), "'wasm-unsafe-eval'"])
    directives = {
        "default-src": "'self'",
        "script-src": scripts,
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "media-src": "'self' data: blob:",
        "worker-src": "'self' blob:",
        "frame-src": "'self'",
        "frame-ancestors": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers() -> dict[str, str]:
    """The headers the front adds to every response."""
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        # frame-ancestors says the same to current browsers; this is for older ones.
        "X-Frame-Options": "SAMEORIGIN",
    }


def owner_cookie_attributes(secure: bool) -> str:
    """The attributes of the owner cookie nginx sets (a year, first-party only, not for JS)."""
    return "Path=/; Max-Age=31536000; SameSite=Strict; HttpOnly" + ("; Secure" if secure else "")


def write(cfg: FrontConfig, warm: bool) -> Path:
    """Create nginx's directories under ``cfg.state_dir`` and write its configuration there."""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (cfg.state_dir / "nginx-temp" / sub).mkdir(parents=True, exist_ok=True)
    cfg.conf_file.write_text(render(cfg, warm))
    return cfg.conf_file


def render(cfg: FrontConfig, warm: bool) -> str:
    """The whole nginx.conf for ``cfg``: foreground master, own pid/logs/temp dirs, one server.

    Until ``warm``, the health check answers 503 "warming up" from nginx itself; the supervisor
    then writes the warm configuration and reloads nginx. (Only nginx's master, which may run as
    root, reads files; its workers, which run as ``nobody``, need no access to the data dir.)
    """
    state = cfg.state_dir.resolve()
    temp = state / "nginx-temp"
    front = site(
        listen=cfg.listen,
        servers=[f"127.0.0.1:{port} max_fails=0" for port in cfg.app_ports],
        secure_cookies=cfg.secure_cookies,
        access_log=str(state / "nginx-access.log"),
        warm=warm,
    )
    return f"""# Written by scripts/serving/supervisor.py at start; edits are overwritten.
daemon off;
worker_processes 1;
pid {state / "nginx.pid"};
error_log {state / "nginx-error.log"} warn;

events {{
    worker_connections 4096;
}}

http {{
    client_body_temp_path {temp / "client_body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
{front}}}
"""


# Docker's embedded DNS server: it answers a compose service's name with all its replicas.
DOCKER_RESOLVER = "127.0.0.11"


def render_compose(app: str, listen: str, secure_cookies: bool) -> str:
    """The site file of ``deploy/compose.yaml``'s nginx (its image supplies the rest of nginx.conf).

    ``app`` (``host:port``) names every web replica at once; ``resolve`` (nginx ≥ 1.27.3) keeps
    the upstream following Docker's DNS, so a replica that is added, restarted or removed joins
    or leaves without reloading nginx. Health checks reach the apps: each web container is only
    healthy once warm (the image's warm-up marker), and nginx starts after they are.
    """
    block = site(
        listen=listen,
        servers=[f"{app} max_fails=0 resolve"],
        secure_cookies=secure_cookies,
        access_log="/dev/stdout",
        warm=True,
        upstream_zone=True,
    )
    return (
        "# Generated by `python -m scripts.serving.nginx` from the template of scripts/serve.sh;\n"
        "# tests/test_deploy.py fails when this file and the template differ.\n"
        f"resolver {DOCKER_RESOLVER} valid=10s ipv6=off;\n" + textwrap.dedent(block)
    )


def site(
    *,
    listen: str,
    servers: list[str],
    secure_cookies: bool,
    access_log: str,
    warm: bool,
    upstream_zone: bool = False,
) -> str:
    """The http-level part every front shares: owner cookie, sticky upstream, proxy, headers."""
    upstreams = "\n".join(f"        server {server};" for server in servers)
    # Servers that are re-resolved at run time live in shared memory.
    zone = "        zone cnnlab_app 64k;\n" if upstream_zone else ""
    # Behind TLS, Streamlit's own cookies (XSRF) get Secure too; it cannot know about the TLS.
    secure_upstream_cookies = (
        "        proxy_cookie_flags ~ secure;" if secure_cookies else "        # (plain HTTP)"
    )
    health = "proxy_pass http://cnnlab_app;" if warm else 'return 503 "warming up\\n";'
    headers = "\n".join(
        f'        add_header {name} "{value}" always;' for name, value in security_headers().items()
    )
    return f"""\
    # Which app process answered (upstream=) and for whom (owner=): stickiness is auditable.
    log_format cnnlab '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                      'upstream=$upstream_addr owner=$cnnlab_owner rt=$request_time';
    server_tokens off;
    default_type text/plain;
    client_max_body_size {MAX_BODY};

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        "" close;
    }}
    # A valid owner cookie routes the browser; without one, this request's id becomes it.
    map $cookie_{OWNER_COOKIE} $cnnlab_owner {{
        "~^[0-9a-f]{{32}}$" $cookie_{OWNER_COOKIE};
        default $request_id;
    }}
    map $cookie_{OWNER_COOKIE} $cnnlab_set_owner {{
        "~^[0-9a-f]{{32}}$" "";
        default "{OWNER_COOKIE}=$request_id; {owner_cookie_attributes(secure_cookies)}";
    }}

    upstream cnnlab_app {{
{zone}        hash $cnnlab_owner consistent;
{upstreams}
    }}

    server {{
        listen {listen};
        # In this server, not at http level: an including nginx.conf's own log stays out of it.
        access_log {access_log} cnnlab;
{headers}
        add_header Set-Cookie $cnnlab_set_owner;

        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        # A learner may read a page for an hour without touching it: keep the websocket open.
        proxy_read_timeout 1d;
        proxy_send_timeout 1d;
{secure_upstream_cookies}
        # Stream uploads and responses instead of spooling them to temp files.
        proxy_request_buffering off;
        proxy_max_temp_file_size 0;

        # Ready only once every app process is warm; then the answer (and the XSRF cookie the
        # browser needs) comes from this browser's own process.
        location = /_stcore/health {{
            {health}
        }}

        location / {{
            proxy_pass http://cnnlab_app;
        }}
    }}
"""


# The files deploy/compose.yaml mounts, by CNNLAB_SECURE_COOKIES (unset: plain HTTP).
COMPOSE_FILES = {"cnnlab.conf": False, "cnnlab-secure.conf": True}
COMPOSE_APP = "web:8501"
COMPOSE_LISTEN = "8080"  # the unprivileged nginx image cannot bind ports below 1024


def main() -> None:
    """Write deploy/nginx/*.conf from the template (run after changing this module)."""
    out = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
    out.mkdir(parents=True, exist_ok=True)
    for name, secure in COMPOSE_FILES.items():
        (out / name).write_text(render_compose(COMPOSE_APP, COMPOSE_LISTEN, secure))
        print(out / name)


if __name__ == "__main__":
    main()

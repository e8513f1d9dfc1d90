"""deploy/ without a Docker engine or a cluster: schemas, and the promises between the files.

The Kubernetes manifests are checked against the API schemas that ``kubernetes-validate`` bundles
(offline) for the oldest and newest versions we state; ``compose.yaml`` against the compose-spec
schema vendored in ``tests/schemas/`` (see its NOTICE.md). Then what no schema knows: every
variable set is one the code reads, probes ask the health endpoint and wait for the warm-up,
ports agree from the Dockerfile to nginx, commands name modules and flags that exist, the nginx
site is the one scripts/serve.sh renders and Debian's nginx accepts it, pods are hardened, and
worker resources follow the number of workers.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from scripts.serving import nginx

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# The oldest Kubernetes the manifests are stated to work with, and the newest schema bundled.
K8S_VERSIONS = ("1.31.0", "1.37.0")
HEALTH = "/_stcore/health"
NGINX_BIN = shutil.which("nginx") or (
    "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
)

# ---------------------------------------------------------------- loading


@functools.cache
def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every resource in deploy/k8s (the kustomization aside; parsed
    once: callers only read)."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    """The one resource of ``kind`` named ``name``."""
    found = [d for _, d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """(workload name, pod spec) of every Deployment and StatefulSet."""
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for _, d in k8s_documents()
        if d["kind"] in ("Deployment", "StatefulSet")
    ]


def app_containers() -> list[tuple[str, dict[str, Any]]]:
    """(workload, container) of every container running the CNN Lab image."""
    return [
        (name, c)
        for name, spec in pod_specs()
        for c in spec["containers"]
        if c["image"].startswith("cnnlab:")
    ]


def env_example() -> dict[str, str]:
    """Every variable deploy/env.example names (set or commented out), with its value."""
    found = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]*)=(\S*)", line)
        if match:
            found[match[1]] = match[2]
    return found


INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation (``${X}``, ``${X:-default}``, ``${X:?error}``,
    ``${X:+alternative}``), failing where compose would fail."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match[1], match[2] or "", match[3] or ""
        value = env.get(name, "")
        if op.endswith("+"):
            return arg if value else ""
        if op.endswith("?") and not value:
            raise KeyError(f"{name}: {arg}")
        return value or (arg if op.endswith("-") else "")

    return INTERPOLATION.sub(one, text)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """compose.yaml as ``docker compose config`` reads it, with ``env`` as deploy/.env."""
    secrets = {"POSTGRES_PASSWORD": "pw", "CNNLAB_COOKIE_SECRET": "ab" * 32}
    text = interpolate((DEPLOY / "compose.yaml").read_text(), env or secrets)
    return yaml.safe_load(text)


def compose_app_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the CNN Lab image."""
    services = compose()["services"]
    return {k: s for k, s in services.items() if str(s.get("image", "")).startswith("cnnlab:")}


def dockerfile_healthcheck() -> list[str]:
    """The exec form of the Dockerfile's HEALTHCHECK command."""
    text = (ROOT / "Dockerfile").read_text()
    return json.loads(re.search(r"HEALTHCHECK .*?\n\s+CMD (\[[^\n]*\])", text, re.S)[1])


def dockerfile_cmd() -> list[str]:
    """The exec form of the Dockerfile's CMD (the web server and its warm-up)."""
    return json.loads(re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)[1])


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_match_the_api_schemas(version):
    # Strict: an unknown or misspelt field (readOnlyRootFileSystem) is an error, not ignored.
    for name, doc in k8s_documents():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_kustomization_applies_every_manifest_but_the_example_secret():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "cnnlab"
    assert {d["metadata"].get("namespace", "cnnlab") for _, d in k8s_documents()} == {"cnnlab"}


def test_compose_file_matches_the_compose_spec_schema():
    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    raw = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for document in (raw, compose(), compose({**env_example(), **compose_secrets()})):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
        assert not errors, errors


def compose_secrets() -> dict[str, str]:
    return {"POSTGRES_PASSWORD": "pw", "CNNLAB_COOKIE_SECRET": "ab" * 32}


def test_compose_refuses_to_start_without_its_secrets_and_documents_every_variable():
    text = (DEPLOY / "compose.yaml").read_text()
    required = {m[1] for m in INTERPOLATION.finditer(text) if (m[2] or "").endswith("?")}
    assert required == {"POSTGRES_PASSWORD", "CNNLAB_COOKIE_SECRET"}
    for missing in required:
        with pytest.raises(KeyError, match=missing):
            compose({k: v for k, v in compose_secrets().items() if k != missing})
    documented = env_example()
    assert {m[1] for m in INTERPOLATION.finditer(text)} <= set(documented)
    assert {documented[name] for name in required} == {""}, "no default secret in env.example"
    assert "/deploy/.env" in (ROOT / ".gitignore").read_text().split()
    # compose builds from the repository root: deploy/.env (the secrets) must stay out of the
    # image that `COPY . .` makes.
    assert "deploy" in (ROOT / ".dockerignore").read_text().split()


# ---------------------------------------------------------------- names the code reads


def code_reads(name: str) -> bool:
    """True when the app's code reads environment variable ``name``."""
    if name.startswith("STREAMLIT_"):
        from streamlit import config

        return any(o.env_var == name for o in config._config_options_template.values())
    sources = [ROOT / "app.py", *ROOT.glob("cnnlab/*.py"), *ROOT.glob("ui/*.py")]
    sources += [*ROOT.glob("pages/*.py"), *ROOT.glob("scripts/**/*.py")]
    return any(f'"{name}"' in path.read_text() for path in sources)


def deployment_variables() -> set[str]:
    """Every variable compose and the manifests set in a CNN Lab container."""
    names = {n for s in compose_app_services().values() for n in s.get("environment", {})}
    for _, container in app_containers():
        names |= {e["name"] for e in container.get("env", [])}
        for source in container.get("envFrom", []):
            names |= set(k8s("ConfigMap", source["configMapRef"]["name"])["data"])
    return names


# Read by libraries, not by CNN Lab's code: name and reader.
LIBRARY_VARIABLES = {"OMP_NUM_THREADS": "torch's OpenMP pool"}


def test_every_variable_the_deployment_sets_is_one_the_code_reads():
    names = deployment_variables()
    assert {"CNNLAB_DATA_DIR", "STREAMLIT_SERVER_COOKIE_SECRET"} <= names
    unread = sorted(n for n in names - set(LIBRARY_VARIABLES) if not code_reads(n))
    assert not unread, f"set by deploy/ but read nowhere in the code: {unread}"


def test_web_runs_without_local_workers_and_every_app_container_has_the_database():
    web = compose()["services"]["web"]["environment"]
    assert web["CNNLAB_LOCAL_WORKERS"] == "0"
    (container,) = k8s("Deployment", "cnnlab-web")["spec"]["template"]["spec"]["containers"]
    assert {"name": "CNNLAB_LOCAL_WORKERS", "value": "0"} in container["env"]
    for service in compose_app_services().values():
        assert service["environment"]["CNNLAB_DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["CNNLAB_DATA_DIR"] == "/data"
        assert "data:/data" in service["volumes"]
    for name, c in app_containers():
        secret = next(e for e in c["env"] if e["name"] == "CNNLAB_DATABASE_URL")
        assert secret["valueFrom"]["secretKeyRef"] == {"name": "cnnlab", "key": "database-url"}
        assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"], name
    assert k8s("ConfigMap", "cnnlab-settings")["data"]["CNNLAB_DATA_DIR"] == "/data"
    assert re.search(r"^\s+CNNLAB_DATA_DIR=/data$", (ROOT / "Dockerfile").read_text(), re.M)
    assert 'VOLUME ["/data"]' in (ROOT / "Dockerfile").read_text()


def test_every_secret_key_used_is_in_the_example_secret():
    example = set(k8s("Secret", "cnnlab")["stringData"])
    used = set()
    for _, spec in pod_specs():
        for container in spec["containers"]:
            for e in container.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "cnnlab"
                    used.add(ref["key"])
    assert used == example


# ---------------------------------------------------------------- probes, ports, commands


def test_probes_ask_the_health_endpoint_and_startup_waits_for_the_warm_up():
    check = dockerfile_healthcheck()
    assert HEALTH in check[-1]
    assert "/tmp/cnnlab-warm" in check[-1]
    assert "--marker /tmp/cnnlab-warm" in dockerfile_cmd()[-1]  # the warm-up leaves it
    (web,) = k8s("Deployment", "cnnlab-web")["spec"]["template"]["spec"]["containers"]
    # The startup probe is the image's own check (absolute interpreter path, same code).
    startup = web["startupProbe"]["exec"]["command"]
    assert startup[0] == "/app/.venv/bin/python"
    assert startup[1:] == check[1:]
    budget = web["startupProbe"]["periodSeconds"] * web["startupProbe"]["failureThreshold"]
    assert budget >= 300, "the warm-up takes minutes on a loaded node"
    for probe in ("readinessProbe", "livenessProbe"):
        assert web[probe]["httpGet"] == {"path": HEALTH, "port": "http"}
    compose_check = compose()["services"]["web"]["healthcheck"]["test"]
    assert compose_check[0] == "CMD"
    assert compose_check[2:] == check[1:]
    nginx_check = compose()["services"]["nginx"]["healthcheck"]["test"]
    assert nginx_check[-1].endswith(f":{nginx.COMPOSE_LISTEN}{HEALTH}")


def test_ports_agree_from_the_image_to_the_proxies():
    docker = (ROOT / "Dockerfile").read_text()
    port = int(re.search(r"^EXPOSE (\d+)$", docker, re.M)[1])
    assert f"--server.port={port}" in dockerfile_cmd()[-1]
    assert f"localhost:{port}{HEALTH}" in dockerfile_healthcheck()[-1]
    (web,) = k8s("Deployment", "cnnlab-web")["spec"]["template"]["spec"]["containers"]
    assert web["ports"] == [{"name": "http", "containerPort": port}]
    service = k8s("Service", "cnnlab-web")
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    backend = k8s("Ingress", "cnnlab")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"] == {"name": "cnnlab-web", "port": {"name": "http"}}
    web_policy = k8s("NetworkPolicy", "cnnlab-web")["spec"]["ingress"][0]["ports"]
    assert web_policy == [{"port": port}]
    # compose: nginx's upstream is the web service on the image's port; its listen port is
    # the one published.
    host, upstream_port = nginx.COMPOSE_APP.split(":")
    assert host in compose()["services"]
    assert int(upstream_port) == port
    published = compose({**compose_secrets(), "PORT": "9000"})["services"]["nginx"]["ports"]
    assert published == [f"9000:{nginx.COMPOSE_LISTEN}"]
    assert compose()["services"]["nginx"]["ports"] == [f"8501:{nginx.COMPOSE_LISTEN}"]


def test_the_database_url_names_the_postgres_service_and_port():
    (pg,) = k8s("StatefulSet", "cnnlab-postgres")["spec"]["template"]["spec"]["containers"]
    assert pg["ports"] == [{"name": "postgres", "containerPort": 5432}]
    pg_service = k8s("Service", "cnnlab-postgres")["spec"]
    assert pg_service["ports"][0]["port"] == 5432
    assert k8s("NetworkPolicy", "cnnlab-postgres")["spec"]["ingress"][0]["ports"] == [
        {"port": 5432}
    ]
    url = k8s("Secret", "cnnlab")["stringData"]["database-url"]
    assert re.fullmatch(r"postgresql://cnnlab:[^@]+@cnnlab-postgres:5432/cnnlab", url)
    services = compose()["services"]
    url = services["web"]["environment"]["CNNLAB_DATABASE_URL"]
    assert url == "postgresql://cnnlab:pw@postgres:5432/cnnlab"
    env = services["postgres"]["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"], env["POSTGRES_PASSWORD"]) == (
        "cnnlab",
        "cnnlab",
        "pw",
    )


def worker_commands() -> list[tuple[str, list[str]]]:
    """(where, command) of every worker pool in compose and the manifests."""
    found = [
        (f"compose {name}", s["command"])
        for name, s in compose_app_services().items()
        if "command" in s
    ]
    return found + [(f"k8s {name}", c["command"]) for name, c in app_containers() if "command" in c]


def test_worker_pools_run_the_worker_service_on_their_device():
    commands = dict(worker_commands())
    assert set(commands) == {
        "compose worker",
        "compose worker-gpu",
        "k8s cnnlab-worker-cpu",
        "k8s cnnlab-worker-gpu",
    }
    for where, cmd in commands.items():
        assert cmd[:4] == ["/app/.venv/bin/python", "-m", "cnnlab.worker", "--serve"], where
        flags = dict(zip(cmd[4::2], cmd[5::2], strict=True))
        assert flags["--device"] == ("cuda" if "gpu" in where else "cpu"), where
        assert int(flags["--workers"]) >= 1, where
    assert (ROOT / "cnnlab" / "worker.py").exists()
    # The web containers run the image's command: its modules and app.py exist.
    for module in re.findall(r"-m (scripts\.serving\.\w+)", dockerfile_cmd()[-1]):
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), module
    assert (ROOT / "app.py").exists()


def test_the_worker_accepts_the_flags_the_deployment_passes():
    help_text = subprocess.run(
        [sys.executable, "-m", "cnnlab.worker", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CNNLAB_DATA_DIR": "/nonexistent-cnnlab-help"},
    ).stdout
    for where, cmd in worker_commands():
        for flag in (a for a in cmd if a.startswith("--")):
            assert flag in help_text, f"{where}: {flag} is not in `cnnlab.worker --help`"
        assert "cuda" in help_text
        assert "cpu" in help_text


def test_gpu_pools_ask_for_a_gpu_and_only_run_where_there_is_one():
    gpu = compose()["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"], "the GPU pool is optional"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert "cu" in gpu["build"]["args"]["TORCH_INDEX_URL"].rsplit("/", 1)[-1]
    spec = k8s("Deployment", "cnnlab-worker-gpu")["spec"]["template"]["spec"]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"]
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    cpu = k8s("Deployment", "cnnlab-worker-cpu")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in cpu["containers"][0]["resources"]["limits"]


# ---------------------------------------------------------------- resources and security


def test_each_worker_gets_one_core_and_the_run_cap_counts_every_worker():
    total = 0
    for name in ("cnnlab-worker-cpu", "cnnlab-worker-gpu"):
        deployment = k8s("Deployment", name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        cmd = container["command"]
        workers = int(cmd[cmd.index("--workers") + 1])
        total += workers * deployment["spec"]["replicas"]
        if name.endswith("cpu"):  # one torch thread per worker: a core each, no more
            assert container["resources"]["requests"]["cpu"] == str(workers)
            assert container["resources"]["limits"]["cpu"] == str(workers)
    assert int(k8s("ConfigMap", "cnnlab-settings")["data"]["CNNLAB_MAX_CONCURRENT_RUNS"]) == total
    settings = k8s("ConfigMap", "cnnlab-settings")["data"]
    assert settings["CNNLAB_WORKER_THREADS"] == "1"
    # compose: by default the cap is the CPU pool's workers, and their cores are the limit.
    text = (DEPLOY / "compose.yaml").read_text()
    defaults = dict(re.findall(r"\$\{(CNNLAB_\w+):-([^}]+)\}", text))
    assert defaults["CNNLAB_MAX_CONCURRENT_RUNS"] == defaults["CNNLAB_CPU_WORKERS"]
    worker = compose()["services"]["worker"]
    assert str(worker["deploy"]["resources"]["limits"]["cpus"]) == defaults["CNNLAB_CPU_WORKERS"]


def test_every_container_has_requests_and_a_memory_limit():
    for name, spec in pod_specs():
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name


def test_pods_run_as_non_root_without_privilege_escalation_on_a_read_only_root():
    for name, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            # What the processes write goes to volumes: /tmp (warm-up marker) and /data.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, name
    user = re.search(r"^USER (\d+)$", (ROOT / "Dockerfile").read_text(), re.M)[1]
    for _, spec in pod_specs():
        if spec["containers"][0]["image"].startswith("cnnlab:"):
            assert spec["securityContext"]["runAsUser"] == int(user)
    for name, service in compose()["services"].items():
        assert "no-new-privileges:true" in service["security_opt"], name
        if name != "postgres":
            assert service["read_only"] is True, name
            assert service["tmpfs"] == ["/tmp"], name
            assert service["cap_drop"] == ["ALL"], name


# ---------------------------------------------------------------- the nginx front


def test_compose_nginx_sites_are_the_serve_template_rendered():
    for name, secure in nginx.COMPOSE_FILES.items():
        committed = (DEPLOY / "nginx" / name).read_text()
        rendered = nginx.render_compose(nginx.COMPOSE_APP, nginx.COMPOSE_LISTEN, secure)
        assert committed == rendered, f"run `python -m scripts.serving.nginx` ({name})"
    # compose mounts the plain one by default and the Secure-cookie one behind TLS.
    mounts = [compose()["services"]["nginx"]["volumes"][0]]
    mounts.append(
        compose({**compose_secrets(), "CNNLAB_SECURE_COOKIES": "1"})["services"]["nginx"][
            "volumes"
        ][0]
    )
    assert mounts == [
        f"./nginx/{name}:/etc/nginx/conf.d/default.conf:ro" for name in nginx.COMPOSE_FILES
    ]


def test_compose_nginx_is_sticky_on_the_owner_cookie_over_every_replica():
    site = (DEPLOY / "nginx" / "cnnlab.conf").read_text()
    assert "hash $cnnlab_owner consistent;" in site
    assert f"server {nginx.COMPOSE_APP} max_fails=0 resolve;" in site
    assert "zone cnnlab_app" in site
    assert f"resolver {nginx.DOCKER_RESOLVER}" in site
    assert "proxy_set_header Upgrade $http_upgrade;" in site
    assert "proxy_read_timeout 1d;" in site


def test_the_ingress_does_what_the_serve_front_does():
    notes = k8s("Ingress", "cnnlab")["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert notes[prefix + "affinity"] == "cookie"
    assert notes[prefix + "affinity-mode"] == "persistent"
    assert notes[prefix + "proxy-body-size"] == nginx.MAX_BODY
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(notes[prefix + timeout]) >= 24 * 3600  # serve.sh: 1d
    assert notes[prefix + "proxy-request-buffering"] == "off"
    namespace, name = notes[prefix + "custom-headers"].split("/")
    headers = k8s("ConfigMap", name)
    assert headers["metadata"]["namespace"] == namespace
    assert headers["data"] == nginx.security_headers()


def test_debian_nginx_accepts_the_compose_site(tmp_path):
    if NGINX_BIN is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("nginx is missing under CI=true (bash scripts/test.sh installs it)")
        pytest.skip("nginx is not installed")
    for name in nginx.COMPOSE_FILES:
        site = (DEPLOY / "nginx" / name).read_text()
        # Here there is no `web` host, and Debian's nginx (1.22) predates the upstream
        # `resolve` parameter (1.27.3, in the compose image): both rewritten for the check.
        host = nginx.COMPOSE_APP.split(":")[0]
        checked = site.replace(f"server {host}:", "server 127.0.0.1:").replace(" resolve;", ";")
        assert checked.count("127.0.0.1:") == 1
        assert " resolve" not in checked
        (tmp_path / "site.conf").write_text(checked)
        temp = tmp_path / "temp"
        temp.mkdir(exist_ok=True)
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
            "events {}\nhttp {\n"
            + "".join(f"    {k}_temp_path {temp / k};\n" for k in ("client_body", "proxy"))
            + f"    include {tmp_path / 'site.conf'};\n}}\n"
        )
        cmd = [NGINX_BIN, "-t", "-q", "-c", str(conf), "-p", str(tmp_path)]
        check = subprocess.run([*cmd, "-e", str(tmp_path / "e.log")], capture_output=True)
        assert check.returncode == 0, f"{name}: {check.stderr.decode()} ({shlex.join(cmd)})"

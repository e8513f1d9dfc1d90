"""Promises the repository keeps: lint clean, pinned dependencies, the README's two commands are
the ones CI and the Docker image use, and the server configuration is safe for a classroom."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import token
import tokenize
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found


def _readme_commands() -> list[str]:
    return re.findall(r"```(?:bash|sh)\n(.+?)\n```", README, flags=re.S)


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(args):
    result = subprocess.run([_tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_image_installs_exactly_like_the_run_script():
    def installs(text: str) -> list[str]:
        return re.findall(
            r"\b(make_venv|install_requirements \S+|install_cnnlab|pip install)", text
        )

    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    run = (ROOT / "scripts" / "run.sh").read_text(encoding="utf-8")
    steps = ["make_venv", "install_requirements requirements.txt", "install_cnnlab"]
    assert installs(docker) == installs(run) == steps
    assert "source scripts/lib.sh" in docker
    assert "COPY scripts/lib.sh" in docker
    # The torch build is a build argument (CPU by default), as CNNLAB_TORCH is for the scripts.
    assert re.search(r"^ARG CNNLAB_TORCH=cpu$", docker, flags=re.M)
    assert re.search(r'^VOLUME \["/data"\]$', docker, flags=re.M)
    assert "CNNLAB_DATA_DIR=/data" in docker
    for needle in ("EXPOSE 8501", "HEALTHCHECK", "/_stcore/health", "--server.address=0.0.0.0"):
        assert needle in docker
    assert re.search(r"^USER \d+", docker, flags=re.M), "the image runs as a non-root user"
    assert docker.index("COPY requirements.txt") < docker.index("COPY --chown")


def test_readme_gives_exactly_the_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert commands[:2] == ["bash scripts/run.sh", "bash scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "export CI=true" in ci
    assert ci.strip().splitlines()[-1] == commands[1]


def test_requirements_are_pinned_exactly():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.+]*", line), line
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text(encoding="utf-8").split()


def test_streamlit_config_suits_a_classroom_server():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["headless"] is True
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["fileWatcherType"] == "none"  # a watcher per session costs ~0.8 s
    assert 1 <= config["server"]["maxUploadSize"] <= 20
    assert config["browser"]["gatherUsageStats"] is False
    assert config["theme"]["base"] in {"light", "dark"}


def test_readme_shows_a_screenshot_of_every_page():
    from ui.navigation import PAGES

    for name in ["home", *(p.url_path for p in PAGES)]:
        shot = f"docs/screenshots/{name}.png"
        assert shot in README, f"README lacks {shot}"
        assert (ROOT / shot).exists(), f"{shot} is missing: run the browser tests with " + (
            "CNNLAB_SCREENSHOT_DIR=docs/screenshots"
        )


def test_counts_agree_with_their_number_in_every_text_a_learner_reads():
    """ "1 network", "2 networks" (cnnlab.wording.plural), never "network(s)"."""
    from cnnlab.wording import plural

    assert [plural(1, "network"), plural(2, "network"), plural(1200, "run")] == [
        "1 network",
        "2 networks",
        "1,200 runs",
    ]
    texts = (token.STRING, getattr(token, "FSTRING_MIDDLE", token.STRING))
    found = []
    for path in [*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("cnnlab/*.py")]:
        with path.open("rb") as source:
            for tok in tokenize.tokenize(source.readline):
                if tok.type in texts and re.search(r"[a-z]\(s\)", tok.string):
                    found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {tok.string}")
    assert not found, found

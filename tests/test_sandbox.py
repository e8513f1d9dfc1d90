"""Budgeted child processes: results and refusals come back, overruns are stopped and explained."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cnnlab import sandbox

TESTS = Path(__file__).resolve().parent
ROOMY = sandbox.Budget(cpu_seconds=30, memory_bytes=512 * 2**20, wall_seconds=60)


@pytest.fixture(autouse=True)
def _jobs_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))


def run(job: str, budget: sandbox.Budget = ROOMY, **kwargs) -> bytes:
    return sandbox.run(f"sandbox_jobs:{job}", b"abc", {"n": 1}, budget, "Reading it", **kwargs)


def test_the_result_comes_back():
    assert run("echo") == b"cba1"


def test_a_refusal_comes_back_as_the_same_sentence():
    with pytest.raises(ValueError, match=r"^That file is not what it claims to be\.$"):
        run("refuse")


def test_a_cpu_hog_is_stopped_by_its_cpu_budget():
    budget = sandbox.Budget(cpu_seconds=1, memory_bytes=512 * 2**20, wall_seconds=60)
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"more than 1 s of computing"):
        run("spin", budget)
    assert time.monotonic() - started < 30


def test_a_sleeper_is_stopped_by_its_wall_clock_budget():
    budget = sandbox.Budget(cpu_seconds=30, memory_bytes=512 * 2**20, wall_seconds=1)
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"took longer than 1 s"):
        run("sleep", budget)
    assert time.monotonic() - started < 20


def test_a_memory_hog_is_stopped_by_its_memory_budget():
    budget = sandbox.Budget(cpu_seconds=30, memory_bytes=400 * 2**20, wall_seconds=60)
    with pytest.raises(ValueError, match=r"more than 400 MB of memory"):
        run("hog", budget)


def test_work_for_a_closed_page_is_cancelled():
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"stopped: the page was closed"):
        run("sleep", cancelled=lambda: time.monotonic() - started > 0.5)
    assert time.monotonic() - started < 20


def test_a_crash_is_a_plain_sentence():
    with pytest.raises(ValueError, match=r"^Reading it failed unexpectedly\."):
        run("crash")


def test_budget_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CNNLAB_UPLOAD_CPU_S", "7")
    budget = sandbox.env_budget("CNNLAB_UPLOAD", 60, 1024, 120)
    assert budget == sandbox.Budget(7, 1024 * 2**20, 120)
    monkeypatch.setenv("CNNLAB_UPLOAD_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match="CNNLAB_UPLOAD_MEMORY_MB must be a whole number"):
        sandbox.env_budget("CNNLAB_UPLOAD", 60, 1024, 120)

"""The hostile-input corpus (tests/hostile_cases.py): every case gives a clear refusal or a correct
result, within 1 GiB of extra memory and 30 s of CPU, writing nothing outside the data directory.

Cases run in forks of one runner process (tests/hostile_runner.py) that has the engine imported,
so a case costs a fork, not an interpreter start. ``-m "not slow"`` leaves out the cases that
build or decode very large inputs.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_cases import CASES

# Minutes in all (232 hostile files, each in a forked runner):
# started first (tests/conftest.py).
pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[1]
MAX_EXTRA_KB = 1024 * 1024  # 1 GiB
MAX_SECONDS = 30.0


class Runner:
    """The runner process: send a case id, read back its report."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        (scratch / "data" / "tmp").mkdir(parents=True)
        env = {
            **os.environ,
            "CNNLAB_DATA_DIR": str(scratch / "data"),
            "TMPDIR": str(scratch / "data" / "tmp"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "hostile_runner.py")],
            cwd=scratch, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def run(self, case_id: str) -> dict:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(case_id + "\n")
        self.proc.stdin.flush()
        # Past the runner's own wall-clock backstop for a case (it then reports a timeout).
        ready, _, _ = select.select([self.proc.stdout], [], [], 420)
        assert ready, f"the runner did not answer for {case_id}"
        line = self.proc.stdout.readline()
        assert line, f"the runner died on {case_id} (exit {self.proc.poll()})"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    started = Runner(tmp_path_factory.mktemp("hostile"))
    yield started
    started.close()


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _repository_untouched() -> Iterator[None]:
    """No case may write into the repository (the runner's data directory is elsewhere)."""
    before = _git_status()
    yield
    assert _git_status() == before


def assert_clear(message: str, scratch: Path) -> None:
    """A sentence for a learner: short, no object reprs, tracebacks or server paths."""
    assert message
    assert len(message) <= 600, message
    for leak in ("object at 0x", "Traceback", "site-packages", str(ROOT), str(scratch), ".py"):
        assert leak not in message, f"{leak!r} in {message!r}"
    assert message.isprintable(), repr(message)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES],
)
def test_case(runner: Runner, case) -> None:
    report = runner.run(case.id)
    assert report["outcome"] not in ("timeout", "crashed", "error"), report
    assert report["cpu_seconds"] <= MAX_SECONDS, report  # CPU, not wall: robust under load
    assert report["extra_kb"] <= MAX_EXTRA_KB, report
    assert report["children_kb"] <= MAX_EXTRA_KB, report
    assert report["strays"] == [], report
    if case.refused is None:
        assert report["outcome"] == "ok", report
        assert "check_error" not in report, report
    else:
        assert report["outcome"] == "refused", report
        assert re.search(case.refused, report["message"]), report
        assert_clear(report["message"], runner.scratch)


def test_the_corpus_is_large_and_covers_every_entry_point() -> None:
    from hostile_cases import ENTRIES

    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.entry for c in CASES} == set(ENTRIES)

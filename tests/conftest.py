"""Shared test set-up: every test gets its own data directory for anything that writes, and the
runs-store tests run on both backends (SQLite, and a throwaway PostgreSQL server)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (scripts/test.sh: two workers on two cores) each worker computes on one
    torch thread: workers with two threads each fight over the cores (torch on two threads
    slows 2–12× when anything else is busy), and the app's pages set one thread anyway."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadfile``, except that the browser tests on the plain server (every file in
    tests/e2e but the class server's) go to one worker as one unit: that worker alone starts the
    test server and warms its pages (~15 CPU-s saved of two cores' ~12 minutes of work)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class BrowserTestsTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            if path.startswith("tests/e2e/") and path != "tests/e2e/test_serve.py":
                return "tests/e2e"
            return path

    return BrowserTestsTogether(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked ``heavy`` first, each file's tests in order: pytest-xdist hands out whole files
    in this order, so the long ones start at once instead of ending the run alone."""

    def light(item: pytest.Item) -> bool:
        return item.getparent(pytest.Module).get_closest_marker("heavy") is None

    items.sort(key=light)  # a stable sort: every other order stays


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread for the test, as before it afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs, caches and downloads of a test go to its own temporary folder, never ./data."""
    data = tmp_path / "cnnlab-data"
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(data))
    monkeypatch.delenv("CNNLAB_DATABASE_URL", raising=False)  # SQLite unless a test asks
    # Most page tests never train: a worker warmed for each visit of the Train page would cost
    # ~4 s of CPU each (tests/test_page_train.py checks the warm worker itself).
    monkeypatch.setenv("CNNLAB_WARM_WORKER", "0")
    return data


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[object]:
    """One throwaway PostgreSQL server for the session (tests/postgres.py). Without Debian's
    postgresql the tests that need it skip locally but FAIL under ``CI=true``."""
    from postgres import Cluster, binaries

    bin_dir = binaries()
    if bin_dir is None:
        reason = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL tests cannot run under CI=true: {reason}")
        pytest.skip(reason)
    cluster = Cluster(bin_dir)
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty database, named by ``CNNLAB_DATABASE_URL`` for this test (and the
    processes it starts); dropped afterwards."""
    url = postgres_cluster.create_database()
    monkeypatch.setenv("CNNLAB_DATABASE_URL", url)
    yield url
    from cnnlab import runs

    for key in [k for k in runs._STORES if k[0] == url]:
        runs._STORES.pop(key).close()
    postgres_cluster.drop_database(url)


@pytest.fixture(scope="module")
def _module_database(postgres_cluster) -> Iterator[str]:
    """One database per test module for the ``backend`` fixture, emptied before each test
    (a TRUNCATE is ~100 times cheaper than a new database)."""
    url = postgres_cluster.create_database()
    yield url
    postgres_cluster.drop_database(url)


def _empty(url: str) -> None:
    """Delete every run (curves and arrays cascade) and reset the schema version."""
    import psycopg

    from cnnlab.runs import SCHEMA_VERSION

    with psycopg.connect(url, autocommit=True) as db:
        if db.execute("SELECT to_regclass('schema_version')").fetchone()[0] is not None:
            db.execute("TRUNCATE runs CASCADE")
            db.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))


@dataclass
class Backend:
    """A runs-store backend under test: its name and how to open (another handle on) the store."""

    name: str
    open: Callable[[], object]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, _isolated_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """Each runs-store test once on SQLite and once on an empty PostgreSQL database;
    subprocesses inherit the choice through ``CNNLAB_DATABASE_URL``."""
    from cnnlab.runs import PostgresRunStore, SqliteRunStore

    opened: list = []

    def make(factory: Callable[[], object]) -> Callable[[], object]:
        def open_() -> object:
            opened.append(factory())
            return opened[-1]

        return open_

    if request.param == "postgresql":
        url = request.getfixturevalue("_module_database")
        _empty(url)
        monkeypatch.setenv("CNNLAB_DATABASE_URL", url)
        yield Backend("postgresql", make(lambda: PostgresRunStore(url, _isolated_data_dir)))
    else:
        yield Backend("sqlite", make(lambda: SqliteRunStore(_isolated_data_dir)))
    for store in opened:
        store.close()
    from cnnlab import runs

    for key in [k for k in runs._STORES if k[1] == str(_isolated_data_dir.resolve())]:
        runs._STORES.pop(key).close()

"""Past one machine, on a real PostgreSQL server: web processes only queue, worker pools
(``python -m cnnlab.worker --serve``) on "other machines" (their own CNNLAB_HOST_ID) train with
the caps held; a pool killed outright (SIGKILL, as a lost machine) leaves its runs to go stale,
any surviving process marks them interrupted, and they resume on the other pool to the end.
The command line records its run in PostgreSQL without a SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_model import TINY

from cnnlab.jobs import Limits, Scheduler
from cnnlab.runs import PostgresRunStore, QueueRefusedError

# Minutes in all (schedulers and worker pools in other processes):
# started first (tests/conftest.py).
pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(_isolated_data_dir: Path) -> Path:
    """The per-test CNNLAB_DATA_DIR that tests/conftest.py sets (the pools' shared volume)."""
    return _isolated_data_dir


CAP = 2  # runs training at once over both pools (each has two slots: the cap is what holds)


def _pool(host: str, env: dict[str, str]) -> subprocess.Popen:
    """A worker pool as on its own machine: its own host id and process group (killed whole)."""
    pool = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.worker", "--serve", "--workers", "2", "--device", "cpu"],
        cwd=ROOT,
        env={**env, "CNNLAB_HOST_ID": host},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert "2 slots for cpu runs on " + host in pool.stdout.readline()
    return pool


def _wait_until_warm(data_dir: Path, workers: int) -> None:
    """Wait until ``workers`` worker processes have warmed up and take runs."""
    from cnnlab.worker import READY_MARK

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logs = (data_dir / "workers").glob("*.log")
        if sum(READY_MARK in log.read_text() for log in logs) >= workers:
            return
        time.sleep(0.1)
    raise AssertionError("the pools' workers did not warm up")


def _web(store: PostgresRunStore) -> Scheduler:
    """A web process's scheduler with CNNLAB_LOCAL_WORKERS=0: it queues and supervises only."""
    limits = Limits(
        max_concurrent=CAP,
        time_budget_s=120,
        max_params=10**6,
        max_memory_bytes=2**28,
        worker_threads=1,
        spawn_workers=False,
    )
    return Scheduler(store, limits, poll_s=0.1).start()


def _submit(web: Scheduler, owner: str) -> str:
    from cnnlab.training import TrainConfig

    config = {**TrainConfig().to_dict(), "epochs": 3, "batch_size": 8, "seed": 1}
    return web.submit(
        owner,
        dataset="shapes",
        config=config,
        spec=TINY,
        input_shape=(1, 28, 28),
        num_classes=10,
        meta={"data_options": {"limit": 800}},
        client="10.0.0.7",
    )


def test_two_pools_share_the_queue_and_a_lost_pool_s_runs_resume_on_the_other(
    postgres_url, data_dir, monkeypatch
):
    monkeypatch.setenv("CNNLAB_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("CNNLAB_HEARTBEAT_TIMEOUT_S", "4")
    monkeypatch.setenv("CNNLAB_MAX_CONCURRENT_RUNS", str(CAP))
    monkeypatch.setenv("CNNLAB_WORKER_THREADS", "1")
    env = {**os.environ}
    store = PostgresRunStore(postgres_url, data_dir)
    webs = [_web(PostgresRunStore(postgres_url, data_dir)) for _ in range(2)]
    pools = {host: _pool(host, env) for host in ("machine-a", "machine-b")}
    try:
        _wait_until_warm(data_dir, workers=2)  # each pool keeps one worker warm
        owners = [f"learner{i}" for i in range(3)]
        runs = {_submit(webs[i % 2], owner): owner for i, owner in enumerate(owners)}
        with pytest.raises(QueueRefusedError, match="already have a run"):
            _submit(webs[1], owners[0])  # one run per browser, whichever web process asks
        most, victim = 0, None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            running = store.running()
            most = max(most, len(running))
            assert len(running) <= CAP
            victim = next((r for r in running if (r.checkpoint_epoch or 0) >= 1), None)
            time.sleep(0.05)
        assert victim is not None, "no run reached its first checkpoint"
        lost = victim.worker_host
        os.killpg(pools[lost].pid, signal.SIGKILL)  # the machine is gone: nobody cleans up
        pools[lost].wait()
        orphans = [r.run_id for r in store.running() if r.worker_host == lost]
        assert victim.run_id in orphans

        # Its heartbeats stop; a surviving process marks its runs interrupted, resumable.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [store.load_run(i) for i in orphans]
            if all(r.status != "running" for r in states):
                break
            most = max(most, store.count_running())
            time.sleep(0.1)
        for run in states:
            assert run.status == "interrupted", run
            assert "stopped answering" in run.error
        assert store.load_run(victim.run_id).resumable

        # The learner presses Resume (the page's path); the other pool trains it to the end.
        for run_id in orphans:
            if store.load_run(run_id).resumable:
                webs[0].resume(runs[run_id], run_id)
            else:  # killed before its first checkpoint: it starts over
                store.request_stop(runs[run_id], run_id)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            every = [store.load_run(i) for i in runs]
            if not any(r.active for r in every):
                break
            most = max(most, store.count_running())
            assert store.count_running() <= CAP
            time.sleep(0.1)
        resumed = store.load_run(victim.run_id)
        assert resumed.status == "finished", resumed
        assert resumed.worker_host != lost
        assert [e.epoch for e in store.epochs(runs[victim.run_id], victim.run_id)] == [1, 2, 3]
        steps = store.step_curve(runs[victim.run_id], victim.run_id)["step"].tolist()
        assert steps == list(range(1, resumed.final["steps"] + 1))  # no gap, no duplicate
        others = [store.load_run(i) for i in runs if i not in orphans]
        assert {r.status for r in others} == {"finished"}
        assert most >= 2  # several trained at once, never more than the cap
    finally:
        for web in webs:
            web.shutdown()
        for pool in pools.values():
            if pool.poll() is None:
                pool.send_signal(signal.SIGTERM)
                assert pool.wait(timeout=60) == 0
        store.close()


def test_the_command_line_records_its_run_in_postgresql_and_no_sqlite_file(postgres_url, data_dir):
    out = subprocess.run(
        [sys.executable, "-m", "cnnlab.train", "--preset", "fast", "--dataset", "shapes",
         "--limit", "300", "--epochs", "1", "--batch-size", "32", "--max-steps", "5",
         "--threads", "1"],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished"
    store = PostgresRunStore(postgres_url, data_dir)
    run = store.get_run("cli", result["run_id"])
    assert run.status == "finished"
    assert store.weights_path("cli", run.run_id) is not None  # on the shared storage
    assert list(data_dir.rglob("*.sqlite3*")) == []
    store.close()


def test_a_run_queued_on_the_page_is_trained_by_a_pool_in_another_process(
    postgres_url, monkeypatch
):
    from pagetest import app_test

    from cnnlab import jobs
    from cnnlab.runs import open_store

    monkeypatch.setenv("CNNLAB_LOCAL_WORKERS", "0")  # this "web process" only queues
    monkeypatch.setenv("CNNLAB_MAX_STEPS", "20")
    pool = _pool("machine-c", {**os.environ})
    try:
        at = app_test("pages/train.py", timeout=120).run()
        at.number_input(key="train.data.limit").set_value(300)
        at.run()
        at.button(key="train.start").click().run()
        assert not at.exception, [e.value for e in at.exception]
        store = open_store()
        with store._read() as db:
            (run_id,) = [row[0] for row in db.execute("SELECT id FROM runs").fetchall()]
        deadline = time.monotonic() + 120
        while store.load_run(run_id).active and time.monotonic() < deadline:
            time.sleep(0.1)
        run = store.load_run(run_id)
        assert run.status == "finished", run
        assert run.worker_host == "machine-c"
        assert jobs.get_scheduler().running_workers() == []  # the web process started none
    finally:
        jobs.shutdown_scheduler()
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=60) == 0


def test_a_gpu_pool_refuses_to_start_on_a_machine_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = subprocess.run(
        [sys.executable, "-m", "cnnlab.worker", "--serve", "--device", "cuda"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "no CUDA GPU" in out.stderr

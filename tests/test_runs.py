"""The runs store, on SQLite and on PostgreSQL alike (the ``backend`` fixture): records survive a
restart, owners are isolated, weights are written atomically, claims and caps hold, and a run
whose worker died is marked interrupted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab import runs
from cnnlab.runs import EpochRecord, RunNotFoundError, SqlRunStore, StepPoint

# Minutes in all (every store test on SQLite and PostgreSQL):
# started first (tests/conftest.py).
pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(_isolated_data_dir: Path) -> Path:
    """The per-test CNNLAB_DATA_DIR that tests/conftest.py sets."""
    return _isolated_data_dir


def _make(store: SqlRunStore, owner: str = "alice", **kw) -> str:
    return store.create_run(
        owner, dataset="shapes", config={"epochs": 2, "lr": 0.01}, spec={"layers": []}, **kw
    )


def test_records_survive_a_restart_and_a_new_process_reads_them(backend, data_dir):
    store = backend.open()
    run_id = _make(store, name="first")
    store.update_status(run_id, "running", device="cpu", started_at=1.0)
    store.append_steps(run_id, [StepPoint(i, 0, 2.0 / (i + 1), i / 10, 100.0, i) for i in range(5)])
    kernels = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    store.append_epoch(run_id, EpochRecord(0, 1.5, 0.4, 1.2, 0.5, 3.0, 0.01, kernels))
    store.finish(run_id, "finished", final={"test_accuracy": 0.93})
    store.close()

    code = (
        "import json, sys\n"
        "from cnnlab.runs import open_store\n"
        "s = open_store(sys.argv[1])\n"
        "r = s.get_run('alice', sys.argv[2])\n"
        "c = s.step_curve('alice', sys.argv[2])\n"
        "e = s.epochs('alice', sys.argv[2])\n"
        "print(json.dumps({'status': r.status, 'final': r.final, 'device': r.device,\n"
        "  'loss': c['loss'].tolist(), 'kernels': e[0].kernels.tolist(), 'name': r.name}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(data_dir), run_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(out.stdout)
    assert seen["status"] == "finished"
    assert seen["final"] == {"test_accuracy": 0.93}
    assert seen["device"] == "cpu"
    assert seen["name"] == "first"
    assert seen["loss"] == pytest.approx([2.0 / (i + 1) for i in range(5)])
    assert np.array_equal(np.array(seen["kernels"], dtype=np.float32), kernels)


def test_the_schema_is_versioned_and_a_newer_one_is_refused(backend, data_dir):
    store = backend.open()
    with store._read() as db:
        assert db.execute("SELECT version FROM schema_version").fetchone()[0] == runs.SCHEMA_VERSION
    backend.open()  # opening it again migrates nothing
    with store._tx() as db:
        db.execute("UPDATE schema_version SET version=?", (runs.SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer than this app"):
        backend.open()


def test_sqlite_is_in_wal_mode_and_an_older_file_is_upgraded_in_place(data_dir):
    import sqlite3

    store = runs.SqliteRunStore(data_dir)
    db = store._borrow()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == store.busy_timeout_ms
    # A file from before the schema_version table, at version 2 (PRAGMA user_version).
    old = data_dir / "old"
    old.mkdir()
    legacy = sqlite3.connect(old / "runs.sqlite3", isolation_level=None)
    for statements in runs._MIGRATIONS[:2]:
        for sql in statements:
            legacy.execute(sql)
    legacy.execute(
        "INSERT INTO runs (id, owner, status, dataset, config_json, spec_json, "
        "created_at) VALUES ('r1', 'alice', 'finished', 'shapes', '{}', '{}', 1.0)"
    )
    legacy.execute("PRAGMA user_version=2")
    legacy.close()
    upgraded = runs.SqliteRunStore(old)
    assert upgraded.get_run("alice", "r1").needs == "any"
    with upgraded._read() as db:
        assert db.execute("SELECT version FROM schema_version").fetchone()[0] == runs.SCHEMA_VERSION


def test_nobody_else_can_list_open_stop_or_delete_a_run(backend, data_dir):
    store = backend.open()
    mine = _make(store, "alice")
    theirs = _make(store, "bob")
    assert [r.run_id for r in store.list_runs("alice")] == [mine]
    assert [r.run_id for r in store.list_runs("bob")] == [theirs]
    for call in (
        store.get_run,
        store.delete_run,
        store.request_stop,
        store.step_curve,
        store.epochs,
        store.weights_path,
    ):
        with pytest.raises(RunNotFoundError):
            call("bob", mine)
    with pytest.raises(RunNotFoundError):
        store.get_array("bob", mine, "misclassified")
    assert not store.stop_requested(mine)
    assert store.get_run("alice", mine).status == "queued"


def test_delete_removes_the_run_and_its_files_but_not_while_active(backend, data_dir):
    store = backend.open()
    run_id = _make(store)
    store.update_status(run_id, "running")
    with pytest.raises(ValueError, match="stop it first"):
        store.delete_run("alice", run_id)
    store.save_checkpoint(run_id, 0, {"model": {"w": torch.ones(2)}, "epoch": 0})
    store.append_steps(run_id, [StepPoint(0, 0, 1.0, 0.5)])
    store.finish(run_id, "finished")
    store.delete_run("alice", run_id)
    assert store.list_runs("alice") == []
    assert not store.run_dir(run_id).exists()
    with store._read() as db:
        assert db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 0


def test_weights_are_written_atomically_and_load_back(backend, data_dir, monkeypatch):
    store = backend.open()
    run_id = _make(store)
    first = {"conv.weight": torch.randn(4, 1, 3, 3), "fc.bias": torch.randn(10)}
    store.save_checkpoint(run_id, 0, {"model": first, "epoch": 0, "optimizer": {"lr": 0.1}})
    path = store.weights_path("alice", run_id)
    assert path is not None
    loaded = runs.load_weights(path)
    assert all(torch.equal(loaded[k], first[k]) for k in first)
    assert store.load_checkpoint(run_id)["optimizer"] == {"lr": 0.1}

    # A crash half-way through writing the next checkpoint leaves the previous one intact and
    # no temporary file behind.
    from safetensors import torch as st_torch

    def crash(tensors, filename):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(st_torch, "save_file", crash)
    second = {k: v + 1 for k, v in first.items()}
    with pytest.raises(OSError, match="disk full"):
        store.save_checkpoint(run_id, 1, {"model": second, "epoch": 1})
    loaded = runs.load_weights(path)
    assert all(torch.equal(loaded[k], first[k]) for k in first)
    assert store.get_run("alice", run_id).checkpoint_epoch == 0
    assert sorted(p.name for p in path.parent.iterdir()) == [
        runs.CHECKPOINT_FILE,
        runs.WEIGHTS_FILE,
    ]


def test_checkpoint_loading_refuses_pickled_code(backend, data_dir):
    store = backend.open()
    run_id = _make(store)
    store.run_dir(run_id).mkdir(parents=True)
    torch.save({"model": {}, "evil": os.system}, store.run_dir(run_id) / runs.CHECKPOINT_FILE)
    with pytest.raises(Exception, match="Weights only load failed"):
        store.load_checkpoint(run_id)


def test_a_run_whose_worker_is_gone_is_marked_interrupted(backend, data_dir):
    store = backend.open()
    dead, alive, queued = _make(store), _make(store), _make(store)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = runs.host_id()
    store.update_status(dead, "running", worker_pid=proc.pid, worker_host=host)
    store.update_status(alive, "running", worker_pid=os.getpid(), worker_host=host)
    assert store.mark_interrupted() == [dead]
    assert store.get_run("alice", dead).status == "interrupted"
    assert "server stopped" in store.get_run("alice", dead).error
    assert store.get_run("alice", alive).status == "running"
    assert store.get_run("alice", queued).status == "queued"


def test_a_run_on_another_host_is_interrupted_only_when_its_heartbeat_is_stale(backend, data_dir):
    store = backend.open()
    run_id = _make(store)
    store.update_status(run_id, "running", worker_pid=1, worker_host="elsewhere", heartbeat_at=0.0)
    store.update_progress(run_id, {"step": 3})
    assert store.mark_interrupted(stale_after_s=60) == []
    assert store.mark_interrupted(stale_after_s=-1) == [run_id]


def test_a_heartbeat_keeps_a_run_on_another_machine_alive(backend, data_dir):
    import time

    store = backend.open()
    run_id = _make(store)
    long_ago = time.time() - 120
    store.update_status(
        run_id, "running", worker_host="elsewhere", worker_pid=7, heartbeat_at=long_ago
    )
    assert store.heartbeat(run_id, "elsewhere", 7)
    assert not store.heartbeat(run_id, "elsewhere", 8)  # not that worker's run
    assert store.mark_interrupted(stale_after_s=60) == []
    store.update_status(run_id, "running", heartbeat_at=long_ago)
    assert store.mark_interrupted(stale_after_s=60) == [run_id]
    run = store.load_run(run_id)
    assert run.status == "interrupted"
    assert "stopped answering" in run.error
    assert not store.heartbeat(run_id, "elsewhere", 7)  # a late beat does not revive it
    assert store.load_run(run_id).status == "interrupted"


def test_a_run_that_beat_or_changed_hands_since_it_was_seen_is_left_alone(
    backend, data_dir, monkeypatch
):
    import time

    store = backend.open()
    beat, moved = _make(store, "a"), _make(store, "b")
    for run_id in (beat, moved):
        store.update_status(
            run_id, "running", worker_host="elsewhere", worker_pid=7, heartbeat_at=time.time() - 120
        )
    seen = store.running()  # a scheduler's look at the running runs…
    store.heartbeat(beat, "elsewhere", 7)  # …then one beats, the other is claimed elsewhere
    store.update_status(moved, "running", worker_host="machine-2", worker_pid=9)
    monkeypatch.setattr(store, "running", lambda: seen)
    assert store.mark_interrupted(stale_after_s=60) == []
    assert {store.load_run(i).status for i in (beat, moved)} == {"running"}


def test_worker_pools_claim_only_runs_their_device_may_train(backend, data_dir):
    store = backend.open()
    cpu = store.create_run("a", dataset="shapes", config={"device": "cpu"}, spec={})
    gpu = store.create_run("b", dataset="shapes", config={"device": "cuda:0"}, spec={})
    either = store.create_run("c", dataset="shapes", config={"device": None}, spec={})
    assert [r.needs for r in store.queue()] == ["cpu", "cuda", "any"]
    assert [r.run_id for r in store.queue("cuda")] == [gpu, either]
    assert store.claim_next(5, device="cuda").run_id == gpu
    assert store.claim_next(5, device="cuda").run_id == either
    assert store.claim_next(5, device="cuda") is None
    assert store.has_queued("cpu")
    assert not store.has_queued("cuda")
    assert store.claim_next(5, device="cpu").run_id == cpu
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        store.queue("tpu")


def test_claim_next_respects_the_cap_and_the_order(backend, data_dir):
    store = backend.open()
    a, b, c = (_make(store, owner) for owner in ("a", "b", "c"))
    assert [r.run_id for r in store.queue()] == [a, b, c]
    assert store.claim_next(max_running=1).run_id == a
    assert store.claim_next(max_running=1) is None
    assert store.claim_next(max_running=2).run_id == b
    assert store.count_running() == 2
    assert [r.run_id for r in store.queue()] == [c]


def test_stop_of_a_queued_run_ends_it_and_resume_needs_a_checkpoint(backend, data_dir):
    store = backend.open()
    run_id = _make(store)
    store.request_stop("alice", run_id)
    assert store.get_run("alice", run_id).status == "stopped"
    with pytest.raises(ValueError, match="kept a checkpoint"):
        store.request_resume("alice", run_id)
    store.save_checkpoint(run_id, 0, {"model": {"w": torch.zeros(1)}})
    store.request_resume("alice", run_id)
    run = store.get_run("alice", run_id)
    assert (run.status, run.resume, run.stop_requested) == ("queued", True, False)


def test_unknown_status_and_fields_are_refused(backend, data_dir):
    store = backend.open()
    run_id = _make(store)
    with pytest.raises(ValueError, match="Unknown run status"):
        store.update_status(run_id, "exploded")
    with pytest.raises(ValueError, match="Cannot update"):
        store.update_status(run_id, "running", owner="mallory")
    with pytest.raises(ValueError, match="Not a run id"):
        store.run_dir("../etc")


def test_threads_write_at_once_each_on_its_own_connection(backend, data_dir):
    import threading

    store = backend.open()
    run_id = _make(store)
    seen = []

    def work(i: int) -> None:
        store.append_steps(run_id, [StepPoint(i * 10 + j, 0, 1.0, 0.5) for j in range(10)])
        if backend.name == "sqlite":
            seen.append(store._borrow())  # held, so no two can share an id() once freed

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(conn) for conn in seen}) == (4 if backend.name == "sqlite" else 0)
    assert len(store.step_curve("alice", run_id)["step"]) == 40


def test_an_interrupted_run_resumes_from_its_checkpoint_as_if_never_stopped(backend, data_dir):
    import time

    from cnnlab.models import PRESETS
    from cnnlab.training import TrainConfig
    from cnnlab.worker import execute

    store = backend.open()
    config = {**TrainConfig().to_dict(), "epochs": 3, "batch_size": 32, "seed": 5}
    meta = {"data_options": {"limit": 1500}}
    spec = PRESETS["fast"].to_dict()
    run_id = store.create_run("alice", dataset="shapes", config=config, spec=spec, meta=meta)
    store.update_status(run_id, "running")
    worker = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.worker", run_id],
        cwd=ROOT,
        env={**os.environ, "CNNLAB_DATA_DIR": str(data_dir), "CNNLAB_WORKER_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = store.load_run(run_id)
        if run.checkpoint_epoch == 1 and run.progress.get("epoch") == 2:
            break
        assert worker.poll() is None, "the worker ended before it could be interrupted"
        time.sleep(0.02)
    worker.kill()  # the server stops hard, mid-epoch 2
    worker.wait()
    assert store.mark_interrupted() == [run_id]
    run = store.get_run("alice", run_id)
    assert (run.status, run.checkpoint_epoch, run.resumable) == ("interrupted", 1, True)

    store.request_resume("alice", run_id)
    resumed = execute(store, run_id, threads=1)
    assert resumed.status == "finished"
    assert [e.epoch for e in store.epochs("alice", run_id)] == [1, 2, 3]
    steps = store.step_curve("alice", run_id)["step"].tolist()
    assert steps == list(range(1, resumed.final["steps"] + 1))  # no gap, no duplicate

    # The same run without the interruption ends with the very same weights.
    again = store.create_run("alice", dataset="shapes", config=config, spec=spec, meta=meta)
    store.update_status(again, "running")
    straight = execute(store, again, threads=1)
    a = runs.load_weights(store.weights_path("alice", run_id))
    b = runs.load_weights(store.weights_path("alice", again))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.final["test_accuracy"] == resumed.final["test_accuracy"]


def test_a_database_restart_costs_no_failed_request(postgres_cluster, postgres_url, data_dir):
    import psycopg

    store = runs.PostgresRunStore(postgres_url, data_dir)
    run_id = _make(store)
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname=%s", (database,)
        ).fetchall()
    assert killed  # the store's kept connection was among them
    assert store.get_run("alice", run_id).status == "queued"
    store.update_status(run_id, "running")
    assert store.load_run(run_id).status == "running"
    store.close()


def test_the_queue_is_round_robin_across_owners(backend, data_dir):
    store = backend.open()
    a1, a2, a3 = (_make(store, "a") for _ in range(3))
    b1 = _make(store, "b")
    c1, c2 = _make(store, "c"), _make(store, "c")
    # Every owner's first run, then every second run…, each round in order of arrival.
    assert [r.run_id for r in store.queue()] == [a1, b1, c1, a2, c2, a3]
    assert store.claim_next(max_running=5).run_id == a1
    # a1 now trains, so a's next run still waits behind the first runs of the others.
    d1 = _make(store, "d")
    assert [r.run_id for r in store.queue()] == [b1, c1, d1, a2, c2, a3]
    claimed = [store.claim_next(max_running=5).run_id for _ in range(4)]
    assert claimed == [b1, c1, d1, a2]
    assert store.claim_next(max_running=5) is None  # the cap
    assert store.count_running() == 5


def test_claim_records_the_worker_that_trains_the_run(backend, data_dir):
    store = backend.open()
    run_id = _make(store)
    run = store.claim_next(max_running=1, worker_pid=4242)
    assert (run.run_id, run.status, run.worker_pid) == (run_id, "running", 4242)
    assert store.running()[0].run_id == run_id
    assert not store.has_queued()


def test_fair_use_caps_refuse_with_a_sentence_and_hold_atomically(backend, data_dir):
    store = backend.open()
    caps = runs.QueueCaps(per_owner=2, per_client=3, total=4)
    _make(store, "a", client="10.0.0.1", caps=caps)
    _make(store, "a", client="10.0.0.1", caps=caps)
    with pytest.raises(runs.QueueRefusedError, match=r"already have 2 runs .* per browser"):
        _make(store, "a", client="10.0.0.1", caps=caps)
    # Cookie-less sessions are new owners each time, but they share the address.
    _make(store, "b", client="10.0.0.1", caps=caps)
    with pytest.raises(runs.QueueRefusedError, match="3 runs from your network address"):
        _make(store, "c", client="10.0.0.1", caps=caps)
    _make(store, "c", client="10.0.0.2", caps=caps)
    with pytest.raises(runs.QueueRefusedError, match=r"at most 4 runs wait"):
        _make(store, "d", client="10.0.0.3", caps=caps)
    assert len(store.queue()) == 4  # nothing refused was recorded
    with pytest.raises(ValueError, match="already have a run queued"):
        _make(store, "c", caps=runs.QueueCaps(per_owner=1))
    # A run that ended frees its place.
    store.request_stop("c", store.list_runs("c")[0].run_id)
    _make(store, "d", client="10.0.0.3", caps=caps)


def test_caps_hold_when_many_processes_queue_at_once(backend, data_dir):
    code = (
        "import sys\n"
        "from cnnlab.runs import QueueCaps, QueueRefusedError, open_store\n"
        "s = open_store(sys.argv[1])\n"
        "ok = 0\n"
        "for i in range(10):\n"
        "    try:\n"
        "        s.create_run(f'{sys.argv[2]}-{i}', dataset='shapes', config={}, spec={},\n"
        "                     client='10.9.9.9', caps=QueueCaps(per_owner=1, per_client=7))\n"
        "        ok += 1\n"
        "    except QueueRefusedError:\n"
        "        pass\n"
        "print(ok)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(data_dir), str(n)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    accepted = sum(int(p.communicate(timeout=120)[0]) for p in procs)
    assert accepted == 7
    assert len(backend.open().queue()) == 7


def test_slot_time_adds_up_over_attempts_and_bounds_resuming(backend, data_dir):
    import time

    store = backend.open()
    run_id = _make(store)
    store.update_status(run_id, "running", started_at=time.time() - 30)
    store.save_checkpoint(run_id, 0, {"model": {"w": torch.zeros(1)}})
    store.finish(run_id, "timed_out")
    used = store.load_run(run_id).compute_seconds
    assert 30 <= used < 40
    caps = runs.QueueCaps(compute_budget_s=100)
    store.request_resume("alice", run_id, caps=caps)
    store.claim_next(max_running=1)
    with store._tx() as db:  # the second attempt ran 80 s
        db.execute("UPDATE runs SET started_at=? WHERE id=?", (time.time() - 80, run_id))
    store.finish(run_id, "timed_out")
    assert store.load_run(run_id).compute_seconds >= 110
    with pytest.raises(runs.QueueRefusedError, match=r"whole compute budget .* of 100 s"):
        store.request_resume("alice", run_id, caps=caps)
    store.request_resume("alice", run_id)  # no budget, no limit (the command line)
    # Only finished runs with measured time feed the queue's estimates.
    assert store.recent_finished() == []
    store.claim_next(max_running=1)
    store.finish(run_id, "finished")
    assert [r.run_id for r in store.recent_finished()] == [run_id]


class _WatchedCondition:
    """A store's "connection returned" condition that also says when a thread starts waiting."""

    def __init__(self, condition) -> None:
        import threading

        self._condition = condition
        self.waiting = threading.Event()

    def __enter__(self):
        return self._condition.__enter__()

    def __exit__(self, *exc):
        return self._condition.__exit__(*exc)

    def wait(self, timeout=None):
        self.waiting.set()
        return self._condition.wait(timeout)

    def notify(self, n: int = 1) -> None:
        self._condition.notify(n)


def _server_connections(cluster, url: str) -> int:
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        database = url.rsplit("/", 1)[1]
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname=%s"
        return admin.execute(query, (database,)).fetchone()[0]


def test_past_the_connection_cap_a_thread_waits_for_one_to_come_back(
    postgres_cluster, postgres_url, data_dir
):
    import threading

    store = runs.PostgresRunStore(postgres_url, data_dir, max_open=2, wait_s=60)
    run_id = _make(store)
    held = [store._borrow(), store._borrow()]  # the cap: both connections in use
    store._returned = watched = _WatchedCondition(store._returned)
    got = []
    reader = threading.Thread(target=lambda: got.append(store.get_run("alice", run_id)))
    reader.start()
    assert watched.waiting.wait(30)  # the reader is waiting for a connection, not opening one
    assert got == []
    assert _server_connections(postgres_cluster, postgres_url) == 2
    store._give_back(held.pop())
    reader.join(30)
    assert [run.run_id for run in got] == [run_id]  # it took the connection given back
    assert _server_connections(postgres_cluster, postgres_url) == 2
    store._give_back(held.pop())
    store.close()


def test_past_the_wait_the_caller_gets_a_sentence_not_a_traceback(postgres_url, data_dir):
    store = runs.PostgresRunStore(postgres_url, data_dir, max_open=1, wait_s=0.05)
    run_id = _make(store)
    held = store._borrow()
    with pytest.raises(runs.StoreUnavailableError) as refused:
        store.get_run("alice", run_id)
    message = str(refused.value)
    assert "busy" in message
    assert "CNNLAB_DB_MAX_CONNECTIONS" in message
    assert message.count(". ") == 0  # one sentence
    store._give_back(held)
    assert store.get_run("alice", run_id).run_id == run_id  # and it recovers at once
    store.close()


def test_many_threads_share_a_few_connections(postgres_cluster, postgres_url, data_dir):
    import threading

    store = runs.PostgresRunStore(postgres_url, data_dir, max_open=3, wait_s=60)
    run_id = _make(store)
    opened = []
    connect = store._connect
    store._connect = lambda: opened.append(connect()) or opened[-1]
    start = threading.Barrier(8)

    def work(i: int) -> None:
        start.wait()
        store.append_steps(run_id, [StepPoint(i * 10 + j, 0, 1.0, 0.5) for j in range(10)])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.step_curve("alice", run_id)["step"]) == 80
    assert len(opened) <= 2  # the one from creating the run stays idle and is reused
    assert _server_connections(postgres_cluster, postgres_url) <= 3
    store.close()


def test_connection_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CNNLAB_DB_MAX_CONNECTIONS", "4")
    monkeypatch.setenv("CNNLAB_DB_WAIT_S", "2.5")
    assert runs.connection_limits() == (4, 2.5)
    monkeypatch.delenv("CNNLAB_DB_MAX_CONNECTIONS")
    monkeypatch.delenv("CNNLAB_DB_WAIT_S")
    assert runs.connection_limits() == (8, 10.0)
    for bad in ("0", "many", "nan"):
        monkeypatch.setenv("CNNLAB_DB_MAX_CONNECTIONS", bad)
        with pytest.raises(ValueError, match=r"CNNLAB_DB_MAX_CONNECTIONS=.* at least 1"):
            runs.connection_limits()

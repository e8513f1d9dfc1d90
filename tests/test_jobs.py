"""The job queue: real worker processes train, stop, crash and time out while the parent lives on;
one worker trains run after run; the cap and queue positions hold, also for two server processes
on one data directory; fair-use caps and budgets; a model too big is refused with its numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_model import TINY

from cnnlab.jobs import Limits, Scheduler, check_limits, client_key
from cnnlab.models import LayerSpec, ModelSpec, build_model
from cnnlab.runs import PostgresRunStore, QueueRefusedError, SqliteRunStore, SqlRunStore

# Minutes in all (worker processes start, train and stop):
# started first (tests/conftest.py).
pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[1]

# A worker that claims one run and never ends: holds a slot without training (queue and budget
# tests).
SLEEPER = (
    sys.executable,
    "-c",
    "import os, time\n"
    "from cnnlab.runs import open_store\n"
    "open_store().claim_next(int(os.environ['CNNLAB_MAX_CONCURRENT_RUNS']), "
    "worker_pid=os.getpid())\n"
    "time.sleep(120)\n",
)


def _limits(**kw) -> Limits:
    base = {
        "max_concurrent": 1,
        "time_budget_s": 120.0,
        "max_params": 1_000_000,
        "max_memory_bytes": 256 * 2**20,
        "worker_threads": 1,
    }
    return Limits(**{**base, **kw})


def _config(**kw) -> dict:
    from cnnlab.training import TrainConfig

    return TrainConfig.from_dict({**TrainConfig().to_dict(), "batch_size": 32, **kw}).to_dict()


def _submit(
    sched: Scheduler, owner: str = "alice", limit: int = 256, client: str | None = None, **config
) -> str:
    return sched.submit(
        owner,
        client=client,
        dataset="shapes",
        config=_config(**config),
        spec=TINY,
        input_shape=(1, 28, 28),
        num_classes=10,
        meta={"data_options": {"limit": limit}},
    )


def _wait(store: SqlRunStore, run_id: str, until, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.load_run(run_id)
        if until(run):
            return run
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting; last state {store.load_run(run_id)}")


@pytest.fixture
def store(request: pytest.FixtureRequest, _isolated_data_dir: Path) -> SqlRunStore:
    """SQLite, or with ``BOTH_BACKENDS`` also a fresh PostgreSQL database (whose URL the worker
    processes inherit)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return PostgresRunStore(request.getfixturevalue("postgres_url"), _isolated_data_dir)
    return SqliteRunStore(_isolated_data_dir)


# The queue and claim tests run on both runs-store backends.
BOTH_BACKENDS = pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def make_scheduler(store):
    made = []

    def make(**kw) -> Scheduler:
        extra = {k: kw.pop(k) for k in ("worker_command", "grace_s") if k in kw}
        sched = Scheduler(store, _limits(**kw), poll_s=0.05, **extra).start()
        made.append(sched)
        return sched

    yield make
    for sched in made:
        sched.shutdown()


def test_a_worker_process_trains_and_records_everything(store, make_scheduler):
    sched = make_scheduler()
    run_id = _submit(sched, epochs=2)
    run = _wait(store, run_id, lambda r: not r.active)
    assert run.status == "finished", run.error
    assert run.worker_pid not in (None, os.getpid())
    assert run.device.startswith(("CPU", "GPU"))
    curve = store.step_curve("alice", run_id)
    # Every step is on the curve once, in order (230 training images after the validation split,
    # batch 32: 7 steps per epoch).
    assert curve["step"].tolist() == list(range(1, run.final["steps"] + 1))
    assert run.final["steps"] == 14
    epochs = store.epochs("alice", run_id)
    assert [e.epoch for e in epochs] == [1, 2]
    assert epochs[0].kernels.shape == (4, 1, 3, 3)
    assert not (epochs[0].kernels == epochs[1].kernels).all()  # the kernels learned something
    assert 0.0 <= run.final["test_accuracy"] <= 1.0
    assert len(run.final["per_class_accuracy"]) == 10
    confusion = run.final["confusion"]
    assert sum(map(sum, confusion)) == 256  # every test image counted once
    assert store.weights_path("alice", run_id) is not None
    mistakes = run.final["misclassified"]
    assert all(t != p for t, p in zip(mistakes["labels"], mistakes["predictions"], strict=True))
    assert store.get_array("alice", run_id, "misclassified").shape[1:] == (1, 28, 28)
    assert run.meta["classes"][0] == "circle"
    phases = run.final["phases"]
    assert set(phases) == {"startup", "data", "model", "train", "evaluate", "record"}
    assert phases["startup"] > 0
    assert phases["train"] > 0
    assert run.compute_seconds > sum(phases.values()) - phases["startup"]


def test_one_worker_process_trains_run_after_run(store, make_scheduler):
    sched = make_scheduler(max_concurrent=1)
    ids = [_submit(sched, owner, epochs=1) for owner in ("a", "b", "c")]
    done = [_wait(store, i, lambda r: not r.active) for i in ids]
    assert [r.status for r in done] == ["finished"] * 3
    assert len({r.worker_pid for r in done}) == 1  # one interpreter, one torch import
    startup = [r.final["phases"]["startup"] for r in done]
    assert startup[0] > 0
    assert startup[1:] == [0, 0]


def test_a_stop_request_is_honoured_after_the_current_step(store, make_scheduler):
    sched = make_scheduler()
    run_id = _submit(sched, epochs=50, limit=2000)
    _wait(store, run_id, lambda r: r.progress.get("step", 0) >= 3)
    store.request_stop("alice", run_id)
    run = _wait(store, run_id, lambda r: not r.active, timeout=30)
    assert run.status == "stopped"
    assert run.progress["step"] < run.progress["total_steps"]
    assert "test_accuracy" in run.final  # a stopped run still shows what it learned


def test_a_crashing_worker_is_reported_failed_and_the_parent_lives_on(store, make_scheduler):
    sched = make_scheduler()
    run_id = _submit(sched, epochs=50, limit=2000)
    run = _wait(store, run_id, lambda r: r.progress.get("step", 0) >= 1)
    os.kill(run.worker_pid, signal.SIGKILL)  # what the kernel's OOM killer would do
    run = _wait(store, run_id, lambda r: not r.active, timeout=30)
    assert run.status == "failed"
    assert "exit code -9" in run.error
    # The scheduler still serves: the next run trains.
    nxt = _submit(sched, epochs=1)
    assert _wait(store, nxt, lambda r: not r.active).status == "finished"


def test_an_exception_in_the_worker_is_recorded_with_its_message(store, make_scheduler):
    sched = make_scheduler()
    run_id = _submit(sched)
    # Corrupt the stored spec after the checks: the worker itself must fail and say why.
    with store._tx() as db:
        db.execute('UPDATE runs SET spec_json=\'{"layers": [{"kind": "warp"}]}\'')
    run = _wait(store, run_id, lambda r: not r.active)
    assert run.status == "failed"
    assert "Unknown layer kind" in run.error


def test_a_run_over_its_time_budget_keeps_its_progress_and_resumes_within_a_total(
    store, make_scheduler
):
    sched = make_scheduler(time_budget_s=3.0, compute_budget_s=100.0)
    # Long epochs (batch 2): the budget ends the run inside an epoch.
    run_id = _submit(sched, epochs=50, limit=2000, batch_size=2)
    run = _wait(store, run_id, lambda r: not r.active, timeout=60)
    assert run.status == "timed_out"
    assert "time budget of 3 s" in run.error
    assert "resume it" in run.error
    assert run.resumable  # a checkpoint of where it stopped, even inside the first epoch
    state = store.load_checkpoint(run_id)
    stopped_at = state["step"]
    assert stopped_at == run.progress["step"] > 0
    assert state["partial"]["batch"] > 0  # 900 steps per epoch: it stopped inside one

    assert 3 <= run.compute_seconds < 60  # its slot time, from claim to end
    with store._tx() as db:  # as if earlier attempts had used all but one second of the total
        db.execute("UPDATE runs SET compute_seconds=99 WHERE id=?", (run_id,))
    sched.resume("alice", run_id)
    run = _wait(store, run_id, lambda r: r.status != "queued" and not r.active, timeout=60)
    assert run.status == "timed_out"
    assert "whole compute budget of 100 s" in run.error
    steps = store.step_curve("alice", run_id)["step"].tolist()
    assert steps == list(range(1, len(steps) + 1))  # it went on from where it stopped
    assert len(steps) > stopped_at
    assert run.compute_seconds >= 100
    with pytest.raises(QueueRefusedError, match="whole compute budget"):
        sched.resume("alice", run_id)


def test_a_hung_worker_is_killed_after_its_budget(store, make_scheduler):
    sched = make_scheduler(time_budget_s=0.5, worker_command=SLEEPER, grace_s=0.5)
    run_id = _submit(sched)
    pid = _wait(store, run_id, lambda r: r.worker_pid is not None).worker_pid
    assert pid in sched.running_workers()
    run = _wait(store, run_id, lambda r: not r.active, timeout=20)
    assert run.status == "timed_out"
    assert "time budget" in run.error
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()


@BOTH_BACKENDS
def test_the_cap_holds_and_queue_positions_are_reported(store, make_scheduler):
    sched = make_scheduler(max_concurrent=1, worker_command=SLEEPER)
    first, second, third = (_submit(sched, owner) for owner in ("a", "b", "c"))
    _wait(store, first, lambda r: r.status == "running")
    time.sleep(0.3)  # a few supervision rounds: nothing else may start
    assert [store.load_run(i).status for i in (first, second, third)] == [
        "running",
        "queued",
        "queued",
    ]
    positions = [sched.estimate(i) and sched.estimate(i).position for i in (first, second, third)]
    assert positions == [None, 1, 2]
    store.request_stop("b", second)  # leaving the queue moves the others up
    assert sched.estimate(third).position == 1


@BOTH_BACKENDS
def test_one_run_per_owner_at_a_time(store, make_scheduler):
    sched = make_scheduler(worker_command=SLEEPER)
    _submit(sched, "alice")
    with pytest.raises(ValueError, match="already have a run"):
        _submit(sched, "alice")
    _submit(sched, "bob")


@BOTH_BACKENDS
def test_fair_use_caps_come_from_the_limits(store, make_scheduler):
    sched = make_scheduler(worker_command=SLEEPER, max_per_owner=2, max_per_client=3, max_queue=4)
    first = _submit(sched, "a", client="192.0.2.1")
    _wait(store, first, lambda r: r.status == "running")  # the sleeper holds the only slot
    _submit(sched, "a", client="192.0.2.1")
    with pytest.raises(QueueRefusedError, match="per browser"):
        _submit(sched, "a", client="192.0.2.1")
    _submit(sched, "b", client="192.0.2.1")
    with pytest.raises(QueueRefusedError, match="from your network address"):
        _submit(sched, "c", client="192.0.2.1")
    _submit(sched, "c")
    _submit(sched, "d")  # 1 running + 4 waiting
    with pytest.raises(QueueRefusedError, match="queue is full"):
        _submit(sched, "e")


@pytest.mark.parametrize(
    ("peer", "forwarded", "key"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # not from our proxy: header ignored
        (None, None, None),  # this machine itself (Streamlit gives no address for localhost)
        (None, "198.51.100.1", "198.51.100.1"),  # behind the proxy on this host
        ("127.0.0.1", "1.2.3.4, 198.51.100.1", "198.51.100.1"),  # only what our proxy added
        (None, "127.0.0.1", None),
        (None, "not an address", None),
        ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),  # a subscriber's whole /64
        ("::1", "[2001:db8::9]", "2001:db8::/64"),
    ],
)
def test_the_client_key_is_the_address_our_proxy_saw(peer, forwarded, key):
    assert client_key(peer, forwarded) == key


def test_a_model_too_big_is_refused_with_the_numbers_before_it_is_queued(store, make_scheduler):
    sched = make_scheduler(max_params=10_000)
    big = ModelSpec(
        (
            LayerSpec("conv", {"out_channels": 16, "kernel": 3}),
            LayerSpec("flatten"),
            LayerSpec("linear", {"out_features": "classes"}),
        )
    )
    n = sum(p.numel() for p in build_model(big, (1, 28, 28), 10).parameters())
    with pytest.raises(
        ValueError, match=rf"has {n:,} parameters; this server allows at most 10,000"
    ):
        sched.submit(
            "alice",
            dataset="shapes",
            config=_config(),
            spec=big,
            input_shape=(1, 28, 28),
            num_classes=10,
        )
    assert store.list_runs("alice") == []
    wide = ModelSpec((LayerSpec("conv", {"out_channels": 64}), *TINY.layers[1:]))
    with pytest.raises(ValueError, match=r"batch 512 needs about [\d.,]+ MB .* allows 8\.0 MB"):
        check_limits(wide, (1, 28, 28), 10, 512, _limits(max_memory_bytes=8 * 2**20))
    check_limits(wide, (1, 28, 28), 10, 16, _limits(max_memory_bytes=8 * 2**20))


@pytest.mark.parametrize("warm", ["1", "0"])
def test_a_worker_warms_up_before_its_first_run_unless_told_not_to(monkeypatch, warm):
    from cnnlab import worker

    warmed = []
    monkeypatch.setattr(worker, "_warm_up", warmed.append)
    monkeypatch.setattr(worker.signal, "signal", lambda *_: None)  # pytest keeps its Ctrl-C
    monkeypatch.setattr(worker.os, "nice", lambda _: None)  # nor its priority
    monkeypatch.setenv("CNNLAB_WARM_WORKER", warm)
    monkeypatch.setenv("CNNLAB_WORKER_IDLE_S", "0")  # nothing queued: it leaves at once
    assert worker.main(["--slot"]) == 0
    assert len(warmed) == int(warm)


@pytest.mark.parametrize(("setting", "lowered"), [(None, 10), ("0", 0), ("15", 15), ("-5", 0)])
def test_a_worker_lowers_its_priority_by_the_setting(monkeypatch, setting, lowered):
    from cnnlab import worker

    steps = []
    monkeypatch.setattr(worker.os, "nice", steps.append)
    monkeypatch.setattr(worker.signal, "signal", lambda *_: None)
    monkeypatch.setattr(worker, "_warm_up", lambda _: None)
    if setting is None:
        monkeypatch.delenv("CNNLAB_WORKER_NICE", raising=False)
    else:
        monkeypatch.setenv("CNNLAB_WORKER_NICE", setting)
    monkeypatch.setenv("CNNLAB_WORKER_IDLE_S", "0")
    assert worker.main(["--slot"]) == 0
    assert steps == [lowered]  # never raised: only root may, and a worker has no reason to


def test_worker_processes_train_below_the_server_s_priority(store, make_scheduler):
    """So a click's rerun in the server takes a core from a training run at once
    (benchmarks/training_contention.py measures what that is worth)."""
    sched = make_scheduler()
    sched.keep_warm()
    (pid,) = sched.running_workers()
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    deadline = time.monotonic() + 60  # its imports come first
    while os.getpriority(os.PRIO_PROCESS, pid) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.getpriority(os.PRIO_PROCESS, pid) == expected


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CNNLAB_MAX_CONCURRENT_RUNS", "3")
    monkeypatch.setenv("CNNLAB_RUN_TIME_BUDGET_S", "60")
    monkeypatch.setenv("CNNLAB_WORKER_THREADS", "2")
    monkeypatch.setenv("CNNLAB_MAX_RUNS_PER_BROWSER", "2")
    monkeypatch.setenv("CNNLAB_MAX_RUNS_PER_ADDRESS", "7")
    monkeypatch.setenv("CNNLAB_MAX_QUEUE", "40")
    monkeypatch.setenv("CNNLAB_WARM_WORKER", "1")
    limits = Limits.from_env()
    assert limits.warm_worker
    assert (limits.max_concurrent, limits.time_budget_s, limits.worker_threads) == (3, 60.0, 2)
    assert limits.compute_budget_s == 180.0  # three attempts' worth by default
    assert (limits.caps.per_owner, limits.caps.per_client, limits.caps.total) == (2, 7, 40)
    monkeypatch.setenv("CNNLAB_RUN_COMPUTE_BUDGET_S", "0")
    assert Limits.from_env().compute_budget_s is None
    monkeypatch.delenv("CNNLAB_MAX_CONCURRENT_RUNS")
    assert Limits.from_env().max_concurrent == max(1, len(os.sched_getaffinity(0)) - 1)
    monkeypatch.setenv("CNNLAB_RUN_TIME_BUDGET_S", "soon")
    with pytest.raises(ValueError, match="not a number"):
        Limits.from_env()


APP_PROCESS = """
import json, sys, time
from cnnlab.jobs import Limits, Scheduler
from cnnlab.models import ModelSpec
from cnnlab.runs import open_store
from cnnlab.training import TrainConfig

data_dir, tag, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = ModelSpec.from_dict(json.loads(sys.argv[4]))
store = open_store(data_dir)
limits = Limits(max_concurrent=2, time_budget_s=120, max_params=10**6,
                max_memory_bytes=2**28, worker_threads=1)
sched = Scheduler(store, limits, poll_s=0.05).start()
config = {**TrainConfig().to_dict(), "epochs": 1, "batch_size": 32}
for i in range(total // 2):
    sched.submit(f"{tag}{i}", dataset="shapes", config=config, spec=spec,
                 input_shape=(1, 28, 28), num_classes=10, meta={"data_options": {"limit": 256}})
deadline = time.monotonic() + 240
while time.monotonic() < deadline:
    every = [r for t in (tag, "b" if tag == "a" else "a") for i in range(total // 2)
             for r in store.list_runs(f"{t}{i}")]
    if len(every) == total and not any(r.active for r in every):
        break
    time.sleep(0.2)
sched.shutdown()
"""


def test_two_server_processes_on_one_data_directory_share_the_cap(store):
    total = 6  # three runs each: more than the cap of two from either process alone
    spec = json.dumps(TINY.to_dict())
    apps = [
        subprocess.Popen(
            [sys.executable, "-c", APP_PROCESS, str(store.data_dir), tag, str(total), spec],
            cwd=ROOT,
        )
        for tag in ("a", "b")
    ]
    for app in apps:
        assert app.wait(timeout=300) == 0
    runs = [r for tag in "ab" for i in range(total // 2) for r in store.list_runs(f"{tag}{i}")]
    assert len(runs) == total
    assert {r.status for r in runs} == {"finished"}
    # A slot is held from the claim (started_at) to the end (finished_at); a claim happens in
    # the same transaction that counts the running runs, so at no moment did more than two
    # runs hold a slot, whichever process's worker trained them.
    events = sorted([(r.started_at, 1) for r in runs] + [(r.finished_at, -1) for r in runs])
    held, most = 0, 0
    for _, change in events:
        held += change
        most = max(most, held)
    assert most <= 2


def test_a_worker_that_trained_before_trains_the_same_run_to_the_same_weights(store):
    from cnnlab.runs import load_weights
    from cnnlab.worker import execute

    def run(owner: str, seed: int) -> str:
        run_id = store.create_run(
            owner, dataset="shapes", config=_config(epochs=1, seed=seed), spec=TINY.to_dict(),
            meta={"data_options": {"limit": 256}},
        )  # fmt: skip
        execute(store, run_id, threads=1)  # in this process, as a pool worker runs them
        return run_id

    first = run("a", seed=0)
    run("b", seed=7)  # something else in between: other seed, the data set now cached
    again = run("c", seed=0)
    a = load_weights(store.weights_path("a", first))
    b = load_weights(store.weights_path("c", again))
    assert all(torch.equal(a[k], b[k]) for k in a)


@BOTH_BACKENDS
def test_web_processes_may_leave_the_workers_to_one_training_process(store, make_scheduler):
    pool = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.jobs"],
        cwd=ROOT,
        env={**os.environ, "CNNLAB_DATA_DIR": str(store.data_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert " for any runs on" in pool.stdout.readline()  # it is up
        web = make_scheduler(spawn_workers=False)  # CNNLAB_EXTERNAL_WORKERS=1
        web.keep_warm()
        run_id = _submit(web, epochs=1)
        run = _wait(store, run_id, lambda r: not r.active)
        assert run.status == "finished"
        assert web.running_workers() == []  # the training process trained it
        assert run.worker_pid not in (None, os.getpid())
    finally:
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{run.worker_pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{run.worker_pid}").exists()  # its workers went with it


def test_a_server_shutting_down_keeps_the_partial_epoch_of_a_training_run(store, make_scheduler):
    sched = make_scheduler()
    run_id = _submit(sched, epochs=50, limit=2000, batch_size=2)  # 900 steps per epoch
    _wait(store, run_id, lambda r: r.progress.get("step", 0) >= 5)
    sched.shutdown()  # SIGTERM to the worker, as when the server stops
    run = store.load_run(run_id)
    assert run.status == "interrupted"
    assert run.resumable
    assert store.load_checkpoint(run_id)["step"] == run.progress["step"] >= 5
    assert "resume it" in run.error


def test_an_idle_worker_leaves_when_the_server_that_started_it_is_gone(store):
    parent = (
        "import os, subprocess, sys\n"
        "env = {**os.environ, 'CNNLAB_SERVER_PID': str(os.getpid())}  # as the scheduler does\n"
        "p = subprocess.Popen([sys.executable, '-m', 'cnnlab.worker', '--slot'], env=env,\n"
        "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
    )  # the "server" starts a worker and dies at once, while the worker is still starting
    out = subprocess.run(
        [sys.executable, "-c", parent],
        cwd=ROOT,
        env={**os.environ, "CNNLAB_DATA_DIR": str(store.data_dir), "CNNLAB_WORKER_IDLE_S": "600"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 60  # its start-up (imports, warm-up), then one poll
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()


def test_a_server_process_that_exits_lets_its_training_run_checkpoint_first(store):
    app = (
        "import sys, time\n"
        "from cnnlab.jobs import get_scheduler\n"
        "from cnnlab.models import PRESETS\n"
        "from cnnlab.training import TrainConfig\n"
        "sched = get_scheduler()\n"
        "config = {**TrainConfig().to_dict(), 'epochs': 50, 'batch_size': 2}\n"
        "run_id = sched.submit('alice', dataset='shapes', config=config, spec=PRESETS['fast'],\n"
        "    input_shape=(1, 28, 28), num_classes=10, meta={'data_options': {'limit': 2000}})\n"
        "while sched.store.load_run(run_id).progress.get('step', 0) < 5:\n"
        "    time.sleep(0.05)\n"
        "sys.exit(0)  # as Streamlit ends on SIGTERM: the interpreter exits normally\n"
    )
    subprocess.run(
        [sys.executable, "-c", app],
        cwd=ROOT,
        env={**os.environ, "CNNLAB_DATA_DIR": str(store.data_dir)},
        check=True,
        timeout=180,
    )
    (run,) = store.list_runs("alice")
    assert run.status == "interrupted"
    assert run.resumable
    assert store.load_checkpoint(run.run_id)["step"] == run.progress["step"] >= 5


def test_a_worker_that_cannot_start_is_not_restarted_in_a_tight_loop(store, make_scheduler):
    broken = (sys.executable, "-c", "raise SystemExit('no torch here')")
    _submit(make_scheduler(worker_command=broken))  # it polls every 0.05 s
    time.sleep(2.0)
    logs = list((store.data_dir / "workers").glob("*.log"))
    assert 1 <= len(logs) <= 4  # a few tries, not one per poll
    assert "no torch here" in logs[0].read_text()


def test_a_run_on_another_machine_is_never_taken_for_one_of_ours(store, make_scheduler):
    # Every container numbers its processes from 1: another machine's worker may have our
    # worker's pid. Ours ends (exit code 3); the other machine's run must not "fail" with it.
    quitter = (sys.executable, "-c", "import time; time.sleep(1.5); raise SystemExit(3)")
    sched = make_scheduler(worker_command=quitter)
    sched.keep_warm()
    (pid,) = sched.running_workers()
    remote = store.create_run("bob", dataset="shapes", config={}, spec={})
    store.update_status(
        remote, "running", worker_pid=pid, worker_host="elsewhere", heartbeat_at=time.time() + 600
    )
    deadline = time.monotonic() + 30
    while sched.running_workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sched.running_workers() == []  # ours was reaped
    assert store.load_run(remote).status == "running"


def test_a_worker_whose_run_was_taken_over_stops_without_writing_to_it(store, monkeypatch):
    import threading

    from cnnlab.worker import execute

    monkeypatch.setenv("CNNLAB_HEARTBEAT_S", "0.1")
    run_id = store.create_run(
        "alice", dataset="shapes", config=_config(epochs=50, batch_size=2), spec=TINY.to_dict(),
        meta={"data_options": {"limit": 2000}}, status="running",
    )  # fmt: skip
    worker = threading.Thread(target=execute, args=(store, run_id), kwargs={"threads": 1})
    worker.start()
    _wait(store, run_id, lambda r: r.progress.get("step", 0) >= 5)
    # Its heartbeat looked stale to another scheduler (a network partition, say); the run was
    # resumed and another machine's worker claimed it.
    store.update_status(run_id, "running", worker_host="elsewhere", worker_pid=1)
    worker.join(timeout=60)
    assert not worker.is_alive()
    run = store.load_run(run_id)
    assert (run.status, run.worker_host, run.worker_pid) == ("running", "elsewhere", 1)
    assert run.checkpoint_epoch is None  # no checkpoint of its own over the other's
    assert store.load_checkpoint(run_id) is None

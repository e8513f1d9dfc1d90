"""The runs store: every training run, its curves, metrics and weights, so no run is ever lost.

``RunStore`` is the interface the app, the worker and the command line talk to; a server database
(Postgres, …) could implement it later. ``SqliteRunStore`` is the implementation used today: one
SQLite file in WAL mode (readers never block the writer, so the page can poll while a worker
writes) plus a folder per run for the weights.

Ownership is enforced here, not in the page: every method a learner's session can reach takes the
``owner`` id and behaves as if another owner's run did not exist. Methods without an owner
(``update_status``, ``append_steps``, …) are for the trusted worker that was handed a run id.

The data directory is ``$CNNLAB_DATA_DIR``, else the per-user data folder (``cnnlab/datadir.py``:
``~/.local/share/cnnlab``), whatever the working directory.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from cnnlab import datadir

STATUSES = ("queued", "running", "finished", "stopped", "failed", "interrupted", "timed_out")
ACTIVE_STATUSES = ("queued", "running")
# A run in one of these ended early but kept its last epoch's checkpoint, so it can go on.
RESUMABLE_STATUSES = ("stopped", "interrupted", "timed_out", "failed")
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.pt"


class RunNotFoundError(KeyError):
    """No run with this id belongs to this owner (it may exist, but not for them)."""


class QueueRefusedError(ValueError):
    """A fair-use cap refused to queue a run; the message says which and what to do."""


@dataclass(frozen=True)
class QueueCaps:
    """How many runs may wait or train at once: per owner, per client address, in all."""

    per_owner: int = 1
    per_client: int = 5
    total: int = 100
    # Slot seconds one run may use over all its attempts (None: no limit on resuming).
    compute_budget_s: float | None = None


@dataclass(frozen=True)
class StepPoint:
    """One training step on the live curves."""

    step: int
    epoch: int
    loss: float
    accuracy: float
    images_per_second: float = 0.0
    elapsed_seconds: float = 0.0


@dataclass(frozen=True)
class EpochRecord:
    """Metrics at the end of one epoch, plus the first-layer kernels for the replay slider."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    lr: float
    kernels: np.ndarray | None = None  # (out_channels, in_channels, kH, kW) of the first conv


@dataclass(frozen=True)
class Run:
    """One run as stored: what was asked, where it stands, and how it ended."""

    run_id: str
    owner: str
    status: str
    dataset: str
    config: dict[str, Any]
    spec: dict[str, Any]
    created_at: float
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    device: str | None = None
    error: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    checkpoint_epoch: int | None = None
    stop_requested: bool = False
    worker_pid: int | None = None
    worker_host: str | None = None
    heartbeat_at: float | None = None
    resume: bool = False
    client: str | None = None  # the network address it was queued from, when known
    compute_seconds: float = 0.0  # slot time used over all its attempts (resumes included)

    @property
    def active(self) -> bool:
        """True while the run is waiting in the queue or training."""
        return self.status in ACTIVE_STATUSES

    @property
    def resumable(self) -> bool:
        """True when the run ended early and has a checkpoint to continue from."""
        return self.status in RESUMABLE_STATUSES and self.checkpoint_epoch is not None


class RunStore(Protocol):
    """What the app needs from a runs store; SQLite today, a server database later."""

    data_dir: Path

    def create_run(
        self,
        owner: str,
        *,
        dataset: str,
        config: Mapping[str, Any],
        spec: Mapping[str, Any],
        name: str = "",
        meta: Mapping[str, Any] | None = None,
        status: str = "queued",
    ) -> str:
        """Record a new run and return its id."""
        ...

    def get_run(self, owner: str, run_id: str) -> Run:
        """The run ``run_id`` if ``owner`` owns it, else :class:`RunNotFoundError`."""
        ...

    def list_runs(self, owner: str, statuses: Sequence[str] | None = None) -> list[Run]:
        """The owner's runs, newest first, optionally only those in ``statuses``."""
        ...

    def delete_run(self, owner: str, run_id: str) -> None:
        """Delete the owner's run, its curves and its files."""
        ...

    def request_stop(self, owner: str, run_id: str) -> None:
        """Ask the worker to stop the owner's run after its current step."""
        ...

    def step_curve(self, owner: str, run_id: str) -> dict[str, np.ndarray]:
        """The owner's run's per-step curves as arrays (step, epoch, loss, accuracy, …)."""
        ...

    def epochs(self, owner: str, run_id: str) -> list[EpochRecord]:
        """The owner's run's per-epoch metrics, in order."""
        ...

    def get_array(self, owner: str, run_id: str, name: str) -> np.ndarray | None:
        """A named array stored with the owner's run (e.g. misclassified images)."""
        ...

    def weights_path(self, owner: str, run_id: str) -> Path | None:
        """The owner's run's last saved weights file, or None before the first epoch ends."""
        ...

    # The worker's side: it was handed the run id by the scheduler, so no owner check.
    def load_run(self, run_id: str) -> Run:
        """The run ``run_id`` whoever owns it (worker and scheduler only)."""
        ...

    def update_status(self, run_id: str, status: str, **fields: Any) -> None:
        """Set the status and any of: device, error, worker_pid, worker_host, started_at, …"""
        ...

    def update_progress(self, run_id: str, progress: Mapping[str, Any]) -> None:
        """Store the latest progress snapshot and refresh the heartbeat."""
        ...

    def append_steps(self, run_id: str, steps: Sequence[StepPoint]) -> None:
        """Append a batch of step points to the curves."""
        ...

    def append_epoch(self, run_id: str, record: EpochRecord) -> None:
        """Store one epoch's metrics (replacing a previous attempt at that epoch)."""
        ...

    def put_array(self, run_id: str, name: str, array: np.ndarray) -> None:
        """Store a named array with the run."""
        ...

    def finish(
        self, run_id: str, status: str, final: Mapping[str, Any] | None = None, error: str = ""
    ) -> None:
        """Record how the run ended: its status, final metrics and error text."""
        ...

    def stop_requested(self, run_id: str) -> bool:
        """True once someone asked the run to stop."""
        ...

    def save_checkpoint(self, run_id: str, epoch: int, state: Mapping[str, Any]) -> None:
        """Atomically save weights and training state after ``epoch``."""
        ...

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The last saved training state, or None."""
        ...

    def save_final_weights(self, run_id: str, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Atomically replace the run's weights with those of the model as it ended."""
        ...


def default_data_dir() -> Path:
    """``$CNNLAB_DATA_DIR`` if set, else ``$XDG_DATA_HOME/cnnlab`` or ``~/.local/share/cnnlab``."""
    return datadir.data_dir()


def new_owner_id() -> str:
    """A fresh anonymous owner id (random, unguessable)."""
    return uuid.uuid4().hex


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temp file beside ``path`` then rename it into place.

    A crash mid-write leaves the previous file intact: readers see the old or the new weights,
    never half of them (os.replace is atomic on one file system).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(path: Path, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Save a model's state dict as safetensors, atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors state dict onto the CPU."""
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")


# Each version is a list of statements; PRAGMA user_version records how far a file has come, so
# an older database is upgraded in place when a newer app opens it.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            dataset TEXT NOT NULL,
            config_json TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            meta_json TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            queued_at REAL,
            started_at REAL,
            finished_at REAL,
            heartbeat_at REAL,
            device TEXT,
            error TEXT,
            progress_json TEXT NOT NULL DEFAULT '{}',
            final_json TEXT NOT NULL DEFAULT '{}',
            checkpoint_epoch INTEGER,
            stop_requested INTEGER NOT NULL DEFAULT 0,
            resume INTEGER NOT NULL DEFAULT 0,
            worker_pid INTEGER,
            worker_host TEXT
        )""",
        "CREATE INDEX runs_owner ON runs(owner, created_at)",
        "CREATE INDEX runs_status ON runs(status, queued_at)",
        """CREATE TABLE steps (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            loss REAL NOT NULL,
            accuracy REAL NOT NULL,
            images_per_second REAL NOT NULL,
            elapsed_seconds REAL NOT NULL,
            PRIMARY KEY (run_id, step)
        ) WITHOUT ROWID""",
        """CREATE TABLE epochs (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL,
            train_loss REAL NOT NULL,
            train_accuracy REAL NOT NULL,
            val_loss REAL,
            val_accuracy REAL,
            seconds REAL NOT NULL,
            lr REAL NOT NULL,
            kernels BLOB,
            PRIMARY KEY (run_id, epoch)
        )""",
        """CREATE TABLE arrays (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (run_id, name)
        )""",
    ),
    (
        # Fair use: the client address a run was queued from (its per-address cap), and the
        # slot time it has used over all its attempts (its total compute budget across resumes).
        "ALTER TABLE runs ADD COLUMN client TEXT",
        "ALTER TABLE runs ADD COLUMN compute_seconds REAL NOT NULL DEFAULT 0",
        "CREATE INDEX runs_client ON runs(client, status)",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_RUN_COLUMNS = (
    "id, owner, name, status, dataset, config_json, spec_json, meta_json, created_at, "
    "started_at, finished_at, heartbeat_at, device, error, progress_json, final_json, "
    "checkpoint_epoch, stop_requested, resume, worker_pid, worker_host, client, compute_seconds"
)
# Round-robin across owners: a queued run's turn is its place in its owner's own line (runs the
# owner already has training count as earlier turns); the queue runs turn by turn, each turn in
# order of arrival. A student who queues five runs cannot hold back one who queued a single run.
_FAIR_QUEUE = (
    "SELECT q.id, ROW_NUMBER() OVER (PARTITION BY q.owner ORDER BY q.queued_at, q.id) "
    "+ (SELECT COUNT(*) FROM runs r WHERE r.owner = q.owner AND r.status = 'running') AS turn, "
    "q.queued_at FROM runs q WHERE q.status = 'queued'"
)
_FAIR_ORDER = f"SELECT id FROM ({_FAIR_QUEUE}) ORDER BY turn, queued_at, id"
# The slot time of the attempt that ends now (claim to end), added to the run's total.
_ACCOUNT = (
    "compute_seconds = compute_seconds + CASE WHEN status = 'running' AND started_at IS NOT NULL "
    "THEN MAX(0, :now - started_at) ELSE 0 END"
)
_UPDATABLE = {
    "device",
    "error",
    "worker_pid",
    "worker_host",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "queued_at",
    "stop_requested",
    "resume",
}


def _array_bytes(array: np.ndarray) -> bytes:
    """Serialise an array with its dtype and shape (.npy format, no pickle)."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _array_from(blob: bytes | None) -> np.ndarray | None:
    import io

    return None if blob is None else np.load(io.BytesIO(blob), allow_pickle=False)


class SqliteRunStore:
    """:class:`RunStore` on one SQLite file (WAL mode) plus a folder of weights per run.

    Safe to share between threads (each thread gets its own connection) and between processes
    (SQLite's file locks; writers wait up to ``busy_timeout_ms`` instead of failing).
    """

    def __init__(self, data_dir: Path | str | None = None, busy_timeout_ms: int = 10_000) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "runs.sqlite3"
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        with self._tx() as db:
            self._migrate(db)

    # -- connections -------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and per process: sqlite3 connections must not cross threads,
        # and a connection inherited through fork would share locks with the parent.
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(
                self.db_path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode; only a power cut can lose
            # the last commits, which is fine for progress points.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so it never deadlocks midway."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"The runs database has schema version {version}, newer than this app's "
                f"{SCHEMA_VERSION}: update the app or point CNNLAB_DATA_DIR elsewhere."
            )
        for statements in _MIGRATIONS[version:]:
            for sql in statements:
                db.execute(sql)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- paths -------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """The folder holding this run's weights and checkpoint."""
        if not run_id.isalnum():
            raise ValueError(f"Not a run id: {run_id!r}.")
        return self.data_dir / "runs" / run_id

    # -- the owner's side --------------------------------------------------------------------
    def create_run(
        self,
        owner: str,
        *,
        dataset: str,
        config: Mapping[str, Any],
        spec: Mapping[str, Any],
        name: str = "",
        meta: Mapping[str, Any] | None = None,
        status: str = "queued",
        client: str | None = None,
        caps: QueueCaps | None = None,
    ) -> str:
        """Record a new run and return its id.

        With ``caps`` the fair-use limits are checked in the same transaction as the insert, so
        several server processes cannot together queue past them (:class:`QueueRefusedError`).
        """
        if not owner:
            raise ValueError("A run needs an owner id.")
        _check_status(status)
        run_id = uuid.uuid4().hex[:16]
        now = time.time()
        with self._tx() as db:
            if caps is not None:
                _admit(db, owner, client, caps)
            db.execute(
                "INSERT INTO runs (id, owner, name, status, dataset, config_json, spec_json, "
                "meta_json, created_at, queued_at, client) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    owner,
                    name,
                    status,
                    dataset,
                    json.dumps(dict(config)),
                    json.dumps(dict(spec)),
                    json.dumps(dict(meta or {})),
                    now,
                    now,
                    client,
                ),
            )
        return run_id

    def get_run(self, owner: str, run_id: str) -> Run:
        """The run ``run_id`` if ``owner`` owns it, else :class:`RunNotFoundError`."""
        row = (
            self._connection()
            .execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=? AND owner=?", (run_id, owner))
            .fetchone()
        )
        if row is None:
            raise RunNotFoundError(run_id)
        return _run_from_row(row)

    def list_runs(self, owner: str, statuses: Sequence[str] | None = None) -> list[Run]:
        """The owner's runs, newest first, optionally only those in ``statuses``."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE owner=?"
        args: list[Any] = [owner]
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        rows = self._connection().execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [_run_from_row(r) for r in rows]

    def delete_run(self, owner: str, run_id: str) -> None:
        """Delete the owner's run, its curves and its files; a running run is stopped first."""
        with self._tx() as db:
            row = db.execute(
                "SELECT status FROM runs WHERE id=? AND owner=?", (run_id, owner)
            ).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            if row["status"] in ACTIVE_STATUSES:
                raise ValueError("This run is still training: stop it first, then delete it.")
            db.execute("DELETE FROM runs WHERE id=?", (run_id,))
        import shutil

        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def request_stop(self, owner: str, run_id: str) -> None:
        """Ask the worker to stop the owner's run after its current step (a queued run ends now)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT status FROM runs WHERE id=? AND owner=?", (run_id, owner)
            ).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            db.execute("UPDATE runs SET stop_requested=1 WHERE id=?", (run_id,))
            if row["status"] == "queued":
                db.execute(
                    "UPDATE runs SET status='stopped', finished_at=? WHERE id=?",
                    (time.time(), run_id),
                )

    def request_resume(
        self,
        owner: str,
        run_id: str,
        client: str | None = None,
        caps: QueueCaps | None = None,
    ) -> None:
        """Queue the owner's ended run again; the worker continues from its last checkpoint.

        It joins the back of the queue under the same ``caps`` as a new run, and not at all
        once it has used its total compute budget (``caps.compute_budget_s``).
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT status, checkpoint_epoch, compute_seconds FROM runs WHERE id=? AND owner=?",
                (run_id, owner),
            ).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            if row["status"] not in RESUMABLE_STATUSES or row["checkpoint_epoch"] is None:
                raise ValueError(
                    "Only a run that ended early and kept a checkpoint can be resumed."
                )
            budget = caps.compute_budget_s if caps is not None else None
            if budget is not None and row["compute_seconds"] >= budget:
                raise QueueRefusedError(
                    f"This run has used its whole compute budget ({row['compute_seconds']:.0f} s "
                    f"of {budget:.0f} s over all its attempts), so it cannot be resumed again. "
                    f"Start a new run, perhaps with fewer epochs or a smaller model."
                )
            if caps is not None:
                _admit(db, owner, client, caps)
            db.execute(
                "UPDATE runs SET status='queued', resume=1, stop_requested=0, error=NULL, "
                "queued_at=?, finished_at=NULL, worker_pid=NULL, client=COALESCE(?, client) "
                "WHERE id=?",
                (time.time(), client, run_id),
            )

    def step_curve(self, owner: str, run_id: str) -> dict[str, np.ndarray]:
        """The owner's run's per-step curves as arrays (step, epoch, loss, accuracy, …)."""
        self.get_run(owner, run_id)
        rows = (
            self._connection()
            .execute(
                "SELECT step, epoch, loss, accuracy, images_per_second, elapsed_seconds "
                "FROM steps WHERE run_id=? ORDER BY step",
                (run_id,),
            )
            .fetchall()
        )
        names = ("step", "epoch", "loss", "accuracy", "images_per_second", "elapsed_seconds")
        table = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, len(names))
        return {n: table[:, i] for i, n in enumerate(names)}

    def epochs(self, owner: str, run_id: str) -> list[EpochRecord]:
        """The owner's run's per-epoch metrics, in order (kernels included)."""
        self.get_run(owner, run_id)
        return self._epochs(run_id)

    def _epochs(self, run_id: str) -> list[EpochRecord]:
        rows = (
            self._connection()
            .execute(
                "SELECT epoch, train_loss, train_accuracy, val_loss, val_accuracy, seconds, lr, "
                "kernels FROM epochs WHERE run_id=? ORDER BY epoch",
                (run_id,),
            )
            .fetchall()
        )
        return [EpochRecord(*tuple(r)[:7], kernels=_array_from(r["kernels"])) for r in rows]

    def get_array(self, owner: str, run_id: str, name: str) -> np.ndarray | None:
        """A named array stored with the owner's run (e.g. misclassified images)."""
        self.get_run(owner, run_id)
        row = (
            self._connection()
            .execute("SELECT data FROM arrays WHERE run_id=? AND name=?", (run_id, name))
            .fetchone()
        )
        return None if row is None else _array_from(row["data"])

    def weights_path(self, owner: str, run_id: str) -> Path | None:
        """The owner's run's last saved weights file, or None before the first epoch ends."""
        self.get_run(owner, run_id)
        path = self.run_dir(run_id) / WEIGHTS_FILE
        return path if path.exists() else None

    # -- the worker's and scheduler's side ---------------------------------------------------
    def load_run(self, run_id: str) -> Run:
        """The run ``run_id`` whoever owns it (worker and scheduler only)."""
        row = (
            self._connection()
            .execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,))
            .fetchone()
        )
        if row is None:
            raise RunNotFoundError(run_id)
        return _run_from_row(row)

    def update_status(self, run_id: str, status: str, **fields: Any) -> None:
        """Set the status and any of: device, error, worker_pid, worker_host, started_at, …"""
        _check_status(status)
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"Cannot update {sorted(unknown)} on a run.")
        sets = ", ".join(["status=?", *(f"{k}=?" for k in fields)])
        with self._tx() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE id=?", (status, *fields.values(), run_id))

    def update_progress(self, run_id: str, progress: Mapping[str, Any]) -> None:
        """Store the latest progress snapshot and refresh the heartbeat."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET progress_json=?, heartbeat_at=? WHERE id=?",
                (json.dumps(dict(progress)), time.time(), run_id),
            )

    def append_steps(self, run_id: str, steps: Sequence[StepPoint]) -> None:
        """Append a batch of step points (one transaction for the whole batch)."""
        if not steps:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        run_id,
                        s.step,
                        s.epoch,
                        float(s.loss),
                        float(s.accuracy),
                        float(s.images_per_second),
                        float(s.elapsed_seconds),
                    )
                    for s in steps
                ],
            )

    def append_epoch(self, run_id: str, record: EpochRecord) -> None:
        """Store one epoch's metrics (replacing a previous attempt at that epoch)."""
        kernels = None if record.kernels is None else _array_bytes(record.kernels)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    record.epoch,
                    float(record.train_loss),
                    float(record.train_accuracy),
                    None if record.val_loss is None else float(record.val_loss),
                    None if record.val_accuracy is None else float(record.val_accuracy),
                    float(record.seconds),
                    float(record.lr),
                    kernels,
                ),
            )

    def put_array(self, run_id: str, name: str, array: np.ndarray) -> None:
        """Store a named array with the run."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO arrays VALUES (?,?,?)", (run_id, name, _array_bytes(array))
            )

    def set_meta(self, run_id: str, meta: Mapping[str, Any]) -> None:
        """Merge ``meta`` (classes, input shape, normalisation…) into the run's metadata."""
        with self._tx() as db:
            row = db.execute("SELECT meta_json FROM runs WHERE id=?", (run_id,)).fetchone()
            merged = {**json.loads(row["meta_json"]), **dict(meta)}
            db.execute("UPDATE runs SET meta_json=? WHERE id=?", (json.dumps(merged), run_id))

    def finish(
        self, run_id: str, status: str, final: Mapping[str, Any] | None = None, error: str = ""
    ) -> None:
        """Record how the run ended: its status, final metrics and error text."""
        _check_status(status)
        with self._tx() as db:
            db.execute(
                f"UPDATE runs SET {_ACCOUNT}, status=:status, final_json=:final, error=:error, "
                "finished_at=:now, resume=0 WHERE id=:id",
                {
                    "status": status,
                    "final": json.dumps(dict(final or {})),
                    "error": error or None,
                    "now": time.time(),
                    "id": run_id,
                },
            )

    def stop_requested(self, run_id: str) -> bool:
        """True once someone asked the run to stop."""
        row = (
            self._connection()
            .execute("SELECT stop_requested FROM runs WHERE id=?", (run_id,))
            .fetchone()
        )
        return bool(row and row["stop_requested"])

    def save_checkpoint(self, run_id: str, epoch: int, state: Mapping[str, Any]) -> None:
        """Atomically save weights (safetensors) and training state (torch.save) after ``epoch``.

        ``state["model"]`` must be the model's state dict; the rest (optimizer, scheduler, RNG,
        epoch) is whatever the trainer needs to resume. The weights file is written first and
        the database records the epoch last, so a crash in between leaves a consistent pair.
        """
        folder = self.run_dir(run_id)
        save_weights(folder / WEIGHTS_FILE, state["model"])
        atomic_write(folder / CHECKPOINT_FILE, lambda tmp: torch.save(dict(state), tmp))
        with self._tx() as db:
            db.execute("UPDATE runs SET checkpoint_epoch=? WHERE id=?", (epoch, run_id))

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The last saved training state (loaded with ``weights_only=True``), or None."""
        path = self.run_dir(run_id) / CHECKPOINT_FILE
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save_final_weights(self, run_id: str, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Atomically replace the run's weights with those of the model as it ended.

        The last epoch's checkpoint is not always the final model: early stopping restores the
        best epoch's weights, and a stop mid-epoch keeps training past the checkpoint. The
        weights file must be the network the final metrics were measured on.
        """
        save_weights(self.run_dir(run_id) / WEIGHTS_FILE, state_dict)

    def truncate_after(self, run_id: str, epoch: int, step: int) -> None:
        """Forget curve points recorded after a checkpoint, before resuming from it."""
        with self._tx() as db:
            db.execute("DELETE FROM steps WHERE run_id=? AND step>?", (run_id, step))
            db.execute("DELETE FROM epochs WHERE run_id=? AND epoch>?", (run_id, epoch))

    def queue(self) -> list[Run]:
        """Queued runs in the order they will start: round-robin across owners (see
        ``_FAIR_QUEUE``), each round in order of arrival."""
        rows = (
            self._connection()
            .execute(
                f"SELECT {_RUN_COLUMNS} FROM ({_FAIR_QUEUE}) f JOIN runs USING (id) "
                "ORDER BY f.turn, f.queued_at, id"
            )
            .fetchall()
        )
        return [_run_from_row(r) for r in rows]

    def running(self) -> list[Run]:
        """The runs training right now, across every server process."""
        return self._running()

    def recent_finished(self, limit: int = 200) -> list[Run]:
        """The most recent runs that finished and used measured slot time, newest first."""
        rows = (
            self._connection()
            .execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status='finished' AND compute_seconds > 0 "
                "ORDER BY finished_at DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [_run_from_row(r) for r in rows]

    def count_running(self) -> int:
        """How many runs are training right now, across every server process."""
        row = self._connection().execute("SELECT COUNT(*) FROM runs WHERE status='running'")
        return int(row.fetchone()[0])

    def has_queued(self) -> bool:
        """True when some run waits (a cheap read before trying to claim)."""
        row = self._connection().execute("SELECT 1 FROM runs WHERE status='queued' LIMIT 1")
        return row.fetchone() is not None

    def claim_next(
        self, max_running: int, worker_host: str | None = None, worker_pid: int | None = None
    ) -> Run | None:
        """Move the next queued run (fair order) to "running" if fewer than ``max_running``
        run; else None.

        One IMMEDIATE transaction does the count and the claim, so several server processes
        (and their workers) sharing this file never start the same run twice nor exceed the cap
        together. ``worker_pid`` records who trains it, so a dead worker's run is found.
        """
        with self._tx() as db:
            running = db.execute("SELECT COUNT(*) FROM runs WHERE status='running'").fetchone()[0]
            if running >= max_running:
                return None
            row = db.execute(f"{_FAIR_ORDER} LIMIT 1").fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute(
                "UPDATE runs SET status='running', started_at=?, heartbeat_at=?, worker_host=?, "
                "worker_pid=? WHERE id=?",
                (now, now, worker_host or socket.gethostname(), worker_pid, row["id"]),
            )
        return self.load_run(row["id"])

    def mark_interrupted(
        self, alive: Callable[[int], bool] = pid_alive, stale_after_s: float = 120.0
    ) -> list[str]:
        """Mark "interrupted" every running run whose worker is gone; return their ids.

        On this host a run is orphaned when its worker process no longer exists; a run claimed
        elsewhere (or never given a pid) is orphaned when its heartbeat is older than
        ``stale_after_s``. Called when the server starts and by the scheduler as it supervises.
        """
        host = socket.gethostname()
        now = time.time()
        gone = []
        for run in self._running():
            if run.worker_host == host and run.worker_pid is not None:
                dead = not alive(run.worker_pid)
            else:
                dead = now - (run.heartbeat_at or run.started_at or 0.0) > stale_after_s
            if dead:
                gone.append(run.run_id)
        for run_id in gone:
            with self._tx() as db:
                db.execute(
                    f"UPDATE runs SET {_ACCOUNT}, status='interrupted', finished_at=:now, "
                    "error=:error WHERE id=:id AND status='running'",
                    {
                        "now": now,
                        "error": "The server stopped while this run was training.",
                        "id": run_id,
                    },
                )
        return gone

    def _running(self) -> list[Run]:
        rows = (
            self._connection()
            .execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE status='running'")
            .fetchall()
        )
        return [_run_from_row(r) for r in rows]


def _admit(db: sqlite3.Connection, owner: str, client: str | None, caps: QueueCaps) -> None:
    """Raise :class:`QueueRefusedError` when one more active run would break a fair-use cap."""
    active = "status IN ('queued', 'running')"
    mine = db.execute(f"SELECT COUNT(*) FROM runs WHERE owner=? AND {active}", (owner,))
    mine = mine.fetchone()[0]
    if mine >= caps.per_owner:
        raise QueueRefusedError(
            "You already have a run queued or training: wait for it, or stop it first."
            if caps.per_owner == 1
            else f"You already have {mine} runs queued or training, the most this server "
            f"allows per browser: wait for one to finish, or stop one first."
        )
    if client is not None:
        theirs = db.execute(f"SELECT COUNT(*) FROM runs WHERE client=? AND {active}", (client,))
        theirs = theirs.fetchone()[0]
        if theirs >= caps.per_client:
            raise QueueRefusedError(
                f"{theirs} runs from your network address are already queued or training, the "
                f"most this server allows per address: wait for one of them to finish."
            )
    waiting = db.execute("SELECT COUNT(*) FROM runs WHERE status='queued'").fetchone()[0]
    if waiting >= caps.total:
        raise QueueRefusedError(
            f"The training queue is full (this server lets at most {caps.total} runs wait): "
            f"try again in a few minutes."
        )


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"Unknown run status {status!r}; expected one of {STATUSES}.")


def _run_from_row(row: sqlite3.Row) -> Run:
    return Run(
        run_id=row["id"],
        owner=row["owner"],
        name=row["name"],
        status=row["status"],
        dataset=row["dataset"],
        config=json.loads(row["config_json"]),
        spec=json.loads(row["spec_json"]),
        meta=json.loads(row["meta_json"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        device=row["device"],
        error=row["error"],
        progress=json.loads(row["progress_json"]),
        final=json.loads(row["final_json"]),
        checkpoint_epoch=row["checkpoint_epoch"],
        stop_requested=bool(row["stop_requested"]),
        resume=bool(row["resume"]),
        worker_pid=row["worker_pid"],
        worker_host=row["worker_host"],
        client=row["client"],
        compute_seconds=row["compute_seconds"],
    )

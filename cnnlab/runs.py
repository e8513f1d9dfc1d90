"""The runs store: every training run, its curves, metrics and weights, so no run is ever lost.

``RunStore`` is the interface the app, the worker pools and the command line talk to;
:func:`open_store` picks the implementation. ``SqlRunStore`` is the one implementation, its SQL
written once for two backends: ``SqliteRunStore``, one SQLite file in the data directory (the
embedded default: no server, no configuration; WAL mode, so readers never block the writer) and
``PostgresRunStore``, a PostgreSQL server named by ``$CNNLAB_DATABASE_URL`` that any number of web
processes and worker pools on any number of machines share. Weights and checkpoints live beside
it on the shared storage (:mod:`cnnlab.storage`, the data directory by default).

Ownership is enforced here, not in the page: every method a learner's session can reach takes the
``owner`` id and behaves as if another owner's run did not exist. Methods without an owner
(``update_status``, ``append_steps``, …) are for the trusted worker that was handed a run id.

The data directory is ``$CNNLAB_DATA_DIR``, else the per-user data folder (``cnnlab/datadir.py``:
``~/.local/share/cnnlab``), whatever the working directory.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from cnnlab.storage import LocalStorage, Storage, atomic_write

if TYPE_CHECKING:  # torch is imported where a checkpoint is written or read: a process that
    import torch  # only queues or reads runs (a web page, a CLI query) starts seconds sooner

from cnnlab import datadir

STATUSES = ("queued", "running", "finished", "stopped", "failed", "interrupted", "timed_out")
ACTIVE_STATUSES = ("queued", "running")
# A run in one of these ended early but kept its last epoch's checkpoint, so it can go on.
RESUMABLE_STATUSES = ("stopped", "interrupted", "timed_out", "failed")
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.pt"


class StoreUnavailableError(ConnectionError):
    """The runs database cannot be reached (its server is down, or the address is wrong)."""


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
    needs: str = "any"  # which worker pools may train it: "any", "cpu" or "cuda" (device_need)

    @property
    def active(self) -> bool:
        """True while the run is waiting in the queue or training."""
        return self.status in ACTIVE_STATUSES

    @property
    def resumable(self) -> bool:
        """True when the run ended early and has a checkpoint to continue from."""
        return self.status in RESUMABLE_STATUSES and self.checkpoint_epoch is not None


class RunStore(Protocol):
    """What the app needs from a runs store (SQLite or PostgreSQL: :func:`open_store`)."""

    data_dir: Path
    storage: Storage

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
        """Record a new run (within the fair-use ``caps``) and return its id."""
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

    def request_resume(
        self, owner: str, run_id: str, client: str | None = None, caps: QueueCaps | None = None
    ) -> None:
        """Queue the owner's ended run again, to continue from its last checkpoint."""
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

    def set_shared(self, owner: str, run_id: str, shared: bool) -> None:
        """Let anyone with the run's id read it, or stop that; owner only."""
        ...

    def get_shared_run(self, run_id: str) -> Run:
        """The run if its owner shared it (owner id blanked), else :class:`RunNotFoundError`."""
        ...

    def get_shared_array(self, run_id: str, name: str) -> np.ndarray | None:
        """A named array of a shared run."""
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

    def set_meta(self, run_id: str, meta: Mapping[str, Any]) -> None:
        """Merge ``meta`` into the run's metadata."""
        ...

    def truncate_after(self, run_id: str, epoch: int, step: int) -> None:
        """Forget curve points recorded after a checkpoint, before resuming from it."""
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

    # The scheduler's and worker pools' side: the shared queue.
    def heartbeat(self, run_id: str, worker_host: str, worker_pid: int) -> bool:
        """Record that the run's worker is alive; False once the run is no longer its own."""
        ...

    def queue(self, device: str | None = None) -> list[Run]:
        """Queued runs in the order they will start (only those a ``device`` pool may train)."""
        ...

    def running(self) -> list[Run]:
        """The runs training right now, on every machine."""
        ...

    def recent_finished(self, limit: int = 200) -> list[Run]:
        """The most recent finished runs with measured slot time, newest first."""
        ...

    def has_queued(self, device: str | None = None) -> bool:
        """True when some run waits that a ``device`` pool may train."""
        ...

    def claim_next(
        self,
        max_running: int,
        worker_host: str | None = None,
        worker_pid: int | None = None,
        device: str | None = None,
    ) -> Run | None:
        """Atomically move the next queued run to "running" while fewer than ``max_running`` do."""
        ...

    def mark_interrupted(
        self, alive: Callable[[int], bool] = ..., stale_after_s: float | None = None
    ) -> list[str]:
        """Mark "interrupted" the running runs whose worker is gone; return their ids."""
        ...

    def close(self) -> None:
        """Close the connections the store holds."""
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


def host_id() -> str:
    """This machine's name in the runs store: ``$CNNLAB_HOST_ID``, else the host name.

    A worker's process id only means something on its own machine; the scheduler checks it
    there and relies on the heartbeat everywhere else.
    """
    return os.environ.get("CNNLAB_HOST_ID") or socket.gethostname()


def heartbeat_timeout_s() -> float:
    """Seconds without a heartbeat after which a run's worker counts as gone
    (``$CNNLAB_HEARTBEAT_TIMEOUT_S``, default 60: twelve missed beats of 5 s)."""
    return float(os.environ.get("CNNLAB_HEARTBEAT_TIMEOUT_S") or 60)


def save_weights(path: Path, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Save a model's state dict as safetensors, atomically."""
    atomic_write(path, lambda tmp: _write_safetensors(tmp, state_dict))


def _write_safetensors(path: Path, state_dict: Mapping[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(path))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors state dict onto the CPU."""
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")


# Each version is a list of statements in SQL both backends read (the PostgreSQL dialect maps
# REAL and BLOB to its own types); the schema_version table records how far a database has come,
# so an older one is upgraded in place when a newer app opens it.
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
    (
        # Which worker pools may train the run (see device_need): 'cpu', 'cuda' or 'any'.
        "ALTER TABLE runs ADD COLUMN needs TEXT NOT NULL DEFAULT 'any'",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)
DEVICE_NEEDS = ("any", "cpu", "cuda")

_RUN_COLUMNS = (
    "id, owner, name, status, dataset, config_json, spec_json, meta_json, created_at, "
    "started_at, finished_at, heartbeat_at, device, error, progress_json, final_json, "
    "checkpoint_epoch, stop_requested, resume, worker_pid, worker_host, client, compute_seconds, "
    "needs"
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
# Any constant: PostgreSQL's advisory lock that serialises migrations, admissions and claims.
_QUEUE_LOCK = 0x636E6E6C6162


def device_need(config: Mapping[str, Any]) -> str:
    """Which worker pools may train a run, from its device setting.

    ``cpu`` → only CPU pools; ``cuda``/``cuda:N`` → only GPU pools; empty (the default: "CUDA
    when available, else CPU") → any pool. A pool started with ``--device cpu`` trains "any" runs
    on its CPU, one started with ``--device cuda`` on its GPU.
    """
    device = str(config.get("device") or "").strip().lower()
    if not device:
        return "any"
    return "cuda" if device.startswith("cuda") else "cpu"


def _fair_queue(device: str | None) -> str:
    """Round-robin across owners: a queued run's turn is its place in its owner's own line (runs
    the owner already has training count as earlier turns); the queue runs turn by turn, each
    turn in order of arrival. A student who queues five runs cannot hold back one who queued a
    single run. ``device``: only runs a pool of that kind may train."""
    only = f" AND q.needs IN ('any', '{device}')" if device is not None else ""
    return (
        "SELECT q.id, ROW_NUMBER() OVER (PARTITION BY q.owner ORDER BY q.queued_at, q.id) "
        "+ (SELECT COUNT(*) FROM runs r WHERE r.owner = q.owner AND r.status = 'running') "
        f"AS turn, q.queued_at FROM runs q WHERE q.status = 'queued'{only}"
    )


def _check_device(device: str | None) -> None:
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"A worker pool's device is 'cpu' or 'cuda', not {device!r}.")


def _array_bytes(array: np.ndarray) -> bytes:
    """Serialise an array with its dtype and shape (.npy format, no pickle)."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _array_from(blob: bytes | None) -> np.ndarray | None:
    import io

    return None if blob is None else np.load(io.BytesIO(bytes(blob)), allow_pickle=False)


class _Dialect:
    """What differs between the two SQL backends; the store's queries are written once."""

    name = "sqlite"
    begin = "BEGIN IMMEDIATE"  # SQLite: take the one write lock up front, never midway
    greatest = "MAX"  # the larger of two values
    for_update = ""  # SQLite's write transaction already excludes every other writer
    skip_locked = ""

    def sql(self, text: str) -> str:
        """The query in this backend's placeholder style (written with ``?``)."""
        return text

    def ddl(self, text: str) -> str:
        """A migration statement in this backend's types."""
        return text

    def serialise(self, db: _Db) -> None:
        """Make this transaction the only one admitting or claiming runs until it ends."""


class _PostgresDialect(_Dialect):
    name = "postgresql"
    begin = "BEGIN"
    greatest = "GREATEST"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one instance per process, few queries
    def sql(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    def ddl(self, text: str) -> str:
        # REAL is 4 bytes in PostgreSQL (a timestamp would lose its seconds): use 8.
        text = re.sub(r"\bREAL\b", "DOUBLE PRECISION", text)
        return re.sub(r"\bBLOB\b", "BYTEA", text).replace(" WITHOUT ROWID", "")

    def serialise(self, db: _Db) -> None:
        # Read committed lets two transactions count the same running runs and both claim
        # one: the caps count rows, so admissions and claims take turns on one advisory lock
        # (held to the end of the transaction, a few milliseconds).
        db.execute("SELECT pg_advisory_xact_lock(?)", (_QUEUE_LOCK,))


class _Db:
    """A connection that speaks the store's SQL (``?`` placeholders) to either backend.

    A kept connection may have been closed by the server meanwhile (a database restart or
    fail-over): its first statement then runs again once on a new connection from
    ``reconnect``; nothing was done on the lost one yet, so nothing is done twice.
    """

    def __init__(
        self, conn: Any, dialect: _Dialect, reconnect: Callable[[], Any] | None = None
    ) -> None:
        self.conn = conn
        self.dialect = dialect
        self._reconnect = reconnect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns a cursor (``fetchone``, ``fetchall``)."""
        reconnect, self._reconnect = self._reconnect, None
        try:
            return self.conn.execute(self.dialect.sql(sql), tuple(params))
        except Exception:
            if reconnect is None or not getattr(self.conn, "broken", False):
                raise
        self.conn = reconnect()
        return self.conn.execute(self.dialect.sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for every row of parameters."""
        self.conn.cursor().executemany(self.dialect.sql(sql), rows)


class _Row(tuple):
    """A PostgreSQL row readable like ``sqlite3.Row``: by position or by column name."""

    index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            key = self.index[key]
        return tuple.__getitem__(self, key)


def _pg_rows(cursor: Any) -> Callable[[Sequence[Any]], _Row]:
    index = {c.name: i for i, c in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> _Row:
        row = _Row(values)
        row.index = index
        return row

    return make


class SqlRunStore:
    """:class:`RunStore` on a SQL database plus :mod:`cnnlab.storage` for the weights.

    Every query is written once, in SQL that SQLite and PostgreSQL both read (``_Dialect`` maps
    the few differences: placeholders, column types, locking). Subclasses only open connections:
    :class:`SqliteRunStore` (the embedded default) and :class:`PostgresRunStore` (a server that
    any number of web processes and worker pools share).
    """

    dialect: _Dialect = _Dialect()

    def __init__(self, data_dir: Path | str | None, storage: Storage | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage: Storage = storage if storage is not None else LocalStorage(self.data_dir)
        with self._tx() as db:
            self._migrate(db)

    # -- connections (the subclass's part) ---------------------------------------------------
    def _borrow(self) -> Any:
        raise NotImplementedError

    def _connect(self) -> Any:
        """A new connection, replacing one the server closed."""
        raise NotImplementedError

    def _give_back(self, conn: Any) -> None:
        """Return a borrowed connection (SQLite keeps one per thread: nothing to do)."""

    def close(self) -> None:
        """Close the connections this store holds (in this thread, for SQLite)."""

    @contextmanager
    def _read(self) -> Iterator[_Db]:
        """A connection for reads outside a transaction (each statement sees committed data)."""
        db = _Db(self._borrow(), self.dialect, self._connect)
        try:
            yield db
        finally:
            self._give_back(db.conn)

    @contextmanager
    def _tx(self) -> Iterator[_Db]:
        """A write transaction: committed when the block ends, rolled back on an exception."""
        db = _Db(self._borrow(), self.dialect, self._connect)
        try:
            db.execute(self.dialect.begin)
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            self._give_back(db.conn)

    def _migrate(self, db: _Db) -> None:
        self.dialect.serialise(db)  # two processes starting at once must not both migrate
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            version = self._legacy_version(db)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        else:
            version = row[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"The runs database has schema version {version}, newer than this app's "
                f"{SCHEMA_VERSION}: update the app or point it at another database."
            )
        for statements in _MIGRATIONS[version:]:
            for sql in statements:
                db.execute(self.dialect.ddl(sql))
        db.execute("UPDATE schema_version SET version=?", (SCHEMA_VERSION,))

    def _legacy_version(self, db: _Db) -> int:
        """The schema version of a database from before the schema_version table (0: new)."""
        return 0

    # -- paths -------------------------------------------------------------------------------
    @staticmethod
    def _key(run_id: str, name: str = "") -> str:
        if not run_id.isalnum():
            raise ValueError(f"Not a run id: {run_id!r}.")
        return f"runs/{run_id}/{name}" if name else f"runs/{run_id}"

    def run_dir(self, run_id: str) -> Path:
        """The folder holding this run's weights and checkpoint (on the shared storage)."""
        return self.storage.path(self._key(run_id))

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
                self.dialect.serialise(db)
                _admit(db, owner, client, caps)
            db.execute(
                "INSERT INTO runs (id, owner, name, status, dataset, config_json, spec_json, "
                "meta_json, created_at, queued_at, client, needs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
                    device_need(config),
                ),
            )
        return run_id

    def get_run(self, owner: str, run_id: str) -> Run:
        """The run ``run_id`` if ``owner`` owns it, else :class:`RunNotFoundError`."""
        with self._read() as db:
            row = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=? AND owner=?", (run_id, owner)
            ).fetchone()
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
        with self._read() as db:
            rows = db.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [_run_from_row(r) for r in rows]

    def delete_run(self, owner: str, run_id: str) -> None:
        """Delete the owner's run, its curves and its files; a running run is stopped first."""
        with self._tx() as db:
            row = db.execute(
                f"SELECT status FROM runs WHERE id=? AND owner=?{self.dialect.for_update}",
                (run_id, owner),
            ).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            if row["status"] in ACTIVE_STATUSES:
                raise ValueError("This run is still training: stop it first, then delete it.")
            db.execute("DELETE FROM runs WHERE id=?", (run_id,))
        self.storage.delete(self._key(run_id))

    def request_stop(self, owner: str, run_id: str) -> None:
        """Ask the worker to stop the owner's run after its current step (a queued run ends now)."""
        with self._tx() as db:
            row = db.execute("SELECT 1 FROM runs WHERE id=? AND owner=?", (run_id, owner))
            if row.fetchone() is None:
                raise RunNotFoundError(run_id)
            db.execute("UPDATE runs SET stop_requested=1 WHERE id=?", (run_id,))
            # Only while still queued: a worker that claimed it meanwhile sees the request.
            db.execute(
                "UPDATE runs SET status='stopped', finished_at=? WHERE id=? AND status='queued'",
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
            if caps is not None:
                self.dialect.serialise(db)
            row = db.execute(
                "SELECT status, checkpoint_epoch, compute_seconds FROM runs WHERE id=? AND owner=?"
                + self.dialect.for_update,
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
        with self._read() as db:
            rows = db.execute(
                "SELECT step, epoch, loss, accuracy, images_per_second, elapsed_seconds "
                "FROM steps WHERE run_id=? ORDER BY step",
                (run_id,),
            ).fetchall()
        names = ("step", "epoch", "loss", "accuracy", "images_per_second", "elapsed_seconds")
        table = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, len(names))
        return {n: table[:, i] for i, n in enumerate(names)}

    def epochs(self, owner: str, run_id: str) -> list[EpochRecord]:
        """The owner's run's per-epoch metrics, in order (kernels included)."""
        self.get_run(owner, run_id)
        return self._epochs(run_id)

    def _epochs(self, run_id: str) -> list[EpochRecord]:
        with self._read() as db:
            rows = db.execute(
                "SELECT epoch, train_loss, train_accuracy, val_loss, val_accuracy, seconds, lr, "
                "kernels FROM epochs WHERE run_id=? ORDER BY epoch",
                (run_id,),
            ).fetchall()
        return [EpochRecord(*tuple(r)[:7], kernels=_array_from(r["kernels"])) for r in rows]

    def get_array(self, owner: str, run_id: str, name: str) -> np.ndarray | None:
        """A named array stored with the owner's run (e.g. misclassified images)."""
        self.get_run(owner, run_id)
        with self._read() as db:
            row = db.execute(
                "SELECT data FROM arrays WHERE run_id=? AND name=?", (run_id, name)
            ).fetchone()
        return None if row is None else _array_from(row["data"])

    def weights_path(self, owner: str, run_id: str) -> Path | None:
        """The owner's run's last saved weights file, or None before the first epoch ends."""
        self.get_run(owner, run_id)
        key = self._key(run_id, WEIGHTS_FILE)
        return self.storage.path(key) if self.storage.exists(key) else None

    # -- sharing: a finished run opened read-only by anyone who has its link -------------------
    def set_shared(self, owner: str, run_id: str, shared: bool) -> None:
        """Let anyone with the run's id read it (``shared``), or stop that; owner only.

        The flag lives in the run's metadata; the id (64 random bits) is the unguessable part
        of the link.
        """
        with self._tx() as db:
            row = db.execute(
                f"SELECT meta_json FROM runs WHERE id=? AND owner=?{self.dialect.for_update}",
                (run_id, owner),
            ).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            meta = {**json.loads(row["meta_json"]), "shared": bool(shared)}
            db.execute("UPDATE runs SET meta_json=? WHERE id=?", (json.dumps(meta), run_id))

    def get_shared_run(self, run_id: str) -> Run:
        """The run ``run_id`` if its owner shared it, else :class:`RunNotFoundError`.

        The owner id is blanked: it is a browser's credential, not something to hand out.
        """
        try:
            run = self.load_run(run_id)
        except (RunNotFoundError, ValueError):
            raise RunNotFoundError(run_id) from None
        if run.meta.get("shared") is not True:
            raise RunNotFoundError(run_id)
        return dataclasses.replace(run, owner="")

    def get_shared_array(self, run_id: str, name: str) -> np.ndarray | None:
        """A named array of a shared run (see :meth:`get_shared_run`)."""
        self.get_shared_run(run_id)
        with self._read() as db:
            row = db.execute(
                "SELECT data FROM arrays WHERE run_id=? AND name=?", (run_id, name)
            ).fetchone()
        return None if row is None else _array_from(row["data"])

    # -- the worker's and scheduler's side ---------------------------------------------------
    def load_run(self, run_id: str) -> Run:
        """The run ``run_id`` whoever owns it (worker and scheduler only)."""
        with self._read() as db:
            row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
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

    def heartbeat(self, run_id: str, worker_host: str, worker_pid: int) -> bool:
        """Record that the run's worker is alive (its machine too), while the run trains.

        False once the run is no longer this worker's to train: another process marked it
        interrupted (its heartbeat went stale, e.g. across a network partition), or it was
        resumed and claimed elsewhere. The worker must then stop without writing to it.
        """
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE runs SET heartbeat_at=? WHERE id=? AND status='running' "
                "AND worker_host=? AND worker_pid=?",
                (time.time(), run_id, worker_host, worker_pid),
            )
            return cursor.rowcount > 0

    def append_steps(self, run_id: str, steps: Sequence[StepPoint]) -> None:
        """Append a batch of step points (one transaction for the whole batch)."""
        if not steps:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT INTO steps VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, step) DO UPDATE "
                "SET epoch=excluded.epoch, loss=excluded.loss, accuracy=excluded.accuracy, "
                "images_per_second=excluded.images_per_second, "
                "elapsed_seconds=excluded.elapsed_seconds",
                [
                    (
                        run_id,
                        int(s.step),
                        int(s.epoch),
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
                "INSERT INTO epochs VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id, epoch) DO "
                "UPDATE SET train_loss=excluded.train_loss, "
                "train_accuracy=excluded.train_accuracy, val_loss=excluded.val_loss, "
                "val_accuracy=excluded.val_accuracy, seconds=excluded.seconds, lr=excluded.lr, "
                "kernels=excluded.kernels",
                (
                    run_id,
                    int(record.epoch),
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
                "INSERT INTO arrays VALUES (?,?,?) ON CONFLICT (run_id, name) DO UPDATE "
                "SET data=excluded.data",
                (run_id, name, _array_bytes(array)),
            )

    def set_meta(self, run_id: str, meta: Mapping[str, Any]) -> None:
        """Merge ``meta`` (classes, input shape, normalisation…) into the run's metadata."""
        with self._tx() as db:
            row = db.execute(
                f"SELECT meta_json FROM runs WHERE id=?{self.dialect.for_update}", (run_id,)
            ).fetchone()
            merged = {**json.loads(row["meta_json"]), **dict(meta)}
            db.execute("UPDATE runs SET meta_json=? WHERE id=?", (json.dumps(merged), run_id))

    def _account(self) -> str:
        """The slot time of the attempt that ends now (claim to end), added to the run's total
        (one ``?``: now)."""
        return (
            "compute_seconds = compute_seconds + CASE WHEN status = 'running' AND started_at IS "
            f"NOT NULL THEN {self.dialect.greatest}(0, ? - started_at) ELSE 0 END"
        )

    def finish(
        self, run_id: str, status: str, final: Mapping[str, Any] | None = None, error: str = ""
    ) -> None:
        """Record how the run ended: its status, final metrics and error text."""
        _check_status(status)
        now = time.time()
        with self._tx() as db:
            db.execute(
                f"UPDATE runs SET {self._account()}, status=?, final_json=?, error=?, "
                "finished_at=?, resume=0 WHERE id=?",
                (now, status, json.dumps(dict(final or {})), error or None, now, run_id),
            )

    def stop_requested(self, run_id: str) -> bool:
        """True once someone asked the run to stop."""
        with self._read() as db:
            row = db.execute("SELECT stop_requested FROM runs WHERE id=?", (run_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def save_checkpoint(self, run_id: str, epoch: int, state: Mapping[str, Any]) -> None:
        """Atomically save weights (safetensors) and training state (torch.save) after ``epoch``.

        ``state["model"]`` must be the model's state dict; the rest (optimizer, scheduler, RNG,
        epoch) is whatever the trainer needs to resume. The weights file is written first and
        the database records the epoch last, so a crash in between leaves a consistent pair.
        """
        self.storage.put(
            self._key(run_id, WEIGHTS_FILE), lambda tmp: _write_safetensors(tmp, state["model"])
        )
        import torch

        self.storage.put(
            self._key(run_id, CHECKPOINT_FILE), lambda tmp: torch.save(dict(state), tmp)
        )
        with self._tx() as db:
            db.execute("UPDATE runs SET checkpoint_epoch=? WHERE id=?", (epoch, run_id))

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The last saved training state (loaded with ``weights_only=True``), or None."""
        key = self._key(run_id, CHECKPOINT_FILE)
        if not self.storage.exists(key):
            return None
        import torch

        return torch.load(self.storage.path(key), map_location="cpu", weights_only=True)

    def save_final_weights(self, run_id: str, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Atomically replace the run's weights with those of the model as it ended.

        The last epoch's checkpoint is not always the final model: early stopping restores the
        best epoch's weights, and a stop mid-epoch keeps training past the checkpoint. The
        weights file must be the network the final metrics were measured on.
        """
        self.storage.put(
            self._key(run_id, WEIGHTS_FILE), lambda tmp: _write_safetensors(tmp, state_dict)
        )

    def truncate_after(self, run_id: str, epoch: int, step: int) -> None:
        """Forget curve points recorded after a checkpoint, before resuming from it."""
        with self._tx() as db:
            db.execute("DELETE FROM steps WHERE run_id=? AND step>?", (run_id, step))
            db.execute("DELETE FROM epochs WHERE run_id=? AND epoch>?", (run_id, epoch))

    def queue(self, device: str | None = None) -> list[Run]:
        """Queued runs in the order they will start: round-robin across owners (see
        ``_fair_queue``), each round in order of arrival; ``device``: only those a pool of
        that kind may train."""
        _check_device(device)
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM ({_fair_queue(device)}) f JOIN runs USING (id) "
                "ORDER BY f.turn, f.queued_at, id"
            ).fetchall()
        return [_run_from_row(r) for r in rows]

    def running(self) -> list[Run]:
        """The runs training right now, across every server process and machine."""
        with self._read() as db:
            rows = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE status='running'").fetchall()
        return [_run_from_row(r) for r in rows]

    def recent_finished(self, limit: int = 200) -> list[Run]:
        """The most recent runs that finished and used measured slot time, newest first."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status='finished' AND compute_seconds > 0 "
                "ORDER BY finished_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_run_from_row(r) for r in rows]

    def count_running(self) -> int:
        """How many runs are training right now, across every server process and machine."""
        with self._read() as db:
            return int(db.execute("SELECT COUNT(*) FROM runs WHERE status='running'").fetchone()[0])

    def has_queued(self, device: str | None = None) -> bool:
        """True when some run waits that a ``device`` pool may train (a cheap read before
        trying to claim)."""
        _check_device(device)
        only = f" AND needs IN ('any', '{device}')" if device is not None else ""
        with self._read() as db:
            row = db.execute(f"SELECT 1 FROM runs WHERE status='queued'{only} LIMIT 1")
            return row.fetchone() is not None

    def claim_next(
        self,
        max_running: int,
        worker_host: str | None = None,
        worker_pid: int | None = None,
        device: str | None = None,
    ) -> Run | None:
        """Move the next queued run (fair order; only runs a ``device`` pool may train) to
        "running" if fewer than ``max_running`` run in all; else None.

        One transaction counts and claims, serialised against every other claim (SQLite's write
        lock; PostgreSQL's advisory lock, the row itself taken ``FOR UPDATE SKIP LOCKED`` so a
        stop or delete in flight is passed over), so any number of server processes and worker
        pools sharing the store never start the same run twice nor exceed the cap together.
        ``worker_host`` and ``worker_pid`` record who trains it, so a lost worker's run is found.
        """
        _check_device(device)
        with self._tx() as db:
            self.dialect.serialise(db)
            running = db.execute("SELECT COUNT(*) FROM runs WHERE status='running'").fetchone()[0]
            if running >= max_running:
                return None
            candidates = db.execute(
                f"SELECT id FROM ({_fair_queue(device)}) f ORDER BY turn, queued_at, id LIMIT 8"
            ).fetchall()
            claimed = None
            for (candidate,) in candidates:
                row = db.execute(
                    f"SELECT id FROM runs WHERE id=? AND status='queued'{self.dialect.skip_locked}",
                    (candidate,),
                ).fetchone()
                if row is not None:
                    claimed = candidate
                    break
            if claimed is None:
                return None
            now = time.time()
            db.execute(
                "UPDATE runs SET status='running', started_at=?, heartbeat_at=?, worker_host=?, "
                "worker_pid=? WHERE id=?",
                (now, now, worker_host or host_id(), worker_pid, claimed),
            )
        return self.load_run(claimed)

    def mark_interrupted(
        self, alive: Callable[[int], bool] = pid_alive, stale_after_s: float | None = None
    ) -> list[str]:
        """Mark "interrupted" every running run whose worker is gone; return their ids.

        On this host (:func:`host_id`) a run is orphaned when its worker process no longer
        exists; a run claimed on another machine (or never given a pid) is orphaned when its
        heartbeat is older than ``stale_after_s`` (default :func:`heartbeat_timeout_s`): its
        machine was lost or its pool killed. Called when a server or pool starts and by every
        scheduler as it supervises, so any surviving process notices.
        """
        stale_after_s = heartbeat_timeout_s() if stale_after_s is None else stale_after_s
        host = host_id()
        now = time.time()
        gone: dict[str, tuple[Run, str]] = {}
        for run in self.running():
            if run.worker_host == host and run.worker_pid is not None:
                if not alive(run.worker_pid):
                    gone[run.run_id] = (run, "The server stopped while this run was training.")
            elif now - (run.heartbeat_at or run.started_at or 0.0) > stale_after_s:
                gone[run.run_id] = (
                    run,
                    "The worker training this run stopped answering (its machine or pool went "
                    "away); resume it to continue from its last checkpoint.",
                )
        marked = []
        for run_id, (run, error) in gone.items():
            with self._tx() as db:
                # Only as seen: not if it beat since, or was resumed and claimed by another.
                cursor = db.execute(
                    f"UPDATE runs SET {self._account()}, status='interrupted', finished_at=?, "
                    "error=? WHERE id=? AND status='running' AND COALESCE(heartbeat_at, 0) <= ? "
                    "AND COALESCE(worker_host, '') = ? AND COALESCE(worker_pid, -1) = ?",
                    (
                        now,
                        now,
                        error,
                        run_id,
                        run.heartbeat_at or 0.0,
                        run.worker_host or "",
                        -1 if run.worker_pid is None else run.worker_pid,
                    ),
                )
                if cursor.rowcount > 0:
                    marked.append(run_id)
        return marked


class SqliteRunStore(SqlRunStore):
    """:class:`SqlRunStore` on one SQLite file in the data directory (WAL mode: readers never
    block the writer, so the page can poll while a worker writes): no server, no configuration.

    Safe to share between threads (each thread gets its own connection) and between processes
    (SQLite's file locks; writers wait up to ``busy_timeout_ms`` instead of failing).
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        busy_timeout_ms: int = 10_000,
        storage: Storage | None = None,
    ) -> None:
        folder = Path(data_dir) if data_dir is not None else default_data_dir()
        self.db_path = folder / "runs.sqlite3"
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        super().__init__(folder, storage)

    def _borrow(self) -> sqlite3.Connection:
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

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _legacy_version(self, db: _Db) -> int:
        # Before the schema_version table, SQLite files counted their version in user_version.
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def connection_limits() -> tuple[int, float]:
    """How many connections one process may have open to PostgreSQL at once
    (``$CNNLAB_DB_MAX_CONNECTIONS``, default 8) and how long a query waits for one of them
    when all are in use (``$CNNLAB_DB_WAIT_S``, default 10)."""
    values = []
    for name, default, least in (("CNNLAB_DB_MAX_CONNECTIONS", 8, 1), ("CNNLAB_DB_WAIT_S", 10, 0)):
        raw = os.environ.get(name, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = float("nan")
        if not value >= least:  # also refuses nan
            raise ValueError(f"{name}={raw!r} must be a number of at least {least}.")
        values.append(value)
    return int(values[0]), values[1]


class PostgresRunStore(SqlRunStore):
    """:class:`SqlRunStore` on a PostgreSQL server (``postgresql://user:pw@host:port/db``) that
    every web process and worker pool of a deployment shares; weights stay on the shared
    storage (:mod:`cnnlab.storage`).

    Connections are kept in a small pool (threads borrow one per query or transaction): a page
    polls the store several times a second, and opening a server connection costs milliseconds.
    At most ``max_open`` are open at once, borrowed or idle, so a busy classroom server cannot
    use up the server's ``max_connections``: one more thread waits up to ``wait_s`` for one to
    come back, then gets :class:`StoreUnavailableError` (a sentence, not a traceback).
    """

    dialect = _PostgresDialect()

    def __init__(
        self,
        url: str,
        data_dir: Path | str | None = None,
        storage: Storage | None = None,
        max_idle: int = 8,
        max_open: int | None = None,
        wait_s: float | None = None,
    ) -> None:
        limit, wait = connection_limits()
        self.url = url
        self.max_open = limit if max_open is None else max_open
        self.wait_s = wait if wait_s is None else wait_s
        if self.max_open < 1:
            raise ValueError(f"A store needs at least one connection; got {self.max_open}.")
        self.max_idle = min(max_idle, self.max_open)
        self._idle: list[Any] = []
        self._open = 0  # this process's connections, borrowed or idle
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)  # a connection came back or closed
        self._pid = os.getpid()
        super().__init__(data_dir, storage)

    def _forget_if_forked(self) -> None:
        # Called with the lock held: the parent's connections are not this process's.
        if self._pid != os.getpid():
            self._idle, self._open, self._pid = [], 0, os.getpid()

    def _borrow(self) -> Any:
        with self._returned:
            self._forget_if_forked()
            deadline = time.monotonic() + self.wait_s
            while not self._idle and self._open >= self.max_open:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailableError(
                        f"The runs database is busy: all {self.max_open} connections this "
                        "server process may open to it (CNNLAB_DB_MAX_CONNECTIONS) stayed in use "
                        f"for {self.wait_s:g} s, so try again in a moment."
                    )
                self._returned.wait(left)
                self._forget_if_forked()
            if self._idle:
                return self._idle.pop()
            self._open += 1  # counted before connecting, so no other thread takes this place
        try:
            return self._connect()
        except BaseException:
            self._closed_one()
            raise

    def _closed_one(self) -> None:
        with self._returned:
            if self._pid == os.getpid():
                self._open -= 1
                self._returned.notify()

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(
                self.url, autocommit=True, row_factory=_pg_rows, connect_timeout=10
            )
        except psycopg.OperationalError as error:
            where = urlsplit(self.url)  # host and port only: never the password
            raise StoreUnavailableError(
                f"The runs database (PostgreSQL at {where.hostname}:{where.port or 5432}) cannot "
                "be reached, so training and saved runs are unavailable until it is back."
            ) from error

    def _give_back(self, conn: Any) -> None:
        from psycopg.pq import TransactionStatus

        healthy = not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
        with self._returned:
            if healthy and self._pid == os.getpid() and len(self._idle) < self.max_idle:
                self._idle.append(conn)
                self._returned.notify()
                return
        conn.close()
        self._closed_one()

    def close(self) -> None:
        """Close every idle connection."""
        with self._returned:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._closed_one()


_STORES: dict[tuple[str, str, int], SqlRunStore] = {}
_STORES_LOCK = threading.Lock()


def open_store(data_dir: Path | str | None = None) -> SqlRunStore:
    """The runs store every caller uses: PostgreSQL when ``$CNNLAB_DATABASE_URL`` is set, else
    SQLite in the data directory. One store per database and data directory in each process
    (it holds the connections), created and migrated on first use."""
    url = os.environ.get("CNNLAB_DATABASE_URL", "").strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(
            "CNNLAB_DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host/db); "
            "leave it unset for the built-in SQLite store."
        )
    folder = (Path(data_dir) if data_dir is not None else default_data_dir()).resolve()
    key = (url, str(folder), os.getpid())
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = PostgresRunStore(url, folder) if url else SqliteRunStore(folder)
            _STORES[key] = store
        return store


def _admit(db: _Db, owner: str, client: str | None, caps: QueueCaps) -> None:
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


def _run_from_row(row: Any) -> Run:
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
        needs=row["needs"],
    )

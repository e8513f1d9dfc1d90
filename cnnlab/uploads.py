"""A learner's own images (a zip of one folder per class) as a data set a worker can train on.

The page receives the zip in the web process, but training runs in a worker process: so a zip
that reads well is saved once under ``<data dir>/uploads/<sha256>.zip`` and the run's config
names it by that digest. The worker reads the same bytes back (checking the digest) and splits
them with the same seed, so it trains on exactly the images the learner saw on the page.

Kept zips are bounded three ways. Each owner (browser) has a quota, ``CNNLAB_UPLOAD_QUOTA_MB``
(default 50): saving past it forgets that owner's least recently saved zips first. All owners
together have ``CNNLAB_UPLOADS_TOTAL_MB`` (default 2000), enforced the same way across owners
(a browser that drops its cookie is a new owner, so only this bounds the disk). And every zip
expires ``CNNLAB_UPLOAD_TTL_HOURS`` (default 72) after its owners last saved it. Who saved
what is an empty marker file ``uploads/owners/<hash of owner>/<digest>``: a zip shared by two
owners stays until neither marks it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from cnnlab.data import DataBundle, load_image_folder_zip
from cnnlab.runs import default_data_dir
from cnnlab.storage import LocalStorage

UPLOAD = "upload"
"""The data set name of a run trained on a learner's zip."""
UPLOADS_DIR = "uploads"
OWNERS_DIR = "owners"
QUOTA_MB = 50
TOTAL_MB = 2000
TTL_HOURS = 72
SIZES = (16, 28, 32, 48, 64)
"""Image sizes offered for uploaded images (pixels per side)."""
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def zip_digest(data: bytes) -> str:
    """SHA-256 of the zip's bytes, in hex: its name on disk and its cache key."""
    return hashlib.sha256(data).hexdigest()


def _path(digest: str, data_dir: Path | str | None) -> Path:
    # Only a hex digest reaches the file system, so a crafted config cannot point elsewhere.
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ValueError(f"{str(digest)[:70]!r} is not the digest of an uploaded zip.")
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return LocalStorage(root).path(f"{UPLOADS_DIR}/{digest}.zip")


def read_zip(
    data: bytes,
    size: int = 28,
    grayscale: bool = True,
    limit: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> DataBundle:
    """The zip as a data set (see :func:`cnnlab.data.load_image_folder_zip`), ``limit`` images
    per split at most; raises ``ValueError`` saying what is wrong with it. The images are
    decoded in a budgeted child process, stopped early once ``cancelled()`` is true."""
    if isinstance(size, bool) or size not in SIZES:
        sizes = ", ".join(map(str, SIZES))
        raise ValueError(f"The image size must be one of {sizes}, got {str(size)[:20]}.")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10**7
    ):
        raise ValueError(f"The image limit must be a whole number of at least 1, got {limit!r}.")
    bundle = load_image_folder_zip(data, size, grayscale, seed=0, cancelled=cancelled)
    if limit is None or limit >= max(len(bundle.train_y), len(bundle.test_y)):
        return bundle
    # Keep the statistics of the whole set: the split is per class, the cut is not.
    return DataBundle(
        bundle.name,
        bundle.classes,
        bundle.train_x[:limit],
        bundle.train_y[:limit],
        bundle.test_x[:limit],
        bundle.test_y[:limit],
        bundle.mean,
        bundle.std,
        bundle.flip_ok,
    )


def _env_limit(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"The setting {name} must be a number, not {raw!r}.") from None
    if not value > 0:
        raise ValueError(f"The setting {name} must be above 0, not {raw!r}.")
    return value


def quota_bytes() -> int:
    """Bytes of kept zips one owner may have (``CNNLAB_UPLOAD_QUOTA_MB``, default 50)."""
    return int(_env_limit("CNNLAB_UPLOAD_QUOTA_MB", QUOTA_MB) * 1_000_000)


def total_bytes() -> int:
    """Bytes of kept zips for all owners together (``CNNLAB_UPLOADS_TOTAL_MB``, default 2000):
    owners are anonymous browsers, so only a server-wide cap bounds the disk."""
    return int(_env_limit("CNNLAB_UPLOADS_TOTAL_MB", TOTAL_MB) * 1_000_000)


def ttl_seconds() -> float:
    """How long a kept zip outlives its last save (``CNNLAB_UPLOAD_TTL_HOURS``, default 72)."""
    return _env_limit("CNNLAB_UPLOAD_TTL_HOURS", TTL_HOURS) * 3600


def _owner_dir(root: Path, owner: str) -> Path:
    # Owner ids come from cookies: only their hash reaches the file system.
    key = hashlib.sha256(owner.encode("utf-8", "replace")).hexdigest()[:32]
    return root / UPLOADS_DIR / OWNERS_DIR / key


def save_zip(
    data: bytes,
    data_dir: Path | str | None = None,
    *,
    owner: str = "anonymous",
    now: float | None = None,
) -> str:
    """Keep the zip's bytes for the worker (once: same bytes, same file) on ``owner``'s quota,
    forgetting their oldest zips past it and everyone's expired ones; returns the digest."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    now = time.time() if now is None else now
    quota = quota_bytes()
    if len(data) > quota:
        raise ValueError(
            f"The zip is {len(data) / 1e6:.1f} MB; each learner may keep up to "
            f"{quota / 1e6:.0f} MB of uploads on this server."
        )
    prune_uploads(root, now)
    digest = zip_digest(data)
    # On the shared storage (cnnlab.storage): a worker on another machine reads it.
    storage, key = LocalStorage(root), f"{UPLOADS_DIR}/{digest}.zip"
    if not storage.exists(key):
        storage.put(key, lambda tmp: tmp.write_bytes(data))
    mark = _owner_dir(root, owner) / digest
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.touch()
    os.utime(mark, (now, now))
    _enforce_quota(root, mark.parent, quota, keep=digest)
    _enforce_total(root, total_bytes(), keep=digest)
    return digest


def _enforce_total(root: Path, limit: int, keep: str) -> None:
    """Forget the least recently saved zips of any owner until all of them fit in ``limit``."""
    zips = root / UPLOADS_DIR
    total = sum(_stat(path, "st_size") for path in zips.glob("*.zip"))
    if total <= limit:
        return
    marks = sorted((zips / OWNERS_DIR).glob("*/*"), key=lambda m: _stat(m, "st_mtime"))
    for mark in marks:
        if total <= limit:
            break
        if mark.name == keep:
            continue
        path = _path(mark.name, root)
        size = _stat(path, "st_size")
        _forget(root, mark)
        if not path.exists():
            total -= size


def _enforce_quota(root: Path, marks_dir: Path, quota: int, keep: str) -> None:
    """Forget an owner's least recently saved zips until theirs fit in ``quota``."""
    marks = sorted(marks_dir.iterdir(), key=lambda m: _stat(m, "st_mtime"))
    sizes = {m: _stat(_path(m.name, root), "st_size") for m in marks}
    total = sum(sizes.values())
    for mark in marks:
        if total <= quota:
            break
        if mark.name != keep:
            total -= sizes[mark]
            _forget(root, mark)


def _forget(root: Path, mark: Path) -> None:
    """Remove one owner's mark, and the zip once no owner marks it."""
    mark.unlink(missing_ok=True)
    if not any((root / UPLOADS_DIR / OWNERS_DIR).glob(f"*/{mark.name}")):
        _path(mark.name, root).unlink(missing_ok=True)


def _stat(path: Path, field: str) -> float:
    """A stat field, 0 for a file another process has just removed."""
    try:
        return getattr(path.stat(), field)
    except FileNotFoundError:
        return 0


def prune_uploads(data_dir: Path | str | None = None, now: float | None = None) -> int:
    """Delete marks and zips older than :func:`ttl_seconds`; returns how many zips went."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    now = time.time() if now is None else now
    oldest = now - ttl_seconds()
    owners = root / UPLOADS_DIR / OWNERS_DIR
    for mark in owners.glob("*/*"):
        if _stat(mark, "st_mtime") < oldest:
            mark.unlink(missing_ok=True)
    marked = {mark.name for mark in owners.glob("*/*")}
    removed = 0
    for path in (root / UPLOADS_DIR).glob("*.zip"):
        if path.stem not in marked and _stat(path, "st_mtime") < oldest:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def load_uploaded_zip(
    digest: str,
    data_dir: Path | str | None = None,
    size: int = 28,
    grayscale: bool = True,
    limit: int | None = None,
) -> DataBundle:
    """The zip saved by :func:`save_zip` as a data set, exactly as :func:`read_zip` read it."""
    path = _path(digest, data_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(
            "The images uploaded for this run are no longer on the server; upload the zip again."
        ) from None
    if zip_digest(data) != digest:
        raise ValueError("The uploaded zip on the server is damaged; upload it again.")
    return read_zip(data, size, grayscale, limit)

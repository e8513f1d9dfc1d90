"""A learner's own images (a zip of one folder per class) as a data set a worker can train on.

The page receives the zip in the web process, but training runs in a worker process: so a zip
that reads well is saved once under ``<data dir>/uploads/<sha256>.zip`` and the run's config
names it by that digest. The worker reads the same bytes back (checking the digest) and splits
them with the same seed, so it trains on exactly the images the learner saw on the page.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cnnlab.data import DataBundle, load_image_folder_zip
from cnnlab.runs import atomic_write, default_data_dir

UPLOAD = "upload"
"""The data set name of a run trained on a learner's zip."""
UPLOADS_DIR = "uploads"
SIZES = (16, 28, 32, 48, 64)
"""Image sizes offered for uploaded images (pixels per side)."""
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def zip_digest(data: bytes) -> str:
    """SHA-256 of the zip's bytes, in hex: its name on disk and its cache key."""
    return hashlib.sha256(data).hexdigest()


def _path(digest: str, data_dir: Path | str | None) -> Path:
    # Only a hex digest reaches the file system, so a crafted config cannot point elsewhere.
    if not _DIGEST.match(digest):
        raise ValueError(f"{digest!r} is not the digest of an uploaded zip.")
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return root / UPLOADS_DIR / f"{digest}.zip"


def read_zip(
    data: bytes, size: int = 28, grayscale: bool = True, limit: int | None = None
) -> DataBundle:
    """The zip as a data set (see :func:`cnnlab.data.load_image_folder_zip`), ``limit`` images
    per split at most; raises ``ValueError`` saying what is wrong with it."""
    if size not in SIZES:
        raise ValueError(f"The image size must be one of {', '.join(map(str, SIZES))}, got {size}.")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    bundle = load_image_folder_zip(data, size, grayscale, seed=0)
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


def save_zip(data: bytes, data_dir: Path | str | None = None) -> str:
    """Keep the zip's bytes for the worker (once: same bytes, same file); returns the digest."""
    digest = zip_digest(data)
    path = _path(digest, data_dir)
    if not path.exists():
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return digest


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

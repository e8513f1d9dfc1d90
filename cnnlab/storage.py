"""Where run weights, checkpoints and uploaded zips live: one small interface, a folder today.

Every machine of a deployment (web replicas, worker pools) must see the same files: a worker on
one machine writes a run's weights that a page on another reads. :class:`LocalStorage` keeps them
under the data directory, which a deployment mounts as a shared volume (NFS, a Kubernetes
``ReadWriteMany`` claim). An object store (S3, GCS) would implement the same five methods, with
``path`` downloading to a local cache, and nothing else would change.

Keys are ``/``-separated relative names such as ``runs/<run id>/weights.safetensors``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

_KEY_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Storage(Protocol):
    """Files shared by every process of a deployment, named by keys."""

    def put(self, key: str, write: Callable[[Path], None]) -> None:
        """Store what ``write(tmp)`` writes to a local temp file under ``key``, atomically."""
        ...

    def path(self, key: str) -> Path:
        """A local file holding ``key``'s bytes, to read (it may not exist)."""
        ...

    def exists(self, key: str) -> bool:
        """True when something is stored under ``key``."""
        ...

    def delete(self, prefix: str) -> None:
        """Delete ``prefix`` and everything stored under it; no error when absent."""
        ...


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temp file beside ``path`` then rename it into place.

    A crash mid-write leaves the previous file intact: readers see the old or the new weights,
    never half of them (os.replace is atomic on one file system, NFS included).
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


class LocalStorage:
    """:class:`Storage` in a folder (the data directory: a shared volume in a deployment)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file of ``key`` under the root; a key that could leave the root is refused."""
        parts = key.split("/")
        if not all(_KEY_PART.fullmatch(p) for p in parts):
            raise ValueError(f"Not a storage key: {key!r}.")
        return self.root.joinpath(*parts)

    def put(self, key: str, write: Callable[[Path], None]) -> None:
        """Write ``key`` atomically (a temp file beside it, then a rename)."""
        atomic_write(self.path(key), write)

    def exists(self, key: str) -> bool:
        """True when the file (or folder) of ``key`` exists."""
        return self.path(key).exists()

    def delete(self, prefix: str) -> None:
        """Remove the file or folder of ``prefix``."""
        target = self.path(prefix)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

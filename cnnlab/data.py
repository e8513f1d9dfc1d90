"""Data sets as whole tensors: an embedded shapes set, MNIST-style IDX files, CIFAR-10 batches,
and a learner's zip of one folder per class; plus batch normalisation and augmentation.

Everything ends up as a :class:`DataBundle` of uint8 images (N, C, H, W) and int64 labels, small
enough to keep on the training device as one tensor (MNIST: 47 MB, CIFAR-10: 184 MB), so the
training loop never touches a Python object per image.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

from cnnlab import class_folders, datadir, sandbox
from cnnlab.inflate import gunzip

DATASETS = ("shapes", "mnist", "fashion_mnist", "kmnist", "cifar10")
SHAPE_CLASSES = (
    "circle",
    "disk",
    "square",
    "triangle",
    "cross",
    "star",
    "heart",
    "crescent",
    "arrow",
    "half-disk",
)


@dataclass(frozen=True)
class DataBundle:
    """A labelled image set split into train and test, as uint8 tensors."""

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor  # (N, C, H, W) uint8
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor  # (M, C, H, W) uint8
    test_y: torch.Tensor  # (M,) int64
    mean: tuple[float, ...]  # per channel, of train_x / 255
    std: tuple[float, ...]
    flip_ok: bool = False  # whether a mirrored image is still of its class (not for digits)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_x.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)


def bundle_arrays(
    name: str,
    classes: tuple[str, ...],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    flip_ok: bool,
) -> DataBundle:
    """Wrap numpy arrays (images N×C×H×W uint8, labels) and compute the per-channel statistics."""
    # "W": arrays read straight from a file's bytes are read-only; torch needs writable memory.
    train_x = torch.from_numpy(np.require(train[0], np.uint8, ["C", "W"]))
    test_x = torch.from_numpy(np.require(test[0], np.uint8, ["C", "W"]))
    train_y = torch.from_numpy(np.asarray(train[1], dtype=np.int64))
    test_y = torch.from_numpy(np.asarray(test[1], dtype=np.int64))
    scaled = train_x.float().div_(255)
    mean = tuple(float(m) for m in scaled.mean(dim=(0, 2, 3)))
    # A constant channel would divide by zero when normalising; 1.0 leaves it as is.
    std = tuple(float(s) if s > 1e-6 else 1.0 for s in scaled.std(dim=(0, 2, 3)))
    return DataBundle(name, classes, train_x, train_y, test_x, test_y, mean, std, flip_ok)


# ---------------------------------------------------------------------------------------------
# The embedded shapes set
# ---------------------------------------------------------------------------------------------


def _star(x: np.ndarray, y: np.ndarray, outer: float = 0.95, inner: float = 0.4) -> np.ndarray:
    """Filled five-pointed star (pointing up) in canonical coordinates."""
    sector = 2 * np.pi / 5
    # Fold the plane into one half-sector: the point (outer, 0) and the notch at angle π/5.
    phi = np.abs(np.mod(np.arctan2(-y, x) - np.pi / 2 + sector / 2, sector) - sector / 2)
    rho = np.hypot(x, y)
    qx, qy = rho * np.cos(phi), rho * np.sin(phi)
    bx, by = inner * np.cos(sector / 2), inner * np.sin(sector / 2)
    # Inside when q is on the origin's side of the edge from the tip (outer, 0) to the notch.
    return (bx - outer) * qy - by * (qx - outer) >= 0


def _shape_masks(label: int, x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Boolean mask of shape ``label`` at canonical coordinates (unit radius, y down).

    ``t`` is the stroke width in the same units, broadcast against ``x``.
    """
    name = SHAPE_CLASSES[label]
    if name == "circle":
        return np.abs(np.hypot(x, y) - 0.8) <= t / 2
    if name == "disk":
        return np.hypot(x, y) <= 0.8
    if name == "square":
        d = np.maximum(np.abs(x), np.abs(y))
        return (d <= 0.72) & (d >= 0.72 - t)
    if name == "triangle":
        # Equilateral, pointing up: the signed distance is the largest over the three edges.
        angles = np.array([np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3])
        d = np.max([x * np.cos(a) - y * np.sin(a) for a in angles + np.pi], axis=0) - 0.45
        return (d <= 0) & (d >= -t)
    if name == "cross":
        w = 0.08 + 0.6 * t
        return ((np.abs(x) <= w) & (np.abs(y) <= 0.85)) | ((np.abs(y) <= w) & (np.abs(x) <= 0.85))
    if name == "star":
        return _star(x, y)
    if name == "heart":
        hx, hy = 1.15 * x, -1.15 * y + 0.25
        return (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3 <= 0
    if name == "crescent":
        return (np.hypot(x, y) <= 0.8) & (np.hypot(x - 0.42, y + 0.1) > 0.62)
    if name == "arrow":
        w = 0.1 + 0.3 * t
        shaft = (x >= -0.85) & (x <= 0.15) & (np.abs(y) <= w)
        head = (x >= 0.1) & (np.abs(y) <= (0.85 - x) * 0.85)
        return shaft | head
    # half-disk: flat side up, centred on its area
    return (np.hypot(x, y + 0.35) <= 0.85) & (y >= -0.35)


def _render_shapes(labels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Render one image per label as uint8 (n, size, size), anti-aliased by 2×2 supersampling."""
    n = len(labels)
    scale = size / 28
    radius = rng.uniform(7.5, 12.0, n) * scale
    cx = size / 2 + rng.uniform(-3.5, 3.5, n) * scale
    cy = size / 2 + rng.uniform(-3.5, 3.5, n) * scale
    angle = rng.uniform(-np.pi / 6, np.pi / 6, n)
    stroke = rng.uniform(1.6, 3.2, n) * scale
    ink = rng.uniform(0.6, 1.0, n)
    noise = rng.uniform(0.0, 0.12, n)
    sub = ((np.arange(2 * size) + 0.5) / 2).astype(np.float32)  # sub-pixel centres, in pixels
    images = np.empty((n, size, size), np.float32)
    for label in range(len(SHAPE_CLASSES)):
        ids = np.flatnonzero(labels == label)
        for chunk in np.array_split(ids, max(1, len(ids) // 256)):  # temporaries of a few MB
            if not len(chunk):
                continue

            def col(values: np.ndarray, chunk: np.ndarray = chunk) -> np.ndarray:
                return values[chunk, None, None].astype(np.float32)

            u = sub[None, None, :] - col(cx)
            v = sub[None, :, None] - col(cy)
            cos, sin, r = np.cos(col(angle)), np.sin(col(angle)), col(radius)
            x = (cos * u + sin * v) / r  # rotate by -angle and scale to unit radius
            y = (-sin * u + cos * v) / r
            mask = _shape_masks(label, x, y, col(stroke) / r).view(np.uint8)
            # Each pixel is the mean of its 2×2 sub-pixels (summed as small integers).
            hits = mask[:, 0::2, 0::2] + mask[:, 0::2, 1::2] + mask[:, 1::2, 0::2]
            hits += mask[:, 1::2, 1::2]
            images[chunk] = hits * (col(ink) / 4)
    images += rng.standard_normal(images.shape, np.float32) * noise[:, None, None].astype("f4")
    return (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_shapes(
    n_train: int = 6000, n_test: int = 1000, seed: int = 0, size: int = 28
) -> DataBundle:
    """The embedded 10-class shapes set (white shapes on black), deterministic from ``seed``.

    Each image has a random position, size, rotation (±30°), stroke width, brightness and noise.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError("The shapes set needs at least one training and one test image.")
    if size < 12:
        raise ValueError(f"Shapes need at least 12×12 pixels to be recognisable, got {size}.")
    rng = np.random.default_rng(seed)
    total = n_train + n_test
    labels = rng.permutation(np.arange(total) % len(SHAPE_CLASSES))
    images = _render_shapes(labels, rng, size)[:, None]  # (N, 1, H, W)
    train = (images[:n_train], labels[:n_train])
    test = (images[n_train:], labels[n_train:])
    return bundle_arrays("shapes", SHAPE_CLASSES, train, test, flip_ok=True)


# ---------------------------------------------------------------------------------------------
# File formats
# ---------------------------------------------------------------------------------------------


MAX_IDX_BYTES = 100_000_000
"""Largest IDX payload read (MNIST's training images are 47 MB), counted as it is inflated."""


def read_idx(data: bytes, name: str = "IDX file", max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Parse an IDX file (as MNIST is published; gzip-compressed or not) into a uint8 array.

    The header must say unsigned bytes, give 1–4 dimensions, and match the payload's length; a
    gzip stream is inflated with a cap on the bytes it really produces (``max_bytes``).
    """
    if data[:2] == b"\x1f\x8b":
        data = gunzip(data, max_bytes + 4 + 4 * 4, name)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{name} is not an IDX file: it must start with two zero bytes "
            f"(the MNIST 'magic number'), got {data[:4].hex() or 'nothing'}."
        )
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(
            f"{name} holds IDX type 0x{dtype_code:02x}; only 0x08 (unsigned bytes) is supported."
        )
    if not 1 <= ndim <= 4 or len(data) < 4 + 4 * ndim:
        raise ValueError(f"{name} has a broken IDX header ({ndim} dimensions).")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    payload = math.prod(dims)  # Python integers: four 32-bit sizes cannot overflow
    if payload > max_bytes:
        raise ValueError(
            f"{name}: the header promises {'×'.join(map(str, dims))} bytes of data, more than "
            f"the limit of {max_bytes / 1e6:.0f} MB."
        )
    expected = 4 + 4 * ndim + payload
    if len(data) != expected:
        raise ValueError(
            f"{name}: the header promises {'×'.join(map(str, dims))} bytes of data "
            f"({expected} bytes in all) but the file has {len(data)} bytes; it is truncated "
            f"or not what its name says."
        )
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain containers and numpy arrays.

    CIFAR-10 is distributed as pickles, and unpickling can run arbitrary code; refusing every
    global except numpy's array reconstruction makes a tampered file fail instead of execute.
    """

    _ALLOWED: frozenset[tuple[str, str]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def read_cifar_batch(data: bytes, name: str = "CIFAR batch") -> tuple[np.ndarray, np.ndarray]:
    """Parse one CIFAR-10 python batch into images (N, 3, 32, 32) uint8 and labels (N,)."""
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means "not a CIFAR batch"
        raise ValueError(f"{name} is not a CIFAR-10 python batch ({exc}).") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{name} is not a CIFAR-10 python batch (no 'data'/'labels' entries).")
    images = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{name}: 'data' must be N×3072 bytes, got {images.shape} {images.dtype}.")
    if labels.shape != (images.shape[0],) or labels.min(initial=0) < 0 or labels.max() > 9:
        raise ValueError(f"{name}: expected {images.shape[0]} labels between 0 and 9.")
    return images.reshape(-1, 3, 32, 32), labels


# ---------------------------------------------------------------------------------------------
# Downloads and local directories
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Where a public data set lives and how to check it."""

    base_url: str
    files: tuple[tuple[str, str], ...]  # (file name, md5 of the official file)
    classes: tuple[str, ...]
    flip_ok: bool


_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# The md5 sums torchvision uses for the official files.
SOURCES: dict[str, _Source] = {
    "mnist": _Source(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        tuple(
            zip(
                _IDX_FILES,
                (
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ),
                strict=True,
            )
        ),
        tuple(str(d) for d in range(10)),
        False,
    ),
    "fashion_mnist": _Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        tuple(
            zip(
                _IDX_FILES,
                (
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ),
                strict=True,
            )
        ),
        (
            "T-shirt/top",
            "trouser",
            "pullover",
            "dress",
            "coat",
            "sandal",
            "shirt",
            "sneaker",
            "bag",
            "ankle boot",
        ),
        True,
    ),
    "kmnist": _Source(
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        tuple(
            zip(
                _IDX_FILES,
                (
                    "bdb82020997e1d708af4cf47b453dcf7",
                    "e144d726b3acfaa3e44228e80efcd344",
                    "5c965bf0a639b31b8f53240b1b52f4d7",
                    "7320c461ea6c1c855c0b718fb2a4b134",
                ),
                strict=True,
            )
        ),
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        False,
    ),
    "cifar10": _Source(
        "https://www.cs.toronto.edu/~kriz/",
        (("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        (
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        True,
    ),
}


def default_cache_dir() -> Path:
    """``datasets`` in the app's data directory (``cnnlab.datadir``)."""
    return datadir.data_dir() / "datasets"


def _source(name: str) -> _Source:
    if name not in SOURCES:
        raise ValueError(f"Unknown data set {name!r}. Choose one of: {', '.join(DATASETS)}.")
    return SOURCES[name]


def fetch_dataset(name: str, cache_dir: str | Path, base_url: str | None = None) -> Path:
    """Download the official files of ``name`` into ``cache_dir/name`` once; return the folder.

    Every file is checked against its official md5 sum; a file that does not match is deleted and
    a ``ValueError`` says so, so a corrupt or tampered download never stays in the cache.
    """
    import pooch  # imported lazily: it is only needed when something is downloaded
    import requests

    source = _source(name)
    folder = Path(cache_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    url = base_url or source.base_url
    if not url.endswith("/"):
        url += "/"
    for filename, md5 in source.files:
        try:
            pooch.retrieve(
                url + filename,
                known_hash=f"md5:{md5}",
                fname=filename,
                path=folder,
                progressbar=False,
            )
        except ValueError as exc:  # pooch: the downloaded file's hash does not match
            raise ValueError(
                f"The downloaded {filename} for {name} does not match its official checksum, so "
                f"it was discarded. The server may be serving a different or damaged file; try "
                f"again later or put the official files in a local folder."
            ) from exc
        except (requests.RequestException, OSError) as exc:
            missing = [f for f, _ in source.files if not (folder / f).is_file()]
            raise ValueError(
                f"Could not download {name}: {_download_problem(exc, url)}. "
                f"{_offline_advice(name, missing)}"
            ) from exc
    return folder


def _download_problem(exc: BaseException, url: str) -> str:
    """What went wrong with a download, in words (not a urllib3 exception chain)."""
    import requests

    host = urlparse(url).hostname or url
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"{host} answered HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return f"{host} did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return f"this server cannot reach {host} (no internet connection here?)"
    if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
        return f"the files could not be saved ({exc.strerror or exc})"
    return f"the download from {host} failed"


def _offline_advice(name: str, missing: list[str]) -> str:
    """Where to put the official files of ``name`` so that no download is needed."""
    folder = f"{datasets_dir() or '$CNNLAB_DATASETS_DIR'}/{name}"
    if name == "cifar10":
        needs = "cifar-10-python.tar.gz (or its extracted cifar-10-batches-py folder)"
    else:
        needs = (
            "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (enough on their own: "
            "they are split 8,000 to train, 2,000 to test), plus the two train-… files for "
            "the full set"
        )
    lacking = f" Missing here: {', '.join(missing)}." if missing else ""
    return (
        f"Whoever runs the server can put the official files in {folder} — {needs} — with "
        f"CNNLAB_DATASETS_DIR set (see the README); then nothing is downloaded.{lacking}"
    )


def _placed_by_hand(folder: Path, name: str) -> bool:
    """True when ``folder`` holds files someone put there rather than a download: the test files
    alone (a download fetches the training files first) or an extracted CIFAR-10 folder. They
    are used as they are, without trying to download the rest."""
    if name == "cifar10":
        return (folder / "cifar-10-batches-py").is_dir() and not (
            folder / "cifar-10-python.tar.gz"
        ).is_file()
    has_test = all(
        _find(folder, f"t10k-{kind}") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )
    return has_test and _find(folder, "train-images-idx3-ubyte") is None


def datasets_dir() -> Path | None:
    """The server's folder of official data-set files (``$CNNLAB_DATASETS_DIR``, one folder per
    set: ``mnist/``, ``cifar10/`` …), or None when not set."""
    value = os.environ.get("CNNLAB_DATASETS_DIR", "").strip()
    return Path(value) if value else None


def local_folder(name: str) -> Path | None:
    """The folder under :func:`datasets_dir` holding ``name``'s files, or None (download)."""
    root = datasets_dir()
    if root is None or not (root / name).is_dir():
        return None
    return root / name


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Images (N, 1, H, W) and labels from ``{prefix}-images-idx3-ubyte[.gz]`` and labels file."""
    images_path = _find(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(folder, f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        return None
    images = read_idx(images_path.read_bytes(), images_path.name)
    labels = read_idx(labels_path.read_bytes(), labels_path.name)
    if images.ndim != 3:
        raise ValueError(f"{images_path.name} must hold N×H×W images, got shape {images.shape}.")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path.name} must hold one label per image, got {labels.shape}.")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds "
            f"{len(labels)} labels; the two files do not belong together."
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path.name} has label {labels.max()}; expected 0–9.")
    return images[:, None], labels.astype(np.int64)


def _load_idx_folder(
    folder: Path, name: str
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    test = _read_idx_pair(folder, "t10k")
    if test is None:
        raise ValueError(
            f"{folder} does not hold {name} files: expected t10k-images-idx3-ubyte(.gz) and "
            f"t10k-labels-idx1-ubyte(.gz) (and the train-… files)."
        )
    train = _read_idx_pair(folder, "train")
    if train is None:
        # Only the test files: split them first 80 % / last 20 % (the benchmarks' 8,000/2,000).
        cut = len(test[0]) * 4 // 5
        return (test[0][:cut], test[1][:cut]), (test[0][cut:], test[1][cut:])
    return train, test


_MAX_CIFAR_BATCH_BYTES = 64_000_000  # an official batch is 31 MB
_CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _read_cifar_files(folder: Path) -> dict[str, bytes]:
    """The six CIFAR batch files, from an extracted folder or from the official tarball."""
    for sub in (folder / "cifar-10-batches-py", folder):
        if (sub / "test_batch").is_file():
            missing = [m for m in _CIFAR_BATCHES if not (sub / m).is_file()]
            if missing:
                raise ValueError(f"{sub} lacks {', '.join(missing)}.")
            return {m: (sub / m).read_bytes() for m in _CIFAR_BATCHES}
    tarball = folder / "cifar-10-python.tar.gz"
    if not tarball.is_file():
        raise ValueError(
            f"{folder} does not hold CIFAR-10: expected cifar-10-python.tar.gz, or the folder "
            f"cifar-10-batches-py with data_batch_1 … data_batch_5 and test_batch."
        )
    files = {}
    # Members are read by their known names; nothing is extracted to disk.
    with tarfile.open(tarball, "r:gz") as archive:
        for member in _CIFAR_BATCHES:
            try:
                info = archive.getmember(f"cifar-10-batches-py/{member}")
            except KeyError:
                raise ValueError(f"{tarball.name} has no cifar-10-batches-py/{member}.") from None
            # A tar header states the member's size: refuse absurd ones before reading them.
            if info.size > _MAX_CIFAR_BATCH_BYTES:
                raise ValueError(f"{tarball.name}: {member} is far larger than a CIFAR batch.")
            handle = archive.extractfile(info)
            if handle is None:
                raise ValueError(f"{tarball.name}: {member} is not a regular file.")
            files[member] = handle.read()
    return files


def _load_cifar_folder(
    folder: Path,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    files = _read_cifar_files(folder)
    parts = [read_cifar_batch(files[m], m) for m in _CIFAR_BATCHES[:5]]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, read_cifar_batch(files["test_batch"], "test_batch")


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> DataBundle:
    """Load a data set by name: ``shapes`` (generated from ``seed``), or a public one.

    A public set is read from ``data_dir`` when given, else from the server's data-set folder
    (:func:`local_folder`, ``$CNNLAB_DATASETS_DIR/<name>``) when it has one for ``name`` — the
    standard file names, validated by their headers and counts; a folder with only the t10k
    files is split 80/20 — else downloaded into ``cache_dir`` with checksums (unless files put
    there by hand suffice: the t10k files alone, an extracted CIFAR-10 folder). ``limit`` caps
    each split's size.
    CIFAR-10 batches are pickles: they are only read from the checksummed cache or a folder the
    operator chose, and through an unpickler that refuses everything but arrays.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    if name == "shapes":
        n_train, n_test = (6000, 1000) if limit is None else (limit, max(1, min(1000, limit)))
        return make_shapes(n_train, n_test, seed)
    source = _source(name)
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise ValueError(f"The data folder {folder} does not exist.")
    elif (local := local_folder(name)) is not None:
        folder = local
    else:
        cache = Path(cache_dir if cache_dir is not None else default_cache_dir())
        placed = _placed_by_hand(cache / name, name)
        folder = cache / name if placed else fetch_dataset(name, cache)
    if name == "cifar10":
        train, test = _load_cifar_folder(folder)
    else:
        train, test = _load_idx_folder(folder, name)
    if limit is not None:
        train, test = (train[0][:limit], train[1][:limit]), (test[0][:limit], test[1][:limit])
    return bundle_arrays(name, source.classes, train, test, source.flip_ok)


# ---------------------------------------------------------------------------------------------
# A learner's zip of one folder per class
# ---------------------------------------------------------------------------------------------


def load_image_folder_zip(
    data: bytes,
    size: int = 28,
    grayscale: bool = True,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    max_files: int = class_folders.MAX_FILES,
    max_bytes: int = class_folders.MAX_BYTES,
    cancelled: Callable[[], bool] | None = None,
) -> DataBundle:
    """Read a zip of one folder per class (folder name = class name) into a :class:`DataBundle`.

    Images are centre-cropped and resized to ``size``×``size``; each class is split into train
    and test by ``seed``. The decoding runs in a child process with CPU, memory and wall-time
    budgets (``CNNLAB_UPLOAD_CPU_S``, ``CNNLAB_UPLOAD_MEMORY_MB``, ``CNNLAB_UPLOAD_TIMEOUT_S``),
    killed early when ``cancelled()`` turns true; see :mod:`cnnlab.class_folders` for the caps on
    files, inflated bytes and pixels.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 128:
        raise ValueError(f"The image size must be a whole number from 8 to 128, got {size!r}.")
    if not isinstance(test_fraction, float | int) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}.")
    options = {
        "size": size,
        "grayscale": bool(grayscale),
        "seed": int(seed),
        "test_fraction": float(test_fraction),
        "max_files": int(max_files),
        "max_bytes": int(max_bytes),
    }
    budget = sandbox.env_budget("CNNLAB_UPLOAD", cpu_seconds=60, memory_mb=1024, wall_seconds=120)
    result = sandbox.run(
        "cnnlab.class_folders:serve", data, options, budget, "Reading the zip", cancelled
    )
    folders = class_folders.unserve(result)
    train = (folders.train_x, folders.train_y)
    return bundle_arrays("upload", folders.classes, train, (folders.test_x, folders.test_y), False)


# ---------------------------------------------------------------------------------------------
# Batches on the device
# ---------------------------------------------------------------------------------------------


def normalize(
    x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], dtype=torch.float32
) -> torch.Tensor:
    """uint8 images (B, C, H, W) -> float, scaled to [0, 1] then standardised per channel."""
    m = torch.tensor(mean, dtype=dtype, device=x.device).view(1, -1, 1, 1) * 255
    s = torch.tensor(std, dtype=dtype, device=x.device).view(1, -1, 1, 1) * 255
    return (x.to(dtype) - m) / s


def augment(
    x: torch.Tensor,
    generator: torch.Generator,
    shift: int = 2,
    flip: bool = False,
) -> torch.Tensor:
    """Random translation by up to ``shift`` pixels (zero padding) and optional horizontal flip.

    Works on a whole batch at once on its device: pad, then pick a shifted window per image.
    The random numbers come from ``generator`` (on the CPU) so runs are reproducible anywhere.
    """
    b, _, h, w = x.shape
    if shift > 0:
        padded = torch.nn.functional.pad(x, (shift, shift, shift, shift))
        dy = torch.randint(0, 2 * shift + 1, (b,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * shift + 1, (b,), generator=generator).to(x.device)
        # Every window of the padded images as a view: (B, C, 2s+1, 2s+1, H, W), no copy.
        # Indexing whole windows copies H×W blocks, ~4× faster than an index per pixel.
        windows = padded.unfold(2, h, 1).unfold(3, w, 1)
        x = windows[torch.arange(b, device=x.device), :, dy, dx]  # (B, C, H, W)
    if flip:
        mirrored = torch.rand(b, generator=generator).to(x.device) < 0.5
        x = torch.where(mirrored[:, None, None, None], x.flip(-1), x)
    return x

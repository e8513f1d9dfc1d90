"""A learner's zip of one folder per class, decoded under caps into train/test arrays.

Pure numpy and Pillow (no torch), so it starts quickly in the budgeted child process that
:func:`cnnlab.data.load_image_folder_zip` runs it in (:mod:`cnnlab.sandbox`). Every limit counts
what is really decoded: inflated bytes per member and in all (:mod:`cnnlab.inflate`), pixels per
image and in all (from each image's header, before its pixels are allocated), and CPU seconds per
image.
"""

from __future__ import annotations

import io
import struct
import time
import unicodedata
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.images import FORMATS, MAX_PIXELS, load_image
from cnnlab.inflate import read_member

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_FILES = 20_000
MAX_BYTES = 200_000_000
"""Inflated bytes of all images together."""
MAX_TOTAL_PIXELS = 400_000_000
"""Pixels of all images together, as their headers declare them (what decoding would allocate)."""
MAX_SECONDS_PER_IMAGE = 5.0
"""CPU seconds one image may take to decode and resize."""
_FOLDERS_HELP = "Put each class's images in a folder named after the class, e.g. cats/1.png."


@dataclass(frozen=True)
class ClassFolders:
    """Images (N, C, H, W) uint8 and int64 labels, split into train and test per class."""

    classes: tuple[str, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def display_name(name: str, limit: int = 60) -> str:
    """A member's name safe to show: printable characters only, shortened in the middle."""
    clean = "".join(c if unicodedata.category(c)[0] not in "CZ" or c == " " else "?" for c in name)
    return clean if len(clean) <= limit else clean[: limit // 2 - 1] + "…" + clean[-limit // 2 :]


def _members(archive: zipfile.ZipFile, max_files: int) -> dict[str, list[zipfile.ZipInfo]]:
    """Image members grouped by class folder, after the file-count limit is checked."""
    infos = []
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if (
            info.is_dir()
            or "__MACOSX" in path.parts
            or path.name.startswith(".")
            or path.suffix.lower() not in IMAGE_SUFFIXES
        ):
            continue
        infos.append(info)
        if len(infos) > max_files:
            raise ValueError(
                f"The zip holds more than {max_files} images; the limit is {max_files}."
            )
    if not infos:
        raise ValueError(f"The zip holds no images ({', '.join(IMAGE_SUFFIXES)}). {_FOLDERS_HELP}")
    parts = [PurePosixPath(info.filename).parts for info in infos]
    # Accept "class/img.png" and "top/class/img.png" (a zipped folder of class folders).
    tops = {p[0] for p in parts}
    strip = 1 if len(tops) == 1 and all(len(p) >= 3 for p in parts) else 0
    groups: dict[str, list[zipfile.ZipInfo]] = {}
    for info, p in zip(infos, parts, strict=True):
        if len(p) - strip < 2:
            raise ValueError(
                f"{display_name(info.filename)} is not inside a class folder. {_FOLDERS_HELP}"
            )
        groups.setdefault(display_name(p[strip], 40), []).append(info)
    return groups


class _Budget:
    """Running totals of inflated bytes and declared pixels, refused past their limits."""

    def __init__(self, max_bytes: int, max_pixels: int) -> None:
        self.bytes_left = max_bytes
        self.pixels_left = max_pixels
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    def inflate(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        what = display_name(info.filename)
        if self.bytes_left <= 0:
            raise ValueError(self.too_many_bytes())
        try:
            data = read_member(archive, info, self.bytes_left, what)
        except ValueError:
            raise ValueError(self.too_many_bytes()) from None
        self.bytes_left -= len(data)
        return data

    def pixels(self, count: int) -> None:
        self.pixels_left -= count
        if self.pixels_left < 0:
            raise ValueError(
                f"The images hold more than {self.max_pixels // 1_000_000} million pixels in "
                "all, the limit. Use fewer images, or shrink them before zipping."
            )

    def too_many_bytes(self) -> str:
        return (
            f"The zip unpacks to more than {self.max_bytes / 1e6:.0f} MB of images, the limit. "
            "Use fewer or smaller images."
        )


def _decode(data: bytes, name: str, size: int, grayscale: bool, budget: _Budget) -> np.ndarray:
    """One image centre-cropped to a square and resized to size×size, as (C, H, W) uint8."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # counted just below
            with Image.open(io.BytesIO(data), formats=FORMATS) as header:
                width, height = header.size
    except Image.DecompressionBombError:  # Pillow refuses absurd sizes before telling them
        width, height = None, None
    except (UnidentifiedImageError, OSError, SyntaxError, struct.error, ValueError, EOFError):
        raise ValueError(
            f"{name} is not a readable image: use PNG, JPEG, WebP, BMP, GIF or TIFF."
        ) from None
    if width is None or height is None or width * height > MAX_PIXELS:
        size = "" if width is None else f" ({width}×{height} pixels)"
        raise ValueError(
            f"{name} is too large{size}: each image may have up to "
            f"{MAX_PIXELS // 1_000_000} megapixels."
        )
    budget.pixels(width * height)
    started = time.process_time()
    try:
        # Decoding at a few times the final size keeps the crop sharp and the work small.
        image = load_image(data, max_side=max(256, 4 * size))
    except ValueError as exc:
        raise ValueError(f"{name} is not a readable image. {exc}") from None
    square = ImageOps.fit(
        image.convert("L" if grayscale else "RGB"), (size, size), Image.Resampling.BILINEAR
    )
    if time.process_time() - started > MAX_SECONDS_PER_IMAGE:
        raise ValueError(
            f"{name} took more than {MAX_SECONDS_PER_IMAGE:.0f} s to decode, the limit for one "
            "image. Save it as an ordinary PNG or JPEG."
        )
    array = np.asarray(square, dtype=np.uint8)
    return array[None] if grayscale else array.transpose(2, 0, 1)


def read_class_folders(
    data: bytes,
    size: int = 28,
    grayscale: bool = True,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_TOTAL_PIXELS,
) -> ClassFolders:
    """Decode a zip of one folder per class (in this process), each class split by ``seed``."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ValueError("This file is not a zip archive. Zip a folder of class folders.")
    budget = _Budget(max_bytes, max_pixels)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            groups = _members(archive, max_files)
            if len(groups) < 2:
                raise ValueError(
                    f"The zip has {len(groups)} class folder; a classifier needs at least 2."
                )
            if sum(m.file_size for ms in groups.values() for m in ms) > max_bytes:
                raise ValueError(budget.too_many_bytes())  # declared already: no need to inflate
            classes = tuple(sorted(groups))
            for cls in classes:
                if len(groups[cls]) < 2:
                    raise ValueError(
                        f"Class {cls!r} has {len(groups[cls])} image; each class needs at least "
                        "2 (one to train on, one to test)."
                    )
            images: dict[str, list[np.ndarray]] = {}
            for cls in classes:
                members = sorted(groups[cls], key=lambda info: info.filename)
                images[cls] = [
                    _decode(budget.inflate(archive, m), display_name(m.filename), size,
                            grayscale, budget)
                    for m in members
                ]  # fmt: skip
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        OSError,
        zlib.error,
        RuntimeError,  # an encrypted member
    ):
        raise ValueError(
            "The zip archive is damaged or uses an unsupported format (encrypted, or a "
            "compression other than deflate, bzip2 or lzma). Zip the folder again."
        ) from None
    return _split(classes, images, seed, test_fraction)


def _split(
    classes: tuple[str, ...], images: dict[str, list[np.ndarray]], seed: int, test_fraction: float
) -> ClassFolders:
    rng = np.random.default_rng(seed)
    splits: dict[str, list[tuple[np.ndarray, int]]] = {"train": [], "test": []}
    for label, cls in enumerate(classes):
        order = rng.permutation(len(images[cls]))
        n_test = min(len(order) - 1, max(1, round(test_fraction * len(order))))
        for rank, i in enumerate(order):
            splits["test" if rank < n_test else "train"].append((images[cls][i], label))

    def stack(items: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
        return np.stack([x for x, _ in items]), np.array([y for _, y in items], np.int64)

    return ClassFolders(classes, *stack(splits["train"]), *stack(splits["test"]))


def serve(payload: bytes, options: dict) -> bytes:
    """The :mod:`cnnlab.sandbox` job: ``read_class_folders(payload, **options)``, serialised."""
    folders = read_class_folders(payload, **options)
    out = io.BytesIO()
    for array in (np.array(folders.classes, dtype=str), folders.train_x, folders.train_y,
                  folders.test_x, folders.test_y):  # fmt: skip
        np.save(out, array, allow_pickle=False)
    return out.getvalue()


def unserve(data: bytes) -> ClassFolders:
    """Inverse of :func:`serve`'s serialisation (no pickles are accepted)."""
    buffer = io.BytesIO(data)
    classes, *arrays = (np.load(buffer, allow_pickle=False) for _ in range(5))
    return ClassFolders(tuple(str(c) for c in classes), *arrays)

# ruff: noqa: E501
# (E501: one case per line keeps the corpus table readable.)
"""The hostile-input corpus: one table of cases, each an input for one learner-reachable entry
point and what must happen (a ``ValueError`` whose sentence matches, or a correct result).

Every input is generated here, in the process that runs it (nothing downloaded, nothing large
in the repository). tests/test_hostile_corpus.py runs each case in a fresh fork and holds it to
a memory and time budget. To add a case (every bug found is one): append to :data:`CASES`.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# -- what a case is ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """``make()`` builds the input, ``ENTRIES[entry]`` is called on it; ``refused`` is a regex
    the ``ValueError`` must match (``None``: it must succeed and pass ``check``)."""

    id: str
    entry: str
    make: Callable[[], Any]
    refused: str | None = None
    check: Callable[[Any], object] | None = None
    slow: bool = False


def _load_image(value: Any) -> Any:
    from cnnlab.images import load_image

    data, max_side = value if isinstance(value, tuple) else (value, 1024)
    return load_image(data, max_side=max_side)


def _read_zip(value: Any) -> Any:
    from cnnlab.uploads import read_zip

    data, options = value if isinstance(value, tuple) else (value, {})
    return read_zip(data, **{"size": 16, **options})


def _spec_json(text: Any) -> Any:
    from cnnlab.models import ModelSpec, build_model, summarize

    spec = ModelSpec.from_json(text)
    summary = summarize(spec, (1, 28, 28), 10)
    build_model(spec, (1, 28, 28), 10)
    return summary


def _spec_dict(data: Any) -> Any:
    from cnnlab.models import ModelSpec, build_model

    return build_model(ModelSpec.from_dict(data), (1, 28, 28), 10)


def _call(module: str, name: str) -> Callable[[Any], Any]:
    def call(value: Any) -> Any:
        from importlib import import_module

        return getattr(import_module(module), name)(value)

    return call


def _train_config(data: Any) -> Any:
    from cnnlab.training import TrainConfig

    return TrainConfig.from_dict(data)


def _uploaded(digest: Any) -> Any:
    from cnnlab.uploads import load_uploaded_zip

    return load_uploaded_zip(digest)


def _pattern(value: Any) -> Any:
    from cnnlab.images import pattern_image

    return pattern_image(*value)


def _chain(value: Any) -> Any:
    from cnnlab import arithmetic as ar

    shape, rows = value
    layers = [ar.ChainLayer(**row) for row in rows]
    steps = ar.chain_shapes(shape, layers)
    assert ar.run_chain_torch(shape, layers) == [step.shape for step in steps]
    return steps


def _rf_stack(value: Any) -> Any:
    from cnnlab.receptive_field import analyse_stack

    layers, size = value
    return analyse_stack(layers, size)


ENTRIES: dict[str, Callable[[Any], Any]] = {
    "chain": _chain,
    "rf_stack": _rf_stack,
    "image": _load_image,
    "zip": _read_zip,
    "idx": _call("cnnlab.data", "read_idx"),
    "cifar": _call("cnnlab.data", "read_cifar_batch"),
    "spec_json": _spec_json,
    "spec_dict": _spec_dict,
    "kernel": _call("cnnlab.kernels", "validate_kernel"),
    "kernel_text": _call("cnnlab.kernels", "parse_kernel_text"),
    "train_config": _train_config,
    "drawing": _call("cnnlab.images", "drawing_image"),
    "pattern": _pattern,
    "sample": _call("cnnlab.images", "sample_image"),
    "uploaded_zip": _uploaded,
}
"""Entry points by name: what a learner's bytes, text or settings reach first."""

# -- generators -------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_of(array: np.ndarray) -> bytes:
    return encode(Image.fromarray(array))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(
    width: int, height: int, depth: int = 8, colour: int = 0, idat: bytes = b""
) -> bytes:
    """A PNG with only a header (and optionally raw IDAT bytes): declares any size for free."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + (_chunk(b"IDAT", idat) if idat else b"")
    return b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b"")


def png_bomb(width: int, height: int) -> bytes:
    """A valid all-black grey PNG, inflating to width×height bytes from a few kB."""
    inflater = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    data = b"".join(inflater.compress(row) for _ in range(height)) + inflater.flush()
    return png_header(width, height, idat=data)


def gradient(mode: str, side: int, top: float) -> Image.Image:
    values = np.linspace(0, top, side * side).reshape(side, side)
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    return Image.fromarray(values.astype(dtype))


def big(mode: str, side: int = 7000, fill: float = 0) -> bytes:
    """A side×side image of ``mode`` with one value, compressed so the file stays small."""
    if mode == "I;16":
        return png_of(np.full((side, side), fill, np.uint16))
    image = Image.new(mode, (side, side), fill)
    if mode in ("F", "I"):
        return encode(image, "TIFF", compression="tiff_deflate")
    return encode(image, "PNG", optimize=False)


def zip_of(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, payload in files.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def tiny_png(value: int = 0, side: int = 8) -> bytes:
    return png_of(np.full((side, side), value, np.uint8))


def classes_zip(per_class: int = 2, image: bytes | None = None, **extra: bytes) -> bytes:
    """Classes a and b with ``per_class`` images each (``image`` for all), plus ``extra``."""
    files = {f"{c}/{i}.png": image or tiny_png(40 * i + (c == "b") * 120)
             for c in "ab" for i in range(per_class)}  # fmt: skip
    return zip_of({**files, **extra})


def raw_zip(members: list[dict[str, Any]]) -> bytes:
    """A zip written byte by byte, so headers can say what an attacker wants them to say.

    Each member: name, data (already compressed), and optionally method, crc, file_size,
    compress_size and flags, each defaulting to the honest value for stored data.
    """
    out, central = bytearray(), bytearray()
    for m in members:
        name, data = m["name"].encode(), m["data"]
        method, flags = m.get("method", 0), m.get("flags", 0)
        crc = m.get("crc", zlib.crc32(data))
        size, csize = m.get("file_size", len(data)), m.get("compress_size", len(data))
        offset = len(out)
        fields = struct.pack("<HHHHHIII", 20, flags, method, 0, 0x21, crc, csize, size)
        out += b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name + data
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields
        central += struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central),
                      len(out), 0)  # fmt: skip
    return bytes(out + central + end)


def deflate_zeros(n: int) -> bytes:
    """Raw deflate of n zero bytes, built in chunks (1.5 GiB of zeros is ~1.5 MB)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(min(n, 1 << 24))
    parts, left = [], n
    while left:
        piece = chunk[: min(left, len(chunk))]
        parts.append(deflater.compress(piece))
        left -= len(piece)
    return b"".join(parts) + deflater.flush()


def lying_zip(real: int, declared: int) -> bytes:
    """Class folders whose first member declares ``declared`` bytes but inflates to ``real``."""
    honest = [{"name": f"{c}/{i}.png", "data": tiny_png(60 * i + 10)}
              for c in "ab" for i in range(2)]  # fmt: skip
    liar = {
        "name": "a/0.png",
        "data": deflate_zeros(real),
        "method": 8,
        "crc": zlib.crc32(bytes(declared)),
        "file_size": declared,
    }
    liar["compress_size"] = len(liar["data"])
    return raw_zip([liar, *honest[1:]])


def gz(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, 1)


def gzip_zeros(n: int) -> bytes:
    """A gzip stream of n zero bytes, compressed in chunks."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(min(n, 1 << 24))
    parts, left = [], n
    while left:
        piece = chunk[: min(left, len(chunk))]
        parts.append(compressor.compress(piece))
        left -= len(piece)
    return b"".join(parts) + compressor.flush()


def idx(dims: tuple[int, ...], payload: bytes | None = None, code: int = 8) -> bytes:
    header = bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + (bytes(int(np.prod(dims))) if payload is None else payload)


class _Evil:
    def __reduce__(self) -> tuple:
        import os

        return (os.system, ("echo owned > owned.txt",))


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def spec(*layers: dict[str, Any]) -> str:
    return json.dumps({"layers": list(layers)})


def conv(**params: Any) -> dict[str, Any]:
    return {"kind": "conv", "params": params}


HEAD = ({"kind": "flatten"}, {"kind": "linear", "params": {"out_features": "classes"}})


def config(**settings: Any) -> dict[str, Any]:
    from cnnlab.training import TrainConfig

    return {**TrainConfig().to_dict(), **settings}


# -- checks for accepted inputs ---------------------------------------------------------------


def small_image(limit: int = 1024) -> Callable[[Any], object]:
    def check(image: Image.Image) -> None:
        assert image.mode in ("RGB", "L"), image.mode
        assert min(image.size) >= 1, image.size
        assert max(image.size) <= limit, image.size

    return check


def gray_values(expected: list[int]) -> Callable[[Any], object]:
    def check(image: Image.Image) -> None:
        assert image.mode == "L"
        corners = np.asarray(image)[[0, -1], [0, -1]].tolist()
        assert corners == expected, corners

    return check


def bundle(classes: tuple[str, ...], images: int) -> Callable[[Any], object]:
    def check(data: Any) -> None:
        assert data.classes == classes, data.classes
        assert len(data.train_y) + len(data.test_y) == images

    return check


# -- the corpus -------------------------------------------------------------------------------

NOT_IMAGE = r"not an image CNN Lab can read"
DAMAGED = r"damaged|truncated"
TOO_LARGE = r"too large"

# fmt: off
CASES: list[Case] = [
    # Images: uploads on every lab page.
    Case("image-empty", "image", lambda: b"", r"empty"),
    Case("image-random-bytes", "image", lambda: bytes(range(256)) * 4, NOT_IMAGE),
    Case("image-text", "image", lambda: b"hello, I am a PNG", NOT_IMAGE),
    Case("image-svg", "image", lambda: b"<svg xmlns='http://www.w3.org/2000/svg'/>", NOT_IMAGE),
    Case("image-eps-not-decoded", "image", lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", NOT_IMAGE),
    Case("image-ico-not-offered", "image", lambda: encode(Image.new("RGB", (16, 16)), "ICO"), NOT_IMAGE),
    Case("image-not-bytes", "image", lambda: "a string, not bytes", r"bytes of its file"),
    Case("image-max-side-zero", "image", lambda: (tiny_png(), 0), r"at least 1 pixel"),
    Case("image-max-side-text", "image", lambda: (tiny_png(), "5"), r"at least 1 pixel"),
    Case("image-png-header-10k", "image", lambda: png_header(10_000, 10_000), TOO_LARGE),
    Case("image-png-header-2g", "image", lambda: png_header(2**31 - 1, 2**31 - 1), TOO_LARGE + "|" + NOT_IMAGE),
    Case("image-png-zero-width", "image", lambda: png_header(0, 10), NOT_IMAGE + "|no pixels"),
    Case("image-png-header-no-data", "image", lambda: png_header(64, 64), DAMAGED),
    Case("image-png-16bit-header-only", "image", lambda: png_header(9000, 9000, 16), TOO_LARGE),
    Case("image-png-iend-bad-crc", "image", lambda: tiny_png()[:-4] + b"\0\0\0\0", None, gray_values([0, 0])),
    Case("image-png-truncated", "image", lambda: png_of(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))[:300], DAMAGED),
    Case("image-png-garbage-idat", "image", lambda: png_header(32, 32, idat=b"not zlib at all"), None, small_image()),
    Case("image-png-1x1", "image", lambda: tiny_png(7, 1), None, gray_values([7, 7])),
    Case("image-png-1x100000", "image", lambda: png_of(np.zeros((1, 100_000), np.uint8)), None, small_image()),
    Case("image-png-bomb-49mp", "image", lambda: png_bomb(7000, 7000), None, small_image(), slow=True),
    Case("image-png-bomb-64mp", "image", lambda: png_bomb(8000, 8000), TOO_LARGE),
    Case("image-png16-7000", "image", lambda: big("I;16"), None, small_image(), slow=True),
    Case("image-tiff-float-7000", "image", lambda: big("F", fill=0.5), None, gray_values([128, 128]), slow=True),
    Case("image-tiff-int32-7000", "image", lambda: big("I", fill=70_000), None, small_image(), slow=True),
    Case("image-png-rgba-7000", "image", lambda: big("RGBA"), None, small_image(), slow=True),
    Case("image-png16-gradient", "image", lambda: encode(gradient("I;16", 64, 65535)), None, gray_values([0, 255])),
    Case("image-tiff-int32-negative", "image", lambda: encode(gradient("I", 64, -5e8), "TIFF"), None, gray_values([255, 0])),
    Case("image-tiff-float-unit", "image", lambda: encode(gradient("F", 64, 1.0), "TIFF"), None, gray_values([0, 255])),
    Case("image-tiff-float-nan-inf", "image", lambda: encode(Image.fromarray(np.array([[np.nan, np.inf], [-np.inf, 2.0]], np.float32)), "TIFF"), None, small_image()),
    Case("image-tiff-float-huge", "image", lambda: encode(Image.fromarray(np.array([[3e38, -3e38]], np.float32)), "TIFF"), None, small_image()),
    Case("image-tiff-header-huge", "image", lambda: encode(Image.new("L", (8, 8)), "TIFF")[:8] + b"\0" * 4, DAMAGED + "|" + NOT_IMAGE),
    Case("image-tiff-100-pages", "image", lambda: encode(Image.new("L", (8, 8)), "TIFF", save_all=True, append_images=[Image.new("L", (8, 8), i) for i in range(99)]), None, small_image()),
    Case("image-gif-many-frames", "image", lambda: encode(Image.new("P", (64, 64)), "GIF", save_all=True, append_images=[Image.new("P", (64, 64), i) for i in range(200)]), None, small_image()),
    Case("image-gif-screen-65535", "image", lambda: b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\0\0\0" + b";", TOO_LARGE + "|" + DAMAGED + "|" + NOT_IMAGE),
    Case("image-palette-transparent", "image", lambda: encode(Image.new("P", (16, 16)), "PNG", transparency=0), None, small_image()),
    Case("image-1bit-bmp-7000", "image", lambda: encode(Image.new("1", (7000, 7000), 1), "BMP"), None, small_image(), slow=True),
    Case("image-bmp-header-huge", "image", lambda: (b"BM" + struct.pack("<IHHIIiiHHIIiiII", 0, 0, 0, 54, 40, 60000, -60000, 1, 24, 0, 0, 0, 0, 0, 0)), TOO_LARGE + "|" + DAMAGED + "|" + NOT_IMAGE),
    Case("image-jpeg-7000", "image", lambda: encode(Image.new("RGB", (7000, 7000), (9, 99, 199)), "JPEG"), None, small_image(), slow=True),
    Case("image-jpeg-truncated", "image", lambda: encode(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG")[:2000], DAMAGED),
    Case("image-jpeg-header-65500", "image", lambda: encode(Image.new("L", (8, 8)), "JPEG").replace(struct.pack(">HH", 8, 8), struct.pack(">HH", 65500, 65500), 1), TOO_LARGE),
    Case("image-jpeg-cmyk", "image", lambda: encode(Image.new("CMYK", (32, 32), (0, 255, 0, 0)), "JPEG"), None, small_image()),
    Case("image-webp-bogus", "image", lambda: b"RIFF\x10\0\0\0WEBPVP8 " + b"\xff" * 32, DAMAGED + "|" + NOT_IMAGE),
    Case("image-la", "image", lambda: encode(Image.new("LA", (16, 16), (10, 0))), None, gray_values([255, 255])),
    Case("image-png-text-bomb", "image", lambda: (tiny_png()[:33] + _chunk(b"zTXt", b"k\0\0" + zlib.compress(bytes(50_000_000), 9)) + tiny_png()[33:]), DAMAGED),
    # Zips of class folders: the train page's upload (decoded in a budgeted child process).
    Case("zip-not-a-zip", "zip", lambda: b"definitely not a zip", r"not a zip archive"),
    Case("zip-empty", "zip", lambda: zip_of({}), r"no images"),
    Case("zip-only-text", "zip", lambda: zip_of({"a/readme.txt": b"hi"}), r"no images"),
    Case("zip-one-class", "zip", lambda: zip_of({"a/1.png": tiny_png(), "a/2.png": tiny_png()}), r"at least 2"),
    Case("zip-one-image-class", "zip", lambda: zip_of({"a/1.png": tiny_png(), "a/2.png": tiny_png(), "b/1.png": tiny_png()}), r"needs at least 2"),
    Case("zip-top-level-files", "zip", lambda: zip_of({"1.png": tiny_png(), "2.png": tiny_png()}), r"class folder"),
    Case("zip-good", "zip", lambda: classes_zip(3), None, bundle(("a", "b"), 6)),
    Case("zip-good-colour-64", "zip", lambda: (classes_zip(2, encode(Image.new("RGBA", (40, 30), (255, 0, 0, 128)))), {"size": 64, "grayscale": False}), None, bundle(("a", "b"), 4)),
    Case("zip-size-not-offered", "zip", lambda: (classes_zip(), {"size": 30}), r"must be one of"),
    Case("zip-size-text", "zip", lambda: (classes_zip(), {"size": "28"}), r"must be one of"),
    Case("zip-limit-zero", "zip", lambda: (classes_zip(), {"limit": 0}), r"at least 1"),
    Case("zip-garbage-member", "zip", lambda: classes_zip(2, **{"a/9.png": b"garbage"}), r"a/9.png is not a readable image"),
    Case("zip-nested-zip-as-png", "zip", lambda: classes_zip(2, **{"a/9.png": classes_zip()}), r"not a readable image"),
    Case("zip-member-header-bomb", "zip", lambda: classes_zip(2, **{"a/9.png": png_header(20_001, 20_000)}), r"million pixels in all|too large"),
    Case("zip-member-png16-7000", "zip", lambda: classes_zip(2, big("I;16")), None, bundle(("a", "b"), 4), slow=True),
    Case("zip-pixel-budget", "zip", lambda: classes_zip(14, png_bomb(4000, 4000)), r"million pixels in all", slow=True),
    Case("zip-declared-300mb", "zip", lambda: classes_zip(2, **{"a/9.png": bytes(300_000_000)}), r"unpacks to more than 200 MB"),
    Case("zip-lying-member-1.5gib", "zip", lambda: lying_zip(3 * 2**29, 100), r"damaged|not a readable image", slow=True),
    Case("zip-lying-member-bad-crc", "zip", lambda: raw_zip([{"name": "a/0.png", "data": deflate_zeros(50_000_000), "method": 8, "crc": 1, "file_size": 100}, *[{"name": f"{c}/{i}.png", "data": tiny_png()} for c in "ab" for i in (1, 2)]]), r"damaged|not a readable image"),
    Case("zip-too-many-files", "zip", lambda: zip_of({f"{'ab'[i % 2]}/{i}.png": b"" for i in range(20_001)}, zipfile.ZIP_STORED), r"limit is 20000", slow=True),
    Case("zip-encrypted-member", "zip", lambda: raw_zip([{"name": f"{c}/{i}.png", "data": tiny_png(), "flags": 1} for c in "ab" for i in (1, 2)]), r"damaged or uses an unsupported format"),
    Case("zip-unknown-method", "zip", lambda: raw_zip([{"name": f"{c}/{i}.png", "data": tiny_png(), "method": 99} for c in "ab" for i in (1, 2)]), r"damaged or uses an unsupported format"),
    Case("zip-bzip2", "zip", lambda: zip_of({f"{c}/{i}.png": tiny_png(i) for c in "ab" for i in (1, 2)}, zipfile.ZIP_BZIP2), None, bundle(("a", "b"), 4)),
    Case("zip-lzma", "zip", lambda: zip_of({f"{c}/{i}.png": tiny_png(i) for c in "ab" for i in (1, 2)}, zipfile.ZIP_LZMA), None, bundle(("a", "b"), 4)),
    Case("zip-truncated", "zip", lambda: classes_zip(3)[:-40], r"not a zip archive|damaged"),
    Case("zip-corrupt-member", "zip", lambda: raw_zip([{"name": f"{c}/{i}.png", "data": b"\xff" * 40, "method": 8, "file_size": 500} for c in "ab" for i in (1, 2)]), r"damaged|not a readable image"),
    Case("zip-path-traversal", "zip", lambda: zip_of({f"../../{c}/{i}.png": tiny_png(i) for c in "ab" for i in (1, 2)}), r"1 class folder"),
    Case("zip-path-traversal-mixed", "zip", lambda: zip_of({f"../{c}/{i}.png": tiny_png(i) for c in "ab" for i in (1, 2)} | {"a/3.png": tiny_png(), "a/4.png": tiny_png()}), None, bundle(("..", "a"), 6)),
    Case("zip-absolute-paths", "zip", lambda: zip_of({f"/tmp/{c}/{i}.png": tiny_png(i) for c in "ab" for i in (1, 2)}), r"1 class folder"),
    Case("zip-control-characters", "zip", lambda: zip_of({f"\x1b[31m{c}\x07/{i}.png": tiny_png(i) for c in "ab" for i in (1, 2)}), None, bundle(("?[31ma?", "?[31mb?"), 4)),
    Case("zip-long-names", "zip", lambda: classes_zip(2, **{"a/" + "x" * 5000 + ".png": b"bad"}), r"x…x.* is not a readable image"),
    Case("zip-macos-forks-ignored", "zip", lambda: classes_zip(2, **{"__MACOSX/a/._1.png": b"fork", "a/.DS_Store.png": b"x"}), None, bundle(("a", "b"), 4)),
    Case("zip-directories-only", "zip", lambda: zip_of({"a/": b"", "b/": b""}), r"no images"),
    Case("zip-duplicate-names", "zip", lambda: raw_zip([{"name": n, "data": tiny_png()} for n in ("a/1.png", "a/1.png", "b/1.png", "b/1.png")]), None, bundle(("a", "b"), 4)),
    Case("zip-trailing-garbage", "zip", lambda: classes_zip(2) + b"\0garbage" * 100, None, bundle(("a", "b"), 4)),
    Case("zip-eps-member", "zip", lambda: classes_zip(2, **{"a/9.png": b"%!PS-Adobe-3.0 EPSF-3.0\n"}), r"not a readable image"),
    # IDX files (MNIST-style data sets, gzip or not).
    Case("idx-empty", "idx", lambda: b"", r"not an IDX file"),
    Case("idx-wrong-magic", "idx", lambda: b"\x01\x02\x08\x01" + bytes(8), r"not an IDX file"),
    Case("idx-float-type", "idx", lambda: idx((4,), code=0x0D), r"only 0x08"),
    Case("idx-zero-dims", "idx", lambda: bytes([0, 0, 8, 0]), r"broken IDX header"),
    Case("idx-five-dims", "idx", lambda: bytes([0, 0, 8, 5]) + bytes(20), r"broken IDX header"),
    Case("idx-dims-overflow", "idx", lambda: idx((2**32 - 1,) * 4, b""), r"more than the limit"),
    Case("idx-truncated", "idx", lambda: idx((10, 28, 28))[:-1], r"truncated"),
    Case("idx-extra-bytes", "idx", lambda: idx((3,)) + b"!", r"truncated or not what"),
    Case("idx-good", "idx", lambda: idx((2, 3), bytes(range(6))), None, lambda a: a.tolist() == [[0, 1, 2], [3, 4, 5]] or 1 / 0),
    Case("idx-good-gzip", "idx", lambda: gz(idx((2, 2), b"\1\2\3\4")), None, lambda a: a.shape == (2, 2) or 1 / 0),
    Case("idx-gzip-two-members", "idx", lambda: gz(idx((4,), b"\1\2\3\4")[:6]) + gz(idx((4,), b"\1\2\3\4")[6:]), None, lambda a: a.tolist() == [1, 2, 3, 4] or 1 / 0),
    Case("idx-gzip-bomb-1gib", "idx", lambda: gzip_zeros(2**30), r"unpacks to more than", slow=True),
    Case("idx-gzip-bomb-200mb", "idx", lambda: gzip_zeros(200_000_000), r"unpacks to more than"),
    Case("idx-gzip-truncated", "idx", lambda: gz(idx((100, 100)))[:-20], r"truncated"),
    Case("idx-gzip-corrupt", "idx", lambda: gz(idx((100,)))[:12] + b"\xff" * 30, r"damaged|truncated"),
    Case("idx-gzip-trailing-garbage", "idx", lambda: gz(idx((4,))) + b"garbage", r"damaged|truncated"),
    # CIFAR-10 batches are pickles: only arrays may come out of them.
    Case("cifar-os-system", "cifar", lambda: pickle.dumps(_Evil()), r"not a CIFAR-10 python batch"),
    Case("cifar-eval", "cifar", lambda: b"cbuiltins\neval\n(S'1+1'\ntR.", r"not a CIFAR-10 python batch"),
    Case("cifar-random", "cifar", lambda: bytes(range(200)), r"not a CIFAR-10 python batch"),
    Case("cifar-wrong-shape", "cifar", lambda: pickle.dumps({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]}), r"N×3072"),
    Case("cifar-bad-labels", "cifar", lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 99]}), r"labels between 0 and 9"),
    Case("cifar-good", "cifar", lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 9]}), None, lambda r: r[0].shape == (2, 3, 32, 32) or 1 / 0),
    # Layer specs as JSON (saved runs, the receptive-field page's trained networks).
    Case("spec-empty-text", "spec_json", lambda: "", r"not valid JSON"),
    Case("spec-bracket", "spec_json", lambda: "[", r"not valid JSON"),
    Case("spec-nested-100k", "spec_json", lambda: nested(90_000), r"nested too deeply"),
    Case("spec-nested-in-params", "spec_json", lambda: '{"layers": [{"kind": "conv", "params": {"kernel": ' + nested(50_000) + "}}]}", r"nested too deeply|not valid JSON"),
    Case("spec-nested-3000-valid-json", "spec_json", lambda: '{"layers": [{"kind": "conv", "params": {"kernel": ' + nested(900) + "}}]}", r"'kernel' must be a whole number from 1 to 64, got a list"),
    Case("spec-5000-digit-number", "spec_json", lambda: spec(conv()).replace("{}", '{"kernel": ' + "9" * 5000 + "}"), r"cannot be read"),
    Case("spec-300k-characters", "spec_json", lambda: " " * 300_000 + "{}", r"over 200,000 characters"),
    Case("spec-invalid-utf8", "spec_json", lambda: b'{"layers": ["\xff\xfe"]}', r"cannot be read|not valid JSON"),
    Case("spec-not-text", "spec_json", lambda: 42, r"must be JSON text"),
    Case("spec-null", "spec_json", lambda: "null", r"needs a 'layers' list"),
    Case("spec-layers-not-list", "spec_json", lambda: '{"layers": "conv"}', r"needs a 'layers' list"),
    Case("spec-no-layers", "spec_json", lambda: spec(), r"no layers"),
    Case("spec-10000-layers", "spec_json", lambda: spec(*[{"kind": "relu"}] * 10_000), r"up to 256 layers"),
    Case("spec-name-object", "spec_json", lambda: '{"name": {"a": 1}, "layers": []}', r"'name' must be text"),
    Case("spec-kind-number", "spec_json", lambda: '{"layers": [{"kind": 5}]}', r"needs a 'kind' string"),
    Case("spec-kind-unknown", "spec_json", lambda: spec({"kind": "__import__"}), r"Unknown layer kind"),
    Case("spec-params-list", "spec_json", lambda: spec({"kind": "conv", "params": [1, 2]}), r"'params' must be a mapping"),
    Case("spec-unknown-param", "spec_json", lambda: spec(conv(evil=1)), r"Unknown parameter 'evil'"),
    Case("spec-kernel-2e63", "spec_json", lambda: spec(conv(kernel=2**63), *HEAD), r"'kernel' must be a whole number from 1 to 64, got 9223372036854775808"),
    Case("spec-kernel-10e40", "spec_json", lambda: spec(conv(kernel=10**40), *HEAD), r"got a number of about 4\d digits"),
    Case("spec-channels-1e30", "spec_json", lambda: spec(conv(out_channels=1e30), *HEAD), r"'out_channels' must be a whole number"),
    Case("spec-channels-10e30", "spec_json", lambda: spec(conv(out_channels=10**30), *HEAD), r"'out_channels' must be a whole number from 1 to 4096"),
    Case("spec-channels-zero", "spec_json", lambda: spec(conv(out_channels=0), *HEAD), r"from 1 to 4096, got 0"),
    Case("spec-stride-negative", "spec_json", lambda: spec(conv(stride=-1, padding=0), *HEAD), r"'stride' must be"),
    Case("spec-padding-text", "spec_json", lambda: spec(conv(padding="full"), *HEAD), r"'padding' must be"),
    Case("spec-padding-huge", "spec_json", lambda: spec(conv(padding=10**6), *HEAD), r"'padding' must be a whole number from 0 to 64"),
    Case("spec-dilation-float", "spec_json", lambda: spec(conv(dilation=1.5), *HEAD), r"'dilation' must be"),
    Case("spec-groups-indivisible", "spec_json", lambda: spec(conv(groups=3), *HEAD), r"must divide"),
    Case("spec-bias-text", "spec_json", lambda: spec(conv(bias="false"), *HEAD), r"'bias' must be true or false"),
    Case("spec-kernel-too-big-for-input", "spec_json", lambda: spec(conv(kernel=64, padding=0), *HEAD), r"output size would reach zero"),
    Case("spec-leaky-nan", "spec_json", lambda: spec(conv(), {"kind": "leaky_relu", "params": {"negative_slope": float("nan")}}, *HEAD), r"'negative_slope' must be a number from 0 to 1, got nan"),
    Case("spec-leaky-inf", "spec_json", lambda: spec(conv(), {"kind": "leaky_relu", "params": {"negative_slope": float("inf")}}, *HEAD), r"'negative_slope' must be a number from 0 to 1"),
    Case("spec-leaky-minus-inf", "spec_json", lambda: spec(conv(), {"kind": "leaky_relu", "params": {"negative_slope": float("-inf")}}, *HEAD), r"'negative_slope'"),
    Case("spec-leaky-text", "spec_json", lambda: spec(conv(), {"kind": "leaky_relu", "params": {"negative_slope": "0.1"}}, *HEAD), r"'negative_slope'"),
    Case("spec-dropout-nan", "spec_json", lambda: spec(conv(), {"kind": "dropout", "params": {"p": float("nan")}}, *HEAD), r"probability"),
    Case("spec-pool-kernel-2e40", "spec_json", lambda: spec({"kind": "maxpool", "params": {"kernel": 2**40}}, *HEAD), r"'kernel' must be"),
    Case("spec-residual-stride-huge", "spec_json", lambda: spec({"kind": "residual", "params": {"stride": 10**20}}, *HEAD), r"'stride' must be"),
    Case("spec-linear-out-text", "spec_json", lambda: spec({"kind": "flatten"}, {"kind": "linear", "params": {"out_features": "many"}}), r"'out_features' must be"),
    Case("spec-200m-parameters", "spec_json", lambda: spec(conv(out_channels=4096), {"kind": "flatten"}, {"kind": "linear", "params": {"out_features": 65536}}, {"kind": "linear", "params": {"out_features": "classes"}}), r"more than 200,000,000"),
    Case("spec-good-fast", "spec_json", lambda: __import__("cnnlab.models", fromlist=["PRESETS"]).PRESETS["fast"].to_json(), None, lambda s: s.output_shape == (10,) or 1 / 0),
    Case("spec-dict-self-reference", "spec_dict", lambda: (lambda d: (d.__setitem__("layers", [d]), d)[1])({}), r"needs a 'kind' string, got a dict"),
    Case("spec-dict-non-string-keys", "spec_dict", lambda: {"layers": [{"kind": "conv", "params": {1: 2}}]}, r"'params' must be a mapping"),
    Case("spec-dict-numpy-kernel", "spec_dict", lambda: {"layers": [conv(kernel=np.float64(3.0)), *HEAD]}, r"'kernel' must be a whole number"),
    # Custom kernels (the convolution lab's editor and text box).
    Case("kernel-2e63", "kernel", lambda: [[2**63]], r"between -1e\+06 and 1e\+06"),
    Case("kernel-10e400", "kernel", lambda: [[10**400]], r"infinite|between"),
    Case("kernel-text-inf", "kernel", lambda: [["1e999"]], r"infinite"),
    Case("kernel-none", "kernel", lambda: [[None, 1.0]], r"not a number"),
    Case("kernel-bool", "kernel", lambda: [[True]], r"not a number"),
    Case("kernel-complex", "kernel", lambda: [[1 + 2j]], r"not a number"),
    Case("kernel-nan", "kernel", lambda: [[float("nan")]], r"NaN"),
    Case("kernel-dict-cell", "kernel", lambda: np.array([[{"a": 1}]], dtype=object), r"is a dict, not a number"),
    Case("kernel-3d", "kernel", lambda: [[[1.0]]], r"2-D grid"),
    Case("kernel-8x8", "kernel", lambda: np.ones((8, 8)), r"1×1 to 7×7"),
    Case("kernel-0x0", "kernel", lambda: np.ones((0, 0)), r"1×1 to 7×7"),
    Case("kernel-ragged", "kernel", lambda: [[1.0, 2.0], [3.0]], r"rectangle|2-D"),
    Case("kernel-nested-5000", "kernel", lambda: json.loads(nested(900)), r"rectangle|2-D"),
    Case("kernel-good", "kernel", lambda: [[0.5, -1e6], [1e6, 0]], None, lambda k: k.dtype == np.float64 or 1 / 0),
    Case("kernel-just-over", "kernel", lambda: [[1e6 + 1]], r"between"),
    Case("kernel-text-zero-division", "kernel_text", lambda: "1/0", r"not a number"),
    Case("kernel-text-overflow", "kernel_text", lambda: "1e308/1e-308", r"not a number|infinite"),
    Case("kernel-text-5000-nines", "kernel_text", lambda: "9" * 1900, r"infinite"),
    Case("kernel-text-nan", "kernel_text", lambda: "nan 1", r"NaN"),
    Case("kernel-text-10k", "kernel_text", lambda: "1 " * 5000, r"over 2000 characters"),
    Case("kernel-text-ragged", "kernel_text", lambda: "1 2; 3", r"same number of cells"),
    Case("kernel-text-hex", "kernel_text", lambda: "0x10", r"not a number"),
    Case("kernel-text-nul", "kernel_text", lambda: "\0", r"not a number"),
    Case("kernel-text-none", "kernel_text", lambda: None, r"typed as text"),
    Case("kernel-text-8-rows", "kernel_text", lambda: "1;" * 8, r"1×1 to 7×7"),
    Case("kernel-text-good", "kernel_text", lambda: "1/9 1/9; 1_000 -2", None, lambda k: k[1, 0] == 1000 or 1 / 0),
    # Training settings (the train page's widgets, saved configs, the command line).
    *(
        Case(
            f"config-{name}-{label}",
            "train_config",
            lambda n=name, v=value: config(**{n: v}),
            words,
        )
        for name, label, value, words in [
            ("epochs", "3.5", 3.5, r"epochs must be a whole number"),
            ("epochs", "text", "3", r"epochs must be a whole number"),
            ("epochs", "bool", True, r"epochs must be a whole number"),
            ("epochs", "zero", 0, r"epochs must be from 1"),
            ("epochs", "1e9", 10**9, r"epochs must be from 1 to 1000"),
            ("weight_decay", "nan", float("nan"), r"weight decay must be a finite number"),
            ("weight_decay", "inf", float("inf"), r"weight decay must be a finite number"),
            ("weight_decay", "negative", -1.0, r"weight decay must be between"),
            ("lr", "negative", -1.0, r"learning rate must be above 0"),
            ("lr", "text", "0.1", r"learning rate must be a finite number"),
            ("lr", "nan", float("nan"), r"learning rate must be a finite number"),
            ("seed", "text", "0", r"seed must be a whole number"),
            ("seed", "negative", -1, r"seed must be a whole number from 0"),
            ("seed", "2e64", 2**64, r"seed must be a whole number from 0"),
            ("batch_size", "zero", 0, r"batch size must be from 1"),
            ("batch_size", "1e12", 10**12, r"batch size must be from 1 to 65536"),
            ("batch_size", "float", 64.0, r"batch size must be a whole number"),
            ("optimizer", "unknown", "lbfgs", r"optimizer must be one of"),
            ("optimizer", "none", None, r"optimizer must be text"),
            ("schedule", "number", 5, r"schedule must be text"),
            ("augment", "text", "yes", r"augment must be true or false"),
            ("val_fraction", "one", 1.0, r"validation fraction must be between"),
            ("label_smoothing", "nan", float("nan"), r"label smoothing must be a finite number"),
            ("momentum", "1.5", 1.5, r"momentum must be at least 0"),
            ("device", "shell", "cuda; rm -rf /", r"device must be cpu, cuda"),
            ("device", "number", 0, r"device must be text"),
            ("threads", "zero", 0, r"threads must be from 1"),
            ("threads", "1e6", 10**6, r"threads must be from 1 to 256"),
            ("max_steps", "negative", -5, r"max_steps must be at least 1"),
            ("early_stopping_patience", "zero", 0, r"patience must be at least 1"),
            ("augment_shift", "1000", 1000, r"augmentation shift must be from 0 to 16"),
            ("eval_batch_size", "text", "1000", r"evaluation batch size must be a whole number"),
        ]
    ),
    Case("config-unknown-key", "train_config", lambda: config(__class__=1), r"Unknown training setting"),
    Case("config-not-a-mapping", "train_config", lambda: [("epochs", 2)], r"must map setting names"),
    Case("config-int-keys", "train_config", lambda: {1: 2}, r"must map setting names"),
    Case("config-defaults", "train_config", lambda: config(), None, lambda c: c.epochs >= 1 or 1 / 0),
    # Layer tables of the stride/padding and receptive-field pages (cells a script can set freely).
    Case("chain-4096-filters-on-64x512x512", "chain", lambda: ((64, 512, 512), [{"kind": "conv", "out": 4096, "kernel": 3, "padding": "same"}]), None, lambda steps: steps[-1].shape == (4096, 512, 512) or 1 / 0),
    Case("chain-out-1e18", "chain", lambda: ((3, 32, 32), [{"kind": "conv", "out": 10**18, "kernel": 3}]), r"at most 65,536"),
    Case("chain-linear-1e9", "chain", lambda: ((3, 32, 32), [{"kind": "flatten"}, {"kind": "linear", "out": 10**9}]), r"at most 65,536"),
    Case("chain-kernel-1e18", "chain", lambda: ((3, 32, 32), [{"kind": "conv", "out": 8, "kernel": 10**18}]), r"does not fit"),
    Case("chain-padding-1e12", "chain", lambda: ((3, 32, 32), [{"kind": "max_pool", "kernel": 2, "padding": 10**12}]), r"more than half the kernel"),
    Case("chain-kind-unknown", "chain", lambda: ((3, 32, 32), [{"kind": "os.system"}]), r"Unknown layer"),
    Case("rf-kernel-2e63", "rf_stack", lambda: ([{"kind": "conv", "kernel": 2**63}], 64), r"whole number up to 1,000,000"),
    Case("rf-kernel-inf", "rf_stack", lambda: ([{"kind": "conv", "kernel": float("inf")}], 64), r"whole number up to 1,000,000"),
    Case("rf-stride-1e18", "rf_stack", lambda: ([{"kind": "conv", "kernel": 3, "stride": 10**18}], 64), r"whole number up to 1,000,000"),
    Case("rf-channels-1e9", "rf_stack", lambda: ([{"kind": "conv", "kernel": 3, "channels": 10**9}], 64), r"whole number up to 1,000,000"),
    Case("rf-kind-unknown", "rf_stack", lambda: ([{"kind": "__import__"}], 64), r"unknown kind"),
    Case("rf-5000-layers", "rf_stack", lambda: ([{"kind": "conv", "kernel": 3, "padding": 1}] * 5000, 64), None, lambda fields: len(fields) == 5000 or 1 / 0),
    # Other entry points: drawings, patterns, samples and saved uploads by digest.
    Case("drawing-wrong-shape", "drawing", lambda: np.zeros((10, 10, 3), np.uint8), r"\(H, W, 4\) RGBA"),
    Case("drawing-empty", "drawing", lambda: np.zeros((0, 0, 4), np.uint8), r"\(H, W, 4\) RGBA"),
    Case("drawing-strings", "drawing", lambda: np.full((4, 4, 4), "x"), r"array of numbers"),
    Case("drawing-nan-and-huge", "drawing", lambda: np.full((4, 4, 4), np.nan).clip(0, 0) + np.array([np.nan, 1e300, -5, 255]), None, small_image()),
    Case("pattern-size-text", "pattern", lambda: ("circle", "128"), r"8 to 2048 pixels"),
    Case("pattern-size-huge", "pattern", lambda: ("circle", 10**9), r"8 to 2048 pixels"),
    Case("pattern-name-list", "pattern", lambda: (["circle"], 64), r"no pattern called that"),
    Case("sample-traversal", "sample", lambda: "../../../etc/passwd", r"no sample called"),
    Case("sample-unhashable", "sample", lambda: ["cat"], r"no sample called that"),
    Case("uploaded-traversal", "uploaded_zip", lambda: "../../etc/passwd", r"not the digest"),
    Case("uploaded-not-text", "uploaded_zip", lambda: 12345, r"not the digest"),
    Case("uploaded-unknown", "uploaded_zip", lambda: "0" * 64, r"no longer on the server"),
]
# fmt: on

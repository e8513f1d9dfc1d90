"""Data sets: the shapes generator, file readers, the checked downloader and learners' zips."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab import data as data_module
from cnnlab.data import (
    SHAPE_CLASSES,
    augment,
    fetch_dataset,
    load_dataset,
    load_image_folder_zip,
    make_shapes,
    normalize,
    read_cifar_batch,
    read_idx,
)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file, the way MNIST is published."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_mnist_folder(folder: Path, n_train: int, n_test: int, compress: bool = True) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        if n == 0:
            continue
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            payload = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
            else:
                (folder / name).write_bytes(payload)


# --- shapes -------------------------------------------------------------------------------------


def test_shapes_are_deterministic_balanced_and_well_formed():
    a = make_shapes(200, 50, seed=3)
    b = make_shapes(200, 50, seed=3)
    c = make_shapes(200, 50, seed=4)
    assert torch.equal(a.train_x, b.train_x)
    assert torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape == (200, 1, 28, 28)
    assert a.train_x.dtype == torch.uint8
    assert a.test_x.shape == (50, 1, 28, 28)
    assert a.train_y.dtype == torch.int64
    assert a.classes == SHAPE_CLASSES
    assert len(SHAPE_CLASSES) == 10
    counts = torch.bincount(torch.cat([a.train_y, a.test_y]), minlength=10)
    assert counts.tolist() == [25] * 10
    # Every image has a visible shape: some bright ink on a dark background.
    assert (a.train_x.flatten(1).max(dim=1).values > 120).all()
    assert a.train_x.float().mean() < 80
    assert a.mean[0] == pytest.approx(float(a.train_x.float().mean() / 255), rel=1e-5)


def test_shape_classes_differ_on_average():
    b = make_shapes(500, 10, seed=0)
    means = torch.stack([b.train_x[b.train_y == k].float().mean(0) for k in range(10)])
    distances = torch.cdist(means.flatten(1), means.flatten(1))
    assert (distances + torch.eye(10) * 1e9).min() > 50


def test_shapes_at_other_sizes():
    b = make_shapes(20, 5, seed=0, size=32)
    assert b.input_shape == (1, 32, 32)
    with pytest.raises(ValueError, match="12"):
        make_shapes(10, 5, size=8)


# --- IDX ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    payload = idx_bytes(array)
    out = read_idx(gzip.compress(payload) if compress else payload)
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc", "magic number"),
        (b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc", "type 0x0d"),
        (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big"), "broken IDX header"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc", "truncated"),
        (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"abc", "truncated"),
        (b"", "magic number"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
    ],
)
def test_wrong_idx_headers_are_explained(payload, words):
    with pytest.raises(ValueError, match=words):
        read_idx(payload, "bad-file")


def test_mnist_folder_with_train_and_test(tmp_path):
    write_mnist_folder(tmp_path, 30, 20)
    bundle = load_dataset("mnist", data_dir=tmp_path)
    assert bundle.train_x.shape == (30, 1, 28, 28)
    assert bundle.test_x.shape == (20, 1, 28, 28)
    assert bundle.classes == tuple("0123456789")
    assert not bundle.flip_ok
    assert load_dataset("mnist", data_dir=tmp_path, limit=7).train_x.shape[0] == 7


def test_test_only_folder_is_split_80_20(tmp_path):
    write_mnist_folder(tmp_path, 0, 50, compress=False)
    bundle = load_dataset("kmnist", data_dir=tmp_path)
    assert (len(bundle.train_y), len(bundle.test_y)) == (40, 10)
    labels = read_idx((tmp_path / "t10k-labels-idx1-ubyte").read_bytes())
    np.testing.assert_array_equal(bundle.test_y.numpy(), labels[40:])


def test_mismatched_counts_are_explained(tmp_path):
    write_mnist_folder(tmp_path, 0, 20)
    labels = idx_bytes((np.arange(19) % 10).astype(np.uint8))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    with pytest.raises(ValueError, match=r"20 images but .* 19 labels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_wrong_header_in_a_folder_names_the_file(tmp_path):
    write_mnist_folder(tmp_path, 0, 20)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x08\x03garbage"))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz"):
        load_dataset("mnist", data_dir=tmp_path)


def test_missing_files_and_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="t10k-images"):
        load_dataset("fashion_mnist", data_dir=tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nope")
    with pytest.raises(ValueError, match="Unknown data set"):
        load_dataset("imagenet", data_dir=tmp_path)


# --- CIFAR --------------------------------------------------------------------------------------


def cifar_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"batch_label": b"test",
    }
    return pickle.dumps(batch, protocol=2)


def test_cifar_tarball_and_folder(tmp_path):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for seed, name in enumerate(names):
            payload = cifar_batch(4, seed)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    bundle = load_dataset("cifar10", data_dir=tmp_path)
    assert bundle.train_x.shape == (20, 3, 32, 32)
    assert bundle.test_x.shape == (4, 3, 32, 32)
    assert bundle.flip_ok
    assert bundle.classes[0] == "airplane"
    first = np.frombuffer(pickle.loads(cifar_batch(4, 0))[b"data"].tobytes(), np.uint8)
    np.testing.assert_array_equal(bundle.train_x[0].numpy().ravel(), first[:3072])

    folder = tmp_path / "extracted" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for seed, name in enumerate(names):
        (folder / name).write_bytes(cifar_batch(4, seed))
    again = load_dataset("cifar10", data_dir=tmp_path / "extracted")
    assert torch.equal(again.train_x, bundle.train_x)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_reader_refuses_code_in_pickles():
    with pytest.raises(ValueError, match="refusing to load"):
        read_cifar_batch(pickle.dumps({b"data": _Evil(), b"labels": []}))


def test_cifar_reader_checks_shapes():
    bad = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(ValueError, match="3072"):
        read_cifar_batch(bad)
    with pytest.raises(ValueError, match="no 'data'"):
        read_cifar_batch(pickle.dumps({b"x": 1}))


# --- downloads ----------------------------------------------------------------------------------


@pytest.fixture
def file_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving the files of a temporary folder."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()
    server.server_close()


def serve_mnist(root: Path, monkeypatch, corrupt: str | None = None) -> None:
    """Serve a small MNIST-like set and make the catalogue expect its md5 sums."""
    write_mnist_folder(root, 30, 20)
    files = []
    for name in data_module._IDX_FILES:
        md5 = hashlib.md5((root / name).read_bytes()).hexdigest()
        files.append((name, md5))
    source = data_module.SOURCES["mnist"]
    patched = data_module._Source("http://unused.invalid/", tuple(files), source.classes, False)
    monkeypatch.setitem(data_module.SOURCES, "mnist", patched)
    if corrupt is not None:
        payload = bytearray((root / corrupt).read_bytes())
        payload[-1] ^= 0xFF
        (root / corrupt).write_bytes(bytes(payload))


def test_download_verifies_and_caches(file_server, tmp_path, monkeypatch):
    root, url = file_server
    serve_mnist(root, monkeypatch)
    cache = tmp_path / "cache"
    folder = fetch_dataset("mnist", cache, base_url=url)
    assert sorted(p.name for p in folder.iterdir()) == sorted(data_module._IDX_FILES)
    bundle = load_dataset("mnist", cache_dir=cache)  # the base URL is not needed once cached
    assert bundle.train_x.shape == (30, 1, 28, 28)
    for p in root.iterdir():
        p.unlink()  # the server has nothing now: a second fetch must use the cache
    assert fetch_dataset("mnist", cache, base_url=url) == folder


def test_checksum_mismatch_leaves_no_cached_file(file_server, tmp_path, monkeypatch):
    root, url = file_server
    serve_mnist(root, monkeypatch, corrupt="t10k-images-idx3-ubyte.gz")
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum"):
        fetch_dataset("mnist", cache, base_url=url)
    left = sorted(p.name for p in (cache / "mnist").iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in left
    assert all(name in data_module._IDX_FILES for name in left)  # no temporary files either


def test_unreachable_server_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATASETS_DIR", str(tmp_path / "sets"))
    with pytest.raises(ValueError, match="Could not download") as caught:
        fetch_dataset("kmnist", tmp_path, base_url="http://127.0.0.1:9/")
    message = str(caught.value)
    # Words a learner can act on, not urllib3's exception chain.
    assert "this server cannot reach 127.0.0.1" in message
    assert f"{tmp_path / 'sets'}/kmnist" in message
    assert "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (enough on their own" in message
    assert "Missing here: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, " in message
    assert not any(w in message for w in ("urllib3", "Connection", "Errno", "HTTPConnectionPool"))


def test_a_missing_file_on_the_server_is_explained(file_server, tmp_path, monkeypatch):
    root, url = file_server
    serve_mnist(root, monkeypatch)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 answered HTTP 404") as caught:
        fetch_dataset("mnist", tmp_path / "cache", base_url=url)
    assert str(caught.value).endswith("Missing here: t10k-labels-idx1-ubyte.gz.")


def test_the_servers_dataset_folder_is_used_without_a_download(tmp_path, monkeypatch):
    # Only the test files, and an unreachable official server: nothing needs downloading.
    (tmp_path / "sets" / "mnist").mkdir(parents=True)
    write_mnist_folder(tmp_path / "sets" / "mnist", 0, 50)
    monkeypatch.setenv("CNNLAB_DATASETS_DIR", str(tmp_path / "sets"))
    source = data_module.SOURCES["mnist"]
    offline = data_module._Source("http://127.0.0.1:9/", source.files, source.classes, False)
    monkeypatch.setitem(data_module.SOURCES, "mnist", offline)
    bundle = load_dataset("mnist", cache_dir=tmp_path / "cache")
    assert (len(bundle.train_y), len(bundle.test_y)) == (40, 10)
    assert not (tmp_path / "cache").exists()
    # A set the folder does not hold is still downloaded (here: refused, being offline).
    with pytest.raises(ValueError, match="kmnist: this server cannot reach"):
        load_dataset("kmnist", cache_dir=tmp_path / "cache")


def test_a_dataset_folder_without_the_test_files_says_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "sets" / "mnist").mkdir(parents=True)
    write_mnist_folder(tmp_path / "sets" / "mnist", 30, 20)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / "sets" / "mnist" / name).unlink()
    monkeypatch.setenv("CNNLAB_DATASETS_DIR", str(tmp_path / "sets"))
    with pytest.raises(ValueError, match="expected t10k-images-idx3-ubyte"):
        load_dataset("mnist", cache_dir=tmp_path / "cache")


def test_official_checksums_match_the_published_test_files():
    # The shared benchmark copy of MNIST's t10k files carries the official MD5SUMS.
    repo = Path(__file__).resolve().parents[1]
    candidates = [base / "shared/data/mnist-t10k/MD5SUMS" for base in repo.parents[:2]]
    sums = next((c for c in candidates if c.is_file()), None)
    if sums is None:
        pytest.skip("no shared MNIST copy on this machine")
    official = dict(line.split()[::-1] for line in sums.read_text().splitlines())
    ours = dict(data_module.SOURCES["mnist"].files)
    for name, md5 in official.items():
        assert ours[name] == md5


# --- zips of class folders ----------------------------------------------------------------------


def png_bytes(value: int, size=(10, 14), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    colour = (value, 255 - value, 0) if mode == "RGB" else value
    Image.new(mode, size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in files.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def test_zip_of_class_folders(tmp_path):
    files = {f"pets/cats/{i}.png": png_bytes(10 * i) for i in range(5)}
    files |= {f"pets/dogs/{i}.jpg": png_bytes(200) for i in range(5)}
    files["pets/README.txt"] = b"not an image"
    files["__MACOSX/pets/cats/._0.png"] = b"resource fork"
    bundle = load_image_folder_zip(make_zip(files), size=16, grayscale=False, seed=1)
    assert bundle.classes == ("cats", "dogs")
    assert bundle.input_shape == (3, 16, 16)
    assert (len(bundle.train_y), len(bundle.test_y)) == (8, 2)
    assert sorted(bundle.test_y.tolist()) == [0, 1]
    gray = load_image_folder_zip(make_zip(files), size=12, grayscale=True)
    assert gray.input_shape == (1, 12, 12)
    # A uniform dog image stays uniform after resizing: red 200, green 55.
    dog = bundle.train_x[bundle.train_y == 1][0]
    assert dog[0].unique().tolist() == [200]
    assert dog[1].unique().tolist() == [55]


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"definitely not a zip", "not a zip"),
        (make_zip({"cats/1.png": png_bytes(1), "cats/2.png": png_bytes(2)}), "at least 2"),
        (make_zip({"a.png": png_bytes(1), "b.png": png_bytes(2)}), "class folder"),
        (make_zip({"notes.txt": b"hello"}), "no images"),
        (
            make_zip({"a/1.png": png_bytes(1), "a/2.png": png_bytes(2), "b/1.png": png_bytes(3)}),
            "needs at least 2",
        ),
        (
            make_zip(
                {"a/1.png": png_bytes(1), "a/2.png": b"garbage"}
                | {"b/1.png": png_bytes(3), "b/2.png": png_bytes(4)}
            ),
            "a/2.png is not a readable image",
        ),
    ],
)
def test_bad_zips_are_explained(payload, words):
    with pytest.raises(ValueError, match=words):
        load_image_folder_zip(payload, size=16, grayscale=True)


def test_corrupt_zip_is_explained():
    files = {
        f"{c}/{i}.bmp": bytes(Image.new("L", (40, 40), 7).tobytes()) for c in "ab" for i in "12"
    }
    payload = bytearray(make_zip(files))
    # Flip bytes inside the first member's compressed data: the CRC check must catch it.
    start = payload.index(b"a/1.bmp") + len("a/1.bmp")
    for i in range(start + 2, start + 12):
        payload[i] ^= 0x55
    with pytest.raises(ValueError, match=r"damaged|not a readable image"):
        load_image_folder_zip(bytes(payload), size=16, grayscale=True)
    truncated = make_zip(files)[:-30]
    with pytest.raises(ValueError, match=r"not a zip|damaged"):
        load_image_folder_zip(truncated, size=16, grayscale=True)


def test_zip_limits_guard_against_bombs():
    files = {f"{c}/{i}.png": png_bytes(i) for c in "ab" for i in range(3)}
    with pytest.raises(ValueError, match="limit is 4"):
        load_image_folder_zip(make_zip(files), max_files=4)
    bomb = make_zip({"a/1.png": b"\0" * 3_000_000, "b/1.png": b"\0" * 3_000_000})
    assert len(bomb) < 50_000
    with pytest.raises(ValueError, match="unpacks to more than 1 MB"):
        load_image_folder_zip(bomb, max_bytes=1_000_000)


# --- batches ------------------------------------------------------------------------------------


def test_normalize_matches_the_formula():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(normalize(x, mean, std), expected)


def test_augment_shifts_each_image_by_a_whole_window():
    x = torch.arange(6 * 2 * 7 * 7, dtype=torch.float32).view(6, 2, 7, 7) + 1
    out = augment(x, torch.Generator().manual_seed(0), shift=2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        windows = [padded[i, :, dy : dy + 7, dx : dx + 7] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_augment_flip_mirrors_some_images():
    x = torch.arange(64 * 4, dtype=torch.float32).view(64, 1, 1, 4)
    out = augment(x, torch.Generator().manual_seed(0), shift=0, flip=True)
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(out[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


def test_default_cache_lives_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path))
    assert data_module.default_cache_dir() == tmp_path / "datasets"


def test_test_files_put_in_the_download_cache_are_used_as_they_are(tmp_path, monkeypatch):
    # Someone offline copied the two t10k files where downloads go: no download is tried.
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    write_mnist_folder(cache / "mnist", 0, 50)
    source = data_module.SOURCES["mnist"]
    offline = data_module._Source("http://127.0.0.1:9/", source.files, source.classes, False)
    monkeypatch.setitem(data_module.SOURCES, "mnist", offline)
    bundle = load_dataset("mnist", cache_dir=cache)
    assert (len(bundle.train_y), len(bundle.test_y)) == (40, 10)
    # With the training images there too, the cache is a download again: checked, completed.
    write_mnist_folder(cache / "mnist", 30, 20)
    (cache / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match=r"Missing here: train-labels-idx1-ubyte\.gz"):
        load_dataset("mnist", cache_dir=cache)

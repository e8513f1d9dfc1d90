"""What the hostile-input bounds cost and save.

1. Reading a zip of class folders in the budgeted child process (what the train page does) vs
   decoding the same zip in this process: the ratio is the sandbox's overhead per upload.
2. Loading a large 16-bit image with :func:`cnnlab.images.load_image` (strip-wise conversion while
   shrinking) vs the naive way (the whole image as float64, then shrunk): median time and the
   peak extra memory of each, measured in a fresh fork per call (``VmHWM`` after
   ``/proc/self/clear_refs``).

Usage: python benchmarks/hostile_input.py [--quick]   (--quick: tiny sizes, to check it runs)
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from timing import median_ms

# Run as a script from anywhere: the engine is found from the repository root.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnlab.class_folders import read_class_folders  # noqa: E402
from cnnlab.data import load_image_folder_zip  # noqa: E402
from cnnlab.images import load_image  # noqa: E402


def class_zip(per_class: int, side: int) -> bytes:
    import zipfile

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for cls in ("cats", "dogs"):
            for i in range(per_class):
                image = Image.fromarray(rng.integers(0, 255, (side, side, 3), np.uint8))
                png = io.BytesIO()
                image.save(png, "PNG")
                archive.writestr(f"{cls}/{i}.png", png.getvalue())
    return buffer.getvalue()


def naive_load(data: bytes, max_side: int) -> Image.Image:
    """The conversion before the bounds: the whole 16-bit image as float64, then shrunk."""
    with Image.open(io.BytesIO(data)) as image:
        values = np.asarray(image).astype(np.float64) * (255.0 / 65535.0)
    gray = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
    gray.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return gray


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def forked(fn, *args) -> tuple[float, float]:
    """Seconds and peak extra MB of ``fn(*args)`` in a fresh fork."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        Path("/proc/self/clear_refs").write_text("5")
        base = _kb("VmRSS")
        start = time.perf_counter()
        fn(*args)
        seconds = time.perf_counter() - start
        os.write(write_end, f"{seconds} {(_kb('VmHWM') - base) / 1024}".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        seconds, mb = pipe.read().split()
    os.waitpid(pid, 0)
    return float(seconds), float(mb)


def main() -> None:
    quick = "--quick" in sys.argv
    per_class, side, repeat = (5, 32, 2) if quick else (200, 96, 7)
    data = class_zip(per_class, side)
    here = median_ms(lambda: read_class_folders(data, 28), repeat=repeat)
    there = median_ms(lambda: load_image_folder_zip(data, 28), repeat=repeat)
    print(
        f"zip of {2 * per_class} PNGs {side}×{side}: in-process {here:8.1f} ms  "
        f"sandboxed {there:8.1f} ms  ratio {there / here:5.2f}×"
    )
    big = 1000 if quick else 7000
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((big, big), np.uint16)).save(buffer, "PNG")
    png16 = buffer.getvalue()
    runs = {"load_image": [], "naive": []}
    for _ in range(repeat):
        runs["load_image"].append(forked(load_image, png16, 1024))
        runs["naive"].append(forked(naive_load, png16, 1024))
    medians = {
        name: (statistics.median(s for s, _ in r), statistics.median(m for _, m in r))
        for name, r in runs.items()
    }
    (ours_s, ours_mb), (naive_s, naive_mb) = medians["load_image"], medians["naive"]
    print(
        f"16-bit PNG {big}×{big}: load_image {ours_s * 1000:8.0f} ms {ours_mb:7.0f} MB peak  "
        f"naive {naive_s * 1000:8.0f} ms {naive_mb:7.0f} MB peak  "
        f"memory ratio {naive_mb / max(ours_mb, 1):5.1f}×"
    )


if __name__ == "__main__":
    main()

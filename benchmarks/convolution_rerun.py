"""Rerun time of the convolution page after a slider change, on an uploaded 1024×1024 photo.

Measured with AppTest against an empty page's rerun in the same process, interleaved so that
machine load affects both alike. Two series:

- *revisit*: the stride slider goes back to a value seen before (the cached feature map is
  reused; this is also what every other learner of a class gets after the first one);
- *first visit*: a stride/padding combination never computed before (F.conv2d on 1024×1024).

A third page calibrates the floor: as many plain widgets and text elements as the lab shows,
with no computation at all (AppTest's cost per element, which no caching can remove).

Target: the revisit median at most 3× the empty page's median. Run:
``.venv/bin/python benchmarks/convolution_rerun.py``
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnlab.images import sample_image  # noqa: E402

TARGET = 3.0

# As many widgets (17) and other elements (about 35) as the lab renders, doing nothing else.
CALIBRATION = """
import streamlit as st
for i in range(17):
    st.slider(f"widget {i}", 0, 10, key=f"w{i}")
for i in range(35):
    st.markdown(f"element **{i}**")
"""


def photo_1024() -> bytes:
    """A 1024×1024 JPEG photo (the bundled astronaut, upscaled), as a learner would upload."""
    image = sample_image("astronaut").convert("RGB").resize((1024, 1024), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def timed(at: AppTest) -> float:
    """Seconds one ``at.run()`` takes; fails loudly if the page raised."""
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception[0].value}")
    return elapsed


def main() -> None:
    """Print medians (ms) of both series, the empty page's, and the ratios."""
    empty = AppTest.from_string("", default_timeout=60)
    timed(empty)
    calibration = AppTest.from_string(CALIBRATION, default_timeout=60)
    timed(calibration)
    page = AppTest.from_file(str(ROOT / "pages" / "convolution.py"), default_timeout=300)
    timed(page)
    page.radio(key="conv.image.source").set_value("Upload")
    timed(page)
    page.file_uploader(key="conv.image.upload").set_value(("photo.jpg", photo_1024(), "image/jpeg"))
    timed(page)
    assert any("Input 1 × 1024 × 1024" in m.value for m in page.markdown), "upload not used"
    # 'Same' padding needs stride 1, so the stride sweep uses a number of padding cells.
    page.selectbox(key="conv.padding").set_value("number")
    timed(page)

    settings = [(cells, stride) for cells in (1, 2) for stride in range(1, 9)]
    first, revisit, baseline, floor = [], [], [], []
    for series in (first, revisit, revisit):
        for cells, stride in settings:
            page.number_input(key="conv.padding_cells").set_value(cells)
            page.slider(key="conv.stride").set_value(stride)
            series.append(timed(page))
            baseline.append(timed(empty))
            calibration.slider(key="w0").set_value(stride)
            floor.append(timed(calibration))

    base = statistics.median(baseline)
    print(f"empty page rerun          median {base * 1000:7.1f} ms  (n={len(baseline)})")
    for name, series in (
        ("revisit (cached)", revisit),
        ("first visit (computed)", first),
        ("calibration (no compute)", floor),
    ):
        median = statistics.median(series)
        print(
            f"{name:<25} median {median * 1000:7.1f} ms  (n={len(series)})  "
            f"ratio {median / base:5.1f}×"
        )
    ratio = statistics.median(revisit) / base
    print(
        f"target: revisit ≤ {TARGET:g}× the empty page → {'met' if ratio <= TARGET else 'MISSED'}"
    )


if __name__ == "__main__":
    main()

"""What a learner feels: the convolution page's rerun after a slider change, in a real browser.

A real ``streamlit run`` server and headless Debian Chromium. The learner uploads a 1024×1024
photo, picks valid padding (so that every stride gives a feature map), then moves the stride
slider with the keyboard; each change is timed from the key press to the page's last change (the
last DOM mutation, once Streamlit is idle again). The baseline is the same gesture on an empty
page (one slider, nothing else) served the same way in the same run.
Series:

- *first visit*: stride 1→8, every value computed for the first time (F.conv2d on 1024²);
- *revisit*: back and forth over values seen before (cached; also what the rest of a class gets);
- *step-by-step tab*: the same back and forth with the *Step by step* tab open (grids and sums).

Target (issue 6): median ≤ 3× the empty page's median. Run:
``.venv/bin/python benchmarks/convolution_rerun_browser.py [rounds]``
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import Locator, Page, sync_playwright  # noqa: E402
from server import streamlit_server  # noqa: E402
from streamlit_page import goto, wait_until_idle  # noqa: E402

from cnnlab.images import sample_image  # noqa: E402

TARGET = 3.0
EMPTY_PAGE = 'import streamlit as st\n\nst.slider("Stride", 1, 8, 1, key="stride")\n'
# The end of a rerun is when the page stops changing: the last DOM mutation after the key press,
# once Streamlit is idle and nothing has changed for QUIET_MS. (A very fast rerun may never show
# the "running" state at all, so the state attribute alone cannot mark the end.)
QUIET_MS = 400
WATCH = """() => {
  window.__last = 0;
  new MutationObserver(() => { window.__last = performance.now(); })
    .observe(document.querySelector('[data-testid=stApp]'),
             {attributes: true, childList: true, subtree: true, characterData: true});
}"""
SETTLED = f"""(start) => window.__last > start
  && document.querySelector('[data-testid=stApp]').getAttribute('data-test-script-state')
     === 'notRunning'
  && performance.now() - window.__last > {QUIET_MS}"""


def timed_key(page: Page, slider: Locator, key: str) -> float:
    """Milliseconds from pressing ``key`` on ``slider`` to the end of the rerun it starts."""
    slider.focus()  # a rerun may re-render the slider and drop the focus
    page.wait_for_timeout(QUIET_MS)
    start = page.evaluate("() => performance.now()")
    page.keyboard.press(key)
    page.wait_for_function(SETTLED, arg=start, timeout=60_000)
    return page.evaluate("window.__last") - start


def back_and_forth(page: Page, slider: Locator, rounds: int) -> list[float]:
    """Stride 8→1→8, ``rounds`` times: every value seen before."""
    times = []
    for _ in range(rounds):
        times += [timed_key(page, slider, "ArrowLeft") for _ in range(7)]
        times += [timed_key(page, slider, "ArrowRight") for _ in range(7)]
    return times


def sweep(page: Page, url: str, url_path: str, rounds: int, lab: bool) -> dict[str, list[float]]:
    """Open the page (the lab: upload a photo), time stride 1→8 (first visit), back and forth."""
    goto(page, url, url_path)
    if lab:
        upload_photo(page)
    page.evaluate(WATCH)
    main = page.locator("[data-testid=stMain]")
    slider = main.get_by_role("slider", name="Stride")
    series = {"first visit": [timed_key(page, slider, "ArrowRight") for _ in range(7)]}
    series["revisit"] = back_and_forth(page, slider, rounds)
    if lab:
        main.get_by_role("tab", name="Step by step").click()
        wait_until_idle(page)
        main.locator("table.cgrid").wait_for()
        series["step-by-step tab"] = back_and_forth(page, slider, rounds)
    return series


def photo_1024() -> bytes:
    """A 1024×1024 JPEG photo (the bundled astronaut, upscaled), as a learner would upload."""
    image = sample_image("astronaut").convert("RGB").resize((1024, 1024), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def upload_photo(page: Page) -> None:
    """Upload a 1024×1024 JPEG through the page's image picker, as a learner would."""
    main = page.locator("[data-testid=stMain]")
    main.get_by_text("Upload", exact=True).click()
    wait_until_idle(page)
    with tempfile.NamedTemporaryFile(suffix=".jpg", delete=False) as f:
        f.write(photo_1024())
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(f.name)
    wait_until_idle(page)
    main.get_by_text("× 1024 × 1024", exact=False).first.wait_for(timeout=60_000)
    # 'Same' padding needs stride 1: with it, strides 2-8 would time the error message, not a
    # feature map. Valid padding gives a real F.conv2d output at every stride.
    main.locator("[data-testid=stSelectbox]").filter(has_text="Padding").first.click()
    page.get_by_role("option", name="Valid (none)").click()
    wait_until_idle(page)
    main.get_by_text("Output 1 × 1022 × 1022", exact=False).wait_for(timeout=60_000)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        empty = Path(tmp) / "empty_page.py"
        empty.write_text(EMPTY_PAGE)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with (
            streamlit_server(Path(tmp) / "lab") as lab_url,
            streamlit_server(Path(tmp) / "empty", str(empty)) as empty_url,
        ):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            lab = sweep(page, lab_url, "convolution", rounds, lab=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            base = sweep(page, empty_url, "", rounds, lab=False)
        browser.close()
    base_all = statistics.median(base["first visit"] + base["revisit"])
    print(f"empty page rerun: median {base_all:.0f} ms")
    for series, times in lab.items():
        med = statistics.median(times)
        print(
            f"convolution page, {series}: median {med:.0f} ms over {len(times)} changes "
            f"(min {min(times):.0f}, max {max(times):.0f}) = {med / base_all:.2f}× the empty page"
        )
    every = statistics.median([t for times in lab.values() for t in times])
    verdict = "meets" if every / base_all <= TARGET else "misses"
    print(f"all slider changes: {every / base_all:.2f}× (target ≤ {TARGET}×: {verdict})")


if __name__ == "__main__":
    main()

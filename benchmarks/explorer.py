"""The feature-map explorer's speed: the engine on a 1024×1024 upload, and the page's reruns.

1. Engine (no Streamlit): for each bundled network and the classic-vision bank, the time to turn
   a 1024×1024 photo into the network's input and compute every layer's maps (issue 14's target:
   well under a second), and to tile and PNG-encode every layer (what the page sends).
2. Page, in a real browser (like ``convolution_rerun_browser.py``): a real ``streamlit run``
   server and headless Chromium; each change timed from the key press to the page's last DOM
   change; the baseline is the same gesture on an empty one-slider page in the same run.
   Series: the temperature slider and the ε slider (both inside fragments: the fragment alone
   reruns, results cached per (network, image, settings)), and the pattern-size slider (outside
   any fragment: a full page run; values seen before, so the analysis is a cache hit).
3. Server time (issue 11's targets: a full page run ≤ 100 ms, a widget change inside a fragment
   ≤ 50 ms): a websocket client speaking Streamlit's protobuf messages times a rerun request to
   its ``script_finished`` message, for full runs of the page (defaults: the digits network on
   the sample 7) and for fragment reruns after a temperature or ε change; the baseline is a full
   run of an empty one-slider page in the same run.

Run: ``.venv/bin/python benchmarks/explorer.py [rounds]`` (``0`` runs the engine part only).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e"), str(ROOT / "benchmarks")]

from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from convolution_rerun_browser import EMPTY_PAGE, WATCH, photo_1024, timed_key  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402
from server import streamlit_server  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.Delta_pb2 import Delta  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402
from streamlit_page import goto, wait_until_idle  # noqa: E402
from timing import median_ms  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

from cnnlab.bundled import BUNDLED, load_bundled  # noqa: E402
from cnnlab.classic_vision import classic_model  # noqa: E402
from cnnlab.explorer import Explorable, layer_views, png_bytes, preprocess, tile_maps  # noqa: E402


def _targets() -> list[Explorable]:
    targets = []
    for name in BUNDLED:
        info, model = load_bundled(name)
        c, h, _ = info.input_shape
        targets.append(
            Explorable(name, name, model, c, h, info.preprocess, info.mean, info.std, info.classes)
        )
    classic = Explorable("classic", "classic", classic_model(), 3, 256, "fit", (0,) * 3, (1,) * 3)
    return [*targets, classic]


def engine(repeat: int = 10) -> None:
    """Median ms of preprocessing + every layer's maps, and of tiling + encoding them."""
    import io

    photo = Image.open(io.BytesIO(photo_1024()))
    photo.load()
    for target in _targets():
        maps_ms = median_ms(lambda t=target: layer_views(t.model, preprocess(photo, t).x), repeat)
        views = layer_views(target.model, preprocess(photo, target).x)
        tiles_ms = median_ms(
            lambda v=views: [png_bytes(tile_maps(view.maps)[0]) for view in v], repeat
        )
        print(
            f"{target.key}: 1024×1024 upload → input + all {len(views)} layers' maps: median "
            f"{maps_ms:.1f} ms (target well under 1000 ms); tiling + PNG of every layer "
            f"{tiles_ms:.1f} ms"
        )


def _sweep(page: Page, name: str, rounds: int, first: str = "ArrowRight") -> list[float]:
    """Back and forth over the slider ``name``: 3 steps one way, 3 back, ``rounds`` times."""
    slider = page.locator("[data-testid=stMain]").get_by_role("slider", name=name)
    back = "ArrowLeft" if first == "ArrowRight" else "ArrowRight"
    times = []
    for _ in range(rounds):
        times += [timed_key(page, slider, first) for _ in range(3)]
        times += [timed_key(page, slider, back) for _ in range(3)]
    return times


def explorer_series(page: Page, url: str, rounds: int) -> dict[str, list[float]]:
    """Open the explorer, upload a 1024×1024 photo, time the three sliders; then a pattern."""
    goto(page, url, "explorer")
    main = page.locator("[data-testid=stMain]")
    main.get_by_text("Upload", exact=True).click()
    wait_until_idle(page)
    with tempfile.NamedTemporaryFile(suffix=".jpg", delete=False) as f:
        f.write(photo_1024())
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(f.name)
    wait_until_idle(page)
    main.get_by_text("your image (1024×1024)", exact=False).wait_for(timeout=60_000)
    page.evaluate(WATCH)
    series = {
        "temperature slider (fragment)": _sweep(page, "Softmax temperature T", rounds),
        "ε slider (fragment)": _sweep(page, "ε (grey levels of 255)", rounds),
    }
    main.get_by_text("Pattern", exact=True).click()
    wait_until_idle(page)
    page.evaluate(WATCH)
    slider = "Pattern size (pixels)"  # 128 → 16 and back: every size is analysed once first
    _sweep(page, slider, 1, first="ArrowLeft")
    series["pattern size (full page run)"] = _sweep(page, slider, rounds, first="ArrowLeft")
    return series


def browser(rounds: int) -> None:
    """The page's reruns in Chromium as ratios to an empty page's."""
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        empty = Path(tmp) / "empty_page.py"
        empty.write_text(EMPTY_PAGE)
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with (
            streamlit_server(Path(tmp) / "app") as app_url,
            streamlit_server(Path(tmp) / "empty", str(empty)) as empty_url,
        ):
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            series = explorer_series(page, app_url, rounds)
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            goto(page, empty_url)
            page.evaluate(WATCH)
            base = statistics.median(_sweep(page, "Stride", rounds))
        chromium.close()
    print(f"empty page rerun: median {base:.0f} ms")
    for name, times in series.items():
        med = statistics.median(times)
        print(
            f"explorer, {name}: median {med:.0f} ms over {len(times)} changes "
            f"(min {min(times):.0f}, max {max(times):.0f}) = {med / base:.2f}× the empty page"
        )


def _rerun(
    ws: ClientConnection, page: str = "", fragment: str = "", widgets: tuple = ()
) -> tuple[float, list]:
    """Ask for a rerun; return ms until ``script_finished`` and the messages on the way."""
    msg = BackMsg()
    msg.rerun_script.page_script_hash = page
    msg.rerun_script.fragment_id = fragment
    msg.rerun_script.widget_states.widgets.extend(widgets)
    start = time.perf_counter()
    ws.send(msg.SerializeToString())
    received = []
    while True:
        forward = ForwardMsg()
        forward.ParseFromString(ws.recv(timeout=300))
        kind = forward.WhichOneof("type")
        if kind == "script_finished":
            return (time.perf_counter() - start) * 1000, received
        if kind in ("delta", "navigation"):
            received.append(getattr(forward, kind))


def _slider_change(slider, value: float) -> WidgetState:
    state = WidgetState(id=slider.id)
    state.double_array_value.data.append(value)  # a slider reports its value(s) as an array
    return state


def _session_series(url: str, url_path: str, rounds: int) -> dict[str, list[float]]:
    """Full runs of a page, then (on the explorer) fragment reruns of two sliders."""
    with connect(url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"],
                 max_size=None) as ws:  # fmt: skip
        _, messages = _rerun(ws)
        page = ""  # the main script: the empty page
        for navigation in (m for m in messages if not isinstance(m, Delta)):
            page = {p.url_pathname: p.page_script_hash for p in navigation.app_pages}[url_path]
        _rerun(ws, page)  # the first run computes and caches; the rest are what a class gets
        series = {"full run": [_rerun(ws, page)[0] for _ in range(10 * rounds)]}
        _, messages = _rerun(ws, page)
        sliders = {
            d.new_element.slider.label: (d.new_element.slider, d.fragment_id)
            for d in messages
            if isinstance(d, Delta) and d.new_element.WhichOneof("type") == "slider"
        }
        for label, values in (("Softmax temperature T", (2.0, 3.0)), ("ε (grey levels of 255)",
                                                                      (4.5, 5.0))):  # fmt: skip
            if label not in sliders:
                continue
            slider, fragment = sliders[label]
            times = [
                _rerun(ws, page, fragment, (_slider_change(slider, values[i % 2]),))[0]
                for i in range(2 + 10 * rounds)
            ]
            series[f"{label} (fragment)"] = times[2:]  # both values computed once before
    return series


def server(rounds: int) -> None:
    """Server time per rerun, as issue 11 measures it, and the ratio to an empty page's run."""
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty_page.py"
        empty.write_text(EMPTY_PAGE)
        with (
            streamlit_server(Path(tmp) / "app") as app_url,
            streamlit_server(Path(tmp) / "empty", str(empty)) as empty_url,
        ):
            series = _session_series(app_url, "explorer", rounds)
            base = statistics.median(_session_series(empty_url, "", rounds)["full run"])
    print(f"server time, empty page full run: median {base:.1f} ms")
    targets = {"full run": 100.0}
    for name, times in series.items():
        med = statistics.median(times)
        target = targets.get(name, 50.0)
        print(
            f"server time, explorer {name}: median {med:.1f} ms over {len(times)} "
            f"(p90 {sorted(times)[int(0.9 * (len(times) - 1))]:.1f}) = {med / base:.2f}× the "
            f"empty page; target ≤ {target:.0f} ms: {'met' if med <= target else 'missed'}"
        )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    engine(repeat=max(3, 3 * rounds))
    if rounds:
        server(rounds)
        browser(rounds)


if __name__ == "__main__":
    main()

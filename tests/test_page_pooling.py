"""AppTest of the Pooling page: controls, step-through, invalid settings, numbers shown."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from pagetest import app_test
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnlab.pooling import PoolSpec, compare_heads, pool2d, reference_pool2d

PAGE = "pages/pooling.py"


@pytest.fixture(scope="module")
def fresh() -> AppTest:
    """The page after its first run (shared: tests that change widgets build their own)."""
    at = app_test(PAGE, timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _explanation(at: AppTest) -> str:
    return next(i.value for i in at.info if "**Window " in i.value)


def _grid(seed: int = 0, size: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, (size, size)).astype(np.float64)


def test_defaults_show_the_first_max_window(fresh: AppTest) -> None:
    assert not fresh.error
    trace = reference_pool2d(_grid(), PoolSpec("max", 2, 2))
    assert fresh.slider(key="pool.step").value == 1
    assert fresh.slider(key="pool.step").max == len(trace.steps) == 9
    assert trace.steps[0].expression in _explanation(fresh)
    assert "Window 1 of 9" in _explanation(fresh)
    assert any("bit for bit" in c.value for c in fresh.caption)


def test_next_previous_and_slider_move_through_the_windows() -> None:
    at = app_test(PAGE, timeout=120).run()
    trace = reference_pool2d(_grid(), PoolSpec("max", 2, 2))
    at.button(key="pool.next").click().run()
    assert at.slider(key="pool.step").value == 2
    assert trace.steps[1].expression in _explanation(at)
    at.slider(key="pool.step").set_value(9).run()
    assert "Window 9 of 9" in _explanation(at)
    at.button(key="pool.next").click().run()  # wraps around to the first window
    assert at.slider(key="pool.step").value == 1
    at.button(key="pool.prev").click().run()
    assert at.slider(key="pool.step").value == 9
    assert not at.exception


def test_pool_type_window_stride_padding_change_the_computation() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.radio(key="pool.kind").set_value("avg").run()
    at.slider(key="pool.window").set_value(3).run()
    at.slider(key="pool.stride").set_value(1).run()
    at.slider(key="pool.padding").set_value(1).run()
    spec = PoolSpec("avg", 3, 1, 1)
    trace = reference_pool2d(_grid(), spec)
    assert at.slider(key="pool.step").max == len(trace.steps) == 36
    assert trace.steps[0].expression in _explanation(at)
    assert "/ 9 = " in _explanation(at)  # padding zeros counted by default
    at.checkbox(key="pool.count_pad").uncheck().run()
    assert "/ 4 = " in _explanation(at)
    np.testing.assert_allclose(trace.output, pool2d(_grid(), spec).numpy())
    assert not at.error
    assert not at.exception


def test_lp_pooling_writes_out_the_norm() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.radio(key="pool.kind").set_value("lp").run()
    expression = reference_pool2d(_grid(), PoolSpec("lp", 2, 2, norm_type=2.0)).steps[0].expression
    assert expression.startswith("√(")
    assert expression in _explanation(at)
    at.select_slider(key="pool.p").set_value(3).run()
    assert "3-th root" in _explanation(at) or "³" in _explanation(at)


def test_invalid_padding_shows_the_engine_message_and_keeps_the_page() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.slider(key="pool.padding").set_value(2).run()
    assert not at.exception
    messages = [e.value for e in at.error]
    assert messages, "an invalid setting must be explained"
    assert all("more than half the window" in m for m in messages)
    # The rest of the page is still there: the head comparison does not depend on pooling.
    assert [m.value for m in at.metric][:2] == ["25,089,000", "513,000"]


def test_window_larger_than_the_grid_is_refused_in_words() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.slider(key="pool.grid_size").set_value(4).run()
    at.slider(key="pool.window").set_value(6).run()
    assert any("larger than the padded input" in e.value for e in at.error)
    assert not at.exception


def test_global_pooling_is_one_window() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.radio(key="pool.kind").set_value("global_max").run()
    assert "Window 1 of 1" in _explanation(at)
    assert f"= {int(_grid().max())}" in _explanation(at)
    assert at.slider(key="pool.window").disabled


def test_new_numbers_changes_the_grid() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.button(key="pool.shuffle").click().run()
    assert at.number_input(key="pool.seed").value == 1
    expected = reference_pool2d(_grid(seed=1), PoolSpec("max", 2, 2)).steps[0].expression
    assert expected in _explanation(at)


def test_every_pooling_type_has_zero_parameters_and_its_shape(fresh: AppTest) -> None:
    captions = [c.value for c in fresh.caption if c.value.startswith("output ")]
    assert len(captions) == 5
    assert all("**0 parameters**" in c for c in captions)
    assert captions[0].startswith("output 3×32×32")  # 64-px astronaut, 2×2 max pool
    assert captions[3].startswith("output 3×1×1")


def test_head_comparison_comes_from_the_modules() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.number_input(key="pool.head_c").set_value(2048).run()
    heads = compare_heads(2048, 7, 7, 1000)
    values = [m.value for m in at.metric]
    assert values[0] == f"{heads.flatten_fc:,}"
    assert values[1] == f"{heads.gap_fc:,}" == "2,049,000"
    assert values[2] == f"{heads.ratio:,.1f}×"


def test_invariance_controls_run() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.radio(key="pool.shift_mode").set_value("roll").run()
    at.radio(key="pool.inv_stage").set_value("image").run()
    at.radio(key="pool.shift_dir").set_value("diagonal").run()
    assert not at.exception
    assert not at.error
    assert any("equivariant" in m.value for m in at.markdown)


def test_play_advances_one_window_per_tick() -> None:
    # AppTest runs no timers; turning play on reruns the page once, which is one tick.
    at = app_test(PAGE, timeout=120).run()
    at.toggle(key="pool.play").set_value(True).run()
    assert at.slider(key="pool.step").value == 2
    assert "Window 2 of 9" in _explanation(at)
    assert not at.exception


def test_grid_editor_headers_are_the_figures_column_numbers(fresh: AppTest) -> None:
    # Keyed by position, the labels were shifted onto the hidden index: 1, 2, 3, 4, 5, 5.
    editor = fresh.get("dataframe")[0].proto
    columns = json.loads(editor.columns)
    shown = {k: v for k, v in columns.items() if not v.get("hidden")}
    assert [v["label"] for v in shown.values()] == [str(c) for c in range(6)]
    assert list(shown) == [str(c) for c in range(6)]  # by name, not by position
    # Text cells: the browser passes on what is typed, and the page decides (see checked_grid).
    assert {v["type_config"]["type"] for v in shown.values()} == {"text"}


def _upload(at: AppTest, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    at.radio(key="pool.image.source").set_value("Upload").run()
    at.file_uploader(key="pool.image.upload").set_value(("odd.png", buffer.getvalue(), "image/png"))
    at.run()


@pytest.mark.parametrize("size", [(1, 4000), (600, 10)], ids=["1x4000 strip", "600x10 banner"])
def test_extreme_aspect_ratios_are_stretched_and_said(size: tuple[int, int]) -> None:
    at = app_test(PAGE, timeout=120).run()
    _upload(at, Image.new("RGB", size, (200, 40, 40)))
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    notice = next(i.value for i in at.info if "stretched" in i.value)
    assert "too small for the pooling windows" in notice
    captions = [c.value for c in at.caption if c.value.startswith("output ")]
    assert len(captions) == 5  # every pooling type drew its picture
    assert any("equivariant" in m.value for m in at.markdown)  # section 3 ran
    assert len(at.metric) == 3


def test_every_pooled_picture_is_framed_so_a_white_global_max_shows() -> None:
    from ui.image_source import ImageSource
    from ui.pooling import pooled_pictures

    white = Image.new("RGB", (32, 32), (255, 255, 255))
    source = ImageSource(white, "white", "white-32", None)
    for picture in pooled_pictures(source, 32, PoolSpec("max", 2, 2)):
        pixels = np.asarray(Image.open(io.BytesIO(picture.picture)).convert("RGB"))
        assert (pixels[0] == 148).all(), picture.kind
        assert (pixels[:, -1] == 148).all(), picture.kind
        assert (pixels[1:-1, 1:-1] == 255).all(), picture.kind  # the white result itself


def test_window_text_tells_padding_from_ceil_modes_overhang() -> None:
    at = app_test(PAGE, timeout=120).run()
    at.slider(key="pool.grid_size").set_value(5).run()
    at.checkbox(key="pool.ceil").check().run()  # 5 wide, window 2, stride 2: a partial 3rd
    at.slider(key="pool.step").set_value(3).run()
    text = _explanation(at)
    assert "columns 4–5" in text
    assert "2 of its cells are past the padded input" in text
    assert "padding)" not in text  # padding is 0: nothing here is padding
    at.checkbox(key="pool.ceil").uncheck().run()
    at.slider(key="pool.padding").set_value(1).run()
    at.slider(key="pool.step").set_value(1).run()
    text = _explanation(at)
    assert "rows −1 to 0, columns −1 to 0" in text  # not "rows -1–0"
    assert "(3 of its cells are padding)" in text

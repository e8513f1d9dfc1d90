"""AppTest of the Pooling page: controls, step-through, invalid settings, numbers shown."""

from __future__ import annotations

import numpy as np
import pytest
from pagetest import app_test
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

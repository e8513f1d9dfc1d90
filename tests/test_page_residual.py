"""AppTest of the skip-connections lab: the numbers are the engine's; blocks switch cleanly."""

from __future__ import annotations

import pytest
from pagetest import app_test
from streamlit.testing.v1 import AppTest

from cnnlab.blocks import KINDS

PAGE = "pages/residual.py"


@pytest.fixture(scope="module")
def small() -> AppTest:
    """The page at a small depth and few steps (keeps the four measurements quick)."""
    at = app_test(PAGE, timeout=300)
    at.session_state["res.depth"] = 6
    at.session_state["res.steps"] = 3
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_ratio_shown_is_the_engines(small: AppTest) -> None:
    from ui import residual as ui

    results = ui.flows(6, 8, 3, 0)
    text = next(m.value for m in small.markdown if m.value.startswith("At initialisation"))
    assert f"**{results['plain'].first_to_last:.1e}**" in text
    assert f"**{results['residual'].first_to_last:.1e}**" in text
    table = small.dataframe[0].value
    assert table["network"].tolist() == ["plain", "plain + BN", "residual", "residual + BN"]
    assert table["first ÷ last, at init"].tolist() == [
        f"{f.first_to_last:.1e}" for f in results.values()
    ]
    assert len(small.get("plotly_chart")) == 2  # the gradient norms and the losses


def test_the_after_training_view_and_zero_steps(small: AppTest) -> None:
    small.radio(key="res.when").set_value("after 3 steps").run()
    assert not small.exception
    small.slider(key="res.steps").set_value(0).run()
    assert not small.exception
    assert len(small.get("plotly_chart")) == 1  # no losses to plot without steps


@pytest.mark.parametrize("kind", KINDS)
def test_every_block_is_drawn_with_its_parameter_table(small: AppTest, kind: str) -> None:
    from ui import residual as ui

    small.radio(key="res.block").set_value(kind).run()
    assert not small.exception
    assert not small.error
    table = small.dataframe[-1].value
    c_out, expand = (32, 4) if kind == "dense" else (128, 6)
    anatomy, _ = ui.block(kind, 64, c_out, 1, expand, 56)
    assert table["parameters"].iloc[-1] == f"{anatomy.params:,}"
    assert small.get("graphviz_chart")


def test_an_impossible_block_is_explained(small: AppTest) -> None:
    small.radio(key="res.block").set_value("bottleneck").run()
    small.number_input(key="res.c_out").set_value(130).run()
    assert not small.exception
    assert "multiple of 4" in small.error[0].value

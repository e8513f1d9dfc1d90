"""AppTest of the training-choices lab: what it says is what the engine measured."""

from __future__ import annotations

import pytest
from pagetest import app_test
from streamlit.testing.v1 import AppTest

PAGE = "pages/choices.py"


@pytest.fixture(scope="module")
def fresh() -> AppTest:
    """The page with a short range test (the first run computes the shared results)."""
    at = app_test(PAGE, timeout=300)
    at.session_state["ch.lr_steps"] = 30
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_loss_gradients_quoted_are_the_engines(fresh: AppTest) -> None:
    from ui import choices as ui

    results = ui.curves(3, True)
    text = next(m.value for m in fresh.markdown if m.value.startswith("One example"))
    assert f"**{results['cross_entropy'].grad[0]:.3f}**" in text
    assert f"**{results['mse'].grad[0]:.1e}**" in text


def test_the_optimiser_table_follows_the_step_slider(fresh: AppTest) -> None:
    from ui import choices as ui

    fresh.slider(key="ch.step").set_value(50).run()
    table = fresh.dataframe[0].value
    paths = ui.paths("rosenbrock", tuple(ui.PATH_COLOURS), (1e-3, 1e-3, 3e-2, 3e-2, 3e-2), 200)
    assert table["loss at step 50"].tolist() == [f"{p.losses[50]:.4g}" for p in paths]


def test_no_optimiser_and_a_diverging_one_are_explained() -> None:
    at = app_test(PAGE, timeout=300)
    at.session_state["ch.lr_steps"] = 30
    at.run()
    at.multiselect(key="ch.optimizers").set_value([]).run()
    assert "Pick at least one" in at.info[0].value
    at.multiselect(key="ch.optimizers").set_value(["sgd"]).run()
    at.select_slider(key="ch.sgd_lr").set_value(3e-2).run()
    assert not at.exception
    assert at.dataframe[0].value["where"].tolist() == ["diverged"]


def test_the_range_test_suggestion_is_shown(fresh: AppTest) -> None:
    from ui import choices as ui

    result = ui.range_test(0, 30)
    text = next(m.value for m in fresh.markdown if m.value.startswith("Train for"))
    assert f"**{result.suggestion:.2g}**" in text


def test_augmentation_settings_rerun_cleanly(fresh: AppTest) -> None:
    fresh.slider(key="ch.shift").set_value(5).run()
    fresh.toggle(key="ch.flip").set_value(False).run()
    fresh.radio(key="ch.moving").set_value("a wrong class").run()
    fresh.selectbox(key="ch.landscape").set_value("saddle").run()
    assert not fresh.exception
    assert not fresh.error

"""Widget values a script can send over the websocket, out of every widget's range, on every page.

A browser keeps sliders and number inputs within their bounds; a hand-written client does not.
Streamlit resets an out-of-range value to the widget's default, and the pages must then run as
usual: no exception block, whatever arrives. (The data editors, whose cells are free-form, are
checked by the engine: see the spec and kernel cases of the hostile corpus.)
"""

from __future__ import annotations

import math

import pytest
from pagetest import app_test

from ui.navigation import PAGES

ABSURD = (10**12, -(10**12), math.nan, math.inf)


@pytest.mark.slow
@pytest.mark.parametrize("script", [f"pages/{page.url_path}.py" for page in PAGES])
@pytest.mark.parametrize("value", ABSURD, ids=["huge", "negative", "nan", "inf"])
def test_out_of_range_numbers_do_not_break_a_page(script: str, value: float) -> None:
    at = app_test(script, timeout=180)
    at.run()
    widgets = [*at.slider, *at.number_input]
    assert widgets, "every page has numeric widgets"
    for widget in widgets:
        if widget.disabled:
            continue  # AppTest, like a browser, cannot change a disabled widget
        integer = widget.proto.data_type == widget.proto.INT
        if integer and not math.isfinite(value):
            continue  # an integer widget's value is sent as an integer: no NaN or infinity
        widget.set_value(int(value) if integer else value)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    for widget in [*at.slider, *at.number_input]:
        if isinstance(widget.value, int | float):
            assert widget.min <= widget.value <= widget.max, (widget.key, widget.value)

"""The text alternative of a figure says what the figure draws, read off the figure itself."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io
from streamlit.testing.v1 import AppTest

from ui.figure_text import dot_summary, figure_summary, figure_table, markdown_table


def test_a_line_chart_is_summarised_with_its_series_axes_and_points():
    fig = go.Figure(
        [
            go.Scatter(x=[0, 1, 2], y=[3.0, 1.5, 0.25], name="train <b>loss</b>"),
            go.Scatter(x=[0, 1, 2], y=[2.0, 1.0, 0.5], name="validation"),
        ],
        layout={"title": {"text": "Loss"}, "xaxis_title": "epoch", "yaxis_title": "loss"},
    )
    text = figure_summary(fig)
    assert text.startswith("Figure: Loss. 2 series: train loss, validation.")
    assert "Horizontal axis (epoch) from 0 to 2; vertical axis (loss) from 0.25 to 3." in text
    header, rows = figure_table(fig)
    assert header == ("series", "x", "y")
    assert len(rows) == 6
    assert rows[2] == ("train loss", "2", "0.25")


def test_a_long_series_is_sampled_and_a_small_heat_map_listed_cell_by_cell():
    long = go.Figure(go.Scatter(y=np.arange(10_000.0)))
    _, rows = figure_table(long)
    assert len(rows) == 120
    assert (rows[0][2], rows[-1][2]) == ("0.0", "9999.0")
    heat = go.Figure(go.Heatmap(z=[[1, 2, 3], [4, 5, 6]]))
    assert "A heatmap grid of 2×3 values from 1 to 6." in figure_summary(heat)
    assert figure_table(heat) == (
        ("row", "0", "1", "2"),
        [("0", "1", "2", "3"), ("1", "4", "5", "6")],
    )
    assert figure_table(go.Figure(go.Heatmap(z=np.zeros((40, 40))))) is None


def test_a_diagram_lists_its_boxes_in_order():
    dot = 'digraph { a [label="Input\\n28×28"]; b [label="Conv"]; a -> b; }'
    assert dot_summary(dot) == "Diagram with 1 arrows: Input 28×28 · Conv."


def test_the_table_is_one_markdown_table_whose_cells_cannot_break_it():
    header, rows = ("series", "x", "y"), [("a|b *c* $d$", "1", "")]
    lines = markdown_table((header, rows)).splitlines()
    assert lines[:2] == ["| series | x | y |", "| --- | --- | --- |"]
    # Escaped: the pipe stays inside its cell, no emphasis or mathematics; an empty cell stays.
    assert lines[2] == "| a\\|b \\*c\\* \\$d\\$ | 1 |   |"


def _chart_page() -> None:
    import numpy as np
    import plotly.graph_objects as go
    import streamlit as st

    from ui import figure_text

    @st.cache_resource
    def shared() -> go.Figure:  # as the pages cache their figures: one object, every rerun
        return go.Figure(go.Scatter(x=np.arange(3), y=np.array([2.0, 0.5, 1.0]), name="loss"))

    figure_text.plotly_chart(shared(), key="chart")


def test_a_cached_figure_shown_again_sends_the_same_chart_and_text():
    at = AppTest.from_function(_chart_page).run()
    first = at.get("plotly_chart")[0].proto.spec, [m.value for m in at.markdown]
    again = at.run()
    assert (again.get("plotly_chart")[0].proto.spec, [m.value for m in again.markdown]) == first
    fresh = go.Figure(go.Scatter(x=np.arange(3), y=np.array([2.0, 0.5, 1.0]), name="loss"))
    assert json.loads(first[0]) == json.loads(plotly.io.to_json(fresh, validate=False))
    assert first[1][1].splitlines()[2] == "| loss | 0 | 2.0 |"

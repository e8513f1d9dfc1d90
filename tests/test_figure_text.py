"""The text alternative of a figure says what the figure draws, read off the figure itself."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ui.figure_text import dot_summary, figure_summary, figure_table


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
    table = figure_table(fig)
    assert table.shape == (6, 3)
    assert table.iloc[2].tolist() == ["train loss", "2", "0.25"]


def test_a_long_series_is_sampled_and_a_small_heat_map_listed_cell_by_cell():
    long = go.Figure(go.Scatter(y=np.arange(10_000.0)))
    table = figure_table(long)
    assert len(table) == 120
    assert (table.iloc[0]["y"], table.iloc[-1]["y"]) == ("0.0", "9999.0")
    heat = go.Figure(go.Heatmap(z=[[1, 2, 3], [4, 5, 6]]))
    assert "A heatmap grid of 2×3 values from 1 to 6." in figure_summary(heat)
    assert figure_table(heat).values.tolist() == [["1", "2", "3"], ["4", "5", "6"]]
    assert figure_table(go.Figure(go.Heatmap(z=np.zeros((40, 40))))) is None


def test_a_diagram_lists_its_boxes_in_order():
    dot = 'digraph { a [label="Input\\n28×28"]; b [label="Conv"]; a -> b; }'
    assert dot_summary(dot) == "Diagram with 1 arrows: Input 28×28 · Conv."

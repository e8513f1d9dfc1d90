"""Figures with a text alternative: what a Plotly or Graphviz figure shows, in words and as a
table, in a collapsed expander under it (a screen reader cannot read a chart's pixels).

Pages call :func:`plotly_chart` / :func:`graphviz_chart` where they called Streamlit's; the
text is read off the figure itself, so it always says what the figure draws.

Both cost on every rerun of every page, so both are cheap: the table is one Markdown element
(a DataFrame through ``st.table`` took pandas and Arrow conversions per chart), and a figure
shown again (the pages cache their figures by inputs) reuses its text and its Plotly dict from
the first showing instead of deep-copying and base64-encoding the figure again.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

# Longer series are sampled evenly: the table describes the figure, it does not replace it, and
# it is a static table (every cell is in the page), so it stays small.
MAX_ROWS = 120
MAX_GRID = 24  # heat maps up to 24×24 are listed cell by cell


def _text(value: Any) -> str:
    # Plotly titles may hold <b>, <br> and the like: a tag reads as a space, runs as one.
    return " ".join(re.sub(r"<[^>]+>", " ", str(value or "")).split())


def _axis_title(axis: Any) -> str:
    return _text(axis.title.text) if axis is not None and axis.title is not None else ""


def _numbers(values: Any) -> np.ndarray | None:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    return array if array.size else None


def _span(values: Any) -> str:
    array = _numbers(values)
    if array is None or not np.isfinite(array).any():
        return ""
    return f" from {np.nanmin(array):.4g} to {np.nanmax(array):.4g}"


def figure_summary(fig: go.Figure) -> str:
    """One or two sentences: the figure's title, its series or grids, and its axes' ranges."""
    layout = fig.layout
    parts = [f"Figure: {_text(layout.title.text)}." if layout.title.text else "Figure."]
    grids = [t for t in fig.data if getattr(t, "z", None) is not None]
    series = [t for t in fig.data if t not in grids and getattr(t, "y", None) is not None]
    for trace in grids:
        z = np.asarray(trace.z, dtype=object)
        shape = "×".join(str(n) for n in z.shape[:2])
        name = f" “{_text(trace.name)}”" if trace.name else ""
        parts.append(f"A {trace.type} grid{name} of {shape} values{_span(trace.z)}.")
    if series:
        names = [_text(t.name) for t in series if t.name]
        listed = f": {', '.join(names[:12])}" + ("…" if len(names) > 12 else "") if names else ""
        parts.append(f"{len(series)} series{listed}.")
        xs = np.concatenate([np.ravel(t.x) for t in series if t.x is not None] or [[]])
        ys = np.concatenate([np.ravel(t.y) for t in series])
        x_title, y_title = _axis_title(layout.xaxis), _axis_title(layout.yaxis)
        parts.append(
            f"Horizontal axis{f' ({x_title})' if x_title else ''}{_span(xs)}; "
            f"vertical axis{f' ({y_title})' if y_title else ''}{_span(ys)}."
        )
    images = sum(1 for t in fig.data if t.type == "image")
    if images:
        parts.append(f"{images} image{'s' if images > 1 else ''}.")
    return " ".join(parts)


Table = tuple[tuple[str, ...], list[tuple[str, ...]]]
"""A table's header and its rows, every cell already text."""


def figure_table(fig: go.Figure) -> Table | None:
    """The plotted numbers: one row per point of each series, or a small heat map's grid."""
    rows: list[tuple[str, ...]] = []
    series = [
        t
        for t in fig.data
        if getattr(t, "z", None) is None and getattr(t, "y", None) is not None and t.type != "image"
    ]
    per_series = max(10, MAX_ROWS // max(len(series), 1))
    for trace in series:
        y = list(np.ravel(trace.y))
        x = list(np.ravel(trace.x)) if trace.x is not None else list(range(len(y)))
        keep = np.unique(np.linspace(0, len(y) - 1, min(len(y), per_series)).round().astype(int))
        name = _text(trace.name) or trace.type
        rows += [(name, str(x[i]), str(y[i])) for i in keep if i < len(x)]
    if rows:
        return ("series", "x", "y"), rows
    for trace in fig.data:
        z = getattr(trace, "z", None)
        if z is not None and np.ndim(z) == 2 and max(np.shape(z)) <= MAX_GRID:
            grid = np.asarray(z)
            header = ("row", *(str(j) for j in range(grid.shape[1])))
            return header, [(str(i), *(str(v) for v in row)) for i, row in enumerate(grid)]
    return None


def _cell(text: str) -> str:
    # A pipe ends a Markdown cell, a name like "x_1*" must not turn into emphasis, nor a
    # dollar sign into mathematics.
    return re.sub(r"([\\|*_`~$\[\]<>])", r"\\\1", text) or " "


def markdown_table(table: Table) -> str:
    """The table as one Markdown table (an HTML table with a header row in the page)."""
    header, rows = table
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_alternative(fig: go.Figure) -> tuple[str, str | None]:
    """The figure's summary and its table in Markdown, worked out once per figure object."""
    text = getattr(fig, "_text_alternative", None)
    if text is None:
        table = figure_table(fig)
        text = figure_summary(fig), markdown_table(table) if table is not None else None
        fig._text_alternative = text  # plotly lets private attributes through
    return text


def describe(fig: go.Figure, where: Any = None) -> None:
    """The figure's summary and table in a collapsed expander."""
    summary, table = text_alternative(fig)
    with (where or st).expander("The figure as text", icon=":material/table_view:"):
        st.markdown(summary)
        if table is not None:
            st.markdown(table)


def _seal(fig: go.Figure) -> None:
    # st.plotly_chart calls fig.to_dict(), a deep copy with every array base64-encoded: tens of
    # milliseconds for a contour plot, on every rerun. A figure handed to this module is not
    # changed afterwards (the cached ones are shared by every session), so the dict of its
    # first showing is the dict of every later one; Streamlit only reads it.
    if "to_dict" not in vars(fig):
        as_dict = fig.to_dict()
        fig.to_dict = lambda: as_dict  # plotly lets its own attribute names through


def plotly_chart(fig: go.Figure, where: Any = None, **kwargs: Any) -> Any:
    """``st.plotly_chart`` (in ``where``, a column, if given) with its text alternative below;
    returns what Streamlit returns (the selection of a chart with ``on_select``)."""
    _seal(fig)
    event = (where or st).plotly_chart(fig, **kwargs)
    describe(fig, where)
    return event


def dot_summary(dot: str) -> str:
    """The nodes of a Graphviz diagram in the order the source lists them."""
    labels = [_text(label).replace("\\n", " ") for label in re.findall(r'label="([^"]*)"', dot)]
    edges = len(re.findall(r"->", dot))
    return f"Diagram with {edges} arrows: " + " · ".join(labels) + "." if labels else "Diagram."


def graphviz_chart(dot: str, **kwargs: Any) -> None:
    """``st.graphviz_chart`` with the diagram's boxes listed in a caption-like expander."""
    st.graphviz_chart(dot, **kwargs)
    with st.expander("The diagram as text", icon=":material/table_view:"):
        st.markdown(dot_summary(dot))

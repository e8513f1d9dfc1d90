"""Layer tables (st.data_editor) whose cells a script can set to anything over the websocket:
the helpers that read them back refuse bad cells in words."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ui.arithmetic import layers_from_frame
from ui.training import LAYER_COLUMNS, rows_spec


def layer_rows(**cells) -> pd.DataFrame:
    row = dict.fromkeys(LAYER_COLUMNS)
    return pd.DataFrame([{**row, "kind": "conv", **cells}], columns=list(LAYER_COLUMNS))


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        ({"out": 1e30}, r"'out_channels' must be a whole number from 1 to 4096"),
        ({"kernel": math.inf}, r"'kernel' must be a whole number"),
        ({"kernel": 2.5}, r"'kernel' must be a whole number"),
        ({"stride": "three"}, r"'stride' must be a number"),
        ({"padding": "full"}, r"'padding' must be a number"),
    ],
)
def test_bad_cells_of_the_model_table_are_explained(cells, words):
    from cnnlab.models import build_model

    with pytest.raises(ValueError, match=words):
        build_model(rows_spec(layer_rows(**cells), "custom"), (1, 28, 28), 10)


def test_a_dropout_probability_that_is_text_is_explained():
    rows = layer_rows(kind="dropout", p="lots")
    with pytest.raises(ValueError, match=r"'dropout p' must be a number"):
        rows_spec(rows, "custom")


@pytest.mark.parametrize("value", [math.inf, "many"])
def test_bad_cells_of_the_chain_table_are_explained(value):
    frame = pd.DataFrame([{"layer": "conv", "out": value, "kernel": 3, "stride": None,
                           "padding": "0", "dilation": None}])  # fmt: skip
    with pytest.raises(ValueError, match=r"Layer 1: .* is not a whole number"):
        layers_from_frame(frame)


def test_pooling_grid_cells_are_taken_as_typed_or_refused_by_name() -> None:
    from ui.pooling import checked_grid

    fallback = np.arange(12, dtype=np.float64).reshape(3, 4)
    typed = [["7", "x", "2.5", "−7"], [np.nan, -7, "500", "1e308"], [float("inf"), 99, "", " 3 "]]
    grid, refused = checked_grid(pd.DataFrame(typed), fallback)
    # Numbers from −99 to 99 are used exactly as typed (no 2.5 → 25, −7 → 7, 500 → 99).
    assert grid.tolist() == [[7.0, 1.0, 2.5, -7.0], [4.0, -7.0, 6.0, 7.0], [8.0, 99.0, 10.0, 3.0]]
    assert refused == [
        "row 0, column 1: 'x'",
        "row 1, column 0: 'nan'",
        "row 1, column 2: '500'",
        "row 1, column 3: '1e308'",
        "row 2, column 0: 'inf'",
        "row 2, column 2: 'empty'",
    ]
    untouched, none = checked_grid(pd.DataFrame(fallback + 1), fallback)
    assert none == []
    assert untouched.tolist() == (fallback + 1).tolist()


def test_cells_a_layer_kind_does_not_use_are_named_not_dropped() -> None:
    from ui.training import ignored_cells

    rows = pd.concat(
        [layer_rows(kind="relu", p=0.5), layer_rows(kind="linear", kernel=3, bias=False)],
        ignore_index=True,
    )
    assert ignored_cells(rows) == [
        "layer 1 (relu) has no dropout p, so 0.5 is not used",
        "layer 2 (linear) has no kernel, so 3 is not used",
    ]
    # A dropout p on a dropout row, an unticked bias anywhere: nothing to report.
    assert ignored_cells(layer_rows(kind="dropout", p=0.2, bias=False)) == []
    # The spec itself is unchanged: the ReLU is built as a ReLU.
    assert [layer.kind for layer in rows_spec(rows, "custom").layers] == ["relu", "linear"]


@pytest.mark.parametrize("value", [2.5, -0.5, "2.5"])
def test_a_fractional_chain_cell_is_refused_not_cut(value):
    frame = pd.DataFrame([{"layer": "conv", "out": 8, "kernel": value, "stride": None,
                           "padding": "0", "dilation": None}])  # fmt: skip
    with pytest.raises(ValueError, match=r"Layer 1: .* is not a whole number"):
        layers_from_frame(frame)

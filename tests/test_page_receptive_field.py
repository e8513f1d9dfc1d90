"""AppTest of the receptive-field page: editor, presets, neuron selection, bad stacks."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from pagetest import app_test
from PIL import Image

from cnnlab.receptive_field import PRESETS, analyse_stack, neuron_region
from ui import receptive_field as ui_rf

PAGE = "pages/receptive_field.py"


def _table(at):
    """The per-layer table (the read-only dataframe)."""
    (table,) = [df for df in at.dataframe if df.editing_mode == "read_only"]
    return table.value


def _editor_key(at) -> str:
    return f"rf.editor.{at.session_state['rf.editor_version']}"


def _edit(at, edited=None, added=None, deleted=None):
    at.session_state[_editor_key(at)] = {
        "edited_rows": edited or {},
        "added_rows": added or [],
        "deleted_rows": deleted or [],
    }
    return at.run()


@pytest.fixture
def at():
    at = app_test(PAGE, timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_default_stack_table_matches_engine(at) -> None:
    preset = PRESETS["Small CNN"]
    fields = analyse_stack(preset.layers, preset.input_size)
    table = _table(at)
    assert len(table) == len(fields)
    assert list(table["RF size"]) == [str(f.rows.rf) for f in fields]
    assert list(table["Jump"]) == [str(f.rows.jump) for f in fields]
    assert list(table["Output"]) == [f"{h}×{w}" for h, w in (f.output_hw for f in fields)]
    assert not at.error
    # The small stack is cheap: its effective field is measured at once.
    assert any("95 % of the gradient mass lies in" in m.value for m in at.markdown)


def test_editing_a_cell_changes_the_table(at) -> None:
    before = _table(at)["RF size"].tolist()
    at = _edit(at, edited={2: {"kernel": 3, "stride": 3}})  # pool1 becomes 3×3 stride 3
    assert not at.exception
    after = _table(at)
    assert after["RF size"].tolist()[:2] == before[:2]
    assert after["RF size"].tolist()[2] == "5"
    assert after["Jump"].tolist()[2] == "3"


def test_an_edit_that_resizes_the_last_layer_keeps_the_neuron(at) -> None:
    assert (at.slider(key="rf.row").value, at.slider(key="rf.col").value) == (4, 4)
    at = _edit(at, edited={0: {"kernel": 5}})  # 32 → 30 → … → 7×7: (4, 4) still exists
    assert _table(at)["Output"].iloc[-1] == "7×7"
    assert (at.slider(key="rf.row").value, at.slider(key="rf.col").value) == (4, 4)


def test_adding_a_row_adds_a_layer(at) -> None:
    row = {"name": "extra", "kind": "conv", "kernel": 5, "stride": 2, "padding": 0, "dilation": 1}
    at = _edit(at, added=[row])
    assert not at.exception
    table = _table(at)
    assert len(table) == 9
    assert table["Name"].iloc[-1] == "extra"
    assert table["RF size"].iloc[-1] == str(26 + 4 * 4)


def test_deleting_and_moving_rows(at) -> None:
    at = _edit(at, deleted=[1])  # drop relu1
    assert len(_table(at)) == 7
    at.number_input(key="rf.move_row").set_value(2).run()
    at.button(key="rf.down").click().run()
    assert not at.exception
    assert _table(at)["Kind"].tolist()[:3] == ["conv", "conv", "maxpool"]
    assert at.number_input(key="rf.move_row").value == 3


def test_presets_load_their_geometry(at) -> None:
    at.selectbox(key="rf.preset").set_value("VGG-16 features").run()
    assert not at.exception
    assert at.number_input(key="rf.size").value == 224
    table = _table(at)
    assert table["RF size"].iloc[-1] == "212"
    assert table["Output"].iloc[-1] == "7×7"
    # Big stacks measure the effective field only on demand.
    assert at.button(key="rf.erf")


def test_unproductive_depth_is_flagged(at) -> None:
    at.number_input(key="rf.size").set_value(12).run()
    assert not at.exception
    table = _table(at)
    assert "sees the whole input" in table["Status"].iloc[-1]
    assert any("already sees the whole 12×12 input" in w.value for w in at.warning)


def test_bad_stack_is_flagged_at_its_row(at) -> None:
    at = _edit(at, edited={6: {"kernel": 9}})  # conv3: 9×9 dilated by 2 on an 8×8 map
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("Row 7 cannot run. Layer 7 (conv 9×9")
    assert "empty" in error.value
    table = _table(at)
    assert table["Status"].iloc[6].startswith("cannot run")
    assert table["Status"].iloc[7] == "not reached"
    # The layers before the bad row still work.
    assert at.selectbox(key="rf.layer").options[-1].startswith("6 ")


def test_neuron_selection_shows_its_region(at) -> None:
    preset = PRESETS["Small CNN"]
    fields = analyse_stack(preset.layers, preset.input_size)
    at.selectbox(key="rf.layer").set_value(6).run()  # conv3, the 7th row
    at.slider(key="rf.row").set_value(0).run()
    at.slider(key="rf.col").set_value(7).run()
    assert not at.exception
    region = neuron_region(fields, 6, 0, 7)
    text = " ".join(m.value for m in at.markdown)
    rows = f"**{region.top} … {region.bottom}**"
    assert f"**Neuron (0, 7) of layer 7** sees input rows {rows}" in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Field inside the image"] == f"{region.clipped_area} px"
    assert metrics["Field in the padding"].startswith(f"{region.padded_area} px")
    assert region.padded_area > 0


def test_tree_view_and_layer_change(at) -> None:
    at.selectbox(key="rf.layer").set_value(2).run()  # pool1
    assert not at.exception
    assert at.slider(key="rf.cell").max == 7  # 16 input cells → 8 after the 2×2 pool
    at.slider(key="rf.tree_size").set_value(4).run()
    assert not at.exception


def test_changing_the_layer_keeps_the_neurons_place(at) -> None:
    preset = PRESETS["Small CNN"]
    fields = analyse_stack(preset.layers, preset.input_size)
    relu3 = [f.layer.name for f in fields].index("relu3")
    at.selectbox(key="rf.layer").set_value(relu3).run()
    at.slider(key="rf.row").set_value(4).run()
    at.slider(key="rf.col").set_value(4).run()
    centre = (fields[relu3].rows.centre(4), fields[relu3].cols.centre(4))
    at.selectbox(key="rf.layer").set_value(0).run()  # conv1: one neuron per pixel
    assert not at.exception
    row, col = at.slider(key="rf.row").value, at.slider(key="rf.col").value
    # The conv1 neuron whose field centre is nearest (within half a pixel) the relu3 one's.
    assert abs(fields[0].rows.centre(row) - centre[0]) <= 0.5
    assert abs(fields[0].cols.centre(col) - centre[1]) <= 0.5
    assert (row, col) != (4, 4)
    assert "**Neuron" in " ".join(m.value for m in at.markdown)


def test_rows_are_counted_from_one_everywhere(at) -> None:
    (editor,) = [df for df in at.dataframe if df.editing_mode != "read_only"]
    n = len(_table(at))
    assert list(editor.value.index) == list(range(1, n + 1))
    assert _table(at)["Row"].tolist() == list(range(1, n + 1))
    assert at.number_input(key="rf.move_row").min == 1
    assert at.selectbox(key="rf.layer").options[0].startswith("1 · ")
    # "Row 2" to move is the second row of the editor: relu1 (the first is conv1).
    at.number_input(key="rf.move_row").set_value(2).run()
    at.button(key="rf.up").click().run()
    assert _table(at)["Name"].tolist()[:2] == ["relu1", "conv1"]


def _upload(at, image: Image.Image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    at.radio(key="rf.image.source").set_value("Upload").run()
    at.file_uploader(key="rf.image.upload").set_value(("mine.png", buffer.getvalue(), "image/png"))
    return at.run()


def test_how_the_image_was_made_square_is_said(at) -> None:
    ramp = np.tile(np.linspace(0, 255, 600, dtype=np.uint8), (10, 1))
    at = _upload(at, Image.fromarray(ramp))  # a 600×10 banner: its centre square is 10×10
    assert not at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("mine.png, "))
    assert "**stretched** whole to the 32×32 input" in caption
    assert "600×10" in caption
    # Stretched, the picture keeps the whole ramp (a centre crop was one flat grey).
    assert np.ptp(ui_rf.square_input(Image.fromarray(ramp), 32)) > 200
    at = _upload(at, Image.new("RGB", (100, 60), (9, 9, 9)))
    caption = next(c.value for c in at.caption if c.value.startswith("mine.png, "))
    assert "centre-cropped to a 60×60 square" in caption


@pytest.mark.parametrize(
    ("size", "later"), [(6, "The 2 layers after it add "), (12, "The layer after it adds ")]
)
def test_the_whole_input_warning_counts_in_words(at, size: int, later: str) -> None:
    at.number_input(key="rf.size").set_value(size).run()
    (warning,) = [w.value for w in at.warning if "already sees the whole" in w.value]
    assert later in warning


def test_the_stack_editor_passes_on_what_is_typed(at) -> None:
    (editor,) = [df for df in at.dataframe if df.editing_mode != "read_only"]
    configs = json.loads(editor.proto.columns)
    for column in ("kernel", "stride", "padding", "dilation", "channels"):
        assert "min_value" not in configs[column]["type_config"], column
        assert "max_value" not in configs[column]["type_config"], column
    at = _edit(at, edited={0: {"kernel": 2.5}})  # the browser used to make this 25
    assert any("kernel must be a whole number, got 2.5" in e.value for e in at.error)
    at = _edit(at, edited={0: {"kernel": 500}})  # and this 64
    assert any("500×500" in e.value for e in at.error)


def test_the_effective_field_share_is_the_engine_s_in_a_sentence_that_wraps(at) -> None:
    # A sentence (st.metric's value never wraps and was wider than a phone): the share shown is
    # the one the engine measured for the page's own settings.
    erf = ui_rf.cached_erf(*at.session_state["rf.erf_for"])
    shown = [m.value for m in at.markdown if "of the gradient mass lies in" in m.value]
    assert shown == [
        f"95 % of the gradient mass lies in **{erf.mass_share:.0%} of the theoretical field**: "
        f"{erf.mass_pixels} of its {erf.region.clipped_area} pixels inside the image."
    ]
    assert not [m for m in at.metric if "gradient mass" in m.label]

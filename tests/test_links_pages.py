"""Links to the settings whose range depends on others (a layer of the stack, a neuron, a class of
the network), the explorer's explanation settings and the zoo's own stack, through app.py in
AppTest: a valid link opens that state, a position the page cannot show falls back with a notice
naming it and what is used, and what a learner changes reopens the same from the link."""

from __future__ import annotations

from pagetest import app_test
from streamlit.testing.v1 import AppTest

PAGES = {
    "receptive_field": "pages/receptive_field.py",
    "explorer": "pages/explorer.py",
    "zoo": "pages/zoo.py",
    "train": "pages/train.py",
}


def opened(page: str, query: dict[str, str]) -> AppTest:
    """``page`` opened through a link holding ``query``; it must not raise."""
    at = app_test("app.py", timeout=180)
    for name, text in query.items():
        at.query_params[name] = text
    at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def notice(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning if "in this link could not be used" in w.value)


def link(at: AppTest) -> dict[str, str]:
    return {k: at.query_params[k] for k in at.query_params}


# -- receptive fields: layers, neurons and the 1-D tree -------------------------------------------
STACK = "conv.k3,relu,maxpool.k2.s2"  # on the 32-pixel default input: 30×30, 30×30, 15×15


def test_a_layer_neuron_or_cell_the_stack_lacks_is_replaced_with_a_notice():
    at = opened(
        "receptive_field",
        {"stack": STACK, "layer": "9", "row": "99", "col": "1", "tree": "20", "cell": "40"},
    )
    said = notice(at)
    assert "`layer=9` is outside 1–3 for this stack, so `layer=3` is used." in said
    assert "`row=99` is outside 0–14 for layer 3's 15×15 output, so `row=7` is used." in said
    assert "`cell=40` is outside 0–8 for layer 3's 9 cells, so `cell=4` is used." in said
    assert "`col=" not in said
    assert "`tree=" not in said
    assert at.selectbox(key="rf.layer").value == 2
    assert (at.slider(key="rf.row").value, at.slider(key="rf.col").value) == (7, 1)
    assert (at.slider(key="rf.tree_size").value, at.slider(key="rf.cell").value) == (20, 4)
    # The link now says what the page shows; the page's own choices (the last layer, the centre
    # row and cell) go without saying, as defaults do.
    assert link(at) == {"stack": STACK, "col": "1", "tree": "20"}
    # Once shown, the page's own range changes are not the link's: no notice.
    at.slider(key="rf.tree_size").set_value(8).run()
    assert not notice(at)


def test_the_tree_sliders_reopen_from_the_link():
    at = opened("receptive_field", {"stack": STACK})
    at.slider(key="rf.tree_size").set_value(24).run()
    at.slider(key="rf.cell").set_value(3).run()
    assert (at.query_params["tree"], at.query_params["cell"]) == ("24", "3")
    again = opened("receptive_field", link(at))
    assert not notice(again)
    assert (again.slider(key="rf.tree_size").value, again.slider(key="rf.cell").value) == (24, 3)


# -- the explorer's explanation ------------------------------------------------------------------
def test_an_explanation_opens_from_its_link():
    query = {"method": "occlusion", "window": "5", "stride": "2", "class": "3", "opacity": "0.3"}
    at = opened("explorer", query)
    assert not notice(at)
    assert at.radio(key="explorer.method").value == "Occlusion"
    assert at.slider(key="explorer.occ_window").value == 5
    assert at.slider(key="explorer.occ_stride").value == 2
    assert at.selectbox(key="explorer.class").value == 3
    assert at.slider(key="explorer.opacity").value == 0.3
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert any(c.startswith("Occlusion for “3”") for c in captions), captions


def test_a_class_layer_or_window_the_network_lacks_is_replaced_with_a_notice():
    query = {"method": "occlusion", "window": "99", "class": "50", "layer": "40", "noise": "0.7"}
    at = opened("explorer", query)
    said = notice(at)
    assert "`class=50` is outside 0–9 for 10 classes, so `class=7` is used." in said  # predicted
    assert "`window=99` is outside 2–14 for a 28×28 input, so `window=7` is used." in said
    assert "`layer=40` is outside 0–6 for this network's 7 layers, so `layer=0` is used." in said
    assert "`noise=0.7` is outside 0.05–0.5." in said
    assert at.selectbox(key="explorer.class").value == 7
    assert at.slider(key="explorer.occ_window").value == 7
    assert at.selectbox(key="explorer.layer").value == 0
    assert {"class", "window", "layer"}.isdisjoint(link(at))  # the page's own choices
    at = opened("explorer", {"method": "grad_cam", "cam_layer": "7"})
    said = "`cam_layer=7` is outside 0–6 (the layers with a grid), so `cam_layer=6` is used."
    assert said in notice(at)
    assert at.selectbox(key="explorer.cam_layer").value == 6


def test_explanation_settings_reopen_from_the_link():
    at = opened("explorer", {})
    at.radio(key="explorer.method").set_value("SmoothGrad").run()
    at.slider(key="explorer.sg_samples").set_value(8).run()
    at.slider(key="explorer.sg_noise").set_value(0.3).run()
    at.selectbox(key="explorer.class").set_value(2).run()
    at.radio(key="explorer.method").set_value("Grad-CAM").run()
    at.selectbox(key="explorer.cam_layer").set_value(0).run()
    at.radio(key="explorer.method").set_value("Integrated gradients").run()
    at.radio(key="explorer.ig_baseline").set_value("blurred image").run()
    at.slider(key="explorer.opacity").set_value(0.3).run()
    assert link(at) == {
        "method": "integrated_gradients", "samples": "8", "noise": "0.3", "class": "2",
        "cam_layer": "0", "baseline": "blurred", "opacity": "0.3",
    }  # fmt: skip
    again = opened("explorer", link(at))
    assert not notice(again)
    assert again.radio(key="explorer.ig_baseline").value == "blurred image"
    assert again.selectbox(key="explorer.class").value == 2
    assert again.slider(key="explorer.opacity").value == 0.3
    again.radio(key="explorer.method").set_value("SmoothGrad").run()
    assert again.slider(key="explorer.sg_samples").value == 8
    assert again.slider(key="explorer.sg_noise").value == 0.3
    again.radio(key="explorer.method").set_value("Grad-CAM").run()
    assert again.selectbox(key="explorer.cam_layer").value == 0


# -- the zoo's own stack -------------------------------------------------------------------------
def _summary(at: AppTest) -> list[str]:
    return list(at.dataframe[-1].value["layer"])


def test_the_zoo_stack_reopens_from_its_link_and_junk_keeps_the_preset():
    at = opened("zoo", {})
    preset = _summary(at)
    at.session_state["zoo.stack.layers.fast"] = {
        "edited_rows": {0: {"kernel": 7.0, "out": 8.0}},
        "added_rows": [{"kind": "dropout", "p": 0.25}],
        "deleted_rows": [],
    }
    at.run()
    stack = at.query_params["stack"]
    assert stack.startswith("conv.o8.k7.s2.pvalid.b0,"), stack
    assert stack.endswith(",dropout.r0_25"), stack
    edited = _summary(at)
    assert edited != preset
    assert edited[0].startswith("7×7 conv, 8 filters")
    # Another page and back: the edits stay.
    at.switch_page("pages/pooling.py").run()
    at.switch_page(PAGES["zoo"]).run()
    assert at.query_params["stack"] == stack
    assert _summary(at) == edited
    again = opened("zoo", link(at))
    assert not notice(again)
    assert _summary(again) == edited
    # Choosing a preset drops the link's rows.
    again.selectbox(key="zoo.stack.preset").set_value("lenet5").run()
    assert "stack" not in again.query_params
    assert _summary(again)[0].startswith("5×5 conv, 6 filters")
    junk = opened("zoo", {"stack": "conv.k3,pool"})
    assert "`stack=conv.k3,pool`: layer 2 is 'pool'" in notice(junk)
    assert _summary(junk) == preset


def test_a_range_with_gaps_is_listed():
    from ui.url_state import _outside

    assert _outside([0, 1, 3], 0) == "not one of 0, 1, 3"  # ImageNet's pooled layer left out
    assert _outside(range(3), 1) == "outside 1–3"
    assert _outside([0], 0) == "not 0"


# -- the Train page: its model and every training setting ----------------------------------------
def _layers(at: AppTest) -> list[str]:
    """The Train page's layer summary (its one table with a ``layer`` column)."""
    return next(list(d.value["layer"]) for d in at.dataframe if "layer" in d.value.columns)


def _train_settings(at: AppTest) -> tuple:
    hp = "train.hp"
    return (
        at.number_input(key=f"{hp}.lr").value,
        at.number_input(key=f"{hp}.label_smoothing").value,
        at.number_input(key=f"{hp}.weight_decay").value,
        at.toggle(key=f"{hp}.augment").value,
        at.number_input(key=f"{hp}.early_stopping").value,
    )


def test_the_train_model_and_settings_reopen_from_the_link():
    at = opened("train", {})
    preset = _layers(at)
    at.selectbox(key="train.model.preset").set_value("lenet5").run()
    at.session_state["train.model.layers.lenet5"] = {"edited_rows": {0: {"out": 8.0}}}
    at.number_input(key="train.hp.lr").set_value(0.003)
    at.number_input(key="train.hp.label_smoothing").set_value(0.15)
    at.number_input(key="train.hp.weight_decay").set_value(0.0)
    at.toggle(key="train.hp.augment").set_value(True)
    at.number_input(key="train.hp.early_stopping").set_value(3).run()
    assert not at.exception, [e.value for e in at.exception]
    edited = _layers(at)
    assert edited != preset
    assert edited[0].startswith("5×5 conv, 8 filters"), edited
    settings = _train_settings(at)
    assert settings == (0.003, 0.15, 0.0, True, 3)
    sent = link(at)
    assert {k: sent[k] for k in ("preset", "lr", "smoothing", "decay", "augment", "patience")} == {
        "preset": "lenet5", "lr": "0.003", "smoothing": "0.15", "decay": "0", "augment": "on",
        "patience": "3",
    }  # fmt: skip
    assert sent["stack"].startswith("conv.o8.k5,"), sent["stack"]
    again = opened("train", sent)
    assert not notice(again)
    assert again.selectbox(key="train.model.preset").value == "lenet5"
    assert _layers(again) == edited
    assert _train_settings(again) == settings
    assert link(again) == sent


def test_tuned_settings_travel_as_shown_and_junk_falls_back_with_a_notice():
    at = opened("train", {})
    at.toggle(key="train.hp.tuned").set_value(True).run()
    # The toggle set the widgets; a learner then takes one back: the link holds both.
    at.toggle(key="train.hp.augment").set_value(False).run()
    assert link(at) == {"tuned": "on", "smoothing": "0.3"}
    again = opened("train", link(at))
    assert not notice(again)
    assert again.toggle(key="train.hp.tuned").value is True
    assert _train_settings(again)[1:4:2] == (0.3, False)
    # The tuned setting without a widget (one-pixel shifts) comes with the toggle.
    assert "shifts by up to 1 pixels" in " ".join(c.value for c in again.caption)
    junk = opened("train", {"lr": "abc", "smoothing": "5", "augment": "maybe", "preset": "vgg99"})
    said = notice(junk)
    for name in ("lr=abc", "smoothing=5", "augment=maybe", "preset=vgg99"):
        assert f"`{name}`" in said, said
    assert _train_settings(junk)[:2] == (0.015, 0.0)
    assert junk.toggle(key="train.hp.augment").value is False
    assert junk.selectbox(key="train.model.preset").value == "fast"
    assert link(junk) == {}

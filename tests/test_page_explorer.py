"""AppTest: the feature-map explorer switches networks, layers, channels, explanation methods
and ε, shows numbers that agree with the engine, and lists a learner's runs to their owner only."""

from __future__ import annotations

import json
import re

import pytest
import torch
from pagetest import app_test
from streamlit.testing.v1 import AppTest

from cnnlab import runs
from cnnlab.bundled import load_bundled
from cnnlab.images import sample_image
from cnnlab.models import PRESETS, build_model
from cnnlab.runs import SqliteRunStore, default_data_dir
from ui.explanations import METHODS

PAGE = "pages/explorer.py"
OWNER = "cd" * 16


def _page(owner: str = OWNER):
    at = app_test(PAGE, timeout=180)
    at.session_state["owner.id"] = owner
    at.run()
    _ok(at)
    return at


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _captions(at) -> list[str]:
    """Every image caption on the page."""
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def _markdown(at, start: str) -> str:
    (text,) = [m.value for m in at.markdown if m.value.startswith(start)]
    return text


def test_the_default_is_the_digits_network_reading_the_sample_seven():
    at = _page()
    assert "(1, 1, 28, 28)" in _markdown(at, "The network receives a tensor of shape")
    info, model = load_bundled("digits")
    prediction = _markdown(at, "Prediction:")
    assert prediction.startswith("Prediction: **7** with probability")
    # The probability shown is the engine's, for the page's own preprocessing of the sample.
    from cnnlab.explorer import Explorable, preprocess

    target = Explorable("d", "d", model, 1, 28, "digits", info.mean, info.std, info.classes)
    with torch.no_grad():
        probs = torch.softmax(model(preprocess(sample_image("digit"), target).x)[0], 0)
    assert f"**{float(probs[7]):.1%}**" in prediction
    at.slider(key="explorer.temperature").set_value(5.0).run()
    _ok(at)
    assert "at T = 5" in _markdown(at, "Prediction:")


def test_switching_networks():
    at = _page()
    model = at.selectbox(key="explorer.model")
    model.set_value("bundled:shapes").run()
    _ok(at)
    assert "(1, 1, 28, 28)" in _markdown(at, "The network receives")
    at.selectbox(key="explorer.model").set_value("classic").run()
    _ok(at)
    assert not [m for m in at.markdown if m.value.startswith("Prediction:")]
    assert any("no classifier" in i.value for i in at.info)
    at.radio(key="explorer.image.source").set_value("Sample").run()
    at.selectbox(key="explorer.image.sample").set_value("cat").run()
    _ok(at)
    assert "(1, 3, " in _markdown(at, "The network receives")


def test_the_missing_imagenet_network_explains_itself_and_falls_back():
    at = _page()
    at.selectbox(key="explorer.model").set_value("imagenet-missing").run()
    assert not at.exception
    assert any("weights are not here" in e.value for e in at.error)
    assert any("CNNLAB_IMAGENET_WEIGHTS" in i.value for i in at.info)
    assert _markdown(at, "Prediction:")  # the digits network is shown meanwhile


def test_switching_layers_and_channels():
    at = _page()
    at.selectbox(key="explorer.layer").set_value(3).run()
    _ok(at)
    captions = _captions(at)
    assert any(c.startswith("Layer 3 (Conv2d): 32 channels of 10×10") for c in captions)
    channel = at.selectbox(key="explorer.channel")
    channel.set_value(5).run()
    _ok(at)
    captions = _captions(at)
    assert any(c.startswith("Channel 5 of layer 3") for c in captions)
    assert any(c.startswith("Its kernel in layer 3: 16 input channels of 3×3") for c in captions)


@pytest.mark.parametrize("method", METHODS)
def test_every_explanation_method(method):
    at = _page()
    at.radio(key="explorer.method").set_value(method).run()
    _ok(at)
    captions = _captions(at)
    assert any(c.startswith(f"{method} for “7”") for c in captions)
    assert any("**Can tell**" in m.value for m in at.markdown)


def test_integrated_gradients_shows_its_baseline_and_completeness():
    at = _page()
    at.radio(key="explorer.method").set_value("Integrated gradients").run()
    at.radio(key="explorer.ig_baseline").set_value("black image").run()
    _ok(at)
    (text,) = [c.value for c in at.caption if c.value.startswith("Completeness")]
    total, difference = (float(v) for v in re.findall(r"-?\d+\.\d{4}", text))
    assert total == pytest.approx(difference, rel=0.02, abs=2e-3)


def test_epsilon_and_attacks():
    at = _page()
    at.slider(key="explorer.epsilon").set_value(0.0).run()
    _ok(at)
    before = _markdown(at, "Before:").removeprefix("Before: ")
    after = _markdown(at, "After FGSM")
    assert after.endswith(before)  # ε = 0 changes nothing
    (found,) = [s.value for s in at.success if "Smallest ε" in s.value]
    assert "7 →" in found
    at.radio(key="explorer.attack").set_value("PGD").run()
    at.slider(key="explorer.epsilon").set_value(32.0).run()
    _ok(at)
    assert _markdown(at, "After PGD, ε = 32")


def _finished_run(owner: str) -> str:
    store = SqliteRunStore(default_data_dir())  # the per-test CNNLAB_DATA_DIR
    torch.manual_seed(3)
    model = build_model(PRESETS["fast"], (1, 28, 28), 10)
    meta = {"input_shape": [1, 28, 28], "classes": [f"c{i}" for i in range(10)]}
    meta |= {"mean": [0.2], "std": [0.3]}
    run_id = store.create_run(
        owner, dataset="shapes", config={}, spec=PRESETS["fast"].to_dict(), meta=meta, name="mine"
    )
    runs.save_weights(store.run_dir(run_id) / runs.WEIGHTS_FILE, model.state_dict())
    store.finish(run_id, "finished", final={"test_accuracy": 0.5})
    return run_id


def test_a_learners_run_is_offered_to_its_owner_only():
    run_id = _finished_run(OWNER)
    at = _page()
    label = f"Your run: mine · {run_id[:6]} (50.0%)"
    assert label in at.selectbox(key="explorer.model").options
    at.selectbox(key="explorer.model").set_value(f"run:{run_id}").run()
    _ok(at)
    assert "Your network, trained on shapes." in [c.value for c in at.caption]
    assert "(1, 1, 28, 28)" in _markdown(at, "The network receives")
    other = _page("ef" * 16)
    assert label not in other.selectbox(key="explorer.model").options


def test_the_imagenet_network_when_its_weights_are_configured(tmp_path, monkeypatch):
    """A locally generated ResNet-18 checkpoint (random weights, torchvision's key names) at
    CNNLAB_IMAGENET_WEIGHTS: the page offers the network, feeds it 224×224 and ranks 1,000
    ImageNet classes."""
    from safetensors.torch import save_file

    from cnnlab.zoo import build

    torch.manual_seed(0)
    state = build("resnet18").state_dict()
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    monkeypatch.setenv("CNNLAB_IMAGENET_WEIGHTS", str(path))
    at = _page()
    at.selectbox(key="explorer.model").set_value("imagenet").run()
    _ok(at)
    assert "(1, 3, 224, 224)" in _markdown(at, "The network receives")
    assert _markdown(at, "Top 5:").count("%") == 5
    assert any(c.startswith("Grad-CAM for “") for c in _captions(at))
    assert "avgpool" not in at.selectbox(key="explorer.cam_layer").options  # 1×1
    # The smallest-ε search costs many passes through 11.7 M parameters: it waits for a click.
    assert not [s for s in at.success if "Smallest ε" in s.value]
    at.button(key="explorer.flip_search").click().run()
    _ok(at)
    assert [s for s in at.success if "Smallest ε" in s.value]


def _bars_both_ways() -> None:
    import pandas as pd
    import streamlit as st

    from ui.explorer import PROBABILITY_BARS

    frame = pd.DataFrame({"class": ["seven", "one", "two"], "probability": [0.7, 0.2, 0.1]})
    st.bar_chart(
        frame, x="class", y="probability", horizontal=True, sort="-probability", height=340
    )
    st.vega_lite_chart(frame, PROBABILITY_BARS, height=340)


def test_the_probability_bars_are_the_bar_chart_they_replace() -> None:
    at = AppTest.from_function(_bars_both_ways).run()
    charts = [e.proto for e in at.main.children.values()]
    specs = [json.loads(c.spec) for c in charts]
    # bar_chart names its data set and the schema; the rest, data included, is the same.
    del specs[0]["data"], specs[0]["$schema"]
    assert specs[0] == specs[1]
    assert charts[0].datasets[0].data.data == charts[1].data.data

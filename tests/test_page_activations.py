"""AppTest of the Activations & normalisation page: curves, feature map, softmax, batch norm,
dropout, and the batch-norm experiment trained through the real worker queue."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pagetest import metrics as read_metrics
from pagetest import rendered
from streamlit.testing.v1 import AppTest

from cnnlab import activations as act
from cnnlab import jobs
from cnnlab import normalisation as norm
from cnnlab.images import sample_image
from ui.activations import edge_map, gray_array

PAGE = "pages/activations.py"


def _page() -> AppTest:
    return rendered(PAGE)


def test_defaults_show_curves_vanishing_stretches_and_the_feature_map() -> None:
    at = _page()
    text = " ".join(m.value for m in at.markdown)
    assert act.curve("sigmoid").vanishing[1][0] == pytest.approx(4.6, abs=0.03)
    assert "**Sigmoid**: |f′| < 0.01 on [-6.00, -4.60], [4.60, 6.00]" in text
    fmap = edge_map(gray_array(sample_image("camera")))
    relu = act.apply_to_map("relu", fmap)
    assert read_metrics(at)["Exact zeros after"] == f"{relu.zero_share:.1%}"
    at.radio(key="norm.act.apply").set_value("gelu").run()
    gelu = act.apply_to_map("gelu", fmap)
    assert read_metrics(at)["Exact zeros after"] == f"{gelu.zero_share:.1%}"
    assert read_metrics(at)["Range after"] == f"{gelu.lo:.3g} to {gelu.hi:.3g}"


def test_softmax_temperature_and_bad_scores() -> None:
    at = _page()
    at.slider(key="norm.softmax.t").set_value(0.5).run()
    frame = next(d.value for d in at.dataframe if "probability" in d.value.columns)
    expected = act.softmax([2.0, 1.0, 0.1, -1.0], 0.5).probs
    np.testing.assert_allclose(frame["probability"], np.round(expected, 4))
    at.text_input(key="norm.softmax.logits").set_value("2, one").run()
    assert not at.exception
    assert "separated by commas" in at.error[0].value


def test_batch_norm_table_follows_gamma_beta_and_mode() -> None:
    at = _page()
    at.slider(key="norm.bn.gamma").set_value(2.0).run()
    at.slider(key="norm.bn.beta").set_value(0.5).run()
    frame = next(d.value for d in at.dataframe if "mean after" in d.value.columns)
    np.testing.assert_allclose(frame["mean after"], 0.5, atol=1e-3)
    np.testing.assert_allclose(frame["variance after"], 4.0, rtol=1e-2)
    at.radio(key="norm.bn.mode").set_value("eval").run()
    frame = next(d.value for d in at.dataframe if "mean after" in d.value.columns)
    assert (frame["running variance"] != 1).all()
    assert not np.allclose(frame["mean after"], 0.5, atol=1e-3)


def test_batch_of_one_in_train_mode_is_explained() -> None:
    at = _page()
    at.slider(key="norm.bn.batch").set_value(1).run()
    warning = at.warning[0].value
    assert "Batch size 1 in train mode" in warning
    assert "Expected more than 1 value per channel" in warning
    at.radio(key="norm.bn.mode").set_value("eval").run()
    assert not at.warning


def test_dropout_metrics_follow_p() -> None:
    at = _page()
    at.slider(key="norm.dropout.p").set_value(0.25).run()
    metrics = read_metrics(at)
    assert metrics["Survivors scaled by"] == f"{1 / 0.75:.4g}"
    gray = gray_array(sample_image("camera"))
    fmap = np.maximum(edge_map(gray), 0)
    top, left = fmap.shape[0] // 2 - 12, fmap.shape[1] // 2 - 12
    result = norm.dropout(fmap[top : top + 24, left : left + 24], 0.25, 0)
    assert metrics["Zeroed (of non-zero)"] == f"{result.dropped_share:.1%}"
    assert metrics["Mean in eval (= input)"] == f"{result.x.mean():.4f}"


@pytest.fixture
def _quick_runs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CNNLAB_MAX_STEPS", "15")
    yield
    jobs.shutdown_scheduler()


@pytest.mark.usefixtures("_quick_runs")
def test_experiment_trains_both_networks_through_the_queue() -> None:
    at = _page()
    at.button(key="norm.exp.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        done = [v for k, v in read_metrics(at).items() if k.startswith("BN experiment")]
        if len(done) == 2 and all(v.endswith("%") for v in done):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the runs did not finish: {read_metrics(at)}")
    assert at.button(key="norm.exp.start").disabled is False
    from ui.training import store

    runs = store().list_runs(at.session_state["owner.id"])
    specs = {r.name: r.spec for r in runs}
    kinds = {name: [layer["kind"] for layer in spec["layers"]] for name, spec in specs.items()}
    with_bn = next(k for n, k in kinds.items() if "with batch norm" in n)
    without = next(k for n, k in kinds.items() if "without batch norm" in n)
    assert [k for k in with_bn if k != "batchnorm"] == without
    assert with_bn.count("batchnorm") == 2
    assert {r.config["lr"] for r in runs} == {0.005}

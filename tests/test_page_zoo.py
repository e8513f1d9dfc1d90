"""AppTest of the Architecture zoo page: totals, published checks, sizes, MLP vs CNN, code."""

from __future__ import annotations

import pytest
import torch
from pagetest import metrics as read_metrics
from pagetest import rendered
from streamlit.testing.v1 import AppTest

from cnnlab import anatomy, zoo
from cnnlab.models import build_model

PAGE = "pages/zoo.py"


def _page() -> AppTest:
    return rendered(PAGE)


@pytest.fixture(scope="module")
def fresh() -> AppTest:
    return _page()


def test_default_is_resnet18_with_its_published_numbers(fresh: AppTest) -> None:
    result = anatomy.analyse_zoo("resnet18")
    metrics = read_metrics(fresh)
    assert metrics["Parameters"] == f"{result.params:,}" == "11,689,512"
    assert metrics["Multiply-adds / image"] == "1.814 G"
    assert metrics["FLOPs / image"] == "3.628 G"
    captions = " ".join(c.value for c in fresh.caption)
    assert "published multiply-adds **1.814 G** (computed 1.814 G)" in captions
    assert "One multiply-add = 2 FLOPs" in captions
    table = fresh.dataframe[0].value
    assert len(table) == len(result.rows) + 1
    assert table.iloc[-1]["parameters"] == result.params
    assert table.iloc[-1]["multiply-adds"] == result.macs


@pytest.mark.parametrize("name", zoo.NAMES)
def test_every_architecture_renders_its_own_totals(name: str) -> None:
    at = _page()
    at.selectbox(key="zoo.arch").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    result = anatomy.analyse_zoo(name)
    assert read_metrics(at)["Parameters"] == f"{result.params:,}"
    assert zoo.PUBLISHED[name].variant[:40] in " ".join(c.value for c in at.caption)


def test_lenet5_states_its_variant_and_counts_60850() -> None:
    at = _page()
    at.selectbox(key="zoo.arch").set_value("lenet5").run()
    assert read_metrics(at)["Parameters"] == "60,850"
    captions = " ".join(c.value for c in at.caption)
    assert "Table I" in captions
    assert "RBF" in captions


def test_a_smaller_input_scales_multiply_adds_and_a_too_small_one_is_explained() -> None:
    at = _page()
    at.selectbox(key="zoo.arch").set_value("vgg16").run()
    at.select_slider(key="zoo.side").set_value(112).run()
    expected = anatomy.analyse_zoo("vgg16", 112).macs
    assert read_metrics(at)["Multiply-adds / image"] == f"{expected / 1e9:.3f} G"
    assert expected < anatomy.analyse_zoo("vgg16").macs / 3  # half the side: convs cost ¼
    at.selectbox(key="zoo.arch").set_value("alexnet").run()
    at.select_slider(key="zoo.side").set_value(32).run()
    assert not at.exception
    assert "Use a larger input" in at.error[0].value


def test_architecture_code_on_the_page_runs_and_builds_the_same_model() -> None:
    at = _page()
    at.selectbox(key="zoo.arch").set_value("mobilenet_v2").run()
    source = next(c.value for c in at.code if "class MobileNetV2" in c.value)
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "mobilenet_v2.py", "exec"), namespace)
    params = sum(p.numel() for p in namespace["model"].parameters())
    assert params == 3_504_872
    assert at.get("download_button")


def test_mlp_versus_cnn_numbers_follow_the_inputs() -> None:
    at = _page()
    assert read_metrics(at)["Input features"] == "150,528"
    assert read_metrics(at)["Fully connected first layer"] == f"{150_528 * 1000 + 1000:,}"
    at.number_input(key="zoo.mlp.h").set_value(32).run()
    at.number_input(key="zoo.mlp.w").set_value(32).run()
    assert read_metrics(at)["Input features"] == "3,072"
    assert read_metrics(at)["Conv first layer"] == "1,792"
    frame = next(d.value for d in at.dataframe if "locally connected" in d.value.columns)
    assert frame.iloc[0]["convolution (shared)"] == 448
    assert frame.iloc[-1]["convolution (shared)"] == 268_650
    at.number_input(key="zoo.mlp.w").set_value(48).run()
    assert any("square" in i.value for i in at.info)
    assert not at.exception


def test_the_edited_stack_is_summarised_and_its_code_builds_the_same_network() -> None:
    at = _page()
    source = next(c.value for c in at.code if "class Net(" in c.value)
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "stack.py", "exec"), namespace)
    exported = namespace["model"]
    frame = next(d.value for d in at.dataframe if "FLOPs / image" in d.value.columns)
    # The total row is written with thousands separators.
    total = int(str(frame.iloc[-1]["parameters"]).replace(",", ""))
    assert sum(p.numel() for p in exported.parameters()) == total
    from cnnlab.models import PRESETS

    ours = build_model(PRESETS["fast"], (1, 28, 28), 10).eval()
    exported.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(exported.eval()(x), ours(x))


def test_the_stack_code_follows_the_input_and_an_impossible_stack_is_explained() -> None:
    at = _page()
    at.number_input(key="zoo.stack.classes").set_value(3).run()
    at.selectbox(key="zoo.stack.preset").set_value("mnist_tutorial").run()
    source = next(c.value for c in at.code if "class Net(" in c.value)
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "stack.py", "exec"), namespace)
    assert namespace["model"](torch.zeros(1, 1, 28, 28)).shape == (1, 3)
    at.selectbox(key="zoo.stack.preset").set_value("fast").run()
    at.number_input(key="zoo.stack.h").set_value(4).run()  # its 5×5 first conv cannot fit
    assert not at.exception
    assert any("Layer 1 (conv)" in e.value for e in at.error)

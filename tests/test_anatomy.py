"""cnnlab.anatomy: per-layer numbers of the zoo, checked against torch's own counting."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab import anatomy, zoo
from cnnlab.export import architecture_code
from cnnlab.receptive_field import PRESETS, analyse_stack


def _torch_flops_by_module(model: nn.Module, shape: tuple[int, ...]) -> dict[str, int]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.empty(1, *shape, device="meta"))
    return {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}


@pytest.mark.parametrize("name", zoo.NAMES)
def test_totals_equal_torch_parameters_and_flop_counter(name: str) -> None:
    result = anatomy.analyse_zoo(name)
    model = anatomy.meta_model(name)
    assert result.params == sum(p.numel() for p in model.parameters())
    assert result.flops == _torch_flops_by_module(model, zoo.INPUT_SHAPES[name])["Global"]
    assert result.output_shape == (anatomy.default_classes(name),)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "lenet5"])
def test_each_rows_multiply_adds_equal_the_flop_counter_for_that_module(name: str) -> None:
    model = anatomy.meta_model(name)
    by_module = _torch_flops_by_module(model, zoo.INPUT_SHAPES[name])
    rows = anatomy.analyse(model, zoo.INPUT_SHAPES[name], name).rows
    # FlopCounterMode names modules by their path under the root's class name.
    root = type(model).__name__
    checked = 0
    for row in {r.name: r for r in rows}.values():
        key = f"{root}.{row.name}"
        if row.macs:
            assert 2 * row.macs == by_module[key], row.name
            checked += 1
    assert checked >= 5


def test_shapes_and_memory_of_resnet18_rows() -> None:
    rows = {r.name: r for r in anatomy.analyse_zoo("resnet18").rows}
    model = zoo.build("resnet18").eval()
    out = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, tuple(o.shape[1:])))
        for n, m in model.named_modules()
        if n in rows
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    for name, shape in out.items():
        assert rows[name].output_shape == shape, name
        assert rows[name].activation_bytes == 4 * math.prod(shape)
    assert rows["layer4.1.conv2"].output_shape == (512, 7, 7)


def test_receptive_field_follows_the_receptive_field_module() -> None:
    rows = anatomy.analyse_zoo("resnet18").rows
    preset = PRESETS["ResNet-18 stem and stages"]
    fields = analyse_stack(preset.layers, 224)
    by_name = {r.name: r.receptive_field for r in rows}
    for layer, f in zip(preset.layers, fields, strict=True):
        assert by_name[layer.name] == f.rows.rf, layer.name
    assert by_name["layer4.1.conv2"] == 435
    assert by_name["fc"] is None  # after global pooling every output sees the whole image


def test_shortcut_projections_do_not_grow_the_field() -> None:
    rows = anatomy.analyse_zoo("resnet18").rows
    names = [r.name for r in rows]
    before = rows[names.index("layer2.0.downsample.0") - 1].receptive_field
    assert rows[names.index("layer2.0.downsample.0")].receptive_field == before


def test_lenet5_field_is_32_at_c5() -> None:
    rows = {r.name: r for r in anatomy.analyse_zoo("lenet5").rows}
    assert rows["8"].receptive_field == 32  # C5 sees the whole 32×32 input
    assert rows["4"].params == 1_516


def test_too_small_input_is_refused_in_words() -> None:
    with pytest.raises(ValueError, match="Use a larger input"):
        anatomy.analyse_zoo("alexnet", 32)
    with pytest.raises(ValueError, match="divisible by 4"):
        anatomy.analyse_zoo("textbook", 30)


def test_other_input_sizes_scale_the_multiply_adds() -> None:
    small = anatomy.analyse_zoo("vgg16", 112)
    assert small.params == anatomy.analyse_zoo("vgg16").params  # adaptive pool: same weights
    conv_macs = sum(r.macs for r in small.rows if "conv" in r.kind)
    full = sum(r.macs for r in anatomy.analyse_zoo("vgg16").rows if "conv" in r.kind)
    assert conv_macs * 4 == full


def test_diagram_draws_blocks_as_boxes_with_repeats() -> None:
    boxes = anatomy.diagram(anatomy.meta_model("resnet50"), (3, 224, 224))
    residual = [b for b in boxes if b.block == "residual"]
    assert sum(b.repeat for b in residual) == 16
    assert boxes[0].label == "conv 7×7 s2 + BN + ReLU"
    assert boxes[0].output_shape == (64, 112, 112)
    v2 = anatomy.diagram(anatomy.meta_model("mobilenet_v2"), (3, 224, 224))
    assert sum(b.repeat for b in v2 if b.block == "inverted residual") == 17
    vgg = anatomy.diagram(anatomy.meta_model("vgg16"), (3, 224, 224))
    assert sum(b.repeat for b in vgg if b.label.startswith("conv 3×3")) == 13


def test_first_layer_counts_come_from_modules() -> None:
    dense, conv = anatomy.first_layer((3, 224, 224), 1000, 64, 3)
    assert dense == 150_528 * 1000 + 1000
    assert conv == 3 * 9 * 64 + 64


def test_network_dense_vs_conv_of_the_textbook_net() -> None:
    rows = anatomy.network_dense_vs_conv((3, 32, 32))
    first = rows[0]
    assert first.output_shape == (16, 32, 32)
    assert first.convolution == 448
    assert first.fully_connected == nn.Linear(3 * 32 * 32, 16 * 32 * 32).weight.numel() + 16384
    assert first.locally_connected == 16 * 32 * 32 * (27 + 1)
    assert sum(r.convolution for r in rows) == 268_650


# AlexNet and VGG-16 hold 57–134 M weights: two real copies each take seconds and gigabytes.
HEAVY = ("alexnet", "vgg16")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in zoo.NAMES]
)
def test_exported_code_builds_exactly_the_same_model(name: str) -> None:
    c, h, _ = zoo.INPUT_SHAPES[name]
    side = 64 if h == 224 else h  # a small input keeps the real forward passes quick
    code = architecture_code(name, 10)
    namespace: dict = {"__name__": "exported"}
    exec(compile(code, f"{name}.py", "exec"), namespace)
    exported = namespace["model"].eval()
    torch.manual_seed(0)
    ours = zoo.build(name, 10).eval()
    assert sum(p.numel() for p in exported.parameters()) == sum(
        p.numel() for p in ours.parameters()
    )
    exported.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(1, c, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(exported(x), ours(x))

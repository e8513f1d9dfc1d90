"""Model specs: building, shapes, parameters and FLOPs checked against what torch does."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.models import (
    PRESET_NOTES,
    PRESETS,
    LayerSpec,
    ModelSpec,
    SpecError,
    build_model,
    estimate_memory,
    summarize,
)

SHAPES = [(1, 28, 28), (3, 32, 32)]


def spec(*layers: tuple[str, dict]) -> ModelSpec:
    return ModelSpec(tuple(LayerSpec(kind, params) for kind, params in layers), "test")


def real_layer_shapes(model: nn.Sequential, input_shape: tuple[int, ...]) -> list[tuple]:
    """Output shape after each top-level module, running real zeros through the real model."""
    x = torch.zeros(2, *input_shape)
    shapes = []
    model.eval()
    with torch.no_grad():
        for module in model:
            x = module(x)
            shapes.append(tuple(x.shape[1:]))
    return shapes


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("input_shape", SHAPES)
def test_every_preset_builds_and_summary_matches_torch(name, input_shape):
    model = build_model(PRESETS[name], input_shape, 10)
    summary = summarize(PRESETS[name], input_shape, 10)
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert [row.params for row in summary] == [
        sum(p.numel() for p in m.parameters()) for m in model
    ]
    assert [row.output_shape for row in summary] == real_layer_shapes(model, input_shape)
    assert summary.output_shape == (10,)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *input_shape))
    assert summary.total_flops == counter.get_total_flops() > 0
    assert sum(row.flops for row in summary) == summary.total_flops


def test_tutorial_preset_matches_the_classic_network():
    model = build_model(PRESETS["mnist_tutorial"], (1, 28, 28), 10)
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    assert [(fc.in_features, fc.out_features) for fc in linears] == [(64 * 7 * 7, 128), (128, 10)]
    # 8.5 MFLOP forward per image, the figure PERF-NOTES quotes for this network.
    assert summarize(PRESETS["mnist_tutorial"], (1, 28, 28), 10).total_flops == 8_482_304


def test_classes_placeholder_follows_num_classes():
    model = build_model(PRESETS["tiny_vgg"], (3, 32, 32), 7)
    assert model(torch.zeros(3, 3, 32, 32)).shape == (3, 7)


def test_conv_parameters_reach_the_module():
    s = spec(
        (
            "conv",
            {
                "out_channels": 6,
                "kernel": 5,
                "stride": 2,
                "padding": 1,
                "dilation": 2,
                "groups": 3,
                "bias": False,
            },
        ),
        ("global_maxpool", {}),
        ("linear", {"out_features": "classes"}),
    )
    conv = build_model(s, (3, 20, 20), 4)[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (3, 6, (5, 5))
    assert (conv.stride, conv.padding, conv.dilation, conv.groups) == ((2, 2), (1, 1), (2, 2), 3)
    assert conv.bias is None
    # (20 + 2 - 2*4 - 1) // 2 + 1 = 7
    assert summarize(s, (3, 20, 20), 4)[0].output_shape == (6, 7, 7)


def test_residual_block_projects_only_when_needed():
    s = PRESETS["small_resnet"]
    model = build_model(s, (3, 32, 32), 10)
    blocks = [m for m in model if m.__class__.__name__ == "ResidualBlock"]
    assert isinstance(blocks[0].shortcut, nn.Identity)
    assert all(isinstance(b.shortcut, nn.Sequential) for b in blocks[1:])
    # The skip really is added: zeroing the main path's last BN leaves relu(shortcut(x)).
    block = blocks[0].eval()
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x))


@pytest.mark.parametrize(
    ("layers", "index", "kind", "words"),
    [
        ([("flatten", {}), ("conv", {"out_channels": 4})], 1, "conv", "image-shaped"),
        ([("linear", {"out_features": 10})], 0, "linear", "flatten"),
        (
            [("conv", {"out_channels": 4, "kernel": 5, "padding": "valid"})] * 7,
            6,
            "conv",
            "reach zero",
        ),
        ([("maxpool", {"kernel": 2})] * 6, 4, "maxpool", "reach zero"),
        ([("conv", {"out_channels": 4, "stride": 2})], 0, "conv", "'same' padding"),
        ([("conv", {"out_channels": 5, "groups": 2})], 0, "conv", "groups"),
        ([("conv", {"out_channels": 4, "kernal": 3})], 0, "conv", "kernal"),
        ([("softmax", {})], 0, "softmax", "Unknown layer kind"),
        ([("dropout", {"p": 1.5})], 0, "dropout", "probability"),
        ([("flatten", {}), ("linear", {"out_features": 5})], 1, "linear", "class scores"),
        ([("conv", {"out_channels": 0})], 0, "conv", "out_channels"),
    ],
)
def test_impossible_specs_name_the_layer(layers, index, kind, words):
    s = spec(*layers)
    with pytest.raises(SpecError) as info:
        build_model(s, (1, 28, 28), 10)
    assert (info.value.index, info.value.kind) == (index, kind)
    assert f"Layer {index + 1} ({kind})" in str(info.value)
    assert words in str(info.value)
    with pytest.raises(SpecError):
        summarize(s, (1, 28, 28), 10)
    with pytest.raises(SpecError):
        estimate_memory(s, (1, 28, 28), 10, 8)


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)
    with pytest.raises(ValueError, match="no layers"):
        build_model(ModelSpec((), "empty"), (1, 28, 28), 10)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    s = PRESETS[name]
    assert ModelSpec.from_json(s.to_json()) == s
    assert ModelSpec.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("text", ["{not json", '{"layers": 3}', '{"layers": [{"params": {}}]}'])
def test_bad_json_is_a_spec_error(text):
    with pytest.raises(SpecError):
        ModelSpec.from_json(text)


def test_memory_estimate_counts_params_and_scales_with_batch():
    s = PRESETS["mnist_tutorial"]
    small = estimate_memory(s, (1, 28, 28), 10, 16)
    big = estimate_memory(s, (1, 28, 28), 10, 64)
    n = sum(p.numel() for p in build_model(s, (1, 28, 28), 10).parameters())
    assert small.params == big.params == n
    assert small.param_bytes == 4 * n
    assert big.activation_bytes == 4 * small.activation_bytes
    # At least the first conv's output (32×28×28 floats per image) is kept for backward.
    assert small.activation_bytes >= 16 * 32 * 28 * 28 * 4
    assert big.input_bytes == 64 * 28 * 28 * 4
    assert big.total_bytes > big.activation_bytes


def test_memory_estimate_matches_saved_tensors_of_a_real_step():
    s = spec(
        ("conv", {"out_channels": 4}),
        ("relu", {}),
        ("flatten", {}),
        ("linear", {"out_features": "classes"}),
    )
    est = estimate_memory(s, (1, 8, 8), 3, 5)
    # conv saves its input (5×1×8×8); relu saves its output (5×4×8×8), which linear saves again
    # as a flattened view: the real saved set is input + relu output.
    assert est.activation_bytes == 4 * (5 * 64 + 5 * 4 * 64)


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(6, 24),
    channels=st.integers(1, 3),
    out=st.integers(1, 6),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    pool=st.integers(1, 3),
)
def test_random_specs_match_torch_or_explain(
    size, channels, out, kernel, stride, padding, dilation, pool
):
    s = spec(
        (
            "conv",
            {
                "out_channels": out,
                "kernel": kernel,
                "stride": stride,
                "padding": padding,
                "dilation": dilation,
            },
        ),
        ("maxpool", {"kernel": pool}),
        ("flatten", {}),
        ("linear", {"out_features": "classes"}),
    )
    reference_conv = nn.Conv2d(channels, out, kernel, stride, padding, dilation)
    try:
        conv_shape = reference_conv(torch.zeros(1, channels, size, size)).shape[1:]
        expected = nn.MaxPool2d(pool)(torch.zeros(1, *conv_shape)).shape[1:]
        possible = min(expected) > 0
    except RuntimeError:
        possible = False
    if not possible:
        with pytest.raises(SpecError):
            build_model(s, (channels, size, size), 3)
        return
    summary = summarize(s, (channels, size, size), 3)
    assert summary[0].output_shape == tuple(conv_shape)
    assert summary[1].output_shape == tuple(expected)
    model = build_model(s, (channels, size, size), 3)
    assert model(torch.zeros(2, channels, size, size)).shape == (2, 3)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_memory_estimate_equals_real_saved_storage(name):
    """On the CPU, the distinct storages autograd saves (minus parameters) are the estimate."""
    s = PRESETS[name]
    model = build_model(s, (1, 28, 28), 10).train()
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in param_ptrs:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.zeros(4, 1, 28, 28))
    assert estimate_memory(s, (1, 28, 28), 10, 4).activation_bytes == sum(storages.values())


def test_every_preset_has_a_note():
    assert set(PRESET_NOTES) == set(PRESETS)
    assert all(note.endswith(".") for note in PRESET_NOTES.values())


def test_residual_block_without_batch_norm_keeps_its_skip():
    spec = ModelSpec(
        (
            LayerSpec("residual", {"out_channels": 4, "stride": 2, "batch_norm": False}),
            LayerSpec("global_avgpool", {}),
            LayerSpec("linear", {"out_features": "classes"}),
        )
    )
    block = build_model(spec, (3, 8, 8), 2)[0]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert block.conv1.bias is not None  # no batch norm to absorb a bias
    x = torch.randn(2, 3, 8, 8)
    # With the main path's last conv zeroed, the block is relu(projection(x)).
    nn.init.zeros_(block.conv2.weight)
    nn.init.zeros_(block.conv2.bias)
    torch.testing.assert_close(block(x), torch.relu(block.shortcut(x)))
    bad = LayerSpec("residual", {"out_channels": 4, "batch_norm": "no"})
    with pytest.raises(SpecError, match="batch_norm"):
        build_model(ModelSpec((bad, *spec.layers[1:])), (3, 8, 8), 2)

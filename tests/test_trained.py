"""Trained models: listed for their owner only, loaded back bit-for-bit, and turned into
receptive-field stacks whose arithmetic matches the real network's shapes and gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab import runs
from cnnlab.data import load_dataset
from cnnlab.models import PRESETS, LayerSpec, ModelSpec, ResidualBlock, build_model
from cnnlab.receptive_field import analyse_stack, neuron_support
from cnnlab.runs import RunNotFoundError, SqliteRunStore
from cnnlab.trained import (
    list_trained,
    load_trained,
    receptive_field_preset,
    receptive_field_stack,
    stack_prefix,
)
from cnnlab.training import TrainConfig, evaluate

SHAPE = (1, 28, 28)
CLASSES = [f"c{i}" for i in range(10)]


@pytest.fixture
def store(_isolated_data_dir: Path) -> SqliteRunStore:
    return SqliteRunStore(_isolated_data_dir)


def _meta(shape=SHAPE, classes=CLASSES) -> dict:
    return {
        "input_shape": list(shape),
        "classes": list(classes),
        "num_classes": len(classes),
        "mean": [0.25] * shape[0],
        "std": [0.5] * shape[0],
    }


def _stored_run(
    store: SqliteRunStore, spec: ModelSpec, owner: str = "alice", status: str = "finished"
) -> tuple[str, nn.Module]:
    """A run written straight into the store, with weights of a model that has been "trained"
    (random weights, batch-norm statistics that are not the defaults)."""
    torch.manual_seed(1)
    model = build_model(spec, SHAPE, len(CLASSES))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        model.train()(torch.randn(16, *SHAPE) * 2 + 0.3)  # moves the running statistics
    run_id = store.create_run(
        owner, dataset="shapes", config={}, spec=spec.to_dict(), meta=_meta(), status="running"
    )
    runs.save_weights(store.run_dir(run_id) / runs.WEIGHTS_FILE, model.state_dict())
    store.finish(run_id, status, final={"test_accuracy": 0.5})
    return run_id, model.eval()


def test_a_stored_model_loads_back_with_identical_outputs(store):
    run_id, saved = _stored_run(store, PRESETS["fast"])
    loaded = load_trained(store, "alice", run_id)
    assert not loaded.model.training
    x = torch.randn(8, *SHAPE)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), saved(x))
    assert loaded.run.input_shape == SHAPE
    assert loaded.run.classes == tuple(CLASSES)
    assert (loaded.run.mean, loaded.run.std) == ((0.25,), (0.5,))
    images = torch.randint(0, 256, (3, *SHAPE), dtype=torch.uint8)
    expected = ((images.float() / 255 - 0.25) / 0.5).float()
    assert torch.allclose(loaded.normalize(images), expected, atol=1e-6)
    probs = loaded.predict(images)
    with torch.no_grad():
        assert torch.allclose(probs, torch.softmax(saved(expected), 1), atol=1e-6)
    with pytest.raises(ValueError, match="takes images of 1×28×28"):
        loaded.normalize(torch.zeros(1, 3, 28, 28, dtype=torch.uint8))


def test_another_owner_neither_lists_nor_loads_the_run(store):
    run_id, _ = _stored_run(store, PRESETS["fast"])
    assert [t.run_id for t in list_trained(store, "alice")] == [run_id]
    assert list_trained(store, "bob") == []
    with pytest.raises(RunNotFoundError):
        load_trained(store, "bob", run_id)


def test_only_ended_runs_with_weights_are_listed_and_the_others_explain(store):
    usable, _ = _stored_run(store, PRESETS["fast"])
    stopped, _ = _stored_run(store, PRESETS["tiny_vgg"], status="stopped")
    no_weights = store.create_run(
        "alice", dataset="shapes", config={}, spec=PRESETS["fast"].to_dict(), meta=_meta()
    )
    store.finish(no_weights, "stopped")
    running, _ = _stored_run(store, PRESETS["fast"])
    store.update_status(running, "running")
    listed = {t.run_id: t for t in list_trained(store, "alice")}
    assert set(listed) == {usable, stopped}
    assert listed[stopped].label.endswith(", stopped")
    assert "(50.0%)" in listed[usable].label
    with pytest.raises(ValueError, match="no trained weights"):
        load_trained(store, "alice", no_weights)
    with pytest.raises(ValueError, match="still training"):
        load_trained(store, "alice", running)


def test_weights_that_do_not_fit_the_network_are_refused_with_a_sentence(store):
    run_id, _ = _stored_run(store, PRESETS["fast"])
    other = build_model(PRESETS["tiny_vgg"], SHAPE, 10)
    runs.save_weights(store.run_dir(run_id) / runs.WEIGHTS_FILE, other.state_dict())
    with pytest.raises(ValueError, match="do not fit its network"):
        load_trained(store, "alice", run_id)
    (store.run_dir(run_id) / runs.WEIGHTS_FILE).write_bytes(b"\x08\x00\x00garbage")
    with pytest.raises(ValueError, match="damaged"):
        load_trained(store, "alice", run_id)


def test_a_run_trained_by_the_worker_loads_as_the_network_its_metrics_were_measured_on(store):
    from cnnlab.worker import execute

    # With early stopping the run ends holding its best epoch's weights, not those of its last
    # checkpoint (a later, worse epoch): the loaded network must be the one measured.
    config = {
        **TrainConfig().to_dict(),
        "epochs": 6,
        "batch_size": 64,
        "lr": 0.02,
        "schedule": "constant",
        "early_stopping_patience": 1,
    }
    run_id = store.create_run(
        "alice",
        dataset="shapes",
        config=config,
        spec=PRESETS["fast"].to_dict(),
        meta={"data_options": {"limit": 300}},
    )
    run = execute(store, run_id, threads=1)
    assert run.status == "finished", run.error
    assert run.final["best_epoch"] < run.checkpoint_epoch < 6  # the case this test is about
    loaded = load_trained(store, "alice", run_id)
    data = load_dataset("shapes", limit=300)
    ev = evaluate(loaded.model, data.test_x, data.test_y, data.mean, data.std, 10)
    assert np.asarray(ev.confusion).tolist() == run.final["confusion"]
    assert ev.accuracy == run.final["test_accuracy"]


SPECS = {
    **PRESETS,
    "odd": ModelSpec(
        (
            LayerSpec("conv", {"out_channels": 4, "kernel": 5, "stride": 2, "padding": 1}),
            LayerSpec("leaky_relu"),
            LayerSpec("conv", {"out_channels": 4, "kernel": 3, "dilation": 2}),
            LayerSpec("gelu"),
            LayerSpec("maxpool", {"kernel": 3, "stride": 2, "padding": 1}),
            LayerSpec("dropout", {"p": 0.2}),
            LayerSpec("avgpool", {"kernel": 2, "stride": 1}),
            LayerSpec("conv", {"out_channels": 4, "kernel": 3, "padding": "valid"}),
            LayerSpec("global_maxpool"),
            LayerSpec("linear"),
        ),
        "odd",
    ),
}


def _geometry_twin(model: nn.Sequential) -> nn.Sequential:
    """The same windows with every path positive: positive weights, identity batch norm, and
    max pools as average pools (a max pool passes the gradient to one pixel only), so the
    gradient reaches exactly the pixels a neuron depends on (ReLU, leaky ReLU and GELU pass
    positive values with a positive slope)."""
    import copy

    twin = copy.deepcopy(model).eval()
    for name, module in list(twin.named_children()):
        if isinstance(module, nn.MaxPool2d):
            twin._modules[name] = nn.AvgPool2d(module.kernel_size, module.stride, module.padding)
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.copy_(module.weight.abs() + 0.05)
            if isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
    return twin


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("size", [28, 32])
def test_the_stack_matches_the_real_network_shapes_and_gradients(name, size):
    spec = SPECS[name]
    model = build_model(spec, (1, size, size), 10).eval()
    stack = receptive_field_stack(spec)
    fields = analyse_stack(stack.layers, size)
    twin = _geometry_twin(model)
    assert stack.layers, name
    for row, f in enumerate(fields):
        x = torch.rand(1, 1, size, size) * 0.5 + 0.5
        x.requires_grad_(True)
        out = stack_prefix(model, stack, row)(x)
        assert tuple(out.shape[2:]) == f.output_hw, (name, row, f.layer)
        y = stack_prefix(twin, stack, row)(x)
        r, c = f.output_hw[0] // 2, f.output_hw[1] // 2
        y[0, :, r, c].sum().backward()
        support, _ = neuron_support(stack.layers, size, row, r, c)
        assert np.array_equal(x.grad[0, 0].numpy() > 0, support), (name, row, f.layer)


def test_residual_rows_cut_inside_the_block_and_after_it():
    spec = PRESETS["small_resnet"]
    stack = receptive_field_stack(spec)
    kinds = [(layer.name, layer.kind, layer.stride[0]) for layer in stack.layers]
    assert kinds[3:] == [
        ("4 residual conv1", "conv", 1),
        ("4 residual conv2", "conv", 1),
        ("5 residual conv1", "conv", 2),
        ("5 residual conv2", "conv", 1),
        ("6 residual conv1", "conv", 2),
        ("6 residual conv2", "conv", 1),
    ]
    model = build_model(spec, SHAPE, 10)
    inside = stack_prefix(model, stack, 5)
    assert inside[-1] is model[4].conv1
    assert isinstance(stack_prefix(model, stack, 6)[-1], ResidualBlock)
    with pytest.raises(ValueError, match="no row 10"):
        stack_prefix(model, stack, 9)


def test_uneven_same_padding_is_refused_and_presets_carry_the_real_input(store):
    even = ModelSpec((LayerSpec("conv", {"kernel": 4}), LayerSpec("flatten"), LayerSpec("linear")))
    with pytest.raises(ValueError, match="pads one side more"):
        receptive_field_stack(even)
    run_id, _ = _stored_run(store, PRESETS["lenet5"])
    (trained,) = list_trained(store, "alice")
    preset = receptive_field_preset(trained)
    assert (preset.input_size, preset.in_channels) == (28, 1)
    assert [layer.kind for layer in preset.layers] == [
        "conv",
        "relu",
        "avgpool",
        "conv",
        "relu",
        "avgpool",
    ]
    assert preset.layers[0].padding == (2, 2)  # 'same' for a 5×5 kernel
    assert preset.layers[2].stride == (2, 2)  # a pool's stride defaults to its kernel
    assert run_id[:6] in preset.name

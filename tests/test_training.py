"""The training loop on tiny data: learning, callbacks, stopping, resuming, evaluation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab import training
from cnnlab.data import DataBundle
from cnnlab.models import LayerSpec, ModelSpec, build_model
from cnnlab.training import (
    MIN_STEPS_PER_EPOCH,
    MIN_TOTAL_STEPS,
    TUNED_SETTINGS,
    EpochMetrics,
    TrainConfig,
    evaluate,
    first_conv_weight,
    small_data_advice,
    smoothing_floor,
    step_plan,
    train,
    tuned_config,
)

TINY = ModelSpec(
    (
        LayerSpec("conv", {"out_channels": 4, "bias": False}),
        LayerSpec("batchnorm", {}),
        LayerSpec("relu", {}),
        # A conv with several input channels: its weight's channels_last layout differs from the
        # standard one, which a resumed optimizer state must respect.
        LayerSpec("conv", {"out_channels": 6}),
        LayerSpec("maxpool", {"kernel": 2}),
        LayerSpec("dropout", {"p": 0.1}),
        LayerSpec("flatten", {}),
        LayerSpec("linear", {"out_features": "classes"}),
    ),
    "tiny",
)


# Small convolutions run steadiest on one thread on a shared machine (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def toy_bundle(n_train: int = 240, n_test: int = 60, seed: int = 0) -> DataBundle:
    """Three learnable classes of 8×8 images: a bright top, left or bottom-right block + noise."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = np.arange(n) % 3
    x = rng.integers(0, 60, (n, 1, 8, 8))
    x[y == 0, :, :3, :] += 180
    x[y == 1, :, :, :3] += 180
    x[y == 2, :, 5:, 5:] += 180
    x = x.clip(0, 255).astype(np.uint8)
    scaled = x[:n_train] / 255
    return DataBundle(
        "toy",
        ("top", "left", "corner"),
        torch.from_numpy(x[:n_train]),
        torch.from_numpy(y[:n_train]).long(),
        torch.from_numpy(x[n_train:]),
        torch.from_numpy(y[n_train:]).long(),
        (float(scaled.mean()),),
        (float(scaled.std()),),
    )


def fresh_model(seed: int = 0, data: DataBundle | None = None) -> nn.Module:
    data = data or toy_bundle()
    torch.manual_seed(seed)
    return build_model(TINY, data.input_shape, data.num_classes)


def config(**kw) -> TrainConfig:
    base = {
        "epochs": 3,
        "batch_size": 32,
        "lr": 1e-2,
        "schedule": "constant",
        # The toy runs keep their own regularisation, not the defaults tuned on MNIST.
        "weight_decay": 5e-4,
        "label_smoothing": 0.1,
        "val_fraction": 0.2,
        "device": "cpu",
    }
    return TrainConfig(**{**base, **kw})


def test_loss_decreases_and_the_model_learns():
    data = toy_bundle()
    steps = []
    result = train(fresh_model(), data, config(epochs=4), on_step=steps.append)
    first, last = result.history[0], result.history[-1]
    assert last.train_loss < first.train_loss
    assert last.val_loss < result.history[0].val_loss
    assert result.test is not None
    assert result.test.accuracy >= 0.9
    assert result.epochs_completed == 4
    assert not result.stopped
    assert result.device == "cpu"
    # 192 training images (20 % held out) in batches of 32: 6 steps per epoch.
    assert result.steps == len(steps) == 24
    assert [p.step for p in steps] == list(range(1, 25))
    assert all(p.total_steps == 24 and p.epochs == 4 for p in steps)
    assert steps[-1].eta_seconds == 0
    assert all(p.images_per_second > 0 for p in steps)
    assert all(0 <= p.accuracy <= 1 and p.loss > 0 for p in steps)
    # The running epoch means agree with the per-epoch metrics.
    assert steps[5].epoch_loss == pytest.approx(first.train_loss, rel=1e-5)
    assert steps[5].epoch_accuracy == pytest.approx(first.train_accuracy)


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle"])
def test_every_optimizer_and_schedule_learns(optimizer, schedule):
    lr = 0.05 if optimizer == "sgd" else 1e-2
    cfg = config(optimizer=optimizer, schedule=schedule, lr=lr, label_smoothing=0.1)
    result = train(fresh_model(), toy_bundle(), cfg)
    assert result.history[-1].train_loss < result.history[0].train_loss
    if schedule == "cosine":
        lrs = [m.lr for m in result.history]
        assert lrs == sorted(lrs, reverse=True)
        assert lrs[-1] < lr / 50
    if schedule == "onecycle":
        assert result.history[-1].lr < lr / 1000
    if schedule == "constant":
        assert result.history[-1].lr == pytest.approx(lr)


def test_same_seed_same_run():
    a = train(fresh_model(), toy_bundle(), config(augment=True))
    b = train(fresh_model(), toy_bundle(), config(augment=True))
    assert a.history[-1].train_loss == b.history[-1].train_loss
    assert torch.equal(a.test.predictions, b.test.predictions)


def test_stop_request_ends_after_the_current_step():
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 3

    steps = []
    result = train(
        fresh_model(), toy_bundle(), config(), on_step=steps.append, should_stop=should_stop
    )
    assert result.stopped
    assert result.steps == 3
    assert [p.step for p in steps] == [1, 2, 3]
    assert result.epochs_completed == 0  # a partial epoch is not recorded
    assert result.test is not None  # the model as it stands is still evaluated


def test_max_steps_limits_the_run():
    result = train(fresh_model(), toy_bundle(), config(max_steps=4))
    assert result.steps == 4
    assert not result.stopped


def test_resume_from_checkpoint_matches_an_uninterrupted_run():
    data = toy_bundle()
    cfg = config(epochs=3, augment=True, schedule="onecycle")
    full_model = fresh_model()
    full = train(full_model, data, cfg)

    states = []
    first_model = fresh_model()
    train(
        first_model,
        data,
        cfg,
        on_epoch=lambda metrics, state: states.append(state),
        should_stop=lambda: len(states) >= 1,
    )
    # The stop came during epoch 2; resume from the checkpoint of epoch 1 through a real file.
    buffer = io.BytesIO()
    torch.save(states[0], buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["epoch"] == 1

    resumed_model = fresh_model(seed=123)  # different init: everything must come from the state
    resumed = train(resumed_model, data, cfg, start_epoch=state["epoch"], resume_state=state)
    assert [m.epoch for m in resumed.history] == [1, 2, 3]
    assert resumed.history[0].train_loss == full.history[0].train_loss
    for mine, theirs in zip(resumed.history[1:], full.history[1:], strict=True):
        assert mine.train_loss == pytest.approx(theirs.train_loss, rel=1e-6)
        assert mine.val_loss == pytest.approx(theirs.val_loss, rel=1e-6)
    for (name, a), b in zip(
        resumed_model.state_dict().items(), full_model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert len(resumed.kernel_history) == 4


def test_checkpoint_state_holds_what_a_worker_saves():
    seen = []
    train(fresh_model(), toy_bundle(), config(epochs=2), on_epoch=lambda m, s: seen.append((m, s)))
    assert [m.epoch for m, _ in seen] == [1, 2]
    metrics, state = seen[-1]
    assert isinstance(metrics, EpochMetrics)
    assert EpochMetrics.from_dict(metrics.to_dict()) == metrics
    assert {"model", "optimizer", "scheduler", "epoch", "rng_cpu", "history"} <= set(state)
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in state["model"].values())
    assert TrainConfig.from_dict(state["config"]) == config(epochs=2)


def test_early_stopping_keeps_the_best_epoch():
    # A learning rate of ~0 leaves the weights, so the validation loss, unchanged (no batch norm
    # statistics to drift either): no epoch improves on the first.
    spec = ModelSpec(tuple(layer for layer in TINY.layers if layer.kind != "batchnorm"))
    data = toy_bundle()
    model = build_model(spec, data.input_shape, data.num_classes)
    result = train(model, data, config(epochs=5, lr=1e-12, early_stopping_patience=2))
    assert result.early_stopped
    assert result.epochs_completed == 3
    assert result.best_epoch == 1


def test_kernel_history_tracks_the_first_conv():
    model = fresh_model()
    before = first_conv_weight(model)
    result = train(model, toy_bundle(), config(epochs=2))
    assert len(result.kernel_history) == 3
    np.testing.assert_array_equal(result.kernel_history[0], before)
    np.testing.assert_allclose(result.kernel_history[-1], first_conv_weight(model))
    assert not np.array_equal(result.kernel_history[0], result.kernel_history[-1])
    assert first_conv_weight(nn.Linear(3, 2)) is None


def test_evaluate_matches_a_plain_forward_pass():
    data = toy_bundle()
    model = fresh_model()
    train(model, data, config(epochs=1))
    ev = evaluate(
        model, data.test_x, data.test_y, data.mean, data.std, 3, batch_size=7, channels_last=True
    )
    model.eval()
    x = (data.test_x.float() / 255 - data.mean[0]) / data.std[0]
    with torch.no_grad():
        logits = model(x.contiguous())
    prob = logits.softmax(dim=1)
    assert torch.equal(ev.predictions, logits.argmax(dim=1))
    torch.testing.assert_close(ev.confidences, prob.max(dim=1).values)
    assert ev.loss == pytest.approx(float(nn.functional.cross_entropy(logits, data.test_y)))
    assert ev.accuracy == pytest.approx(float((ev.predictions == data.test_y).float().mean()))
    assert ev.confusion.sum() == len(data.test_y)
    for k in range(3):
        mask = data.test_y == k
        assert ev.confusion[k].sum() == mask.sum()
        expected = float((ev.predictions[mask] == k).float().mean())
        assert ev.per_class_accuracy[k] == pytest.approx(expected)
        assert ev.confusion[k, k] == int((ev.predictions[mask] == k).sum())


def test_threads_setting_is_applied():
    torch.set_num_threads(2)
    train(fresh_model(), toy_bundle(), config(max_steps=1, threads=1))
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"epochs": 0}, "epochs"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"schedule": "step"}, "schedule"),
        ({"lr": 0}, "learning rate"),
        ({"label_smoothing": 1.0}, "label smoothing"),
        ({"early_stopping_patience": 2, "val_fraction": 0}, "validation set"),
    ],
)
def test_bad_settings_are_explained(kw, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**kw)


def test_config_round_trip_and_unknown_keys():
    cfg = TrainConfig(epochs=2, early_stopping_patience=3, device="cpu")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize("stop_after", [3, 6, 8])  # 6 steps per epoch: mid, end, mid of 2nd
def test_a_run_stopped_mid_epoch_resumes_from_the_next_batch_as_if_never_stopped(stop_after):
    data = toy_bundle()
    cfg = config(epochs=2, augment=True, schedule="onecycle")
    full_model = fresh_model()
    full = train(full_model, data, cfg)

    calls, saved = [], []

    def should_stop() -> bool:  # asked once after every step
        calls.append(1)
        return len(calls) >= stop_after

    stopped = train(fresh_model(), data, cfg, should_stop=should_stop, on_stop=saved.append)
    assert stopped.stopped
    assert stopped.steps == stop_after
    buffer = io.BytesIO()
    torch.save(saved[0], buffer)  # through a real file, loaded as a worker would
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["epoch"] == (stop_after - 1) // 6  # full epochs done
    assert state["partial"]["batch"] == (stop_after - 1) % 6 + 1
    assert state["step"] == stop_after

    resumed_model = fresh_model(seed=123)  # everything must come from the state
    resumed = train(resumed_model, data, cfg, start_epoch=state["epoch"], resume_state=state)
    assert resumed.steps == full.steps
    assert [m.epoch for m in resumed.history] == [1, 2]
    for mine, theirs in zip(resumed.history, full.history, strict=True):
        assert mine.train_loss == pytest.approx(theirs.train_loss, rel=1e-6)
        assert mine.train_accuracy == theirs.train_accuracy
        assert mine.val_loss == pytest.approx(theirs.val_loss, rel=1e-6)
    for (name, a), b in zip(
        resumed_model.state_dict().items(), full_model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_the_defaults_hide_no_regularisation_and_the_tuned_settings_are_named():
    # Label smoothing lifts only the training loss: by default there is none.
    assert TrainConfig().label_smoothing == 0.0
    assert tuned_config("fast").label_smoothing == TUNED_SETTINGS["fast"]["label_smoothing"] > 0
    assert tuned_config("fast", seed=3).seed == 3
    assert tuned_config("lenet5") == TrainConfig()


@pytest.mark.parametrize(("eps", "k"), [(0.0, 3), (0.1, 10), (0.3, 10), (0.3, 3), (0.9, 2)])
def test_smoothing_floor_is_the_least_loss_torch_can_reach(eps, k):
    floor = smoothing_floor(eps, k)
    target = torch.full((k,), eps / k)
    target[1] += 1 - eps
    y = torch.tensor([1])
    # The loss is least where the softmax equals the smoothed target: there it is the floor.
    best = torch.nn.functional.cross_entropy(target.log()[None], y, label_smoothing=eps)
    assert float(best) == pytest.approx(floor, abs=1e-6)
    gen = torch.Generator().manual_seed(k)
    for _ in range(20):
        logits = target.log()[None] + torch.randn((1, k), generator=gen)
        loss = torch.nn.functional.cross_entropy(logits, y, label_smoothing=eps)
        assert float(loss) >= floor - 1e-6


def test_step_plan_is_what_train_does():
    data = toy_bundle(n_train=60, n_test=12)
    cfg = config(batch_size=16, epochs=2, val_fraction=0.2)
    plan = step_plan(len(data.train_y), cfg)
    assert (plan.n_train, plan.n_val, plan.batch_size, plan.steps_per_epoch) == (48, 12, 16, 3)
    assert train(fresh_model(data=data), data, cfg).steps == plan.total_steps == 6
    # A batch larger than the set shrinks to it; max_steps caps the total.
    plan = step_plan(48, config(batch_size=64, epochs=10, val_fraction=0.1, max_steps=4))
    assert (plan.n_train, plan.batch_size, plan.steps_per_epoch, plan.total_steps) == (43, 43, 1, 4)


def test_a_tiny_upload_is_warned_about_with_its_numbers():
    # 60 images: 12 kept to test, 5 to validate, 43 to train; batch 64 and 10 epochs.
    cfg = TrainConfig(batch_size=64, epochs=10)
    advice = small_data_advice(step_plan(48, cfg), cfg, num_classes=3)
    assert advice is not None
    assert advice.message.startswith(
        "43 training images, batch 64: 1 step per epoch, 10 steps in total — too few: expect "
        "the network to stay near chance (33%)"
    )
    assert (advice.batch_size, advice.epochs) == (4, 10)
    assert small_data_advice(step_plan(8000, TrainConfig()), TrainConfig(), 10) is None
    # 900 images, batch 64, 3 epochs: 42 steps, enough to learn something (no warning).
    cfg = TrainConfig(batch_size=64, epochs=3)
    assert small_data_advice(step_plan(1000, cfg), cfg, 10) is None
    cfg = TrainConfig(batch_size=64, epochs=1)
    assert small_data_advice(step_plan(1000, cfg), cfg, 10) is not None  # 14 steps


@pytest.mark.parametrize("n_images", [3, 12, 48, 150, 400, 1100, 3000])
@pytest.mark.parametrize("batch_size", [16, 64, 512])
def test_the_advised_settings_take_enough_steps(n_images, batch_size):
    cfg = TrainConfig(batch_size=batch_size, epochs=2)
    advice = small_data_advice(step_plan(n_images, cfg), cfg, num_classes=10)
    if advice is None:
        return
    advised = TrainConfig(batch_size=advice.batch_size, epochs=advice.epochs)
    plan = step_plan(n_images, advised)
    if plan.n_train >= 4 * MIN_STEPS_PER_EPOCH:  # enough images for 10 batches of 4
        assert plan.steps_per_epoch >= MIN_STEPS_PER_EPOCH
        assert plan.total_steps >= MIN_TOTAL_STEPS
        assert small_data_advice(plan, advised, 10) is None
    else:  # as many steps as the data allow: the smallest batch
        assert advice.batch_size == 4


def test_the_train_loss_is_also_measured_like_the_validation_loss():
    # Dropout, augmentation and label smoothing all lift the running training loss; the
    # eval-mode measurement on training images has none of them, like the validation loss.
    data = toy_bundle()
    cfg = config(epochs=2, label_smoothing=0.3, augment=True, augment_shift=1)
    model = fresh_model(data=data)
    result = train(model, data, cfg)
    train_idx, val_idx = training._split(len(data.train_y), cfg.val_fraction, cfg.seed)
    model.eval()
    for indices, loss, accuracy in (
        (train_idx[: len(val_idx)], "train_eval_loss", "train_eval_accuracy"),
        (val_idx, "val_loss", "val_accuracy"),
    ):
        x = data.train_x[indices].float() / 255
        x = (x - torch.tensor(data.mean).view(1, -1, 1, 1)) / torch.tensor(data.std).view(
            1, -1, 1, 1
        )
        y = data.train_y[indices]
        with torch.no_grad():
            logits = model(x)
        last = result.history[-1]
        expected = torch.nn.functional.cross_entropy(logits, y)
        assert getattr(last, loss) == pytest.approx(float(expected), rel=1e-4, abs=1e-6)
        assert getattr(last, accuracy) == pytest.approx(
            float((logits.argmax(1) == y).float().mean())
        )
    # The running training loss carries the smoothing: above the floor it imposes.
    assert result.history[-1].train_loss > smoothing_floor(0.3, 3)
    assert result.history[-1].train_eval_loss < result.history[-1].train_loss
    # Without a validation set there is nothing to compare with, and nothing extra is measured.
    plain = train(fresh_model(data=data), data, config(epochs=1, val_fraction=0.0))
    assert plain.history[0].train_eval_loss is None

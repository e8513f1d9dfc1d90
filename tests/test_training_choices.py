"""The training loop's extra choices against torch: RMSprop and plain SGD steps, the BCE and MSE
losses, the L1 penalty, and their validation."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_training import TINY, fresh_model, toy_bundle

from cnnlab.data import normalize
from cnnlab.models import ModelSpec, build_model
from cnnlab.training import LOSSES, TrainConfig, l1_penalty, train, training_loss

# Small convolutions run steadiest on one thread on a shared machine (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def _no_dropout_model(data):
    # Dropout masks follow the batch order, which the loop permutes: leave dropout out here.
    spec = ModelSpec(tuple(layer for layer in TINY.layers if layer.kind != "dropout"), "tiny")
    torch.manual_seed(0)
    return build_model(spec, data.input_shape, data.num_classes)


def _one_step_by_hand(model, data, make_opt, loss_fn):
    """One full-batch step of ``model`` in plain torch: the oracle for the training loop."""
    model = copy.deepcopy(model).train()
    x = normalize(data.train_x, data.mean, data.std)
    opt = make_opt(model.parameters())
    opt.zero_grad()
    loss_fn(model, model(x), data.train_y).backward()
    opt.step()
    return model


def _one_step_in_the_loop(model, data, **kw):
    # The whole training set as one batch: the loop's batch order cannot change the mean loss.
    cfg = TrainConfig(
        epochs=1, batch_size=len(data.train_y), val_fraction=0.0, schedule="constant",
        weight_decay=0.0, label_smoothing=0.0, channels_last=False, device="cpu", **kw,
    )  # fmt: skip
    model = copy.deepcopy(model)
    train(model, data, cfg)
    return model


def _assert_same_weights(a, b):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    ("settings", "make_opt"),
    [
        ({"optimizer": "rmsprop", "lr": 1e-3}, lambda p: torch.optim.RMSprop(p, lr=1e-3)),
        (
            {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0},
            lambda p: torch.optim.SGD(p, lr=0.05),
        ),
    ],
)
def test_one_step_equals_torchs_optimizer(settings, make_opt):
    data = toy_bundle(n_train=64, n_test=8)
    model = _no_dropout_model(data)
    ce = lambda m, logits, y: F.cross_entropy(logits, y)  # noqa: E731
    expected = _one_step_by_hand(model, data, make_opt, ce)
    _assert_same_weights(_one_step_in_the_loop(model, data, **settings), expected)


def test_one_step_with_an_l1_penalty_equals_torch():
    data = toy_bundle(n_train=64, n_test=8)
    model = _no_dropout_model(data)

    def loss(m, logits, y):
        weights = [p for n, p in m.named_parameters() if n.endswith("weight") and p.ndim > 1]
        return F.cross_entropy(logits, y) + 1e-3 * sum(w.abs().sum() for w in weights)

    expected = _one_step_by_hand(model, data, lambda p: torch.optim.SGD(p, lr=0.05), loss)
    trained = _one_step_in_the_loop(model, data, optimizer="sgd", lr=0.05, momentum=0.0, l1=1e-3)
    _assert_same_weights(trained, expected)


def test_the_losses_equal_torchs_functional_ones():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (7,), generator=gen)
    one_hot = F.one_hot(y, 4).double()
    torch.testing.assert_close(training_loss("ce", logits, y), F.cross_entropy(logits, y))
    torch.testing.assert_close(
        training_loss("bce", logits, y), F.binary_cross_entropy_with_logits(logits, one_hot)
    )
    torch.testing.assert_close(
        training_loss("mse", logits, y), F.mse_loss(logits.softmax(1), one_hot)
    )
    # Smoothing softens the target of each loss as cross-entropy's own smoothing does.
    soft = one_hot * 0.8 + 0.05
    torch.testing.assert_close(
        training_loss("ce", logits, y, 0.2), F.cross_entropy(logits, y, label_smoothing=0.2)
    )
    torch.testing.assert_close(
        training_loss("bce", logits, y, 0.2), F.binary_cross_entropy_with_logits(logits, soft)
    )
    with pytest.raises(ValueError, match="Unknown loss"):
        training_loss("hinge", logits, y)


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains(loss):
    data = toy_bundle()
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-2, schedule="constant", loss=loss,
                      label_smoothing=0.0, weight_decay=0.0, device="cpu")  # fmt: skip
    result = train(fresh_model(data=data), data, cfg)
    assert result.test.accuracy > 0.9
    assert all(h.train_loss > 0 for h in result.history)


def test_l1_penalty_is_the_sum_of_absolute_weights():
    model = fresh_model()
    weights = [
        m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    with torch.no_grad():
        expected = float(sum(w.abs().sum() for w in weights))
        assert float(l1_penalty(model)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kw", "words"),
    [({"loss": "hinge"}, "loss must be one of"), ({"l1": -0.1}, "L1"), ({"l1": "x"}, "L1"),
     ({"loss": 3}, "loss must be text")],
)  # fmt: skip
def test_bad_choices_are_explained(kw, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**kw)


def test_rmsprop_keeps_its_own_momentum_under_one_cycle():
    data = toy_bundle(n_train=64, n_test=8)
    cfg = TrainConfig(epochs=1, batch_size=32, optimizer="rmsprop", lr=1e-3, val_fraction=0.0,
                      device="cpu")  # fmt: skip
    result = train(fresh_model(data=data), data, cfg)
    assert result.steps == 2

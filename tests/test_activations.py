"""cnnlab.activations and cnnlab.normalisation against closed forms and torch's modules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab import activations as act
from cnnlab import normalisation as norm


def test_derivatives_equal_the_closed_forms() -> None:
    c = act.curve("sigmoid")
    s = 1 / (1 + np.exp(-c.x))
    np.testing.assert_allclose(c.f, s)
    np.testing.assert_allclose(c.df, s * (1 - s), atol=1e-12)
    t = act.curve("tanh")
    np.testing.assert_allclose(t.df, 1 - np.tanh(t.x) ** 2, atol=1e-12)
    r = act.curve("relu", -1, 1, 5)
    np.testing.assert_allclose(r.df, [0, 0, 0, 1, 1])  # torch's ReLU′(0) is 0
    lr = act.curve("leaky_relu", -1, 1, 3, slope=0.2)
    np.testing.assert_allclose(lr.df, [0.2, 0.2, 1])
    e = act.curve("elu", -2, -1, 3, slope=1.0)
    np.testing.assert_allclose(e.df, np.exp(e.x))
    silu = act.curve("silu")
    s = 1 / (1 + np.exp(-silu.x))
    np.testing.assert_allclose(silu.df, s * (1 + silu.x * (1 - s)), atol=1e-12)
    gelu = act.curve("gelu")
    phi = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in gelu.x])
    pdf = np.exp(-(gelu.x**2) / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(gelu.df, phi + gelu.x * pdf, atol=1e-12)


def test_vanishing_regions() -> None:
    (relu,) = act.curve("relu").vanishing
    assert relu[0] == -6.0
    assert relu[1] <= 0
    sig = act.curve("sigmoid").vanishing
    assert len(sig) == 2
    # σ′(x) < 0.01 for |x| > 4.6 (σ′(4.6) ≈ 0.0099)
    assert sig[0][1] == pytest.approx(-4.6, abs=0.03)
    assert sig[1][0] == pytest.approx(4.6, abs=0.03)
    assert act.curve("leaky_relu").vanishing == ()


@settings(max_examples=30, deadline=None)
@given(
    logits=st.lists(st.floats(-5, 5), min_size=2, max_size=6),
    temperature=st.floats(0.1, 10),
)
def test_softmax_with_temperature(logits: list[float], temperature: float) -> None:
    s = act.softmax(logits, temperature)
    z = np.array(logits) / temperature
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(s.probs, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s.dp_first, s.p_first * (1 - s.p_first) / temperature, atol=1e-9)


def test_softmax_temperature_sharpens_and_flattens() -> None:
    logits = [2.0, 1.0, 0.1]
    cold, hot = act.softmax(logits, 0.2).probs, act.softmax(logits, 10).probs
    assert cold[0] > 0.99
    assert hot.max() - hot.min() < 0.1
    with pytest.raises(ValueError, match="temperature"):
        act.softmax(logits, 0)


def test_activation_on_a_feature_map() -> None:
    fmap = np.array([[-2.0, -1.0], [0.5, 3.0]])
    relu = act.apply_to_map("relu", fmap)
    assert relu.zero_share == 0.5
    assert (relu.lo, relu.hi) == (0.0, 3.0)
    leaky = act.apply_to_map("leaky_relu", fmap, 0.1)
    assert leaky.zero_share == 0
    assert leaky.lo == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="Unknown activation"):
        act.module("swishy")


def _batch(batch: int = 6) -> torch.Tensor:
    gray = np.random.default_rng(0).random((64, 64))
    return norm.feature_batch(gray, batch, crop=32)


def test_batch_norm_equals_the_written_out_formula() -> None:
    x = _batch()
    result = norm.batch_norm(x, gamma=2.0, beta=0.5)
    np.testing.assert_allclose(
        result.after, norm.manual_batch_norm(x, 2.0, 0.5).numpy(), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(result.mean_after, 0.5, atol=1e-5)
    np.testing.assert_allclose(result.var_after, 4.0, rtol=1e-3)
    # One training step moves the running mean 10 % of the way from 0 to the batch mean.
    np.testing.assert_allclose(result.running_mean, 0.1 * result.mean_before, rtol=1e-5)


def test_eval_mode_uses_running_statistics() -> None:
    x = _batch()
    warm = tuple(_batch() for _ in range(3))
    result = norm.batch_norm(x, training=False, warmup_batches=warm)
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        for w in warm:
            bn.train()(w)
        expected = bn.eval()(x)
    np.testing.assert_allclose(result.after, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(result.mean_after, 0, atol=1e-3)  # not centred on this batch


def test_batch_of_one_erases_brightness_and_contrast() -> None:
    out_diff, in_diff = norm.batch_of_one_erases_levels(_batch())
    assert in_diff > 1
    assert out_diff < 1e-3
    assert "Expected more than 1 value per channel" in norm.batch_norm_1d_batch_of_one()


def test_dropout_zeroes_about_p_and_scales_the_rest() -> None:
    x = np.ones((100, 100))
    d = norm.dropout(x, 0.3)
    assert d.dropped_share == pytest.approx(0.3, abs=0.02)
    kept = d.train[d.train != 0]
    np.testing.assert_allclose(kept, 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(d.eval, x)
    assert abs(d.train.mean() - 1) < 0.03  # expectation preserved
    with pytest.raises(ValueError, match="dropout probability"):
        norm.dropout(x, 1.0)

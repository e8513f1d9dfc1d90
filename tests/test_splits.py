"""Hold-out splits: disjoint, complete, deterministic per seed, stratified (synthetic labels)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.splits import holdout_bundle, stratified_split


@st.composite
def labels_and_holdout(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    """Labels of 2–300 images in up to 10 uneven classes, a held-out size and a seed."""
    n = draw(st.integers(2, 300))
    n_classes = draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = rng.random(n_classes) + 0.05
    labels = rng.choice(n_classes, size=n, p=weights / weights.sum())
    return labels, draw(st.integers(1, n - 1)), draw(st.integers(0, 2**63 - 1))


@settings(max_examples=25, deadline=None)
@given(labels_and_holdout())
def test_split_is_disjoint_complete_sorted_and_stratified(case: tuple) -> None:
    labels, n_holdout, seed = case
    kept, held = stratified_split(labels, n_holdout, seed)
    assert len(held) == n_holdout
    assert np.intersect1d(kept, held).size == 0
    assert np.array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(labels)))
    assert np.all(np.diff(kept) > 0)
    assert np.all(np.diff(held) > 0)
    for c in np.unique(labels):
        exact = np.sum(labels == c) * n_holdout / len(labels)
        assert abs(np.sum(labels[held] == c) - exact) < 1  # within one image of its share


def test_split_is_deterministic_per_seed_and_differs_between_seeds() -> None:
    labels = np.repeat(np.arange(10), 100)
    first = stratified_split(labels, 200, seed=7)
    again = stratified_split(labels.copy(), 200, seed=7)
    other = stratified_split(labels, 200, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])
    # Balanced classes: exactly 20 of each class held out, whatever the seed.
    assert np.array_equal(np.bincount(labels[other[1]]), np.full(10, 20))


def test_split_pins_its_draws() -> None:
    """The split a seed gives is part of a benchmark's record: changing it must be deliberate."""
    _, held = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 4, seed=0)
    assert held.tolist() == [0, 2, 6, 7]


@pytest.mark.parametrize(
    ("labels", "n_holdout", "words"),
    [
        (np.zeros(5), 0, "from 1 to 4"),
        (np.zeros(5), 5, "from 1 to 4"),
        (np.zeros((5, 2)), 2, "1-D"),
    ],
)
def test_split_refuses_impossible_requests(labels: np.ndarray, n_holdout: int, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        stratified_split(labels, n_holdout, seed=0)


def test_bundle_tests_on_the_held_out_images_and_normalises_with_the_kept_ones() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    images = rng.integers(0, 256, size=(100, 1, 6, 6), dtype=np.uint8)
    # Each image is marked by its index in the first pixel, to follow it through the split.
    images[:, 0, 0, 0] = np.arange(100)
    kept, held = stratified_split(labels, 20, seed=3)
    data = holdout_bundle("synthetic", ("a", "b", "c", "d"), images, labels, 20, seed=3)
    assert data.test_x[:, 0, 0, 0].numpy().tolist() == held.tolist()
    assert data.train_x[:, 0, 0, 0].numpy().tolist() == kept.tolist()
    assert data.test_y.tolist() == labels[held].tolist()
    assert data.mean[0] == pytest.approx(images[kept].mean() / 255, rel=1e-5)
    assert data.std[0] == pytest.approx((images[kept] / 255).std(ddof=1), rel=1e-4)


def test_bundle_refuses_images_and_labels_that_do_not_match() -> None:
    with pytest.raises(ValueError, match="3 images but 4 labels"):
        holdout_bundle("x", ("a",), np.zeros((3, 1, 2, 2), np.uint8), np.zeros(4), 1, seed=0)

"""Seeded, stratified hold-out splits: the images a benchmark reports on, or a tuner validates on.

A number measured on one fixed split can be a property of that split (a preset tuned on it will
look better there than anywhere else). Benchmarks therefore draw several random splits from
seeds, and tuning carves its validation images out of the training part only.
"""

from __future__ import annotations

import numpy as np

from cnnlab.data import DataBundle, bundle_arrays


def stratified_split(
    labels: np.ndarray, n_holdout: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices (kept, held out), ``n_holdout`` held out with each class in proportion.

    The same labels and seed always give the same split. Each class holds out its share of
    ``n_holdout`` rounded by largest remainder (so the shares add up exactly); the images of a
    class that go are drawn at random from the seed.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"Labels must be one label per image (a 1-D array), got {labels.shape}.")
    n = len(labels)
    if not 0 < n_holdout < n:
        raise ValueError(
            f"The held-out part must hold from 1 to {n - 1} of the {n} images (got {n_holdout})."
        )
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_holdout / n
    shares = np.floor(exact).astype(np.int64)
    # The images the floors left over go to the classes with the largest remainders (ties: the
    # lower class first), so every class is within one image of its exact share.
    extra = n_holdout - int(shares.sum())
    shares[np.argsort(-(exact - shares), kind="stable")[:extra]] += 1
    rng = np.random.default_rng(seed)
    held = [
        rng.permutation(np.flatnonzero(labels == c))[:k]
        for c, k in zip(classes, shares, strict=True)
    ]
    held_out = np.sort(np.concatenate(held))
    kept = np.setdiff1d(np.arange(n), held_out, assume_unique=True)
    return kept, held_out


def holdout_bundle(
    name: str,
    classes: tuple[str, ...],
    images: np.ndarray,
    labels: np.ndarray,
    n_holdout: int,
    seed: int,
    flip_ok: bool = False,
) -> DataBundle:
    """A :class:`DataBundle` training on the kept images and testing on the held-out ones.

    The normalisation statistics come from the kept images only, so nothing about the held-out
    images reaches training.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: they must match.")
    kept, held_out = stratified_split(labels, n_holdout, seed)
    return bundle_arrays(
        name,
        classes,
        (images[kept], labels[kept]),
        (images[held_out], labels[held_out]),
        flip_ok,
    )

"""What the pages share between students is exactly what each would have computed alone.

Every cached path (figures built once per server, pictures encoded once, engine results kept per
configuration) is compared with the uncached function it stands for, and the cache keys are
shown to tell apart inputs that Streamlit's own hashing confuses (large arrays are hashed by a
sample of their elements).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.runtime.caching.hashing import _NP_SAMPLE_SIZE, _NP_SIZE_LARGE

from cnnlab import arithmetic as ar
from cnnlab import conv
from cnnlab.images import SAMPLES, image_digest, sample_image
from cnnlab.invariance import invariance_experiment
from cnnlab.pooling import PoolSpec, reference_pool2d
from cnnlab.receptive_field import (
    PRESETS,
    analyse_stack,
    effective_receptive_field,
    field_tree,
    neuron_region,
    receptive_fields,
)
from ui import arithmetic as ui_arith
from ui import convolution as ui_conv
from ui import pooling as ui_pool
from ui import receptive_field as ui_rf
from ui import training as ui_train
from ui.image_source import ImageSource, _sample_source, _thumbnail, cache_key


def _source(pixels: np.ndarray, name: str = "test") -> ImageSource:
    image = Image.fromarray(pixels)
    return ImageSource(image, name, image_digest(image), None)


def _spec(figure) -> dict:
    """A figure as the JSON the browser gets (numpy arrays included), for comparisons."""
    return json.loads(figure.to_json())


def _decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def _unsampled_twins(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Two uint8 arrays, equal but for one element that Streamlit's sampled hash never reads."""
    size = int(np.prod(shape))
    assert size >= _NP_SIZE_LARGE
    sampled = np.random.RandomState(0).randint(0, size, size=_NP_SAMPLE_SIZE)
    index = int(np.setdiff1d(np.arange(size), sampled)[size // 2 % 1000])
    a = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)
    b = a.copy()
    b[index] = a[index] ^ 0xFF
    return a.reshape(shape), b.reshape(shape)


def test_streamlit_alone_confuses_the_twins_and_cache_key_does_not() -> None:
    a, b = _unsampled_twins((1024, 512))
    calls: list[int] = []

    @st.cache_data
    def naive(array: np.ndarray) -> int:
        calls.append(1)
        return int(array.astype(np.int64).sum())

    naive.clear()
    # The premise: keyed on the raw arrays, the second call gets the first one's answer.
    assert naive(a) == naive(b)
    assert len(calls) == 1
    assert int(b.astype(np.int64).sum()) != int(a.astype(np.int64).sum())
    assert cache_key(a) != cache_key(b)
    assert cache_key(_source(a)) != cache_key(_source(b))
    # Same bytes, other shape or dtype: other key.
    assert cache_key(a) != cache_key(a.reshape(512, 1024))
    assert cache_key(a) != cache_key(a.view(np.int8))


def test_image_caches_tell_the_twins_apart() -> None:
    a, b = _unsampled_twins((1024, 512))
    first, second = _source(a), _source(b)
    maps_a, averages_a = ui_pool.edge_features(first, 512)
    maps_b, averages_b = ui_pool.edge_features(second, 512)
    assert not np.array_equal(maps_a, maps_b)
    _, bars_a, shape_a = ui_pool._gap_views(first, 512)
    _, bars_b, _ = ui_pool._gap_views(second, 512)
    assert _spec(bars_a) != _spec(bars_b)
    assert shape_a == maps_a.shape
    assert list(bars_a.data[0].x) == pytest.approx(list(averages_a))
    assert list(bars_b.data[0].x) == pytest.approx(list(averages_b))


def test_sample_source_and_thumbnail_match_the_sample() -> None:
    for name in SAMPLES:
        image = sample_image(name)
        source = _sample_source(name)
        assert source.digest == image_digest(image)
        assert source is _sample_source(name)  # one per server
        thumb = Image.open(io.BytesIO(_thumbnail(name)))
        assert thumb.format == "JPEG"
        assert max(thumb.size) == min(320, max(image.size))


def test_window_figure_cached_equals_built() -> None:
    cases = [
        ("conv", (28, 28), 5, 2, 1, 1, 0),
        ("conv", (7,), 3, 2, 1, 2, 0),
        ("conv_transpose", (5, 6), 3, 2, 1, 1, 1),
        ("max_pool", (9, 9, 4), 3, 2, 1, 1, 0),
    ]
    figures = []
    for args in cases:
        layer = ar.analyse(*args)
        for position in (0, 1):
            shared = ui_arith.shared_window_figure(layer, position)
            assert _spec(shared) == _spec(ui_arith.window_figure(layer, position))
            assert ui_arith.shared_window_figure(layer, position) is shared
            figures.append(shared.to_json())
    assert len(set(figures)) == len(figures)


def test_window_figure_draws_every_tap_of_the_window() -> None:
    layer = ar.analyse("conv", (6, 6), 3, 1, 1, 2, 0)  # dilation 2: taps 2 apart
    shapes = ui_arith.window_figure(layer, 0).layout.shapes
    taps = [s for s in shapes if s.fillcolor == "rgba(0,114,178,0.35)"]
    assert len(taps) == 9
    assert sorted({round(s.x0 + 0.45) for s in taps}) == [0, 2, 4]  # padded columns 0, 2, 4


def test_pooling_step_figures_cached_equal_built_and_follow_every_value() -> None:
    spec = PoolSpec("max", 2, 2)
    grid = np.random.default_rng(3).integers(0, 10, (6, 6)).astype(np.float64)
    trace = reference_pool2d(grid, spec)
    for index in (0, 4):
        shared_in, shared_out = ui_pool.step_figures(trace, index)
        assert _spec(shared_in) == _spec(ui_pool.input_figure(trace, trace.steps[index]))
        assert _spec(shared_out) == _spec(ui_pool.output_figure(trace, index))
    changed = grid.copy()
    changed[5, 5] += 1e-9  # invisible in the figure's text, not in its values
    other = ui_pool.step_figures(reference_pool2d(changed, spec), 0)[0]
    assert _spec(other) != _spec(ui_pool.step_figures(trace, 0)[0])


def test_pooled_pictures_and_invariance_figure_equal_the_direct_computation() -> None:
    source = _sample_source("astronaut")
    spec = PoolSpec("avg", 2, 2)
    pictures = ui_pool.pooled_pictures(source, 32, spec)
    assert [p.kind for p in pictures] == ["max", "avg", "lp", "global_avg", "global_max"]
    avg = pictures[1]
    assert avg.shape == (3, 16, 16)
    assert _decoded(avg.picture).shape == (194, 194, 3)  # 16 px × 12, nearest, 1-px frame
    result = ui_pool.image_invariance(source, 64, spec, 3, "right", "crop")
    pixels = ui_pool.to_array(ui_pool.working_image(source.image, 64), grayscale=True)
    assert result == invariance_experiment(pixels, spec, 3, "right", "crop")
    shared = ui_pool.shared_invariance_figure(result.curves, "")
    assert _spec(shared) == _spec(ui_pool.invariance_figure(list(result.curves), ""))


def test_receptive_field_figures_cached_equal_built() -> None:
    preset = PRESETS["Small CNN"]
    fields = analyse_stack(preset.layers, preset.input_size)
    source = _sample_source("astronaut")
    image = ui_rf.square_input(source.image, preset.input_size)
    for index, neuron in ((6, (0, 7)), (2, (3, 3))):
        overlay, growth = ui_rf.field_figures(source, preset.input_size, fields, index, neuron)
        region = neuron_region(fields, index, *neuron)
        expected = ui_rf.field_figure(image, fields[index], region, neuron)
        assert _spec(overlay) == _spec(expected)
        assert _spec(growth) == _spec(ui_rf.growth_figure(image, fields, index, neuron))
    other = ui_rf.field_figures(_sample_source("camera"), preset.input_size, fields, 6, (0, 7))
    assert _spec(other[0]) != _spec(
        ui_rf.field_figures(source, preset.input_size, fields, 6, (0, 7))[0]
    )


def test_tree_figure_cached_equals_built() -> None:
    layers = [{"kind": "conv", "kernel": 3, "padding": 1}, {"kind": "maxpool", "kernel": 2}]
    for length, cell in ((8, 2), (9, 2), (8, 3)):
        tree = field_tree(layers, length)
        geometry = [(0.0, 1)] + [(d["start"], d["jump"]) for d in receptive_fields(layers, length)]
        shared = ui_rf.shared_tree_figure(layers, length, tree, geometry, cell)
        built = ui_rf.tree_figure(tree, geometry, len(tree) - 1, cell)
        assert _spec(shared) == _spec(built)


def test_erf_pictures_cached_equal_built() -> None:
    layers = [{"kind": "conv", "kernel": 3, "padding": 1}] * 2
    erf = effective_receptive_field(layers, 12, 1, networks=1, samples=2)
    pictures = ui_rf.erf_pictures(erf)
    scale = 320 // 12
    expected = ui_rf._outline(
        ui_rf.upscale(ui_rf.sequential_rgb(erf.gradient, 0), scale),
        erf.region,
        scale,
        (255, 255, 255),
    )
    assert np.array_equal(_decoded(pictures.effective), expected)
    twin = type(erf)(**{**erf.__dict__, "gradient": erf.gradient * (1 + 1e-12)})
    assert ui_rf.erf_pictures(twin) is not pictures


def test_busiest_patch_cached_equals_engine() -> None:
    source = _sample_source("astronaut")
    for gray in (True, False):
        x = ui_conv.pixels(source, gray)
        for side in (5, 7):
            assert ui_conv.busiest_patch(x, source.digest, side) == conv.busiest_patch(x, side)


def test_training_caches_equal_direct_computation() -> None:
    from dataclasses import replace

    from cnnlab.jobs import Limits, check_limits
    from cnnlab.models import PRESETS as MODELS

    spec = MODELS["fast"]
    limits = Limits.from_env()
    est = check_limits(spec, (1, 28, 28), 10, 64, limits)
    assert ui_train._limits_text(spec.to_json(), (1, 28, 28), 10, 64, limits) == (
        f"{est.total_bytes / 2**20:,.1f} MB ({est.params:,} parameters)"
    )
    small = replace(limits, max_params=10)
    with pytest.raises(ValueError, match="parameters"):
        ui_train._limits_text(spec.to_json(), (1, 28, 28), 10, 64, small)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 4
    picked = ui_train._first_per_class(x, y, 3, 4)
    strips = ui_train._sample_strips(cache_key(*picked), picked, 3)
    direct = ui_train.class_samples(x, y, per_class=3)
    assert [_decoded(s).tolist() for s in strips] == [d.tolist() for d in direct]

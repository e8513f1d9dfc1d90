"""The new pages' caches hold exactly what the uncached engine computes, keyed exactly."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab import anatomy, normalisation
from cnnlab import conv_variants as cv
from cnnlab.export import architecture_code
from cnnlab.images import image_digest, sample_image
from ui import conv_variants as ui_variants
from ui import normalisation as ui_norm
from ui import zoo as ui_zoo
from ui.activations import gray_array


@pytest.mark.parametrize(("name", "side"), [("resnet18", 224), ("vgg16", 112), ("lenet5", 32)])
def test_zoo_analysis_and_code_equal_the_engine(name: str, side: int) -> None:
    assert ui_zoo.analysis(name, side) == anatomy.analyse_zoo(name, side)
    assert ui_zoo.code(name, 10) == architecture_code(name, 10)


def test_variant_costs_equal_the_engine() -> None:
    sizes = cv.Sizes(64, 128, 5, 8, 3, 28, 28)
    assert ui_variants.costs(sizes) == [cv.cost(v, sizes) for v in cv.VARIANTS]


def test_variant_maps_are_keyed_by_the_image() -> None:
    cat, camera = sample_image("cat"), sample_image("camera")
    rgb, applied = ui_variants._applied(image_digest(cat), cat, "depthwise", 2)
    np.testing.assert_array_equal(applied.maps, cv.apply_to_image("depthwise", rgb, 2).maps)
    camera_rgb, other = ui_variants._applied(image_digest(camera), camera, "depthwise", 2)
    np.testing.assert_array_equal(other.maps, cv.apply_to_image("depthwise", camera_rgb, 2).maps)
    assert not np.array_equal(camera_rgb[:10, :10], rgb[:10, :10])


def test_batch_norm_cache_equals_the_engine_per_image_and_mode() -> None:
    image = sample_image("camera")
    gray = gray_array(image)
    for training in (True, False):
        x, result, strip = ui_norm._batch_norm(image_digest(image), gray, 4, 2.0, 0.5, training)
        warm = (
            ()
            if training
            else tuple(
                normalisation.feature_batch(gray, 8, crop=48, seed=100 + i) for i in range(20)
            )
        )
        expected = normalisation.batch_norm(x, 2.0, 0.5, training, warm)
        np.testing.assert_allclose(result.after, expected.after, rtol=1e-6)
        assert strip.shape[2] == 3

"""AppTest of the Convolution variants page: costs follow the sizes, errors in words, 1-D, 3-D."""

from __future__ import annotations

import io

import numpy as np
from pagetest import app_test, rendered
from pagetest import metrics as read_metrics
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnlab import conv_variants as cv

PAGE = "pages/conv_variants.py"


def _page() -> AppTest:
    return rendered(PAGE)


def test_default_costs_are_the_modules_costs() -> None:
    at = _page()
    s = cv.Sizes()
    table = at.dataframe[0].value
    assert table["parameters"].tolist() == [cv.cost(v, s).params for v in cv.VARIANTS]
    assert table["multiply-adds"].tolist() == [cv.cost(v, s).macs for v in cv.VARIANTS]
    ratio = cv.cost("standard", s).macs / cv.cost("separable", s).macs
    assert read_metrics(at)["Standard ÷ separable"] == f"{ratio:.2f}×" == "8.69×"


def test_changing_the_sizes_recomputes_and_bad_groups_are_explained() -> None:
    at = _page()
    at.number_input(key="variants.c_in").set_value(32).run()
    at.number_input(key="variants.c_out").set_value(64).run()
    at.selectbox(key="variants.kernel").set_value(5).run()
    s = cv.Sizes(32, 64, 5)
    assert read_metrics(at)["Standard: multiply-adds"] == f"{cv.cost('standard', s).macs:,}"
    at.slider(key="variants.groups").set_value(5).run()
    assert not at.exception
    assert "must divide both" in at.error[0].value


def test_every_variant_draws_its_connectivity_and_image_maps() -> None:
    at = _page()
    for variant in cv.VARIANTS:
        at.radio(key="variants.pick").set_value(variant).run()
        at.radio(key="variants.image_variant").set_value(variant).run()
        assert not at.exception, variant
        assert not at.error, variant


def test_one_d_explanation_matches_torch() -> None:
    at = _page()
    at.selectbox(key="variants.1d.signal").set_value("step").run()
    at.selectbox(key="variants.1d.kernel").set_value("edge detector").run()
    at.slider(key="variants.1d.pos").set_value(90).run()
    x = cv.signal("step", 200)
    y = cv.conv1d(x, cv.kernel_1d("edge detector", 9))
    text = next(m.value for m in at.markdown if m.value.startswith("y[90]"))
    assert f"**{y[90]:.4f}**" in text
    assert f"conv1d: {y[90]:.4f}" in text


def test_three_d_values_are_torchs_output() -> None:
    at = _page()
    at.selectbox(key="variants.3d.kernel").set_value("motion (frame difference)").run()
    frame = at.dataframe[-1].value
    out = cv.conv3d(cv.moving_square(6, 20, 6, 2), cv.kernel_3d("motion (frame difference)"))
    np.testing.assert_allclose(frame.to_numpy(), np.round(out[:, out.shape[1] // 2, :], 3))
    assert (frame.to_numpy() > 0).any()
    assert (frame.to_numpy() < 0).any()


def test_every_signal_kernel_and_volume_kernel_renders() -> None:
    at = _page()
    for signal in cv.SIGNALS:
        at.selectbox(key="variants.1d.signal").set_value(signal).run()
        for kernel in cv.KERNELS_1D:
            at.selectbox(key="variants.1d.kernel").set_value(kernel).run()
            assert not at.exception, (signal, kernel)
    for kernel in cv.KERNELS_3D:
        at.selectbox(key="variants.3d.kernel").set_value(kernel).run()
        assert not at.exception, kernel
        out = cv.conv3d(cv.moving_square(6, 20, 6, 2), cv.kernel_3d(kernel))
        frame = at.dataframe[-1].value
        np.testing.assert_allclose(frame.to_numpy(), np.round(out[:, out.shape[1] // 2, :], 3))


def test_play_slides_the_kernel_and_a_bigger_kernel_keeps_the_position_valid() -> None:
    at = _page()
    start = at.slider(key="variants.1d.pos").value
    at.toggle(key="variants.1d.play").set_value(True).run()
    at.run()
    assert at.slider(key="variants.1d.pos").value > start
    at.toggle(key="variants.1d.play").set_value(False).run()
    at.slider(key="variants.1d.pos").set_value(190).run()
    at.slider(key="variants.1d.size").set_value(31).run()
    assert not at.exception
    assert at.slider(key="variants.1d.pos").value <= 200 - 31


def test_a_tall_strip_is_drawn_thicker_and_a_screen_tall() -> None:
    at = app_test("pages/conv_variants.py", timeout=120).run()
    at.radio(key="variants.image.source").set_value("Upload").run()
    buffer = io.BytesIO()
    Image.fromarray(np.full((1200, 4, 3), 90, np.uint8)).save(buffer, format="PNG")
    at.file_uploader(key="variants.image.upload").set_value(
        ("strip.png", buffer.getvalue(), "image/png")
    )
    at.run()
    assert not at.exception
    (maps,) = [i for i in at.image if "output maps" in " ".join(i.captions)]
    assert "drawn 40× thicker across" in maps.captions[0]  # 160×1 maps drawn 160×40
    # Drawn a screen tall, not at the usual width (which ran a strip screens down).
    from ui.conv_variants import _width

    assert _width(np.zeros((160, 40, 3)), 160, 160) == 80
    assert _width(np.zeros((160, 128, 3)), 480, "content") == "content"
    assert _width(np.zeros((160, 40, 3)), 480, "content") == 120

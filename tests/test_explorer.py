"""The explorer's engine: preprocessing (MNIST-style digit centring), layer statistics, tiles,
the kernel behind a channel, softmax temperature, exports; and the classic-vision bank."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from cnnlab.classic_vision import ORIENTATIONS, classic_bank, classic_labels, classic_model
from cnnlab.explorer import (
    MAX_PARAMS,
    Explorable,
    layer_scale,
    layer_views,
    maps_npz,
    overlay,
    preprocess,
    producing_kernel,
    softmax,
    tile_maps,
)
from cnnlab.models import PRESETS, build_model


def _digits_target() -> Explorable:
    torch.manual_seed(0)
    model = build_model(PRESETS["fast"], (1, 28, 28), 10).eval()
    return Explorable("t", "t", model, 1, 28, "digits", (0.13,), (0.31,), tuple("0123456789"))


def _drawing(dark_on_light: bool = False) -> Image.Image:
    image = Image.new("L", (280, 280), 255 if dark_on_light else 0)
    ImageDraw.Draw(image).line([(60, 40), (90, 200)], fill=0 if dark_on_light else 255, width=20)
    return image


@pytest.mark.parametrize("dark_on_light", [False, True])
def test_a_drawing_is_centred_like_mnist(dark_on_light):
    prep = preprocess(_drawing(dark_on_light), _digits_target())
    assert prep.shape == (1, 1, 28, 28)
    pixels = np.asarray(prep.pixels, dtype=np.float64)
    rows, cols = np.nonzero(pixels > 0)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 20  # the longer side fitted in 20 pixels
    cy = (pixels.sum(1) * np.arange(28)).sum() / pixels.sum()
    cx = (pixels.sum(0) * np.arange(28)).sum() / pixels.sum()
    assert abs(cy - 14) <= 1
    assert abs(cx - 14) <= 1
    assert pixels.mean() < 127  # light ink on a dark background, whatever was drawn
    expected = (torch.from_numpy(pixels).float() / 255 - 0.13) / 0.31
    torch.testing.assert_close(prep.x[0, 0], expected)
    assert any("inverted" in caption for caption, _ in prep.steps) == dark_on_light


def test_square_fit_and_imagenet_resizing():
    photo = Image.new("RGB", (300, 200), (10, 200, 30))
    target = _digits_target()
    square = Explorable("s", "s", target.model, 1, 28, "square", (0.5,), (0.5,), target.classes)
    assert preprocess(photo, square).shape == (1, 1, 28, 28)
    fit = Explorable("f", "f", classic_model(), 3, 100, "fit", (0,) * 3, (1,) * 3)
    assert preprocess(photo, fit).shape == (1, 3, 67, 100)
    net = Explorable("i", "i", classic_model(), 3, 224, "imagenet", (0,) * 3, (1,) * 3)
    prep = preprocess(photo, net)
    assert prep.shape == (1, 3, 224, 224)
    torch.testing.assert_close(prep.x[0, :, 0, 0], torch.tensor([10, 200, 30]) / 255.0)


def test_a_tiny_or_thin_image_is_enlarged_and_says_so():
    strip = Image.new("L", (4, 30), 200)
    strip.putpixel((1, 10), 0)
    prep = preprocess(strip, _digits_target())
    captions = [caption for caption, _ in prep.steps]
    enlarged = next(p for c, p in prep.steps if c.startswith("enlarged to 8×30"))
    assert enlarged.size == (8, 30)
    assert any("centred" in c for c in captions)  # the usual digit steps follow
    assert tuple(prep.x.shape) == (1, 1, 28, 28)
    assert preprocess(Image.new("RGB", (1, 1)), _digits_target()).x.shape == (1, 1, 28, 28)


def test_bad_networks_are_refused():
    huge = torch.nn.Linear(MAX_PARAMS, 1, bias=True)
    with pytest.raises(ValueError, match="at most"):
        Explorable("h", "h", huge.eval(), 1, 28, "square", (0,), (1,), ("a", "b"))


def test_layer_views_match_the_layers_run_by_hand():
    target = _digits_target()
    x = preprocess(_drawing(), target).x
    views = layer_views(target.model, x)
    assert [v.name for v in views] == ["0", "1", "2", "3", "4", "5", "6"]
    with torch.no_grad():
        for view in views:
            out = target.model[: int(view.name) + 1](x)[0]
            torch.testing.assert_close(view.maps, out)
            assert view.mean == pytest.approx(float(out.mean()), rel=1e-5, abs=1e-6)
            assert view.zero_share == pytest.approx(float((out == 0).float().mean()))
            assert view.top_channels[0] == int(out.mean(dim=(1, 2)).argmax())
    relu = views[2]
    assert relu.minimum == 0
    assert relu.zero_share > 0


def test_the_kernel_behind_a_channel():
    target = _digits_target()
    model = target.model
    name, weights = producing_kernel(model, "0", 5)
    assert name == "0"
    torch.testing.assert_close(weights, model[0].weight[5].detach())
    # Batch norm and ReLU act per channel: channel 5 there still comes from conv 0's kernel 5.
    assert producing_kernel(model, "2", 5)[0] == "0"
    assert producing_kernel(model, "6", 7)[0] == "3"


def test_tiles_hold_every_channel_in_one_colour_scale():
    maps = torch.stack([torch.full((5, 5), float(i)) for i in range(10)])  # channel i is all i
    sheet, scale = tile_maps(maps)
    assert scale.vmin == 0
    assert scale.vmax == 9
    assert not scale.diverging
    assert sheet.ndim == 3
    assert sheet.shape[2] == 3
    assert layer_scale(maps - 3).diverging  # signed maps: a scale symmetric around 0
    assert layer_scale(maps - 3).vmax == 6


def test_softmax_temperature_is_torch_softmax_of_scaled_scores():
    scores = torch.tensor([2.0, -1.0, 0.5])
    for t in (0.1, 1.0, 5.0):
        torch.testing.assert_close(softmax(scores, t), torch.softmax(scores / t, 0))
    with pytest.raises(ValueError, match="above 0"):
        softmax(scores, 0)


def test_exports_and_overlay():
    maps = torch.randn(3, 4, 6)
    data = np.load(io.BytesIO(maps_npz("conv1", maps)))
    np.testing.assert_array_equal(data["maps"], maps.numpy())
    assert str(data["layer"]) == "conv1"
    image = Image.new("RGB", (20, 10), (255, 0, 0))
    heat = torch.zeros(10, 20)
    np.testing.assert_array_equal(overlay(image, heat, 0.0), np.asarray(image))
    assert overlay(image, heat + 1, 1.0).shape == (10, 20, 3)


def test_the_classic_bank_ignores_flat_grey_and_finds_orientation():
    model = classic_model()
    labels = classic_labels()
    assert len(labels) == len(classic_bank()) == 28
    grey = torch.full((1, 3, 64, 64), 0.4)
    with torch.no_grad():
        out = model[0](grey)[0, :, 16:48, 16:48]  # away from the zero-padded border
    assert out.abs().max() < 1e-4  # zero-mean Gabors and balanced opponent filters
    # A grating varying along x (vertical stripes) excites the 0° filters most.
    x = torch.arange(64.0)
    stripes = (0.5 + 0.5 * torch.cos(2 * torch.pi * x / 6)).expand(1, 3, 64, 64)
    with torch.no_grad():
        energy = model[0](stripes)[0, :24].pow(2).mean(dim=(1, 2))
    best = labels[int(energy.argmax())]
    assert best.startswith(f"Gabor {ORIENTATIONS[0]}°")


def test_the_colour_opponent_filters_see_colour():
    model, labels = classic_model(), classic_labels()
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0, 12:20, 12:20] = 1  # a red square on black
    with torch.no_grad():
        centre = model[0](red)[0, :, 16, 16]
    assert centre[labels.index("colour red centre, green surround")] > 0
    assert centre[labels.index("colour green centre, red surround")] < 0


def test_probability_bars_are_as_long_as_their_probability():
    from cnnlab.explorer import bars_png

    picture = np.asarray(Image.open(io.BytesIO(bars_png(["a", "b"], [0.75, 0.25], "t"))))
    blue = np.all(picture == (0, 99, 204), axis=2)  # the bars' colour
    rows = [int(blue[26 + 22 * i : 44 + 22 * i].any(axis=0).sum()) for i in range(2)]
    assert rows[0] == pytest.approx(0.75 * 320, abs=2)
    assert rows[1] == pytest.approx(0.25 * 320, abs=2)

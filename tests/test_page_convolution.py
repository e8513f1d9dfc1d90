"""AppTest of the convolution page: drive the widgets, check shapes and values against torch."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pagetest import app_test
from PIL import Image

from cnnlab.conv import busiest_patch
from cnnlab.images import sample_image
from cnnlab.kernels import preset
from ui.convolution import custom_editor_key

PAGE = "pages/convolution.py"


@pytest.fixture
def at():
    test = app_test(PAGE, timeout=120).run()
    assert not test.exception, [e.value for e in test.exception]
    return test


def _gray_sample() -> torch.Tensor:
    gray = np.asarray(sample_image("astronaut").convert("L"), dtype=np.float64)
    return torch.from_numpy(gray)[None, None]


def _markdown(at) -> str:
    """The page's text: markdown and image captions (the input's shape is a caption)."""
    captions = [text for image in at.image for text in image.captions]
    return "\n".join([m.value for m in at.markdown] + captions)


def _crop_origin(at) -> tuple[int, int]:
    """Top row and left column of the step-by-step crop, as its widgets show them."""
    return int(at.number_input(key="conv.step.top").value), int(
        at.number_input(key="conv.step.left").value
    )


def _show(at, view: str):
    """Open one of the lab's tabs (they run only when open) and rerun."""
    at.session_state["conv.view"] = view
    return at.run()


def _ranges(at) -> list[tuple[float, float]]:
    found = []
    captions = [text for image in at.image for text in image.captions]
    for caption in captions:
        match = re.search(r"values (\S+) … (\S+) ", caption)
        if match:
            found.append(tuple(float(v.replace("−", "-")) for v in match.groups()))
    return found


def _expect_range(at, out: torch.Tensor) -> None:
    (lo, hi), *_ = _ranges(at)
    assert lo == pytest.approx(out.min().item(), rel=1e-4, abs=1e-9)
    assert hi == pytest.approx(out.max().item(), rel=1e-4, abs=1e-9)


def _kernel(name: str) -> torch.Tensor:
    return torch.from_numpy(preset(name).weights)[None, None]


def test_default_is_sobel_x_on_the_astronaut_with_same_padding(at) -> None:
    assert "Output 1 × 512 × 512" in _markdown(at)
    _expect_range(at, F.conv2d(_gray_sample(), _kernel("Sobel x"), padding=1))
    assert not at.code, "the step-by-step tab runs only when it is open"
    _show(at, "Step by step")
    assert at.code, "the step-by-step sum is written out"
    assert not _ranges(at), "the feature-map tab is closed: its images are not sent"
    assert not at.error


def test_the_maths_tab_counts_parameters_with_this_images_numbers(at) -> None:
    assert not any("Locally connected" in m.value for m in at.markdown)
    _show(at, "The maths")
    (maths,) = [m.value for m in at.markdown if "Locally connected" in m.value]
    # 512×512 gray in, 512×512 out, 3×3 kernel: a dense layer needs 512⁴ weights (+ biases).
    assert f"| {512**4 + 512**2:,} |" in maths
    assert "| 10 |" in maths  # the convolution: 9 weights and a bias
    assert "= **512**" in maths


def test_stride_and_valid_padding_change_the_shape(at) -> None:
    at.selectbox(key="conv.padding").set_value("valid").run()
    assert "Output 1 × 510 × 510" in _markdown(at)
    at.slider(key="conv.stride").set_value(3).run()
    assert "Output 1 × 170 × 170" in _markdown(at)
    _expect_range(at, F.conv2d(_gray_sample(), _kernel("Sobel x"), stride=3))


def test_numeric_reflect_padding_and_dilation(at) -> None:
    at.selectbox(key="conv.padding").set_value("number").run()
    at.number_input(key="conv.padding_cells").set_value(4)
    at.selectbox(key="conv.padding_mode").set_value("reflect")
    at.slider(key="conv.dilation").set_value(2).run()
    # 512 + 8 − 2·2 = 516
    assert "Output 1 × 516 × 516" in _markdown(at)
    layer = torch.nn.Conv2d(1, 1, 3, padding=4, dilation=2, padding_mode="reflect", bias=False)
    layer = layer.double()
    with torch.no_grad():
        layer.weight.copy_(_kernel("Sobel x"))
        _expect_range(at, layer(_gray_sample()))


def test_same_padding_with_stride_shows_an_error_and_keeps_the_controls(at) -> None:
    at.slider(key="conv.stride").set_value(2).run()
    assert not at.exception
    assert any("stride 1" in e.value for e in at.error)
    assert at.selectbox(key="conv.kernel").value == "Sobel x"
    assert at.slider(key="conv.stride").value == 2


def test_choosing_a_blur_kernel_shows_its_output(at) -> None:
    at.selectbox(key="conv.kernel").set_value("Gaussian blur").run()
    at.select_slider(key="conv.kernel_size").set_value(5).run()
    out = F.conv2d(_gray_sample(), torch.from_numpy(preset("Gaussian blur", 5).weights)[None, None],
                   padding=2)  # fmt: skip
    _expect_range(at, out)
    captions = [text for image in at.image for text in image.captions]
    assert any("black = lowest" in c for c in captions), "non-negative: no diverging scale"


def test_flip_negates_sobel_and_the_sum_uses_the_rotated_kernel(at) -> None:
    at.radio(key="conv.flip").set_value(True).run()
    out = F.conv2d(_gray_sample(), _kernel("Sobel x").flip(-1, -2), padding=1)
    _expect_range(at, out)
    assert out.min() == -F.conv2d(_gray_sample(), _kernel("Sobel x"), padding=1).max()
    _show(at, "Step by step")
    assert any("rotated by 180°" in h.value for h in at.html)


def test_custom_kernel_edit_is_applied(at) -> None:
    at.selectbox(key="conv.kernel").set_value("Custom…").run()
    key = custom_editor_key("Sobel x", 3, 3)
    at.session_state[key] = {
        "edited_rows": {1: {"3": 7.0}},  # columns are named 1, 2, 3
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    weights = preset("Sobel x").weights.copy()
    weights[1, 2] = 7.0
    _expect_range(at, F.conv2d(_gray_sample(), torch.from_numpy(weights)[None, None], padding=1))


def test_nan_in_a_custom_kernel_shows_an_error(at) -> None:
    at.selectbox(key="conv.kernel").set_value("Custom…").run()
    key = custom_editor_key("Sobel x", 3, 3)
    at.session_state[key] = {"edited_rows": {0: {"2": None}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    assert any("row 1, column 2" in e.value for e in at.error)
    assert at.slider(key="conv.stride").value == 1  # the rest of the page is still there


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_of_a_generated_image_and_its_step_by_step_sum(at) -> None:
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    at.radio(key="conv.image.source").set_value("Upload").run()
    at.file_uploader(key="conv.image.upload").set_value(("noise.png", _png(pixels), "image/png"))
    at.run()
    assert not at.exception
    assert "Input 1 × 20 × 30" in _markdown(at)
    assert "Output 1 × 20 × 30" in _markdown(at)
    gray = np.asarray(Image.fromarray(pixels).convert("L"), dtype=np.float64)
    x = torch.from_numpy(gray)[None, None]
    _expect_range(at, F.conv2d(x, _kernel("Sobel x"), padding=1))
    # The 7×7 crop starts on the image's most varied patch; window at (0, 0), zero padding.
    _show(at, "Step by step")
    top, left = _crop_origin(at)
    assert (top, left) == busiest_patch(gray[None], 7)
    crop = gray[top : top + 7, left : left + 7]
    expected = F.conv2d(torch.from_numpy(crop)[None, None], _kernel("Sobel x"), padding=1)
    total = expected[0, 0, 0, 0].item()
    line, pytorch = at.code[0].value.splitlines()
    assert line.startswith("(−1)·0 + 0·0 + 1·0 + (−2)·0 + ")
    assert line.endswith(f"= {total:g}".replace("-", "−"))
    assert pytorch == f"PyTorch's F.conv2d wrote {total:g} at output (0, 0).".replace("-", "−")


def test_window_position_moves_the_sum(at) -> None:
    _show(at, "Step by step")
    at.slider(key="conv.step.position").set_value(8).run()
    # 7×7 output: position 8 is row 1, column 1, whose window holds no padded cell.
    assert any("(window at output (1, 1))" in h.value for h in at.html)
    top, left = _crop_origin(at)
    crop = _gray_sample()[..., top : top + 7, left : left + 7]
    total = F.conv2d(crop, _kernel("Sobel x"), padding=1)[0, 0, 1, 1].item()
    pixels = crop[0, 0, :3, :3].flatten().tolist()
    weights = preset("Sobel x").weights.flatten().tolist()
    terms = " + ".join(
        f"({w:g})·{p:g}" if w < 0 else f"{w:g}·{p:g}" for w, p in zip(weights, pixels, strict=True)
    )
    assert at.code[0].value.splitlines()[0] == f"{terms} = {total:g}".replace("-", "−")


def test_depthwise_and_three_channel_filter_and_bank(at) -> None:
    at.selectbox(key="conv.layout").set_value("depthwise").run()
    assert "Output 3 × 512 × 512" in _markdown(at)
    rgb = np.asarray(sample_image("astronaut").convert("RGB"), dtype=np.float64)
    x = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]
    sobel = _kernel("Sobel x")
    _expect_range(at, F.conv2d(x, sobel.repeat(3, 1, 1, 1), padding=1, groups=3)[:, :1])

    _show(at, "Step by step")
    at.selectbox(key="conv.step.map").set_value(2).run()
    assert any("Blue channel of the crop, padded" in h.value for h in at.html)

    _show(at, "Feature map")
    at.selectbox(key="conv.layout").set_value("multichannel").run()
    assert "Output 1 × 512 × 512" in _markdown(at)
    weight = torch.cat([sobel * 1.0, sobel * 0.0, sobel * -1.0], dim=1)
    _expect_range(at, F.conv2d(x, weight, padding=1))
    _show(at, "Step by step")
    lines = at.code[0].value.splitlines()
    labels = [line.split(":")[0] for line in lines[:4]]
    assert labels == ["Red", "Green", "Blue", "Channels summed"]

    _show(at, "Feature map")
    at.selectbox(key="conv.layout").set_value("bank").run()
    assert "Output 4 × 512 × 512" in _markdown(at)
    assert len(_ranges(at)) == 4


def test_bias_and_relu_are_applied_and_written_out(at) -> None:
    at.number_input(key="conv.bias").set_value(-20.0)
    at.toggle(key="conv.relu").set_value(True).run()
    out = F.relu(F.conv2d(_gray_sample(), _kernel("Sobel x"), padding=1) - 20.0)
    _expect_range(at, out)
    lines = _show(at, "Step by step").code[0].value.splitlines()
    assert lines[1].startswith("Plus bias: ")
    assert lines[2].startswith("ReLU: max(0, ")


def test_custom_kernel_can_be_resized(at) -> None:
    at.selectbox(key="conv.kernel").set_value("Custom…").run()
    at.number_input(key="conv.custom.rows").set_value(1)
    at.number_input(key="conv.custom.cols").set_value(3).run()
    assert "Output 1 × 512 × 512" in _markdown(at)
    # Sobel x cropped to its middle row: [-2, 0, 2].
    weights = torch.tensor([[[[-2.0, 0.0, 2.0]]]], dtype=torch.float64)
    _expect_range(at, F.conv2d(_gray_sample(), weights, padding=(0, 1)))
    assert _show(at, "Step by step").code[0].value.splitlines()[0].count("·") == 3


def test_cache_keys_tell_apart_images_and_kernels_differing_in_one_value() -> None:
    from cnnlab.images import image_digest
    from ui.convolution import cache_key
    from ui.image_source import ImageSource

    pixels = np.zeros((4, 4), dtype=np.uint8)
    other = pixels.copy()
    other[3, 3] = 1
    sources = [
        ImageSource(Image.fromarray(a), "x", image_digest(Image.fromarray(a)), None)
        for a in (pixels, other, pixels.reshape(2, 8))
    ]
    keys = {cache_key(s, np.ones((3, 3))) for s in sources}
    assert len(keys) == 3  # one pixel, or the same bytes in another shape, changes the key
    k = np.ones((3, 3))
    k2 = k.copy()
    k2[1, 1] = 1 + 1e-15
    assert cache_key(sources[0], k) != cache_key(sources[0], k2)


def test_colour_bar_is_drawn_below_the_map_from_vmin_to_vmax() -> None:
    from cnnlab.viz import ColourScale, scale_rgb
    from ui.convolution import with_colour_bar

    scale = ColourScale(-10.0, 10.0, True)
    rgb = scale_rgb(np.zeros((48, 64)), scale, gray=True)
    out = with_colour_bar(rgb, scale)
    assert out.shape[1] == 64
    assert out.shape[0] > 48
    assert (out[:48] == rgb).all(), "the map itself is unchanged"
    bar_row = out[-4].astype(int)
    ramp = scale_rgb(np.linspace(-10.0, 10.0, 64)[None, :], scale, gray=True)[0]
    assert (bar_row[1:-1] == ramp[1:-1]).all(), "left to right: vmin to vmax"
    assert bar_row[1, 2] > bar_row[1, 0], "the left end is blue (negative)"
    assert bar_row[-2, 0] > bar_row[-2, 2], "the right end is red (positive)"


def test_summary_markdown_escape_keeps_file_names_literal() -> None:
    from ui.convolution import markdown_escape

    assert markdown_escape("a*b_[c](d).png") == r"a\*b\_\[c\]\(d\)\.png"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1e308", "row 2, column 3"),  # refused in words (a number column made it 1308)
        ("nan", "row 2, column 3) is empty or not a number"),
        ("lots", "row 2, column 3) is 'lots', not a number"),
        ("-2.5e-1", None),  # taken as typed: −0.25
    ],
)
def test_custom_kernel_cells_are_taken_as_typed_or_refused(at, typed: str, message) -> None:
    at.selectbox(key="conv.kernel").set_value("Custom…").run()
    editor = next(df for df in at.dataframe if df.proto.editing_mode)
    configs = json.loads(editor.proto.columns)
    assert {configs[c]["type_config"]["type"] for c in ("1", "2", "3")} == {"text"}
    key = custom_editor_key("Sobel x", 3, 3)
    at.session_state[key] = {"edited_rows": {1: {"3": typed}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    if message is None:
        assert not at.error
        weights = preset("Sobel x").weights.copy()
        weights[1, 2] = -0.25
        _expect_range(
            at, F.conv2d(_gray_sample(), torch.from_numpy(weights)[None, None], padding=1)
        )
    else:
        assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_true_convolution_rotates_the_kernel_shown_at_the_top(at) -> None:
    sobel = preset("Sobel x").weights
    at.radio(key="conv.flip").set_value(True).run()
    assert not at.exception
    top = next(h.value for h in at.html if "kmat" in h.value)
    assert "rotated by 180°" in top
    # The matrix shown is the rotated Sobel x: its first row reads 1, 0, −1 (the kernel's is
    # −1, 0, 1).
    first_row = re.findall(r"<td>([^<]*)</td>", top)[:3]
    assert [float(v.replace("−", "-")) for v in first_row] == list(np.rot90(sobel, 2)[0])
    at.radio(key="conv.flip").set_value(False).run()
    top = next(h.value for h in at.html if "kmat" in h.value)
    assert "rotated" not in top


def test_a_crop_larger_than_a_thin_image_says_why_it_shrank(at) -> None:
    at.radio(key="conv.image.source").set_value("Upload").run()
    strip = np.full((400, 3), 128, np.uint8)  # 3 pixels wide: a 7×7 crop cannot fit
    at.file_uploader(key="conv.image.upload").set_value(("strip.png", _png(strip), "image/png"))
    at.run()
    _show(at, "Step by step")
    assert not at.exception
    assert any("crop is 3×3 instead of 7×7" in i.value for i in at.info), [i.value for i in at.info]


@pytest.mark.parametrize(
    ("shape", "width"),
    [((512, 512), "stretch"), ((400, 300), "stretch"), ((300, 100), 160), ((1024, 1), 120)],
)
def test_tall_strips_are_drawn_a_screen_tall_not_column_wide(shape, width) -> None:
    from ui.convolution import display_width

    assert display_width(*shape) == width

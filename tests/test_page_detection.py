"""AppTest of the detection lab: scene, heat map, NMS stepping and mAP agree with the engine."""

from __future__ import annotations

import pytest
from pagetest import app_test
from streamlit.testing.v1 import AppTest

from cnnlab.detection import nms

PAGE = "pages/detection.py"


@pytest.fixture(scope="module")
def fresh() -> AppTest:
    """The page after its first run (trains the shared classifier once for this process)."""
    at = app_test(PAGE, timeout=300).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _markdown(at: AppTest, start: str) -> str:
    return next(m.value for m in at.markdown if m.value.startswith(start))


def test_defaults_show_every_section_and_the_engines_numbers(fresh: AppTest) -> None:
    from ui import detection as ui

    assert not fresh.error
    found, score = ui.detections(7, 5, 4, 0.6, 0.3, True)
    assert f"**{len(found.candidates)} candidate boxes**" in _markdown(fresh, "**")
    assert f"mAP@0.5 = {score:.3f}" in _markdown(fresh, "**mAP")
    # The NMS the page steps through is cnnlab.detection.nms on the same candidates.
    kept = nms(found.candidates, found.scores, 0.3).tolist()
    assert [s.kept for s in found.steps] == kept
    assert fresh.slider(key="det.step").max == len(kept)
    table = fresh.dataframe[-1].value
    assert len(table) == len(kept)
    assert list(table.columns) == ["x1", "y1", "x2", "y2", "label", "confidence"]
    clf = ui.window_classifier()
    assert clf.test_accuracy > 0.9  # the classifier the page slides is a real, trained one
    assert f"{clf.test_accuracy:.1%}" in fresh.caption[0].value


def test_a_higher_iou_threshold_keeps_more_boxes() -> None:
    at = app_test(PAGE, timeout=300).run()
    at.toggle(key="det.snap").set_value(False).run()
    before = at.slider(key="det.step").max
    at.slider(key="det.iou").set_value(0.9).run()
    assert not at.exception
    assert at.slider(key="det.step").max > before


def test_stepping_lists_what_each_kept_box_suppressed() -> None:
    from ui import detection as ui

    at = app_test(PAGE, timeout=300).run()
    found, _ = ui.detections(7, 5, 4, 0.6, 0.3, True)
    step = next(n for n, s in enumerate(found.steps, start=1) if s.suppressed)
    at.slider(key="det.step").set_value(step).run()
    table = at.dataframe[0].value
    suppressed = found.steps[step - 1].suppressed
    assert table["suppressed candidate"].tolist() == [j for j, _ in suppressed]
    assert table["IoU with the kept box"].tolist() == [round(iou, 3) for _, iou in suppressed]
    assert (table["IoU with the kept box"] > 0.3).all()


def test_an_impossible_score_says_what_to_do() -> None:
    at = app_test(PAGE, timeout=300).run()
    at.slider(key="det.min_score").set_value(0.99).run()
    at.slider(key="det.count").set_value(1).run()
    assert not at.exception
    from ui import detection as ui

    found, _ = ui.detections(7, 1, 4, 0.99, 0.3, True)
    if found.steps:
        assert at.slider(key="det.step").max == len(found.steps)
    else:
        assert "lower the minimum score" in at.warning[0].value


def test_box_labels_are_large_and_contrasted() -> None:
    """Each label is a chip in its box's colour with black or white text at WCAG AA (≥ 4.5:1)."""
    import numpy as np
    from PIL import Image

    from ui import detection as ui

    assert round(ui.contrast((0, 0, 0), (255, 255, 255)), 1) == 21.0
    assert round(ui.contrast((37, 99, 235), (255, 255, 255)), 2) == 5.17  # #2563eb on white
    for colour in (ui.TRUE, ui.KEPT, ui.CURRENT, ui.SUPPRESSED):
        assert ui.contrast(ui.label_ink(colour), colour) >= 4.5, colour
    picture = Image.new("RGB", (200, 200), (128, 128, 128))
    legend = ui.draw_marks(picture, [ui.Mark([10, 20, 40, 40], ui.TRUE, 2, "circle 0.97")])
    assert legend == []
    pixels = np.asarray(picture)[:80, 40:]  # the chip above the box's top-left corner
    ink = (pixels == ui.label_ink(ui.TRUE)).all(axis=-1)
    rows = np.flatnonzero(ink.any(axis=1))
    assert rows.size
    assert rows.max() - rows.min() >= 10, "text at least 10 px tall"


def _chips(picture) -> int:
    """How many separate label chips a picture of a black scene holds: lit regions at least
    5 px thick (box outlines are 1–3 px), counted by flood fill."""
    import numpy as np
    from PIL import Image, ImageFilter

    mask = Image.fromarray((np.asarray(picture).any(axis=-1) * 255).astype(np.uint8))
    opened = mask.filter(ImageFilter.MinFilter(5)).filter(ImageFilter.MaxFilter(5))
    todo = {tuple(p) for p in np.argwhere(np.asarray(opened) > 0)}
    regions = 0
    while todo:
        regions += 1
        stack = [todo.pop()]
        while stack:
            y, x = stack.pop()
            for near in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if near in todo:
                    todo.remove(near)
                    stack.append(near)
    return regions


def test_nearby_predictions_get_labels_that_do_not_overlap() -> None:
    """Regression: on a held-out canvas "half-disk 0.31" was drawn over "arrow 0.20"."""
    import numpy as np

    from ui import detection as ui

    image = np.zeros((112, 112), np.uint8)
    truth = np.array([[20, 20, 40, 40, 3], [24, 16, 46, 36, 5]], float)
    found = np.array([[20, 20, 40, 40, 0.31, 4], [24, 16, 46, 36, 0.20, 5]], float)
    drawn, legend = ui.single_shot_picture(image, truth, found)
    assert legend == []
    assert _chips(drawn) == 2  # two whole chips, neither covering the other


def test_labels_with_no_room_are_numbered_and_listed_beside_the_picture() -> None:
    import numpy as np

    from ui import detection as ui

    image = np.zeros((112, 112), np.uint8)
    # Twenty detections of one box: more labels than there is room for beside it.
    found = np.array([[40, 40, 60, 60, 0.9 - 0.02 * k, k % 10] for k in range(20)], float)
    truth = found[:1, [0, 1, 2, 3, 5]]
    _, legend = ui.single_shot_picture(image, truth, found)
    assert legend == ui.single_shot_picture(image, truth, found)[1]  # deterministic
    assert 0 < len(legend) < 20
    for line in legend:
        number, text = line.split(": ", 1)
        k = int(number) - 1  # numbered in order of confidence: the k-th detection's label
        assert text == f"{ui.SHAPE_CLASSES[k % 10]} {0.9 - 0.02 * k:.2f}"
    assert "Labels with no room on the picture — " + legend[0] in ui.legend_caption(
        "Four shapes.", legend
    )
    assert ui.legend_caption("Four shapes.", []) == "Four shapes."

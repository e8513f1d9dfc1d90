"""The detection lab: its shared classifier and scenes, and its pictures."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch
from PIL import Image, ImageDraw, ImageFont

from cnnlab.data import SHAPE_CLASSES, make_shapes, normalize
from cnnlab.detection import (
    Canvas,
    Detections,
    compose_canvas,
    detect,
    mean_average_precision,
    window_training_set,
)
from cnnlab.label_layout import place_labels
from cnnlab.models import PRESETS, build_model
from cnnlab.seeding import seeded
from cnnlab.single_shot import MIN_SCORE, NMS_IOU
from cnnlab.training import TrainConfig, train
from cnnlab.viz import sequential_rgb, upscale
from ui import picture
from ui.heap import FIGURES_PER_CACHE

CANVAS_SIDE = 112
SCALE = 4  # canvas pixels -> screen pixels
CLASSIFIER_SEED = 0
TRUE = (22, 163, 74)  # green: the true boxes
KEPT = (37, 99, 235)  # blue: kept by NMS
CURRENT = (234, 88, 12)  # orange: the box NMS keeps at this step
SUPPRESSED = (220, 38, 38)  # red: what that box suppresses
WAITING = (148, 163, 184)  # grey: candidates not yet looked at


@dataclass(frozen=True)
class WindowClassifier:
    """The sliding-window classifier every student shares, with how it was made."""

    model: torch.nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    test_accuracy: float
    train_seconds: float
    train_images: int


@st.cache_resource(show_spinner="Training the window classifier (once per server)…")
def window_classifier(seed: int = CLASSIFIER_SEED) -> WindowClassifier:
    """The fast preset trained on shapes + background, once per server (same for everyone)."""
    data = window_training_set(seed)
    started = time.perf_counter()
    with seeded(seed):  # initial weights from the seed, whatever other pages draw meanwhile
        model = build_model(PRESETS["fast"], data.input_shape, data.num_classes)
        # No label smoothing: the page reads the probabilities as confidences.
        result = train(model, data, TrainConfig(seed=seed, label_smoothing=0.0, threads=1))
    seconds = time.perf_counter() - started
    model = model.eval().to(memory_format=torch.contiguous_format)
    accuracy = result.test.accuracy if result.test else float("nan")
    return WindowClassifier(
        model, data.mean, data.std, data.classes, accuracy, seconds, len(data.train_y)
    )


@st.cache_resource
def _tiles() -> tuple[torch.Tensor, torch.Tensor]:
    # Shapes the classifier never saw in training (another seed), to compose scenes from.
    shapes = make_shapes(10, 400, seed=CLASSIFIER_SEED + 101)
    return shapes.test_x[:, 0], shapes.test_y


@st.cache_data(max_entries=64)
def scene(seed: int, count: int) -> Canvas:
    """A canvas of ``count`` shapes, the same for every student who picks this seed."""
    tiles, labels = _tiles()
    return compose_canvas(tiles, labels, CANVAS_SIDE, count, seed)


@st.cache_data(max_entries=256)
def detections(
    seed: int, count: int, stride: int, min_score: float, iou: float, snap: bool
) -> tuple[Detections, float]:
    """One detection pass on a scene and its mAP@0.5 (cached: the same for every student)."""
    clf, canvas = window_classifier(), scene(seed, count)
    normalized = normalize(canvas.image[None, None], clf.mean, clf.std)[0]
    found = detect(
        clf.model, canvas.image, normalized,
        stride=stride, min_score=min_score, iou_threshold=iou, snap=snap,
    )  # fmt: skip
    kept = found.kept
    score = mean_average_precision(
        found.candidates[kept], found.scores[kept], found.labels[kept], canvas.boxes, canvas.labels
    )
    return found, score


def _base(image: torch.Tensor) -> Image.Image:
    gray = upscale(image.numpy(), SCALE)
    return Image.fromarray(np.stack([gray] * 3, axis=-1))


LABEL_FONT = ImageFont.load_default(size=16)  # Pillow's bundled font: no system fonts needed


def _luminance(rgb: tuple) -> float:
    """WCAG relative luminance of an sRGB colour."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: tuple, b: tuple) -> float:
    """WCAG contrast ratio of two colours (1 to 21; body text needs 4.5)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def label_ink(background: tuple) -> tuple:
    """Black or white, whichever reads better on ``background``."""
    black, white = (0, 0, 0), (255, 255, 255)
    return max((black, white), key=lambda ink: contrast(ink, background))


CHIP_PAD = 3  # pixels of chip around the text
_, _TEXT_TOP, _, _TEXT_BOTTOM = LABEL_FONT.getbbox("Ag0.")  # one height for every chip
CHIP_GAP = 2  # pixels between two chips, so neighbours of one colour read as two


@dataclass(frozen=True)
class Mark:
    """One box to draw on a scene: its outline and, unless empty, its label."""

    box: Sequence[float]  # (x1, y1, x2, y2) in canvas pixels
    colour: tuple[int, int, int]
    width: int
    label: str = ""
    # The chip that stands in for a label with no room: a row id of a table beside the picture,
    # which lists the label already. Empty: a number, and the legend lists the label.
    tag: str = ""


def _chip(text: str) -> tuple[int, int]:
    left, _, right, _ = LABEL_FONT.getbbox(text)
    return right - left + 2 * CHIP_PAD, _TEXT_BOTTOM - _TEXT_TOP + 2 * CHIP_PAD


def draw_marks(picture: Image.Image, marks: Sequence[Mark]) -> list[str]:
    """Draw ``marks`` (the most important first) on ``picture``; returns the legend: the labels
    that found no room beside their box (cnnlab.label_layout), for the caller to show.

    Each label is a chip in its box's colour, black or white text on it: legible on any scene.
    No chip covers another; a label with no room is replaced by a number ("1: arrow 0.20" in
    the legend) or its tag, and a box with no room even for that is listed with its position.
    """
    draw = ImageDraw.Draw(picture)
    for mark in reversed(marks):  # the most important outline ends on top
        x1, y1, x2, y2 = (v * SCALE for v in mark.box)
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=mark.colour, width=mark.width)
    numbers = iter(range(1, len(marks) + 1))
    stand_ins = [(m.tag or str(next(numbers))) if m.label else "" for m in marks]
    # Unlabelled boxes take part too (no chips): labels avoid covering them where they can.
    layout = place_labels(
        [[v * SCALE for v in m.box] for m in marks],
        [
            [_chip(m.label), _chip(s)] if m.label else []
            for m, s in zip(marks, stand_ins, strict=True)
        ],
        picture.size,
        gap=CHIP_GAP,
    )
    legend = []
    for mark, stand_in, placed in zip(marks, stand_ins, layout, strict=True):
        if placed.rect is not None:
            text = mark.label if placed.choice == 0 else stand_in
            x1, y1, x2, y2 = placed.rect
            draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=mark.colour)
            left = LABEL_FONT.getbbox(text)[0]
            draw.text((x1 + CHIP_PAD - left, y1 + CHIP_PAD - _TEXT_TOP), text,
                      fill=label_ink(mark.colour), font=LABEL_FONT)  # fmt: skip
        if mark.label and placed.listed and not mark.tag:
            x1, y1, x2, y2 = (round(v) for v in mark.box)
            legend.append(
                f"{stand_in}: {mark.label}"
                if placed.rect is not None
                else f"{mark.label} (the box at x {x1}–{x2}, y {y1}–{y2}: no room to label it)"
            )
    return legend


def legend_caption(caption: str, legend: Sequence[str]) -> str:
    """``caption`` followed by the labels that had no room on the picture, if any."""
    return (
        f"{caption} Labels with no room on the picture — {'; '.join(legend)}."
        if legend
        else caption
    )


def truth_picture(canvas: Canvas) -> tuple[Image.Image, list[str]]:
    """The scene with its true boxes and class names, and its legend (:func:`draw_marks`)."""
    picture = _base(canvas.image)
    marks = [
        Mark(box, TRUE, 2, SHAPE_CLASSES[label])
        for box, label in zip(canvas.boxes.tolist(), canvas.labels.tolist(), strict=True)
    ]
    return picture, draw_marks(picture, marks)


def heat_picture(canvas: Canvas, found: Detections, class_index: int | None) -> Image.Image:
    """P(object) — or P(one class) — of every window, placed at the window's centre."""
    probs = found.scan.probs
    values = 1 - probs[..., -1] if class_index is None else probs[..., class_index]
    rgb = sequential_rgb(values.numpy(), vmax=1.0)
    stride, window = found.scan.stride, found.scan.window
    heat = np.zeros((CANVAS_SIDE, CANVAS_SIDE, 3), np.uint8)
    rows, cols = values.shape
    # Each window's value paints the stride×stride cell around its centre.
    offset = (window - stride) // 2
    heat[offset : offset + rows * stride, offset : offset + cols * stride] = upscale(rgb, stride)
    blended = 0.55 * upscale(heat, SCALE) + 0.45 * np.asarray(_base(canvas.image))
    return Image.fromarray(blended.astype(np.uint8))


def _prediction(found: Detections, i: int) -> str:
    return f"{SHAPE_CLASSES[int(found.labels[i])]} {float(found.scores[i]):.2f}"


def nms_picture(canvas: Canvas, found: Detections, step: int) -> tuple[Image.Image, list[str]]:
    """NMS after ``step`` steps: kept boxes, the box kept at this step and what it suppresses;
    and the picture's legend (:func:`draw_marks`)."""
    boxes = found.candidates.tolist()
    done = found.steps[: step - 1]
    gone = {j for s in done for j, _ in s.suppressed}
    kept_before = [s.kept for s in done]
    current = found.steps[step - 1] if step else None
    now_gone = dict(current.suppressed) if current else {}
    marks = (
        [Mark(boxes[current.kept], CURRENT, 3, _prediction(found, current.kept))] if current else []
    )
    marks += [Mark(boxes[i], KEPT, 2, SHAPE_CLASSES[int(found.labels[i])]) for i in kept_before]
    # The table under the picture lists every suppressed candidate: its number stands in.
    marks += [
        Mark(boxes[j], SUPPRESSED, 1, f"IoU {iou:.2f}", f"#{j}") for j, iou in now_gone.items()
    ]
    seen = gone | set(kept_before) | set(now_gone) | ({current.kept} if current else set())
    marks += [Mark(box, WAITING, 1) for i, box in enumerate(boxes) if i not in seen]
    picture = _base(canvas.image)
    return picture, draw_marks(picture, marks)


def result_picture(canvas: Canvas, found: Detections) -> tuple[Image.Image, list[str]]:
    """The detector's final answer over the true boxes, and its legend (:func:`draw_marks`)."""
    marks = [Mark(found.candidates[i].tolist(), KEPT, 2, _prediction(found, i))
             for i in found.kept.tolist()]  # fmt: skip
    marks += [
        Mark(box, TRUE, 2, SHAPE_CLASSES[label])
        for box, label in zip(canvas.boxes.tolist(), canvas.labels.tolist(), strict=True)
    ]
    picture = _base(canvas.image)
    return picture, draw_marks(picture, marks)


def output_table(found: Detections) -> pd.DataFrame:
    """The detector's output in the usual format: one row per box, best score first."""
    kept = found.kept
    boxes = found.candidates[kept].round().long().tolist()
    return pd.DataFrame(
        {
            "x1": [b[0] for b in boxes],
            "y1": [b[1] for b in boxes],
            "x2": [b[2] for b in boxes],
            "y2": [b[3] for b in boxes],
            "label": [SHAPE_CLASSES[int(c)] for c in found.labels[kept]],
            "confidence": [round(float(s), 3) for s in found.scores[kept]],
        }
    )


def step_table(found: Detections, step: int) -> pd.DataFrame:
    """What the box kept at ``step`` suppressed, with each IoU."""
    current = found.steps[step - 1]
    return pd.DataFrame(
        {
            "suppressed candidate": [j for j, _ in current.suppressed],
            "class": [SHAPE_CLASSES[int(found.labels[j])] for j, _ in current.suppressed],
            "score": [round(float(found.scores[j]), 3) for j, _ in current.suppressed],
            "IoU with the kept box": [round(iou, 3) for _, iou in current.suppressed],
        }
    )


def single_shot_picture(
    image: np.ndarray, truth: np.ndarray, predictions: np.ndarray
) -> tuple[Image.Image, list[str]]:
    """A held-out canvas with its true boxes (green) and the detector's boxes (blue, with label
    and confidence), and its legend (:func:`draw_marks`). ``truth`` rows: x1, y1, x2, y2,
    label; ``predictions``: … score, label, best first (the best gets the best label spot)."""
    marks = [Mark(box, KEPT, 2, f"{SHAPE_CLASSES[int(label)]} {score:.2f}")
             for *box, score, label in predictions.tolist()]  # fmt: skip
    marks += [Mark(box, TRUE, 2) for *box, _label in truth.tolist()]
    picture = _base(torch.from_numpy(image))
    return picture, draw_marks(picture, marks)


def single_shot_table(predictions: np.ndarray) -> pd.DataFrame:
    """One canvas's detections in the usual output format, best confidence first."""
    rows = predictions.tolist()
    return pd.DataFrame(
        {
            "x1": [round(r[0]) for r in rows],
            "y1": [round(r[1]) for r in rows],
            "x2": [round(r[2]) for r in rows],
            "y2": [round(r[3]) for r in rows],
            "label": [SHAPE_CLASSES[int(r[5])] for r in rows],
            "confidence": [round(r[4], 3) for r in rows],
        }
    )


def single_shot_result(store: Any, run: Any, owner: str | None) -> None:
    """The trained single-shot detector: mAP@0.5 on held-out canvases and its boxes on four."""
    from cnnlab.experiments import array

    final = run.final
    if "map50" not in final:
        return
    st.metric("mAP@0.5 on held-out canvases", f"{final['map50']:.3f}")
    st.caption(
        f"{final['held_out_canvases']} canvases composed of shapes the detector never saw in "
        f"training ({final['train_canvases']} training canvases, {final['epochs']} epochs); "
        f"confidence threshold {MIN_SCORE}, then NMS at IoU {NMS_IOU}."
    )
    images = array(store, run, owner, "detector.images")
    truth = array(store, run, owner, "detector.truth")
    found = array(store, run, owner, "detector.predictions")
    if images is None or truth is None or found is None:
        return
    cols = st.columns(2) * ((len(images) + 1) // 2)  # two a row: the labels stay readable
    for i, col in enumerate(cols[: len(images)]):
        mine, theirs = truth[truth[:, 0] == i, 1:], found[found[:, 0] == i, 1:]
        drawn, legend = single_shot_picture(images[i], mine, theirs)
        col.image(
            drawn,
            alt=f"Held-out canvas {i + 1}: {len(mine)} true boxes in green, {len(theirs)} "
            "detections in blue",
            caption=legend_caption(f"held-out canvas {i + 1}: {len(theirs)} detections.", legend),
        )
    first = found[found[:, 0] == 0, 1:]
    st.markdown("What the detector outputs for the first canvas, after NMS:")
    st.dataframe(single_shot_table(first), hide_index=True)


# The four pictures, drawn and encoded once per settings and shared by every session (bytes):
# drawing and JPEG-encoding them took most of a rerun that changed none of them. Each is the
# file st.image made of the drawn picture (ui.picture.array_bytes), shown through ui.picture,
# with the legend of the labels that did not fit on it (draw_marks).
Drawn = tuple[bytes, tuple[str, ...]]


def _encoded(drawn: tuple[Image.Image, list[str]]) -> Drawn:
    return picture.array_bytes(np.asarray(drawn[0])), tuple(drawn[1])


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def truth_file(seed: int, count: int) -> Drawn:
    """:func:`truth_picture` of the scene, encoded, and its legend."""
    return _encoded(truth_picture(scene(seed, count)))


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def heat_file(settings: tuple[int, int, int, float, float, bool], class_index: int | None) -> bytes:
    """:func:`heat_picture` for the detection ``settings`` (seed, count, stride, minimum
    score, IoU threshold, snap), encoded."""
    found, _ = detections(*settings)
    return picture.array_bytes(np.asarray(heat_picture(scene(*settings[:2]), found, class_index)))


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def nms_file(settings: tuple[int, int, int, float, float, bool], step: int) -> Drawn:
    """:func:`nms_picture` after ``step`` steps, encoded, and its legend."""
    found, _ = detections(*settings)
    return _encoded(nms_picture(scene(*settings[:2]), found, step))


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def result_file(settings: tuple[int, int, int, float, float, bool]) -> Drawn:
    """:func:`result_picture` for the detection ``settings``, encoded, and its legend."""
    found, _ = detections(*settings)
    return _encoded(result_picture(scene(*settings[:2]), found))

"""box_iou and nms against hand-computed cases and a brute-force reference (torchvision's rules)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab.detection import (
    BACKGROUND,
    average_precision,
    box_area,
    box_iou,
    compose_canvas,
    detect,
    mean_average_precision,
    nms,
    nms_steps,
    sliding_window,
    snap_to_ink,
    window_training_set,
)


def _iou_reference(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms_reference(boxes: list[list[float]], scores: list[float], t: float) -> list[int]:
    # The textbook loop: take the best remaining box, drop everything overlapping it by more than t.
    remaining = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        remaining = [j for j in remaining if _iou_reference(boxes[best], boxes[j]) <= t]
    return keep


def test_iou_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 4.0, 2.0], [0.0, 0.0, 2.0, 2.0]])
    # Overlap 1×1 of union 4 + 4 − 1 = 7; touching edges overlap nothing; identical boxes give 1.
    assert box_iou(a, b)[0].tolist() == pytest.approx([1 / 7, 0.0, 1.0])


def test_iou_shapes_and_empty_inputs() -> None:
    a, b = torch.rand(3, 2) * 5, torch.rand(5, 2) * 5
    boxes_a = torch.cat([a, a + 1], dim=1)
    boxes_b = torch.cat([b, b + 2], dim=1)
    assert box_iou(boxes_a, boxes_b).shape == (3, 5)
    assert box_iou(torch.zeros(0, 4), boxes_b).shape == (0, 5)
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_degenerate_boxes_overlap_nothing() -> None:
    point = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    line = torch.tensor([[0.0, 1.0, 3.0, 1.0]])
    box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    assert box_area(point).item() == 0
    assert box_iou(point, point).item() == 0  # not 0/0
    assert box_iou(line, box).item() == 0
    # A degenerate box never suppresses and is never suppressed.
    boxes = torch.cat([point, point, box])
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.0).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(2, 3),
        torch.tensor([[2.0, 0.0, 1.0, 1.0]]),
        torch.tensor([[0, 0, float("nan"), 1]]),
    ],
)
def test_bad_boxes_are_refused_with_a_sentence(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="must"):
        box_iou(bad, bad)


def test_nms_by_hand_suppresses_only_above_the_threshold() -> None:
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],
            [1.0, 1.0, 11.0, 11.0],
            [20.0, 20.0, 30.0, 30.0],
            [0.0, 0.0, 10.0, 5.0],
        ]
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    iou_01 = 81 / 119  # 9×9 overlap of two 10×10 boxes
    # Box 3 (0.95) overlaps box 0 by exactly 0.5: "greater than" keeps box 0 at threshold 0.5.
    assert box_iou(boxes[3:4], boxes[0:1]).item() == pytest.approx(0.5)
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.49).tolist() == [3, 1, 2]
    steps = nms_steps(boxes, scores, 0.5)
    assert [s.kept for s in steps] == [3, 0, 2]
    assert steps[1].suppressed == ((1, pytest.approx(iou_01)),)


def test_ties_keep_the_earlier_box() -> None:
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0]])
    assert nms(boxes, torch.tensor([0.5, 0.5, 0.5]), 0.3).tolist() == [0]
    assert nms(boxes, torch.tensor([0.5, 0.7, 0.7]), 0.3).tolist() == [1]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_threshold_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        nms(torch.zeros(1, 4), torch.zeros(1), bad)


_coord = st.integers(0, 12).map(float)


@st.composite
def _boxes(draw: st.DrawFn) -> tuple[list[list[float]], list[float]]:
    n = draw(st.integers(0, 14))
    boxes = []
    for _ in range(n):
        x1, y1 = draw(_coord), draw(_coord)
        boxes.append([x1, y1, x1 + draw(st.integers(0, 6)), y1 + draw(st.integers(0, 6))])
    # Few distinct scores so ties happen often.
    scores = [draw(st.sampled_from([0.1, 0.5, 0.5, 0.9])) for _ in range(n)]
    return boxes, scores


@settings(max_examples=200, deadline=None)
@given(_boxes(), st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]))
def test_matches_brute_force(data: tuple[list[list[float]], list[float]], t: float) -> None:
    boxes, scores = data
    tensor = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    expected = [_iou_reference(a, b) for a in boxes for b in boxes]
    assert box_iou(tensor, tensor).flatten().tolist() == pytest.approx(expected, abs=1e-6)
    assert nms(tensor, torch.tensor(scores).reshape(-1), t).tolist() == _nms_reference(
        boxes, scores, t
    )


def test_average_precision_by_hand() -> None:
    truth = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    preds = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0], [21.0, 21.0, 30.0, 30.0]]
    )
    # Hits in score order: TP, FP, TP. Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; made
    # non-increasing: 1, 2/3, 2/3; area = 1/2·1 + 1/2·2/3.
    ap = average_precision(preds, torch.tensor([0.9, 0.8, 0.7]), truth)
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    # A second box on an already matched object is a false positive, not a second hit.
    dup = torch.cat([truth[:1], truth[:1]])
    assert average_precision(dup, torch.tensor([0.9, 0.8]), truth[:1]) == pytest.approx(1.0)
    assert average_precision(dup, torch.tensor([0.9, 0.8]), truth) == pytest.approx(0.5)
    # IoU 0.81 counts at 0.5 and not at 0.9.
    assert average_precision(preds[2:], torch.tensor([1.0]), truth[1:]) == 1.0
    assert average_precision(preds[2:], torch.tensor([1.0]), truth[1:], 0.9) == 0.0
    assert average_precision(torch.zeros(0, 4), torch.zeros(0), truth) == 0.0


def test_mean_average_precision_averages_classes_with_truth() -> None:
    truth = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    labels = torch.tensor([0, 1])
    # Class 0 found, class 1 labelled wrong (as 2, a class with no true box: ignored).
    preds = truth.clone()
    assert mean_average_precision(
        preds, torch.tensor([0.9, 0.9]), torch.tensor([0, 2]), truth, labels
    ) == pytest.approx(0.5)
    assert mean_average_precision(preds, torch.tensor([0.9, 0.9]), labels, truth, labels) == 1.0


def test_canvas_boxes_hold_each_object_and_do_not_overlap() -> None:
    tiles = torch.zeros(6, 8, 8, dtype=torch.uint8)
    for i in range(6):
        tiles[i, 2 : 3 + i // 2, 1:7] = 255  # ink rows 2..(2 + i // 2), columns 1..6
    canvas = compose_canvas(tiles, torch.arange(6), size=40, count=4, seed=3)
    assert canvas.image.shape == (40, 40)
    assert len(canvas.boxes) == len(canvas.labels) == 4
    assert box_iou(canvas.boxes, canvas.boxes).fill_diagonal_(0).max() == 0
    for box, label in zip(canvas.boxes.long().tolist(), canvas.labels.tolist(), strict=True):
        x1, y1, x2, y2 = box
        assert (x2 - x1, y2 - y1) == (6, 1 + label // 2)  # the tile's ink, exactly
        assert (canvas.image[y1:y2, x1:x2] == 255).all()
    assert int((canvas.image == 255).sum()) == sum(
        6 * (1 + lb // 2) for lb in canvas.labels.tolist()
    )
    again = compose_canvas(tiles, torch.arange(6), size=40, count=4, seed=3)
    assert torch.equal(again.image, canvas.image)


def test_sliding_window_equals_one_forward_per_crop() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(3, 4),
    ).eval()
    image = torch.randn(2, 13, 11)
    scan = sliding_window(model, image, window=5, stride=3)
    assert scan.probs.shape == (3, 3, 4)  # ⌊(13 − 5)/3⌋ + 1 rows, ⌊(11 − 5)/3⌋ + 1 columns
    for r in range(3):
        for c in range(3):
            crop = image[None, :, 3 * r : 3 * r + 5, 3 * c : 3 * c + 5]
            torch.testing.assert_close(scan.probs[r, c], model(crop).softmax(-1)[0])
    boxes, scores, labels = scan.boxes(0.0)
    assert len(boxes) == 9
    assert boxes[4].tolist() == [3.0, 3.0, 8.0, 8.0]  # row 1, column 1
    torch.testing.assert_close(scores[4], scan.probs[1, 1].max())
    assert labels[4] == scan.probs[1, 1].argmax()
    assert len(scan.boxes(1.01)[0]) == 0


def test_background_examples_overlap_no_shape() -> None:
    data = window_training_set(seed=2, n_objects=120, n_background=60)
    assert data.classes[-1] == BACKGROUND
    assert data.num_classes == 11
    background = data.train_y == 10
    assert int(background.sum()) == 60
    assert data.input_shape == (1, 28, 28)
    # Shapes fill their tiles; background crops are mostly dark (they miss every object box).
    mean_ink = data.train_x.float().mean(dim=(1, 2, 3))
    assert mean_ink[background].mean() < mean_ink[~background].mean()


def test_snap_to_ink_shrinks_to_the_bright_pixels() -> None:
    image = torch.zeros(20, 20, dtype=torch.uint8)
    image[5:9, 6:12] = 200
    boxes = torch.tensor([[2.0, 2.0, 16.0, 16.0], [14.0, 14.0, 20.0, 20.0]])
    snapped = snap_to_ink(boxes, image)
    assert snapped[0].tolist() == [6.0, 5.0, 12.0, 9.0]
    assert snapped[1].tolist() == boxes[1].tolist()  # no ink inside: left alone


def test_detect_finds_a_shape_the_classifier_was_built_to_see() -> None:
    # A stand-in classifier that calls a window "object 0" exactly when its centre is bright,
    # so the expected detections are known without training anything.
    class CentreBright(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            centre = x[:, 0, 12:16, 12:16].mean(dim=(1, 2))
            return torch.stack([20 * centre, torch.zeros_like(centre), 10 - 20 * centre], dim=1)

    image = torch.zeros(60, 60, dtype=torch.uint8)
    image[20:34, 24:38] = 255
    found = detect(
        CentreBright(), image, image[None].float() / 255, stride=2, min_score=0.9,
        iou_threshold=0.3, snap=True,
    )  # fmt: skip
    assert found.scan.probs.shape == (17, 17, 3)
    assert len(found.candidates) > 1  # several windows see the square...
    kept = found.kept
    assert len(kept) == 1  # ...and NMS keeps one of them
    assert found.candidates[kept[0]].tolist() == [24.0, 20.0, 38.0, 34.0]  # snapped to the ink
    assert found.labels[kept[0]] == 0
    assert sum(len(s.suppressed) for s in found.steps) == len(found.candidates) - 1

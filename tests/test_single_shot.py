"""The single-shot detector's engine: target assignment, decode(encode(boxes)), its loss against
torch's functional losses, and mAP over a set of canvases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.detection import mean_average_precision
from cnnlab.single_shot import (
    BOX,
    COORD_WEIGHT,
    GRID,
    SIDE,
    DetectorSettings,
    activate,
    build_detector,
    canvases,
    decode,
    detection_loss,
    encode,
    predict,
    set_map,
    train_detector,
)

# Small convolutions run steadiest on one thread on a shared machine (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_box_is_assigned_to_the_cell_holding_its_centre():
    boxes = torch.tensor([[20.0, 40.0, 44.0, 60.0]])  # centre (32, 50): column 2, row 3
    target = encode(boxes, torch.tensor([4]), num_classes=10)
    assert target.shape == (GRID, GRID, BOX + 10)
    assert target[..., 0].nonzero().tolist() == [[3, 2]]
    cell = target[3, 2]
    assert cell[:BOX].tolist() == pytest.approx([1.0, 0.0, 50 / 16 - 3, 24 / SIDE, 20 / SIDE])
    assert int(cell[BOX:].argmax()) == 4
    assert float(cell[BOX:].sum()) == 1.0
    assert float(target.sum()) == pytest.approx(float(cell.sum()))  # every other cell is empty


def test_two_centres_in_one_cell_go_to_the_larger_box():
    boxes = torch.tensor(
        [[0.0, 0.0, 30.0, 30.0], [10.0, 10.0, 18.0, 18.0]]
    )  # both centres in (0, 0)
    target = encode(boxes, torch.tensor([1, 2]), num_classes=3)
    assert int(target[0, 0, BOX:].argmax()) == 1
    assert target[0, 0, 3].item() == pytest.approx(30 / SIDE)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(*(st.integers(0, 6),) * 2, *(st.integers(4, 40),) * 2, st.integers(0, 9)),
        min_size=1,
        max_size=8,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_decode_of_encode_gives_back_the_boxes(objects):
    # One box per cell, centred somewhere inside it, of any size.
    boxes, labels = [], []
    for col, row, w, h, label in objects:
        cx, cy = col * 16 + 3 + (w % 10), row * 16 + 5 + (h % 9)
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        labels.append(label)
    boxes_t, labels_t = torch.tensor(boxes), torch.tensor(labels)
    inside = (
        (boxes_t[:, 0] >= 0)
        & (boxes_t[:, 1] >= 0)
        & (boxes_t[:, 2] <= SIDE)
        & (boxes_t[:, 3] <= SIDE)
    )
    boxes_t, labels_t = boxes_t[inside], labels_t[inside]
    if not len(boxes_t):
        return
    got_boxes, scores, got_labels = decode(encode(boxes_t, labels_t, 10), min_score=0.5)
    assert scores.tolist() == [1.0] * len(boxes_t)
    key = lambda b, lab: (round(b[0], 3), round(b[1], 3), round(b[2], 3), round(b[3], 3), lab)  # noqa: E731
    want = sorted(key(b, lab) for b, lab in zip(boxes_t.tolist(), labels_t.tolist(), strict=True))
    got = sorted(
        key(b, lab) for b, lab in zip(got_boxes.tolist(), got_labels.tolist(), strict=True)
    )
    assert got == want


def test_decode_scores_are_objectness_times_class_probability():
    grid = torch.zeros(GRID, GRID, BOX + 3)
    grid[1, 1] = torch.tensor([0.8, 0.5, 0.5, 0.1, 0.1, 0.2, 0.5, 0.3])
    grid[5, 2] = torch.tensor([0.1, 0.5, 0.5, 0.1, 0.1, 0.9, 0.05, 0.05])  # 0.09: below 0.1
    boxes, scores, labels = decode(grid, min_score=0.1)
    assert scores.tolist() == pytest.approx([0.4])
    assert labels.tolist() == [1]
    assert boxes[0].tolist() == pytest.approx([24 - 5.6, 24 - 5.6, 24 + 5.6, 24 + 5.6])


def test_the_loss_is_yolos_sum_of_torchs_functional_losses():
    gen = torch.Generator().manual_seed(0)
    raw = torch.randn(2, GRID, GRID, BOX + 4, generator=gen)
    targets = torch.stack(
        [
            encode(torch.tensor([[10.0, 12.0, 30.0, 40.0]]), torch.tensor([2]), 4),
            encode(
                torch.tensor([[60.0, 60.0, 90.0, 80.0], [5.0, 80.0, 25.0, 100.0]]),
                torch.tensor([0, 3]),
                4,
            ),
        ]
    )
    mask = targets[..., 0] > 0
    expected = (
        F.binary_cross_entropy_with_logits(raw[..., 0], targets[..., 0], reduction="sum")
        + COORD_WEIGHT
        * F.mse_loss(raw[mask][:, 1:3].sigmoid(), targets[mask][:, 1:3], reduction="sum")
        + COORD_WEIGHT
        * F.mse_loss(
            raw[mask][:, 3:5].sigmoid().sqrt(), targets[mask][:, 3:5].sqrt(), reduction="sum"
        )
        + F.cross_entropy(raw[mask][:, BOX:], targets[mask][:, BOX:].argmax(1), reduction="sum")
    ) / 2
    torch.testing.assert_close(detection_loss(raw, targets), expected)
    # A network that outputs the target (as logits) pays almost nothing; an empty scene only
    # the objectness of its cells.
    perfect = torch.logit(targets.clamp(1e-6, 1 - 1e-6))
    assert float(detection_loss(perfect, targets)) < 1e-3
    assert float(detection_loss(torch.full_like(raw, -20.0), torch.zeros_like(targets))) < 1e-6


def test_activate_gives_probabilities():
    probs = activate(torch.randn(3, GRID, GRID, BOX + 5))
    assert ((probs[..., :BOX] > 0) & (probs[..., :BOX] < 1)).all()
    torch.testing.assert_close(probs[..., BOX:].sum(-1), torch.ones(3, GRID, GRID))


def test_the_network_predicts_one_grid_per_canvas():
    model = build_detector(10)
    out = predict(model, torch.zeros(2, SIDE, SIDE, dtype=torch.uint8))
    assert out.shape == (2, GRID, GRID, BOX + 10)


def test_held_out_canvases_are_other_images_than_the_training_ones():
    train, held = canvases(8, held_out=False), canvases(8, held_out=True)
    assert all(len(b) >= 1 for b in train.boxes)
    assert not any(torch.equal(a, b) for a in train.images for b in held.images)
    again = canvases(8, held_out=True)
    assert torch.equal(again.images, held.images)  # deterministic


def test_set_map_matches_each_canvas_to_its_own_boxes():
    truth = (torch.tensor([[10.0, 10.0, 30.0, 30.0]]), torch.tensor([[10.0, 10.0, 30.0, 30.0]]))
    labels = (torch.tensor([1]), torch.tensor([1]))
    # Right on canvas 0, missing on canvas 1: half the boxes found, AP 0.5.
    found = [(truth[0], torch.tensor([0.9]), torch.tensor([1])),
             (torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))]  # fmt: skip
    assert set_map(found, truth, labels) == pytest.approx(0.5)
    # On one canvas set_map is mean_average_precision itself.
    one = set_map(found[:1], truth[:1], labels[:1])
    assert one == mean_average_precision(
        truth[0], torch.tensor([0.9]), torch.tensor([1]), truth[0], labels[0]
    )


def test_training_is_reproducible_and_reports_held_out_map():
    tiny = DetectorSettings(train_canvases=16, held_out_canvases=4, epochs=1, batch_size=8, seed=3)
    epochs = []
    a, _held, stopped = train_detector(tiny, on_epoch=lambda *e: epochs.append(e))
    b, _, _ = train_detector(tiny)
    assert not stopped
    assert len(epochs) == 1
    assert 0.0 <= epochs[0][4] <= 1.0
    for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    _, _, stopped = train_detector(tiny, should_stop=lambda: True)
    assert stopped

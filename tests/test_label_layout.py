"""Label placement: no two chips overlap, each stays in the picture and near its box, and every
box gets its label or is listed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.label_layout import Placement, place_labels


def _intersect(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _check(boxes, chips, size, layout, gap: int = 1) -> None:
    """Every property a layout must have, checked from scratch."""
    width, height = size
    assert len(layout) == len(boxes)
    rects = [p.rect for p in layout if p.rect is not None]
    for i, a in enumerate(rects):
        assert 0 <= a[0] < a[2] <= width, a
        assert 0 <= a[1] < a[3] <= height, a
        for b in rects[i + 1 :]:
            grown = (b[0] - gap, b[1] - gap, b[2] + gap, b[3] + gap)
            assert not _intersect(a, grown), (a, b)
    for box, sizes, placed in zip(boxes, chips, layout, strict=True):
        if placed.rect is None:
            assert placed.choice is None
            assert placed.listed
            continue
        x1, y1, x2, y2 = placed.rect
        assert (x2 - x1, y2 - y1) == sizes[placed.choice]
        assert placed.listed == (placed.choice != 0)
        # Near its box: at most the chip's height away (the default reach).
        bx1, by1, bx2, by2 = (round(v) for v in box)
        apart = max(bx1 - x2, x1 - bx2, by1 - y2, y1 - by2, 0)
        assert apart <= y2 - y1


def test_the_overlapping_labels_seen_on_a_held_out_canvas_are_apart() -> None:
    # Regression: "half-disk 0.31" was drawn over "arrow 0.20": two nearby boxes whose chips,
    # both put above the box's top-left corner, crossed. Picture pixels (4× the canvas).
    boxes = [(80, 80, 160, 160), (96, 64, 184, 144)]
    chips = [[(120, 24), (16, 24)], [(104, 24), (16, 24)]]
    old = [
        (x1, y1 - h, x1 + w, y1) for (x1, y1, _, _), [(w, h), _] in zip(boxes, chips, strict=True)
    ]
    assert _intersect(*old)  # the old rule really overlapped here
    layout = place_labels(boxes, chips, (448, 448))
    _check(boxes, chips, (448, 448), layout)
    assert [p.choice for p in layout] == [0, 0]  # both full labels fit, apart


def test_the_first_box_gets_the_usual_spot_and_the_top_edge_pushes_inside() -> None:
    layout = place_labels(
        [(50, 50, 100, 100), (120, 0, 170, 40)], [[(40, 20)], [(40, 20)]], (200, 200)
    )
    assert layout[0] == Placement((50, 30, 90, 50), 0)  # above, left-aligned
    assert layout[1] == Placement((120, 0, 160, 20), 0)  # no room above: inside the top edge


def test_a_label_prefers_a_spot_that_covers_no_other_box() -> None:
    # Above box 0 lies box 1: the chip goes below box 0 instead of hiding box 1's edge.
    boxes = [(50, 50, 100, 100), (50, 20, 100, 48)]
    layout = place_labels(boxes, [[(40, 20)], []], (200, 200))
    assert layout[0] == Placement((50, 100, 90, 120), 0)
    assert layout[1] == Placement(None, None)  # no chip given: listed
    assert layout[1].listed


def test_without_room_labels_fall_back_to_stand_ins_then_to_the_list_deterministically() -> None:
    boxes = [(80, 80, 140, 140)] * 30  # thirty identical boxes: too many labels for the room
    chips = [[(80, 20), (20, 20)]] * 30
    layout = place_labels(boxes, chips, (200, 200))
    _check(boxes, chips, (200, 200), layout)
    choices = [p.choice for p in layout]
    assert choices[0] == 0
    assert 1 in choices
    assert None in choices
    # Full labels before any stand-in: a stand-in never takes a later full label's place.
    assert choices.index(1) > max(i for i, c in enumerate(choices) if c == 0)
    assert place_labels(boxes, chips, (200, 200)) == layout


def test_a_label_wider_than_the_picture_uses_its_stand_in() -> None:
    layout = place_labels([(0, 0, 10, 10)], [[(500, 20), (20, 20)]], (100, 100))
    assert layout[0].choice == 1
    assert layout[0].listed


def test_bad_input_is_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="label sizes of every box"):
        place_labels([(0, 0, 1, 1)], [], (10, 10))
    with pytest.raises(ValueError, match="x1 <= x2"):
        place_labels([(5, 0, 1, 1)], [[(2, 2)]], (10, 10))
    with pytest.raises(ValueError, match="at least 1×1"):
        place_labels([(0, 0, 1, 1)], [[(0, 2)]], (10, 10))


@st.composite
def _scenes(draw: st.DrawFn):
    width, height = draw(st.integers(20, 300)), draw(st.integers(20, 300))
    n = draw(st.integers(0, 14))
    boxes, chips = [], []
    for _ in range(n):
        x1, y1 = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        x2, y2 = draw(st.integers(x1, width)), draw(st.integers(y1, height))
        boxes.append((x1, y1, x2, y2))
        h = draw(st.integers(4, 30))
        full = (draw(st.integers(4, 160)), h)
        chips.append([full, (draw(st.integers(4, 20)), h)] if draw(st.booleans()) else [full])
    return boxes, chips, (width, height)


@settings(max_examples=25, deadline=None)
@given(_scenes())
def test_placed_labels_never_overlap_stay_inside_and_every_box_is_labelled_or_listed(scene) -> None:
    boxes, chips, size = scene
    _check(boxes, chips, size, place_labels(boxes, chips, size))

"""Where each box's label goes in a picture: no two labels overlap, and every one stays inside.

Greedy, in the caller's order (the most important box first, e.g. the highest score): each label
takes the first free spot among the usual ones (above its box, below it, inside its top edge,
…), preferring spots that cover no other box, then spots slid just past the labels already in
the way, never further from its box than ``reach``. A box whose label finds no
spot tries its next, shorter chip (a number, say, with the full text listed beside the picture);
a box none of whose chips fits gets none, and the caller lists it. Pure and deterministic: the
same boxes and sizes always give the same layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Rect = tuple[int, int, int, int]  # (x1, y1, x2, y2): pixel edges, x2 and y2 exclusive


@dataclass(frozen=True)
class Placement:
    """Where one box's label went: which of its chips, at which rectangle (None: none fitted)."""

    rect: Rect | None
    choice: int | None  # index into the box's chips; 0 is the full label

    @property
    def listed(self) -> bool:
        """True when the full label is not on the picture, so it belongs in a list beside it."""
        return self.choice != 0


def _spots(box: Rect, w: int, h: int, others: np.ndarray, gap: int) -> tuple[np.ndarray, int]:
    """Candidate top-left corners, (K, 2): first the usual spots, then slid past ``others``.

    Returns the candidates and how many of them are the usual spots.
    """
    x1, y1, x2, y2 = box
    usual = [
        (x1, y1 - h),  # above, left-aligned: where a reader looks first
        (x1, y2),  # below
        (x1, y1),  # inside the top edge
        (x2 - w, y1 - h),  # above, right-aligned
        (x2 - w, y2),  # below, right-aligned
        (x1, y2 - h),  # inside the bottom edge
        (x2, y1),  # beside, right
        (x1 - w, y1),  # beside, left
    ]
    # A blocked label slides to just past one of the labels in its way: a free spot, if there
    # is one, starts at such an edge (or at one of the box's own lines) in each direction.
    xs = np.unique(np.concatenate([[x1, x2 - w, x2, x1 - w], others[:, 2] + gap,
                                   others[:, 0] - gap - w]))  # fmt: skip
    ys = np.unique(np.concatenate([[y1 - h, y2, y1, y2 - h], others[:, 3] + gap,
                                   others[:, 1] - gap - h]))  # fmt: skip
    slid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)
    return np.concatenate([np.array(usual, np.int64), slid.astype(np.int64)]), len(usual)


def _overlaps(rects: np.ndarray, others: np.ndarray, gap: int = 0) -> np.ndarray:
    """(K,) True where a rectangle of ``rects`` (K, 4) comes closer than ``gap`` to any of
    ``others`` (M, 4); rectangles that only touch (gap 0) do not overlap."""
    if not len(others):
        return np.zeros(len(rects), bool)
    a, b = rects[:, None, :], others[None, :, :]
    return (
        (a[..., 0] < b[..., 2] + gap)
        & (b[..., 0] < a[..., 2] + gap)
        & (a[..., 1] < b[..., 3] + gap)
        & (b[..., 1] < a[..., 3] + gap)
    ).any(1)


def _place(
    box: Rect,
    size: tuple[int, int],
    image: tuple[int, int],
    taken: np.ndarray,
    other_boxes: np.ndarray,
    gap: int,
    reach: int,
) -> Rect | None:
    """The best free spot for one chip of ``size`` near ``box``, or None."""
    w, h = size
    width, height = image
    if w > width or h > height:
        return None
    x1, y1, x2, y2 = box

    # Only labels and boxes within reach can be in the way (and the candidates stay few).
    def nearby(rects: np.ndarray) -> np.ndarray:
        return rects[
            (rects[:, 0] < x2 + reach + w + gap) & (rects[:, 2] > x1 - reach - w - gap)
            & (rects[:, 1] < y2 + reach + h + gap) & (rects[:, 3] > y1 - reach - h - gap)
        ]  # fmt: skip

    near, other_boxes = nearby(taken), nearby(other_boxes)
    corners, n_usual = _spots(box, w, h, near, gap)
    # Clamping into the picture is itself a shift: a label of a box at the top edge goes inside.
    corners = np.stack(
        [corners[:, 0].clip(0, width - w), corners[:, 1].clip(0, height - h)], axis=1
    )
    rects = np.concatenate([corners, corners + np.array([w, h])], axis=1)  # (K, 4)
    # How far each chip sits from its box, along whichever axis it is further (0: touching).
    apart_x = np.maximum(x1 - rects[:, 2], rects[:, 0] - x2).clip(min=0)
    apart_y = np.maximum(y1 - rects[:, 3], rects[:, 1] - y2).clip(min=0)
    ok = ~_overlaps(rects, near, gap) & (np.maximum(apart_x, apart_y) <= reach)
    if not ok.any():
        return None
    # Best: covers no other box, then a usual spot, then the least slid from "above, left".
    anchor = np.array([min(max(x1, 0), width - w), min(max(y1 - h, 0), height - h)])
    moved = np.abs(corners - anchor).sum(1)
    tier = np.arange(len(rects)) >= n_usual
    order = np.lexsort((np.arange(len(rects)), np.where(tier, moved, 0), tier,
                        _overlaps(rects, other_boxes)))  # fmt: skip
    best = next(int(i) for i in order if ok[i])
    return tuple(int(v) for v in rects[best])  # type: ignore[return-value]


def place_labels(
    boxes: Sequence[Sequence[float]],
    chips: Sequence[Sequence[tuple[int, int]]],
    image_size: tuple[int, int],
    *,
    gap: int = 1,
    reach: int | None = None,
) -> tuple[Placement, ...]:
    """Lay out one label chip per box so that no two chips overlap and all stay in the picture.

    ``boxes`` are (x1, y1, x2, y2) in the picture's pixels, most important first; ``chips`` give
    each box's chip sizes (width, height) to try, the full label first, then shorter stand-ins;
    ``image_size`` is (width, height). Chips keep ``gap`` pixels apart and at most ``reach``
    pixels from their box (default: the chip's own height). Every full label is tried before any
    stand-in, so a shorter chip never takes the place another box's full label could have had.
    """
    if len(chips) != len(boxes):
        raise ValueError(f"Need the label sizes of every box: {len(boxes)} boxes, {len(chips)}.")
    width, height = image_size
    if width < 1 or height < 1:
        raise ValueError(f"The picture must be at least 1×1 pixels; got {width}×{height}.")
    if any(w < 1 or h < 1 for sizes in chips for w, h in sizes):
        raise ValueError("Every label must be at least 1×1 pixels.")
    if gap < 0 or (reach is not None and reach < 0):
        raise ValueError("The gap between labels and their reach cannot be negative.")
    rounded = np.array([[round(float(v)) for v in box] for box in boxes], np.int64).reshape(-1, 4)
    if (rounded[:, 2] < rounded[:, 0]).any() or (rounded[:, 3] < rounded[:, 1]).any():
        raise ValueError("Every box must have x1 <= x2 and y1 <= y2.")
    placed: list[Placement | None] = [None] * len(boxes)
    taken = np.zeros((0, 4), np.int64)
    for choice in range(max((len(sizes) for sizes in chips), default=0)):
        for i, sizes in enumerate(chips):
            if placed[i] is not None or choice >= len(sizes):
                continue
            box = tuple(int(v) for v in rounded[i])
            others = np.delete(rounded, i, axis=0)
            size = sizes[choice]
            rect = _place(box, size, image_size, taken, others, gap,
                          size[1] if reach is None else reach)  # fmt: skip
            if rect is not None:
                placed[i] = Placement(rect, choice)
                taken = np.concatenate([taken, np.array([rect], np.int64)])
    return tuple(p if p is not None else Placement(None, None) for p in placed)

"""From classifier to detector: boxes, IoU, non-maximum suppression and average precision.

Boxes are ``(x1, y1, x2, y2)`` in pixels with ``x1 <= x2`` and ``y1 <= y2``, the convention of
torchvision and most detectors. torchvision is unusable here (its wheel needs CUDA torch), so the
two operations every detector ends with are written out, small enough to read in a minute:
:func:`box_iou` and :func:`nms`, with torchvision's semantics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _check_boxes(boxes: torch.Tensor, name: str) -> torch.Tensor:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"{name} must have shape (N, 4) as (x1, y1, x2, y2); got {tuple(boxes.shape)}."
        )
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{name} must hold finite numbers.")
    boxes = boxes.to(torch.float64)
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise ValueError(f"{name} must have x1 <= x2 and y1 <= y2 in every box.")
    return boxes


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of each ``(x1, y1, x2, y2)`` box: (N, 4) -> (N,)."""
    boxes = _check_boxes(boxes, "boxes")
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every pair: (N, 4) and (M, 4) boxes -> (N, M) in [0, 1].

    Two boxes with no area at all (a union of 0) have IoU 0, not 0/0: a degenerate box overlaps
    nothing, so it never suppresses and is never matched. Computed in float64 so thresholds
    compare exactly as the arithmetic on the page shows.
    """
    a64, b64 = _check_boxes(a, "The first boxes"), _check_boxes(b, "The second boxes")
    top_left = torch.maximum(a64[:, None, :2], b64[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(a64[:, None, 2:], b64[None, :, 2:])  # (N, M, 2)
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = box_area(a64)[:, None] + box_area(b64)[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=torch.finfo(torch.float64).tiny), 0.0)
    return iou.to(torch.promote_types(a.dtype, b.dtype) if a.is_floating_point() else torch.float32)


@dataclass(frozen=True)
class Suppression:
    """One step of NMS: the box kept, and each box it suppressed with their IoU."""

    kept: int
    suppressed: tuple[tuple[int, float], ...]


def nms_steps(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> list[Suppression]:
    """Greedy NMS written out step by step, for the page to replay (see :func:`nms`)."""
    boxes64 = _check_boxes(boxes, "boxes")
    if scores.ndim != 1 or scores.shape[0] != boxes64.shape[0]:
        raise ValueError(
            f"Need one score per box: {boxes64.shape[0]} boxes, scores {tuple(scores.shape)}."
        )
    if not torch.isfinite(scores).all():
        raise ValueError("Scores must be finite numbers.")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"The IoU threshold must lie in [0, 1]; got {iou_threshold}.")
    # Stable: of boxes with equal scores the earlier one is considered first, so the result is
    # deterministic (torchvision leaves the order of ties unspecified).
    order = torch.sort(scores.to(torch.float64), descending=True, stable=True).indices
    iou = box_iou(boxes64, boxes64)[order][:, order]  # rows and columns in score order
    alive = torch.ones(len(order), dtype=torch.bool)
    steps: list[Suppression] = []
    for rank in range(len(order)):
        if not alive[rank]:
            continue
        alive[rank] = False
        hit = alive & (iou[rank] > iou_threshold)  # later, still alive, overlapping too much
        alive &= ~hit
        gone = hit.nonzero().flatten().tolist()
        steps.append(
            Suppression(
                kept=int(order[rank]),
                suppressed=tuple((int(order[j]), float(iou[rank, j])) for j in gone),
            )
        )
    return steps


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes greedy non-maximum suppression keeps, in decreasing score order.

    torchvision's semantics: go through boxes from the highest score down; keep a box unless its
    IoU with an already kept box is *greater than* ``iou_threshold``.
    """
    return torch.tensor(
        [s.kept for s in nms_steps(boxes, scores, iou_threshold)], dtype=torch.int64
    )

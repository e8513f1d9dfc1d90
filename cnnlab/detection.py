"""From classifier to detector: boxes, IoU, non-maximum suppression and average precision.

Boxes are ``(x1, y1, x2, y2)`` in pixels with ``x1 <= x2`` and ``y1 <= y2``, the convention of
torchvision and most detectors. torchvision is unusable here (its wheel needs CUDA torch), so the
two operations every detector ends with are written out, small enough to read in a minute:
:func:`box_iou` and :func:`nms`, with torchvision's semantics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.data import DataBundle, bundle_arrays, make_shapes


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


def _ink_box(patch: torch.Tensor, threshold: int) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) of the pixels brighter than ``threshold`` in a (H, W) patch, or None."""
    mask = patch > threshold
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclass(frozen=True)
class Canvas:
    """A grayscale scene of several objects with their true boxes and classes."""

    image: torch.Tensor  # (H, W) uint8
    boxes: torch.Tensor  # (K, 4) float32, (x1, y1, x2, y2) of each object's ink, pixel edges
    labels: torch.Tensor  # (K,) int64, indices into the tiles' classes


def compose_canvas(
    tiles: torch.Tensor, labels: torch.Tensor, size: int, count: int, seed: int
) -> Canvas:
    """Paste ``count`` of the (N, H, W) uint8 ``tiles`` onto a black ``size``×``size`` canvas.

    Tiles go to random places without overlapping (so each true box is unambiguous); each box is
    the tight box of its tile's ink (pixels above a quarter of full brightness). Deterministic
    from ``seed``.
    """
    if tiles.ndim != 3 or tiles.dtype != torch.uint8:
        raise ValueError("Tiles must be a (N, H, W) stack of uint8 images.")
    n, th, tw = tiles.shape
    if count < 1 or count > n:
        raise ValueError(f"Choose between 1 and {n} objects; got {count}.")
    if size < max(th, tw):
        raise ValueError(f"The canvas must be at least {max(th, tw)} pixels wide; got {size}.")
    gen = torch.Generator().manual_seed(seed)
    image = torch.zeros(size, size, dtype=torch.uint8)
    taken = torch.zeros(size, size, dtype=torch.bool)
    boxes, kept = [], []
    for index in torch.randperm(n, generator=gen).tolist():
        if len(kept) == count:
            break
        for _ in range(50):  # a few tries for a free spot, then the next tile
            y, x = torch.randint(0, size - th + 1, (2,), generator=gen).tolist()
            if not taken[y : y + th, x : x + tw].any():
                break
        else:
            continue
        tile = tiles[index]
        ink = _ink_box(tile, 64)
        if ink is None:
            continue
        image[y : y + th, x : x + tw] = tile
        taken[y : y + th, x : x + tw] = True
        boxes.append([x + ink[0], y + ink[1], x + ink[2], y + ink[3]])
        kept.append(int(labels[index]))
    return Canvas(
        image=image,
        boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(kept, dtype=torch.int64),
    )


def average_precision(
    pred_boxes: torch.Tensor,
    pred_scores: torch.Tensor,
    true_boxes: torch.Tensor,
    iou_threshold: float = 0.5,
) -> float:
    """Average precision of one class's predictions (Pascal VOC, all-point interpolation).

    Predictions are matched greedily from the highest score down: a prediction is a true
    positive when its IoU with a not-yet-matched true box is at least ``iou_threshold``. AP is
    the area under the precision–recall curve with precision made non-increasing. With no true
    boxes, AP is undefined and this raises (the caller leaves that class out of the mean).
    """
    if len(true_boxes) == 0:
        raise ValueError("Average precision needs at least one true box.")
    if len(pred_boxes) == 0:
        return 0.0
    order = torch.sort(pred_scores.to(torch.float64), descending=True, stable=True).indices
    iou = box_iou(pred_boxes[order], true_boxes)  # (P, T)
    matched = torch.zeros(len(true_boxes), dtype=torch.bool)
    hits = torch.zeros(len(order), dtype=torch.float64)
    for p in range(len(order)):
        candidates = torch.where(matched, -1.0, iou[p].to(torch.float64))
        best = int(candidates.argmax())
        if candidates[best] >= iou_threshold:
            matched[best] = True
            hits[p] = 1.0
    tp = hits.cumsum(0)
    recall = tp / len(true_boxes)
    precision = tp / torch.arange(1, len(order) + 1, dtype=torch.float64)
    # Make precision non-increasing from the right, then sum it over each step in recall.
    precision = precision.flip(0).cummax(0).values.flip(0)
    steps = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
    return float((steps * precision).sum())


def mean_average_precision(
    pred_boxes: torch.Tensor,
    pred_scores: torch.Tensor,
    pred_labels: torch.Tensor,
    true_boxes: torch.Tensor,
    true_labels: torch.Tensor,
    iou_threshold: float = 0.5,
) -> float:
    """mAP at ``iou_threshold``: :func:`average_precision` averaged over classes with true boxes."""
    classes = sorted(set(true_labels.tolist()))
    if not classes:
        raise ValueError("Mean average precision needs at least one true box.")
    aps = [
        average_precision(
            pred_boxes[pred_labels == c],
            pred_scores[pred_labels == c],
            true_boxes[true_labels == c],
            iou_threshold,
        )
        for c in classes
    ]
    return sum(aps) / len(aps)


@dataclass(frozen=True)
class WindowScores:
    """A classifier's class probabilities at every window position of a sliding-window scan."""

    probs: torch.Tensor  # (rows, cols, classes)
    window: int
    stride: int

    def boxes(self, min_score: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Candidate boxes: every window whose best class reaches ``min_score``.

        Returns boxes (K, 4), their scores (K,) and classes (K,), ready for :func:`nms`.
        """
        best, label = self.probs.max(dim=-1)  # (rows, cols)
        rows, cols = (best >= min_score).nonzero(as_tuple=True)
        x1, y1 = cols * self.stride, rows * self.stride
        boxes = torch.stack([x1, y1, x1 + self.window, y1 + self.window], dim=1).float()
        return boxes, best[rows, cols], label[rows, cols]


def sliding_window(
    model: torch.nn.Module, image: torch.Tensor, window: int, stride: int
) -> WindowScores:
    """Run an image classifier on every ``window``×``window`` crop of ``image`` (C, H, W).

    All crops go through the model as batches (``unfold``, no Python loop per window), so the
    scan costs what the forward passes cost. ``image`` is already normalised as the model
    expects.
    """
    if image.ndim != 3:
        raise ValueError(f"Expected one (C, H, W) image; got shape {tuple(image.shape)}.")
    c, h, w = image.shape
    if window < 1 or window > min(h, w):
        raise ValueError(f"The window must fit the image ({h}×{w}); got {window}.")
    if stride < 1:
        raise ValueError(f"The stride must be at least 1; got {stride}.")
    crops = image.unfold(1, window, stride).unfold(2, window, stride)  # (C, rows, cols, k, k)
    rows, cols = crops.shape[1:3]
    crops = crops.permute(1, 2, 0, 3, 4).reshape(rows * cols, c, window, window)
    with torch.inference_mode():
        probs = torch.cat([model(chunk).softmax(-1) for chunk in crops.split(512)])
    return WindowScores(probs.reshape(rows, cols, -1), window, stride)


BACKGROUND = "background"


def window_training_set(
    seed: int = 0, n_objects: int = 6000, n_background: int = 3000
) -> DataBundle:
    """Shapes plus a ``background`` class: what a sliding-window classifier must learn.

    A plain classifier has no answer for "nothing here", so every empty window would still get
    a confident shape. Background examples are 28×28 crops of canvases that overlap no shape
    (IoU with every true box below 0.2): empty space and slivers of neighbours.
    """
    shapes = make_shapes(n_objects, max(1, n_objects // 6), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    crops: list[torch.Tensor] = []
    canvas_seed = seed * 7919
    while len(crops) < n_background + n_background // 6:
        canvas_seed += 1
        canvas = compose_canvas(shapes.train_x[:, 0], shapes.train_y, 112, 4, canvas_seed)
        y, x = torch.randint(0, 112 - 28 + 1, (2, 64), generator=gen)
        windows = torch.stack([x, y, x + 28, y + 28], dim=1).float()
        quiet = box_iou(windows, canvas.boxes).amax(dim=1) < 0.2
        crops += [
            canvas.image[b : b + 28, a : a + 28] for a, b in zip(x[quiet], y[quiet], strict=True)
        ]
    background = torch.stack(crops)[:, None].numpy()  # (N, 1, 28, 28)
    label = len(shapes.classes)

    def split(x: torch.Tensor, y: torch.Tensor, extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = np.concatenate([y.numpy(), np.full(len(extra), label)])
        return np.concatenate([x.numpy(), extra]), labels

    return bundle_arrays(
        "shapes_and_background",
        (*shapes.classes, BACKGROUND),
        split(shapes.train_x, shapes.train_y, background[:n_background]),
        split(shapes.test_x, shapes.test_y, background[n_background:]),
        flip_ok=False,
    )


def snap_to_ink(boxes: torch.Tensor, image: torch.Tensor, threshold: int = 64) -> torch.Tensor:
    """Shrink each box to the tight box of the bright pixels (> ``threshold``) inside it.

    A sliding window only ever proposes boxes of its own size; snapping is a hand-made stand-in
    for the box regression a real detector learns. A box with no ink inside stays as it is.
    """
    snapped = boxes.clone()
    for i, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
        ink = _ink_box(image[y1:y2, x1:x2], threshold)
        if ink is not None:
            snapped[i] = torch.tensor([x1 + ink[0], y1 + ink[1], x1 + ink[2], y1 + ink[3]])
    return snapped


@dataclass(frozen=True)
class Detections:
    """One sliding-window detection pass, from candidate windows to the boxes NMS keeps."""

    scan: WindowScores  # every class including background
    candidates: torch.Tensor  # (K, 4) boxes (snapped when asked)
    scores: torch.Tensor  # (K,) best object-class probability
    labels: torch.Tensor  # (K,) object class
    steps: tuple[Suppression, ...]  # NMS, step by step

    @property
    def kept(self) -> torch.Tensor:
        """Indices into ``candidates`` that survive NMS, highest score first."""
        return torch.tensor([s.kept for s in self.steps], dtype=torch.int64)


def detect(
    model: torch.nn.Module,
    image: torch.Tensor,
    normalized: torch.Tensor,
    *,
    stride: int,
    min_score: float,
    iou_threshold: float,
    snap: bool,
    window: int = 28,
) -> Detections:
    """Slide the window classifier over ``image`` (H, W) uint8, keep windows whose best *object*
    class reaches ``min_score`` (the last class is background), then class-agnostic NMS.

    ``normalized`` is the same image as the model expects it, (C, H, W). Class-agnostic NMS
    suits scenes whose objects do not overlap, like these canvases.
    """
    scan = sliding_window(model, normalized, window, stride)
    objects = WindowScores(scan.probs[..., :-1], window, stride)
    boxes, scores, labels = objects.boxes(min_score)
    if snap:
        boxes = snap_to_ink(boxes, image)
    steps = tuple(nms_steps(boxes, scores, iou_threshold))
    return Detections(scan, boxes, scores, labels, steps)

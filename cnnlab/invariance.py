"""What "pooling gives translation invariance" really means, measured.

Shift an image by ``k`` pixels and compare, at the *same* output positions, the outputs of a
convolution (+ReLU), of each pooling kind applied to the image, and of convolution→pooling.

How the shift is made matters, so it is explicit (``mode``):

* ``"crop"`` (default, the honest one): the camera pans, the scene stays. Both versions are
  crops of the same image, inset by ``max_shift`` pixels, so every pixel is real and nothing
  is invented at the border.
* ``"roll"``: circular shift of the unshifted crop; what leaves one side re-enters the other.
* ``"zeros"``: shift with zero fill; a black band enters from the border.

Local outputs are compared only on the *overlap region*: the output cells whose whole input
window lies at least ``max_shift`` pixels inside the crop along the shift direction, so they see
real, shared content in both versions at every shift (the same cells for every ``k``). On that
region the three modes give identical numbers — the border choice cannot dominate the result.
Global pooling has no interior (its window is the whole crop), so for it the mode decides
everything: ``roll`` makes global pooling of the image exactly invariant by construction
(nothing leaves it; only the convolution sees a seam), ``zeros`` adds a strong artificial edge,
and ``crop`` measures what actually changes when new content enters the view.

Reported per shift: the relative L2 change ``‖b − a‖ / ‖a‖`` on the region, the fraction of
output values unchanged (``|b − a| ≤ 1e-5 × max|a|``: float rounding, not real change), and the
*aligned* change — the output of the shifted input moved back by ``k / stride`` cells. For the
convolution (stride 1) the aligned change is ~0 at every ``k``: convolution is equivariant. For
pooling it is ~0 only when ``k`` is a multiple of the stride.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.pooling import PoolSpec, check_spec, pool_module, spec_for_kind

DIRECTIONS: dict[str, tuple[int, int]] = {"right": (0, 1), "down": (1, 0), "diagonal": (1, 1)}
SHIFT_MODES: tuple[str, ...] = ("crop", "roll", "zeros")
UNCHANGED_RTOL = 1e-5
CONV_KERNEL = 3

# Four fixed 3×3 edge detectors (Sobel horizontal/vertical and two diagonals): an
# interpretable stand-in for a trained first layer, identical for every learner and run.
EDGE_WEIGHTS = np.array(
    [
        [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
        [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],
    ],
    dtype=np.float32,
)


def edge_conv() -> nn.Conv2d:
    """A 1→4 channel 3×3 convolution (no padding, no bias) holding the fixed edge filters."""
    conv = nn.Conv2d(1, len(EDGE_WEIGHTS), CONV_KERNEL, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(EDGE_WEIGHTS).unsqueeze(1))
    return conv


def shifted_pair(
    image: np.ndarray, k: int, direction: str, mode: str, margin: int
) -> tuple[np.ndarray, np.ndarray]:
    """The unshifted view (the image inset by ``margin``) and the view shifted by ``k`` pixels
    (content moves right/down), made the way ``mode`` says (see the module docstring)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}: choose one of {', '.join(DIRECTIONS)}.")
    if mode not in SHIFT_MODES:
        raise ValueError(f"Unknown shift mode {mode!r}: choose one of {', '.join(SHIFT_MODES)}.")
    if not 0 <= k <= margin:
        raise ValueError(f"The shift {k} must be between 0 and the margin {margin}.")
    height, width = image.shape
    dy, dx = (k * a for a in DIRECTIONS[direction])
    view = image[margin : height - margin, margin : width - margin]
    if mode == "crop":
        shifted = image[margin - dy : height - margin - dy, margin - dx : width - margin - dx]
    elif mode == "roll":
        shifted = np.roll(view, (dy, dx), axis=(0, 1))
    else:
        shifted = np.zeros_like(view)
        shifted[dy:, dx:] = view[: view.shape[0] - dy, : view.shape[1] - dx]
    return view, shifted


@dataclass(frozen=True)
class ShiftCurve:
    """How one stage's output changes with the shift ``k`` (one value per shift)."""

    name: str
    stage: str
    kind: str | None
    shifts: tuple[int, ...]
    relative_change: tuple[float, ...]
    unchanged_fraction: tuple[float, ...]
    aligned_change: tuple[float | None, ...]
    cells: int


@dataclass(frozen=True)
class InvarianceResult:
    """All curves of one experiment plus how it was run."""

    curves: tuple[ShiftCurve, ...]
    view_shape: tuple[int, int]
    direction: str
    mode: str
    max_shift: int

    def curve(self, name: str) -> ShiftCurve:
        """The curve called ``name`` (e.g. ``"conv"``, ``"max"``, ``"conv → max"``)."""
        for c in self.curves:
            if c.name == name:
                return c
        raise KeyError(name)


def _spans(n_out: int, window: tuple[int, int, int, int] | None, conv: bool) -> np.ndarray:
    """First and last input index read by each output cell along one axis (padding < 0);
    ``window`` is that axis' (kernel, stride, padding, dilation), ``None`` for no pooling."""
    j = np.arange(n_out)
    lo, hi = j, j
    if window is not None:
        k, s, p, d = window
        lo = j * s - p
        hi = lo + (k - 1) * d
    return np.stack([lo, hi + (CONV_KERNEL - 1 if conv else 0)])


def _region(
    out_shape: tuple[int, int],
    spec: PoolSpec | None,
    conv: bool,
    view_shape: tuple[int, int],
    shifted_axes: tuple[int, int],
    margin: int,
) -> np.ndarray:
    """Boolean mask of output cells whose inputs stay ``margin`` away from the shifted borders."""
    masks = []
    for axis in (0, 1):
        if not shifted_axes[axis]:
            masks.append(np.ones(out_shape[axis], dtype=bool))
            continue
        window = None
        if spec is not None:
            window = (
                spec.kernel_hw[axis],
                spec.stride_hw[axis],
                spec.padding_hw[axis],
                spec.dilation_hw[axis],
            )
        lo, hi = _spans(out_shape[axis], window, conv)
        masks.append((lo >= margin) & (hi <= view_shape[axis] - 1 - margin))
    return masks[0][:, None] & masks[1][None, :]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """‖b − a‖ / ‖a‖, with 0 when both are zero (nothing there, nothing changed)."""
    diff = float(np.linalg.norm(b - a))
    base = float(np.linalg.norm(a))
    if base == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / base


def _unchanged(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of values equal up to float rounding (relative to the largest magnitude)."""
    if a.size == 0:
        return 1.0
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
    return float(np.mean(np.abs(b - a) <= UNCHANGED_RTOL * scale))


def invariance_experiment(
    image: np.ndarray,
    base: PoolSpec,
    max_shift: int | None = None,
    direction: str = "right",
    mode: str = "crop",
    kinds: tuple[str, ...] = ("max", "avg", "lp", "global_avg", "global_max"),
) -> InvarianceResult:
    """Shift ``image`` (2-D, grayscale) by k = 0…``max_shift`` pixels (default: the window)
    and measure the change of conv, pool and conv→pool outputs for each pooling kind."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(
            f"The experiment needs one grayscale image (H×W); got shape {image.shape}."
        )
    margin = max(base.kernel_hw) if max_shift is None else int(max_shift)
    if margin < 0:
        raise ValueError(f"The largest shift cannot be negative, got {margin}.")
    view_shape = (image.shape[0] - 2 * margin, image.shape[1] - 2 * margin)
    if min(view_shape) < CONV_KERNEL:
        raise ValueError(
            f"The image ({image.shape[0]}×{image.shape[1]}) is too small to shift by up to "
            f"{margin} pixels on each side; use a larger image or a smaller shift."
        )
    specs = {kind: spec_for_kind(base, kind) for kind in kinds}
    conv_shape = (view_shape[0] - CONV_KERNEL + 1, view_shape[1] - CONV_KERNEL + 1)
    for spec in specs.values():
        check_spec(spec, *view_shape)
        check_spec(spec, *conv_shape)
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}: choose one of {', '.join(DIRECTIONS)}.")
    shifted_axes = DIRECTIONS[direction]
    conv = edge_conv()
    modules = {kind: pool_module(spec) for kind, spec in specs.items()}

    # Every stage by name: (pooling kind or None for the bare convolution, runs on conv output).
    names: dict[str, tuple[str | None, bool]] = {"conv": (None, True)}
    for kind, spec in specs.items():
        names[spec.label] = (kind, False)
        names[f"conv → {spec.label}"] = (kind, True)

    def run_stages(x: np.ndarray) -> dict[str, np.ndarray]:
        t = torch.from_numpy(np.ascontiguousarray(x))[None, None]
        with torch.no_grad():
            feats = F.relu(conv(t))
            out = {"conv": feats[0].numpy()}
            for kind, spec in specs.items():
                out[spec.label] = modules[kind](t)[0].numpy()
                out[f"conv → {spec.label}"] = modules[kind](feats)[0].numpy()
        return out

    shifts = tuple(range(margin + 1))
    outputs = [run_stages(shifted_pair(image, k, direction, mode, margin)[1]) for k in shifts]
    curves = []
    for name, (kind, on_conv) in names.items():
        a = outputs[0][name]
        spec = specs[kind] if kind else None
        if spec is not None and spec.is_global:
            region = np.ones(a.shape[1:], dtype=bool)
        else:
            region = _region(a.shape[1:], spec, on_conv, view_shape, shifted_axes, margin)
        if not region.any():
            raise ValueError(
                f"No output cell of '{name}' stays {margin} pixels away from the shifted border "
                f"of this {view_shape[0]}×{view_shape[1]} view; use a larger image, a smaller "
                f"window or a smaller shift."
            )
        rel, same, aligned = [], [], []
        for k, out in zip(shifts, outputs, strict=True):
            b = out[name]
            rel.append(_relative(a[:, region], b[:, region]))
            same.append(_unchanged(a[:, region], b[:, region]))
            aligned.append(_aligned_change(a, b, region, k, spec, shifted_axes))
        stage = "conv" if kind is None else ("conv+pool" if on_conv else "pool")
        curves.append(
            ShiftCurve(
                name, stage, kind, shifts, tuple(rel), tuple(same), tuple(aligned),
                int(region.sum()) * a.shape[0],
            )
        )  # fmt: skip
    return InvarianceResult(tuple(curves), view_shape, direction, mode, margin)


def _aligned_change(
    a: np.ndarray,
    b: np.ndarray,
    region: np.ndarray,
    k: int,
    spec: PoolSpec | None,
    shifted_axes: tuple[int, int],
) -> float | None:
    """Relative change after moving ``b`` back by ``k / stride`` cells; ``None`` when ``k`` is
    not a whole number of output cells (or the output is global, with no cells to move)."""
    if spec is not None and spec.is_global:
        return None
    steps = []
    for axis in (0, 1):
        stride = 1 if spec is None else spec.stride_hw[axis]
        move = k * shifted_axes[axis]
        if move % stride:
            return None
        steps.append(move // stride)
    rows, cols = np.nonzero(region)
    rows2, cols2 = rows + steps[0], cols + steps[1]
    inside = (rows2 < b.shape[1]) & (cols2 < b.shape[2])
    return _relative(a[:, rows[inside], cols[inside]], b[:, rows2[inside], cols2[inside]])

"""Per-rerun work of the Architecture zoo, Convolution variants and Activations pages.

Prints medians (ms) of each engine call a page makes, and each as a ratio of a baseline measured
in the same run: one 3×3 convolution of a 128×128 gray image (the Convolution page's core work).
The zoo's analyses are cached per server and size (st.cache_data), so "analyse" is the cost of a
cache miss, paid once per architecture and input size, not per rerun.
Usage: python benchmarks/architectures.py [--quick]
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

from timing import median_ms

# Run as a script from anywhere: the engine is found from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch.nn import functional as F

from cnnlab import activations, anatomy, conv_variants, normalisation, zoo
from cnnlab.export import architecture_code


def _baseline(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return F.conv2d(image, kernel, padding=1)


def main(repeat: int) -> None:
    rng = np.random.default_rng(0)
    gray = rng.random((128, 128)).astype(np.float32)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    base = median_ms(
        partial(_baseline, torch.from_numpy(gray)[None, None], torch.ones(1, 1, 3, 3)), repeat
    )
    print(f"baseline: one 3×3 conv of a 128×128 image: {base:.3f} ms\n")
    print(f"{'work':44} {'median ms':>10} {'× baseline':>11}")

    def row(label: str, fn: object, n: int = repeat) -> None:
        ms = median_ms(fn, n)  # type: ignore[arg-type]
        print(f"{label:44} {ms:10.2f} {ms / base:11.0f}")

    for name in zoo.NAMES:
        row(f"zoo: analyse {name} (cache miss)", partial(anatomy.analyse_zoo, name), 3)
    row(
        "zoo: diagram resnet50",
        partial(anatomy.diagram, anatomy.meta_model("resnet50"), (3, 224, 224)),
        3,
    )
    row("zoo: architecture_code mobilenet_v2", partial(architecture_code, "mobilenet_v2", 1000))
    row("zoo: MLP vs CNN, textbook at 224", partial(anatomy.network_dense_vs_conv, (3, 224, 224)))
    sizes = conv_variants.Sizes()
    row(
        "variants: cost of all 7",
        lambda: [conv_variants.cost(v, sizes) for v in conv_variants.VARIANTS],
    )
    row("variants: connectivity 256×256", partial(conv_variants.connectivity, "grouped", sizes))
    for variant in ("standard", "separable", "transposed"):
        row(
            f"variants: {variant} on a 160×120 image",
            partial(conv_variants.apply_to_image, variant, rgb),
        )
    row(
        "variants: 1-D conv of 200 samples",
        partial(
            conv_variants.conv1d,
            conv_variants.signal("chirp"),
            conv_variants.kernel_1d("gaussian", 9),
        ),
    )
    row(
        "variants: 3-D conv of 6×20×20",
        partial(
            conv_variants.conv3d,
            conv_variants.moving_square(6, 20),
            conv_variants.kernel_3d("moving edge"),
        ),
    )
    row(
        "activations: 3 curves with f′",
        lambda: [activations.curve(n) for n in ("relu", "sigmoid", "gelu")],
    )
    row(
        "activations: softmax with temperature",
        partial(activations.softmax, [2.0, 1.0, 0.1, -1.0], 0.5),
    )
    x = normalisation.feature_batch(gray, 8, crop=48)
    row("batch norm: batch of 8, train mode", partial(normalisation.batch_norm, x, 1.0, 0.0))
    warm = tuple(normalisation.feature_batch(gray, 8, crop=48, seed=i) for i in range(20))
    row(
        "batch norm: eval after 20 batches",
        partial(normalisation.batch_norm, x, 1.0, 0.0, False, warm),
    )
    row("dropout: 24×24", partial(normalisation.dropout, gray[:24, :24], 0.5))


if __name__ == "__main__":
    main(3 if "--quick" in sys.argv else 30)

"""Cost of the arithmetic page's per-rerun work: the formula, the torch check, the picture.

Prints medians (ms) and the torch check's cost relative to the formula, measured in one run.
Usage: python benchmarks/arithmetic.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from timing import median_ms

# Run as a script from anywhere: the engine is found from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab import arithmetic as ar
from ui.arithmetic import window_figure


def main() -> None:
    cases = {
        "conv 28×28 k5 s2 p1": ("conv", (28, 28), 5, 2, 1, 1, 0),
        "conv 512×512 k11 s1 same": ("conv", (512, 512), 11, 1, "same", 1, 0),
        "conv_transpose 256×256 k4 s8": ("conv_transpose", (256, 256), 4, 8, 1, 1, 0),
        "max_pool 64³ k3 s2": ("max_pool", (64, 64, 64), 3, 2, 1, 1, 0),
    }
    for name, args in cases.items():
        formula = median_ms(lambda a=args: ar.analyse(*a))
        layer = ar.analyse(*args)
        check = median_ms(lambda layer=layer: ar.run_torch(layer), repeat=10)
        print(
            f"{name:32s} formula {formula:7.3f} ms  torch check {check:8.2f} ms  "
            f"ratio {check / formula:8.0f}×"
        )
    for side in (8, 40):
        layer = ar.analyse("conv", (side - 2, side - 2), 3, 1, 1)
        fig = median_ms(lambda layer=layer: window_figure(layer, 0).to_json(), repeat=10)
        size = len(window_figure(layer, 0).to_json())
        print(
            f"picture {side}×{side} cells: build + serialise {fig:6.1f} ms, {size / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()

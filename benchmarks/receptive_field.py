"""Cost of the receptive-field page's work: the arithmetic, the exact support, the ERF.

Prints medians (ms) per preset, and the ERF's cost relative to the arithmetic, measured in one
run. The ERF runs with the page's settings (4 networks × the adaptive sample count).
Usage: python benchmarks/receptive_field.py
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

from timing import median_ms

# Run as a script from anywhere: the engine is found from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab.receptive_field import (
    PRESETS,
    analyse_stack,
    effective_receptive_field,
    neuron_support,
)

# The page's settings, as in ui.receptive_field (copied so the benchmark needs no Streamlit).
ERF_NETWORKS = 4
ERF_CHANNELS = 8
ERF_WORK = 1_000_000


def main() -> None:
    print(f"{'preset':28} {'analyse':>9} {'support':>9} {'ERF':>10} {'ERF/analyse':>12}")
    for name, preset in PRESETS.items():
        layers, size = preset.layers, preset.input_size
        last = len(layers) - 1
        samples = int(min(max(ERF_WORK // (size * size * len(layers)), 8), 32))
        analyse = median_ms(partial(analyse_stack, layers, size), 50)
        support = median_ms(partial(neuron_support, layers, size, last, 0, 0), 5)
        erf = median_ms(
            partial(
                effective_receptive_field,
                layers,
                size,
                channel_cap=ERF_CHANNELS,
                networks=ERF_NETWORKS,
                samples=samples,
            ),
            3,
        )
        print(f"{name:28} {analyse:9.3f} {support:9.2f} {erf:10.1f} {erf / analyse:12.0f}")


if __name__ == "__main__":
    main()

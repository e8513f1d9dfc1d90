"""Would training several same-architecture runs together raise a worker's throughput? K copies of
the fast preset, one thread: K separate training steps one after another (what a worker does,
in the training loop's channels_last layout and in the default one) against one step of the K
models stacked with ``torch.func.stack_module_state`` + ``vmap``. Prints medians and ratios.

    python benchmarks/stacked_training.py            # K = 4, batch 64
    python benchmarks/stacked_training.py --k 2 --repeat 3 --steps 5   # a smoke run

The worker pool trains runs one after another; this decides whether stacking is worth building.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Time both ways of taking one optimisation step for each of K models."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    from cnnlab.models import PRESETS, build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4, help="models trained together")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="steps per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings per way (median)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    k, b = args.k, args.batch
    x = torch.randn(k, b, 1, 28, 28)  # (K, B, C, H, W): each model its own batch
    y = torch.randint(0, 10, (k, b))

    def separate(channels_last: bool):
        models = [build_model(PRESETS["fast"], (1, 28, 28), 10) for _ in range(k)]
        layout = torch.channels_last if channels_last else torch.contiguous_format
        models = [m.to(memory_format=layout) for m in models]
        xs = [x[i].contiguous(memory_format=layout) for i in range(k)]
        opts = [torch.optim.AdamW(m.parameters(), lr=1e-3, fused=True) for m in models]

        def step() -> None:
            for model, opt, xb, yb in zip(models, opts, xs, y, strict=True):
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        return step

    def stacked():
        models = [build_model(PRESETS["fast"], (1, 28, 28), 10) for _ in range(k)]
        params, buffers = stack_module_state(models)  # batch norm statistics stacked too
        base = copy.deepcopy(models[0]).to("meta")

        def loss_of(p, bufs, xb, yb):
            return F.cross_entropy(functional_call(base, (p, bufs), (xb,)), yb)

        grads_of = vmap(grad_and_value(loss_of))
        for p in params.values():
            p.requires_grad_(False)
        opt = torch.optim.AdamW(list(params.values()), lr=1e-3, fused=True)

        def step() -> None:
            grads, _loss = grads_of(params, buffers, x, y)
            for name, p in params.items():
                p.grad = grads[name]
            opt.step()

        return step

    ways = {
        "separate, channels_last": separate(True),
        "separate, default layout": separate(False),
        "stacked (vmap)": stacked(),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for step in ways.values():
        step()  # warm-up
    for _ in range(args.repeat):
        for name, step in ways.items():  # interleaved: the machine's drift hits every way
            t = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t) / args.steps * 1000)
    base = statistics.median(times["separate, channels_last"])
    print(f"one step of each of {k} fast-preset models, batch {b}, 1 thread "
          f"(median of {args.repeat}):")  # fmt: skip
    for name, values in times.items():
        ms = statistics.median(values)
        print(f"  {name:26s} {ms:8.1f} ms   throughput ×{base / ms:.2f} of separate channels_last")


if __name__ == "__main__":
    main()

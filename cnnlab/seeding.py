"""Seeded use of torch's global random generator, one thread at a time.

Pages run in threads of one server process, and torch has one global CPU generator. A page that
seeds it and then builds a network (initial weights) or draws a dropout mask interleaves with
another student's page doing the same, and neither gets the numbers its seed promises. Layers
draw their initial weights from the global generator (``reset_parameters`` takes none), so a
lock around "seed, then draw" is what keeps a seed shown on a page honest under a class.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_LOCK = threading.RLock()


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global generator seeded with ``seed``, holding it alone.

    The generator's previous state is restored afterwards, so code outside is not disturbed.
    """
    with _LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield

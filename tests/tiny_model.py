"""The smallest network the queue and worker tests train: a few hundred parameters, so a run
finishes in a fraction of a second and the tests time the machinery, not the training."""

from __future__ import annotations

from cnnlab.models import LayerSpec, ModelSpec

TINY = ModelSpec(
    (
        LayerSpec("conv", {"out_channels": 4, "kernel": 3}),
        LayerSpec("relu"),
        LayerSpec("maxpool", {"kernel": 2}),
        LayerSpec("flatten"),
        LayerSpec("linear", {"out_features": "classes"}),
    ),
    "tiny",
)

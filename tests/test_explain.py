"""The home page's pipeline diagram shows what the torch model really does."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.explain import pipeline_dot, pipeline_model, pipeline_stages


@settings(max_examples=25, deadline=None)
@given(
    channels=st.integers(1, 3),
    filters=st.integers(1, 16),
    kernel=st.sampled_from([1, 3, 5]),
    pool=st.sampled_from([1, 2, 4]),
    size=st.sampled_from([8, 16, 28, 32]),
    classes=st.integers(2, 12),
)
def test_stage_shapes_and_weights_match_torch(channels, filters, kernel, pool, size, classes):
    stages = pipeline_stages(channels, filters, kernel, pool, size, classes)
    model = pipeline_model(channels, filters, kernel, pool, size, classes)
    x = torch.rand(2, channels, size, size)
    shapes = [tuple(x.shape[1:])]
    for layer in model:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert [s.output_shape for s in stages] == shapes
    assert sum(s.params for s in stages) == sum(p.numel() for p in model.parameters())
    torch.testing.assert_close(x.sum(dim=1), torch.ones(2))  # softmax: probabilities


def test_default_diagram_labels_come_from_the_model():
    dot = pipeline_dot(pipeline_stages())
    conv = pipeline_model()[0]
    assert "28×28×1" in dot
    assert "→ 28×28×8" in dot
    assert "→ 14×14×8" in dot
    assert "→ 1568" in dot
    assert f"{sum(p.numel() for p in conv.parameters())} weights" in dot
    assert dot.count("->") == len(pipeline_stages()) - 1

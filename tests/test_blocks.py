"""Blocks taken apart: every parameter accounted for, shapes as torch computes them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.blocks import KINDS, anatomy, block_dot, build_block
from cnnlab.zoo import build

CASES = {
    "basic": (64, 128, 2, 6),
    "bottleneck": (256, 256, 1, 6),
    "inverted": (24, 24, 1, 6),
    "dense": (64, 32, 1, 4),
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_parameter_is_on_the_main_path_or_the_skip(kind: str) -> None:
    c_in, c_out, stride, expand = CASES[kind]
    block = build_block(kind, c_in, c_out, stride, expand)
    a = anatomy(block, (c_in, 16, 16))
    assert a.params == sum(p.numel() for p in block.parameters())
    assert sum(s.params for s in a.steps) + a.skip_params == a.params
    with torch.no_grad():
        assert a.output_shape == tuple(block.eval()(torch.randn(2, c_in, 16, 16)).shape[1:])
    assert "digraph" in block_dot(a)


def test_basic_block_with_projection_is_resnet18s_layer2_block() -> None:
    block = build_block("basic", 64, 128, stride=2)
    a = anatomy(block, (64, 56, 56))
    reference = build("resnet18").layer2[0]
    assert a.params == sum(p.numel() for p in reference.parameters()) == 230_144
    assert a.skip == "1×1 projection"
    assert a.skip_params == 64 * 128 + 2 * 128  # the 1×1 conv and its batch norm
    assert a.output_shape == (128, 28, 28)
    assert a.steps[0].shape == (128, 28, 28)  # the stride is in the first conv


def test_identity_skip_adds_the_input() -> None:
    block = build_block("basic", 16, 16).eval()
    assert anatomy(block, (16, 8, 8)).skip == "identity"
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(1, 16, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x))  # F(x) = 0 leaves relu(x)


def test_inverted_residual_skips_only_when_the_shape_stays() -> None:
    assert anatomy(build_block("inverted", 24, 24, 1), (24, 8, 8)).combine == "add"
    changed = anatomy(build_block("inverted", 24, 32, 1), (24, 8, 8))
    assert (changed.skip, changed.combine) == ("none", "none")
    steps = anatomy(build_block("inverted", 24, 24, 1, expand=6), (24, 8, 8)).steps
    assert steps[0].shape == (144, 8, 8)  # expanded ×6 ...
    assert steps[2].name.startswith("depthwise 3×3")
    assert steps[2].params == 144 * 9  # ... one 3×3 filter per channel
    assert steps[-1].shape == (24, 8, 8)  # ... and projected back down


def test_dense_block_concatenates_growth_channels() -> None:
    a = anatomy(build_block("dense", 64, 32, 1, expand=6), (64, 8, 8))
    assert a.output_shape == (64 + 6 * 32, 8, 8)
    assert a.combine == "concatenate"
    # DenseNet-121's first dense layer: BN(64) + 1×1 64→128 + BN(128) + 3×3 128→32.
    assert a.steps[0].params == 2 * 64 + 64 * 128 + 2 * 128 + 128 * 32 * 9 == 45_440
    assert [s.shape[0] for s in a.steps] == [32] * 6


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("wide", 8, 8), "Unknown block"),
        (("basic", 0, 8), "Channels"),
        (("basic", 8, 8, 3), "stride"),
        (("bottleneck", 8, 10), "multiple of 4"),
        (("dense", 8, 8, 2), "keeps the size"),
        (("inverted", 8, 8, 1, 20), "expansion"),
    ],
)
def test_impossible_blocks_are_refused(args: tuple, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        build_block(*args)

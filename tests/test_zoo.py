"""cnnlab.zoo: published parameter counts and multiply-adds, torchvision's names, LeNet-5's C3."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab import zoo

# torchvision's model cards (acc / params / GFLOPS, where its "GFLOPS" are multiply-adds) and the
# papers: MobileNet V1 1.0-224 is 4.2 M parameters and 569 M mult-adds (Howard et al. 2017,
# Table 8); LeNet-5 has 60,000 trainable parameters in C1–F6 (LeCun et al. 1998, section II.B).
PUBLISHED_PARAMS = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
}
PUBLISHED_GMACS = {
    "alexnet": "0.714",
    "vgg16": "15.47",
    "resnet18": "1.814",
    "resnet50": "4.089",
    "mobilenet_v2": "0.301",
}


def _meta(name: str, num_classes: int = 1000) -> nn.Module:
    with torch.device("meta"):
        return zoo.build(name, num_classes)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _torch_macs(name: str) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        _meta(name)(torch.empty(1, *zoo.INPUT_SHAPES[name], device="meta"))
    return counter.get_total_flops() // 2  # FlopCounterMode counts a multiply-add as 2 FLOPs


def test_names_are_the_public_list() -> None:
    assert zoo.NAMES == (
        "lenet5",
        "alexnet",
        "vgg16",
        "resnet18",
        "resnet50",
        "mobilenet_v1",
        "mobilenet_v2",
        "textbook",
    )
    assert set(zoo.INPUT_SHAPES) == set(zoo.NAMES)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_counts_equal_the_published_ones(name: str) -> None:
    assert _params(_meta(name)) == PUBLISHED_PARAMS[name]


def test_mobilenet_v1_is_4_2_million_parameters_and_569_million_multiply_adds() -> None:
    assert round(_params(_meta("mobilenet_v1")) / 1e6, 1) == 4.2
    assert round(_torch_macs("mobilenet_v1") / 1e6) == 569


def test_lenet5_has_the_papers_60000_trainable_parameters_before_its_output_layer() -> None:
    model = _meta("lenet5", 10)
    assert _params(model[:-1]) == 60_000
    assert _params(model) == 60_000 + 84 * 10 + 10
    c3 = model[4]
    assert _params(c3) == 1_516  # Table I: 60 of the 96 input-map/output-map pairs, + 16 biases


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_multiply_adds_at_224_equal_the_published_figures(name: str) -> None:
    digits = len(PUBLISHED_GMACS[name].split(".")[1])
    assert f"{_torch_macs(name) / 1e9:.{digits}f}" == PUBLISHED_GMACS[name]


def test_textbook_network_matches_the_primer() -> None:
    model = zoo.build("textbook", 10)
    x = torch.randn(2, 3, 32, 32)
    assert model[:7](x).shape == (2, 2048)
    assert model(x).shape == (2, 10)
    assert _params(model) == (3 * 9 * 16 + 16) + (16 * 9 * 32 + 32) + (2048 * 128 + 128) + 1290


@pytest.mark.parametrize("name", ["lenet5", "textbook", "mobilenet_v2", "resnet18"])
def test_small_real_forward_pass_gives_class_scores(name: str) -> None:
    torch.manual_seed(0)
    c, h, _ = zoo.INPUT_SHAPES[name]
    side = min(h, 64) if name.startswith(("resnet", "mobilenet")) else h
    model = zoo.build(name, 7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, c, side, side))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_resnet18_uses_torchvisions_state_dict_keys_and_shapes() -> None:
    sd = _meta("resnet18").state_dict()
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_var": (64,),
        "bn1.num_batches_tracked": (),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer1.1.bn2.bias": (64,),
        "layer2.0.conv1.weight": (128, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_mean": (128,),
        "layer4.1.conv2.weight": (512, 512, 3, 3),
        "fc.weight": (1000, 512),
        "fc.bias": (1000,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith("layer1.0.downsample") for k in sd)
    # conv1 + bn1 (5 entries), 8 blocks of 2 conv + 2 BN, 3 downsamples (conv + BN), fc.
    assert len(sd) == 1 + 5 + 8 * (2 + 2 * 5) + 3 * (1 + 5) + 2


def test_resnet50_bottlenecks_use_torchvisions_names() -> None:
    sd = _meta("resnet50").state_dict()
    assert tuple(sd["layer1.0.conv3.weight"].shape) == (256, 64, 1, 1)
    assert tuple(sd["layer1.0.downsample.0.weight"].shape) == (256, 64, 1, 1)
    assert tuple(sd["layer3.5.bn3.weight"].shape) == (1024,)
    assert tuple(sd["layer4.0.conv2.weight"].shape) == (512, 512, 3, 3)  # stride on the 3×3
    assert tuple(sd["fc.weight"].shape) == (1000, 2048)


def test_mobilenet_v2_uses_torchvisions_state_dict_keys_and_shapes() -> None:
    sd = _meta("mobilenet_v2").state_dict()
    expected = {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.0.1.running_mean": (32,),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),  # t = 1: depthwise first
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.1.conv.2.weight": (16,),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),  # t = 6: expand, depthwise, project
        "features.2.conv.1.0.weight": (96, 1, 3, 3),
        "features.2.conv.2.weight": (24, 96, 1, 1),
        "features.2.conv.3.num_batches_tracked": (),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "features.19.0.weight" not in sd


def test_alexnet_and_vgg16_use_torchvisions_indices() -> None:
    alex = _meta("alexnet").state_dict()
    assert tuple(alex["features.10.weight"].shape) == (256, 256, 3, 3)
    assert tuple(alex["classifier.1.weight"].shape) == (4096, 9216)
    assert tuple(alex["classifier.6.weight"].shape) == (1000, 4096)
    vgg = _meta("vgg16").state_dict()
    assert tuple(vgg["features.28.weight"].shape) == (512, 512, 3, 3)
    assert tuple(vgg["classifier.0.weight"].shape) == (4096, 25088)
    assert tuple(vgg["classifier.6.weight"].shape) == (1000, 4096)


def test_a_state_dict_round_trips_with_strict_loading() -> None:
    torch.manual_seed(1)
    source = zoo.build("mobilenet_v2", 10).eval()
    target = zoo.build("mobilenet_v2", 10).eval()
    target.load_state_dict(source.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x))


def test_partial_conv_equals_a_full_conv_with_the_missing_connections_zeroed() -> None:
    torch.manual_seed(2)
    c3 = zoo.PartialConv(zoo.LENET_C3_TABLE, 5)
    full = torch.zeros(16, 6, 5, 5)
    bias = torch.zeros(16)
    for conv, gather in zip(c3.convs, c3.gathers, strict=True):
        size = conv.in_channels // conv.out_channels
        for group in range(conv.out_channels):
            inputs = gather[group * size : (group + 1) * size]
            j = zoo.LENET_C3_TABLE.index(tuple(inputs))
            full[j, inputs] = conv.weight[group].detach()
            bias[j] = conv.bias[group].detach()
    x = torch.randn(3, 6, 14, 14)
    torch.testing.assert_close(c3(x), nn.functional.conv2d(x, full, bias))
    assert int((full.abs().sum((2, 3)) > 0).sum()) == 60


def test_bad_names_and_class_counts_are_refused_in_words() -> None:
    with pytest.raises(ValueError, match="Unknown architecture 'resnet19'"):
        zoo.build("resnet19")
    with pytest.raises(ValueError, match="classes"):
        zoo.build("lenet5", 0)


def test_published_table_covers_every_name_and_matches_the_counts() -> None:
    assert set(zoo.PUBLISHED) == set(zoo.NAMES)
    for name, pub in zoo.PUBLISHED.items():
        if pub.params and pub.params[0].isdigit() and "(" not in pub.params:
            assert int(pub.params.replace(",", "")) == _params(_meta(name)), name
        if pub.gmacs:
            digits = len(pub.gmacs.split(".")[1])
            assert f"{_torch_macs(name) / 1e9:.{digits}f}" == pub.gmacs, name


@pytest.mark.parametrize(
    ("name", "entries"),
    # torchvision's state_dict sizes: AlexNet and VGG-16 are weight + bias per layer (8 and 16
    # layers); the ResNets and MobileNet V2 have bias-free convs (53 / 20 / 52 of them) with 5
    # entries per batch norm (weight, bias, running mean and variance, num_batches_tracked).
    [("alexnet", 16), ("vgg16", 32), ("resnet18", 122), ("resnet50", 320), ("mobilenet_v2", 314)],
)
def test_state_dicts_have_torchvisions_number_of_entries(name: str, entries: int) -> None:
    assert len(_meta(name).state_dict()) == entries

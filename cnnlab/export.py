"""Export a run as one standalone PyTorch script that reproduces it (torch + numpy only).

The script holds a model class written out layer by layer from the spec (an ``nn.Sequential``
subclass whose layers carry the same names as the app's, so the run's weights load into it), the
data set's loader (IDX and CIFAR readers inline, or the embedded shapes generator inline), and a
plain training loop with the run's hyper-parameters. Learners can read it top to bottom and run
it without CNN Lab.
"""

from __future__ import annotations

import inspect
import pprint
import textwrap
from typing import Any

import torch
from torch import nn

_HEADER = '''#!/usr/bin/env python3
"""{title}

Exported from CNN Lab (run {run_id}). Needs only PyTorch and NumPy:

    python {filename} --data-dir DIR        # train with the run's settings
    python {filename} --max-steps 20        # a quick check

{data_help}
"""

import argparse
import gzip
import math
import os
import pickle
import struct
import time

import numpy as np
import torch
from torch import nn

CONFIG = {config}
DATASET = {dataset!r}
'''


def module_code(module: nn.Module) -> str:
    """Python source that constructs ``module`` (one of the layers a spec can build)."""
    if isinstance(module, nn.Conv2d):
        padding = module.padding if isinstance(module.padding, str) else module.padding[0]
        return (
            f"nn.Conv2d({module.in_channels}, {module.out_channels}, "
            f"kernel_size={module.kernel_size[0]}, stride={module.stride[0]}, "
            f"padding={padding!r}, dilation={module.dilation[0]}, groups={module.groups}, "
            f"bias={module.bias is not None})"
        )
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        return f"nn.{type(module).__name__}({module.num_features})"
    if isinstance(module, nn.LeakyReLU):
        return f"nn.LeakyReLU({module.negative_slope!r})"
    if isinstance(module, nn.ReLU | nn.GELU | nn.Tanh | nn.Sigmoid | nn.Flatten | nn.Identity):
        return f"nn.{type(module).__name__}()"
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        return (
            f"nn.{type(module).__name__}(kernel_size={module.kernel_size!r}, "
            f"stride={module.stride!r}, padding={module.padding!r})"
        )
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        return f"nn.{type(module).__name__}({module.output_size!r})"
    if isinstance(module, nn.Dropout):
        return f"nn.Dropout({module.p!r})"
    if isinstance(module, nn.Linear):
        return (
            f"nn.Linear({module.in_features}, {module.out_features}, "
            f"bias={module.bias is not None})"
        )
    if type(module).__name__ == "ResidualBlock":
        return (
            f"ResidualBlock({module.conv1.in_channels}, {module.conv1.out_channels}, "
            f"stride={module.conv1.stride[0]}"
            + ("" if isinstance(module.bn1, nn.BatchNorm2d) else ", batch_norm=False")
            + ")"
        )
    if type(module) is nn.Sequential:
        inner = ", ".join(module_code(m) for m in module)
        return f"nn.Sequential({inner})"
    raise ValueError(f"Cannot export a {type(module).__name__} layer to a script.")


def model_code(spec: Any, input_shape: tuple[int, int, int], num_classes: int) -> str:
    """Source of ``class Net(nn.Sequential)`` for ``spec`` (plus ``ResidualBlock`` if used)."""
    from cnnlab.models import ResidualBlock, build_model, summarize

    model = build_model(spec, input_shape, num_classes)
    summary = summarize(spec, input_shape, num_classes)
    lines = []
    for row, module in zip(summary, model, strict=True):
        shape = "×".join(str(n) for n in row.output_shape)
        lines.append(f"            # {row.index}: {row.description} → {shape}")
        lines.append(f"            {module_code(module)},")
    body = "\n".join(lines)
    parts = []
    if any(isinstance(m, ResidualBlock) for m in model.modules()):
        parts.append(textwrap.dedent(inspect.getsource(ResidualBlock)))
    c, h, w = input_shape
    parts.append(
        f'''class Net(nn.Sequential):
    """{spec.name}: input (B, {c}, {h}, {w}) → {num_classes} class scores."""

    def __init__(self):
        super().__init__(
{body}
        )
'''
    )
    return "\n\n".join(parts)


_IDX_LOADER = '''
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path):
    """Read an IDX file (gzipped or not) into a NumPy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte IDX file")
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)


def find(data_dir, name):
    for candidate in (name, name[:-3]):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    return None


def load_data(data_dir):
    """(train_x, train_y, test_x, test_y): uint8 images (N, 1, H, W) and int64 labels."""
    split = {}
    for part, names in IDX_FILES.items():
        paths = [find(data_dir, n) for n in names]
        if None not in paths:
            images, labels = (read_idx(p) for p in paths)
            split[part] = (images[:, None], labels.astype(np.int64))
    if "test" not in split:
        raise FileNotFoundError(f"{data_dir} holds no t10k-images/t10k-labels IDX files")
    if "train" not in split:
        # Only the test files: first 80 % train, last 20 % test, as CNN Lab does.
        images, labels = split["test"]
        cut = len(labels) * 4 // 5
        split = {"train": (images[:cut], labels[:cut]), "test": (images[cut:], labels[cut:])}
    return (*split["train"], *split["test"])
'''

_CIFAR_LOADER = '''
def _batch(path):
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")  # the CIFAR-10 python format is pickled
    return np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32), np.asarray(d[b"labels"])


def load_data(data_dir):
    """(train_x, train_y, test_x, test_y) from the CIFAR-10 python batches in data_dir."""
    parts = [_batch(os.path.join(data_dir, f"data_batch_{i}")) for i in range(1, 6)]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    test_x, test_y = _batch(os.path.join(data_dir, "test_batch"))
    return train_x, train_y, test_x, test_y.astype(np.int64)
'''

_TRAIN_LOOP = '''
def make_optimizer(model, cfg, total_steps):
    """The optimizer and per-step learning-rate schedule CNN Lab used."""
    params = model.parameters()
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(
            params, cfg["lr"], momentum=cfg.get("momentum", 0.9), nesterov=True,
            weight_decay=cfg["weight_decay"],
        )
    else:
        kind = torch.optim.AdamW if cfg["optimizer"] == "adamw" else torch.optim.Adam
        opt = kind(params, cfg["lr"], weight_decay=cfg["weight_decay"])
    if cfg["schedule"] == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg["lr"], total_steps=max(2, total_steps))
    elif cfg["schedule"] == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return opt, sched


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=".")
    parser.add_argument("--epochs", type=int, default=CONFIG["epochs"])
    parser.add_argument("--max-steps", type=int, default=CONFIG.get("max_steps"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    cfg = CONFIG
    device = torch.device(args.device)

    train_x, train_y, test_x, test_y = load_data(args.data_dir)
    # Normalise with the training set's per-channel statistics. The whole set lives on the
    # device as one tensor: indexing it with a permutation is far faster than a DataLoader.
    x = torch.tensor(train_x, dtype=torch.float32) / 255  # (N, C, H, W)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    x = ((x - mean) / std).to(device)
    y = torch.tensor(train_y, dtype=torch.int64).to(device)
    tx = ((torch.tensor(test_x, dtype=torch.float32) / 255 - mean) / std).to(device)
    ty = torch.tensor(test_y, dtype=torch.int64).to(device)

    torch.manual_seed(cfg["seed"])
    model = Net().to(device)
    batch = min(cfg["batch_size"], len(x))
    steps_per_epoch = len(x) // batch  # the ragged tail is dropped; it changes every epoch
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    opt, sched = make_optimizer(model, cfg, total)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
    step, start = 0, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(x), device=device)
        for i in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[i * batch : (i + 1) * batch]
            loss = loss_fn(model(x[idx]), y[idx])  # model(x[idx]): (B, classes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0 or step == total:
                print(f"epoch {epoch} step {step}/{total} loss {loss.item():.4f}", flush=True)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        correct = sum(
            (model(tx[i : i + 1000]).argmax(1) == ty[i : i + 1000]).sum().item()
            for i in range(0, len(tx), 1000)
        )
    print(f"test accuracy {correct / len(tx):.4f} after {step} steps in {seconds:.1f} s")


if __name__ == "__main__":
    main()
'''


def _shapes_loader(options: dict[str, Any]) -> str:
    """The embedded shapes generator, inlined from :mod:`cnnlab.data`, as ``load_data``."""
    from cnnlab import data

    limit = options.get("limit")
    n_train, n_test = (6000, 1000) if limit is None else (limit, max(1, min(1000, limit)))
    helpers = [
        textwrap.dedent(inspect.getsource(f))
        for f in (data._star, data._shape_masks, data._render_shapes)
    ]
    return "\n\n".join(
        [
            f"SHAPE_CLASSES = {tuple(data.SHAPE_CLASSES)!r}",
            *helpers,
            f'''def load_data(data_dir):
    """The shapes set, generated exactly as CNN Lab does (data_dir is unused)."""
    n_train, n_test, seed, size = {n_train}, {n_test}, {options.get("seed", 0)}, 28
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_train + n_test) % len(SHAPE_CLASSES))
    images = _render_shapes(labels, rng, size)[:, None]  # (N, 1, H, W)
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]''',
        ]
    )


def export_script(run: Any) -> str:
    """The standalone training script for a stored run (:class:`cnnlab.runs.Run`)."""
    from cnnlab.models import ModelSpec

    spec = ModelSpec.from_dict(run.spec)
    input_shape = tuple(int(n) for n in run.meta["input_shape"])
    num_classes = int(run.meta["num_classes"])
    dataset = run.dataset
    if dataset in ("mnist", "fashion_mnist", "kmnist"):
        loader = _IDX_LOADER
        data_help = (
            "--data-dir must hold the four IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)."
        )
    elif dataset == "cifar10":
        loader = _CIFAR_LOADER
        data_help = "--data-dir must hold the CIFAR-10 python batches (data_batch_1…5, test_batch)."
    elif dataset == "shapes":
        loader = _shapes_loader(run.meta.get("data_options", {}))
        data_help = "The shapes data set is generated by the script itself."
    else:
        raise ValueError(
            f"Runs on the {dataset!r} data set cannot be exported as a script yet: only the "
            f"built-in data sets can be re-created without the app."
        )
    config = pprint.pformat(dict(run.config), sort_dicts=False)
    header = _HEADER.format(
        title=f"Train {spec.name} on {dataset} as in CNN Lab run {run.run_id}.",
        run_id=run.run_id,
        filename=f"cnnlab_run_{run.run_id}.py",
        data_help=data_help,
        config=config,
        dataset=dataset,
    )
    return (
        "\n\n".join(
            [
                header,
                model_code(spec, input_shape, num_classes),
                loader.strip(),
                _TRAIN_LOOP.strip(),
            ]
        ).rstrip()
        + "\n"
    )


# --- famous architectures: their own definitions from cnnlab.zoo, as a standalone file --------
def _zoo_parts(name: str) -> list[Any]:
    from cnnlab import zoo

    resnet = [zoo._downsample, zoo.BasicBlock, zoo.Bottleneck, zoo.ResNet]
    parts: dict[str, list[Any]] = {
        "lenet5": [zoo.ScaledTanh, zoo.Subsampling, zoo.PartialConv, zoo.lenet5],
        "alexnet": [zoo.AlexNet],
        "vgg16": [zoo.VGG],
        "resnet18": [*resnet, zoo.resnet18],
        "resnet50": [*resnet, zoo.resnet50],
        "mobilenet_v1": [zoo.conv_bn_act, zoo.DepthwiseSeparable, zoo.MobileNetV1],
        "mobilenet_v2": [zoo.conv_bn_act, zoo.InvertedResidual, zoo.MobileNetV2],
        "textbook": [zoo.textbook],
    }
    return parts[name]


def architecture_code(name: str, num_classes: int) -> str:
    """A standalone script that builds ``cnnlab.zoo.build(name, num_classes)`` with plain torch:
    the very definitions the app counts, so the script's model is the app's model."""
    from cnnlab import zoo

    with torch.device("meta"):  # refuses unknown names and bad class counts, allocating nothing
        zoo.build(name, num_classes)
    sources = [textwrap.dedent(inspect.getsource(part)) for part in _zoo_parts(name)]
    table = ""
    if name == "lenet5":
        rows = "".join(f"    {inputs!r},\n" for inputs in zoo.LENET_C3_TABLE)
        table = f"LENET_C3_TABLE = (\n{rows})\n\n\n"
    builder = {"alexnet": "AlexNet", "vgg16": "VGG", "mobilenet_v1": "MobileNetV1"}
    builder |= {"mobilenet_v2": "MobileNetV2"}
    call = f"{builder.get(name, name)}(num_classes={num_classes})"
    c, h, w = zoo.INPUT_SHAPES[name]
    return (
        f'"""{name}, as CNN Lab defines and counts it. Run: python {name}.py"""\n\n'
        "from __future__ import annotations\n\nimport torch\nfrom torch import nn\n\n\n"
        + table
        + "\n\n".join(sources)
        + f"\n\nmodel = {call}\n\n"
        'if __name__ == "__main__":\n'
        f"    print(sum(p.numel() for p in model.parameters()), 'parameters')\n"
        f"    print(model.eval()(torch.zeros(1, {c}, {h}, {w})).shape)\n"
    )

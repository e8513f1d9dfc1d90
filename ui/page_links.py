"""Which settings each page keeps and puts in its link, in one place (keyed by ``url_path``).

A link such as ``/convolution?kernel=laplacian&stride=2`` opens that page with those settings.
Each :class:`Setting` names a widget by its session-state key and repeats its default and its
range: ``tests/test_url_state.py`` checks both against the widget on a freshly rendered page,
so a widget whose range or default changes fails a test instead of silently breaking links.
Only settings a teacher would send are listed: no uploads, no run ids, no step-by-step cursors.
A :class:`~ui.link_codec.Place` (a layer of the stack, a neuron) has a range that depends on
other settings: the page clamps it. A :class:`~ui.layer_rows.Stack` is a stack editor's rows.
"""

from __future__ import annotations

from cnnlab import arithmetic, conv, kernels
from cnnlab.blocks import KINDS as BLOCK_KINDS
from cnnlab.bundled import BUNDLED
from cnnlab.choices import LANDSCAPES
from cnnlab.conv_variants import KERNELS_1D, KERNELS_3D, MAX_CHANNELS, SIGNALS, VARIANTS
from cnnlab.data import DATASETS, SHAPE_CLASSES
from cnnlab.gradient_flow import MAX_DEPTH
from cnnlab.images import PATTERNS, SAMPLES
from cnnlab.invariance import DIRECTIONS, SHIFT_MODES
from cnnlab.models import KINDS as MODEL_KINDS
from cnnlab.models import PRESETS as MODEL_PRESETS
from cnnlab.pooling import KINDS as POOL_KINDS
from cnnlab.receptive_field import KINDS as RF_KINDS
from cnnlab.receptive_field import PRESETS as RF_PRESETS
from cnnlab.receptive_field import Preset
from cnnlab.zoo import NAMES as ZOO_NAMES
from ui import training
from ui.explanations import BASELINES, METHODS
from ui.explorer_models import CLASSIC, IMAGENET
from ui.layer_rows import Column, RowFormat, Stack, named_stacks
from ui.link_codec import Choice, Flag, Place, Real, Setting, Whole, token
from ui.zoo import SIDES as ZOO_SIDES

# What the image picker can share: a bundled sample or a generated pattern (never an upload,
# a photo or a drawing, which exist only in the learner's browser session).
PATTERN_SIZES = (16, 32, 64, 128, 256)


def image(prefix: str, default_sample: str = "astronaut", draw: bool = True) -> tuple[Setting, ...]:
    """The shareable part of ``image_picker(prefix)``: source, sample, pattern and its size."""
    sources = ("Sample", "Pattern", "Upload", "Camera", *(("Draw",) if draw else ()))
    return (
        Choice("source", f"{prefix}.source", "Sample", options=sources, private=sources[2:]),
        Choice("sample", f"{prefix}.sample", default_sample, options=tuple(SAMPLES)),
        Choice("pattern", f"{prefix}.pattern", next(iter(PATTERNS)), options=tuple(PATTERNS)),
        Choice("pattern_size", f"{prefix}.pattern_size", 128, options=PATTERN_SIZES),
    )


_TRAIN = training.default_config()
EXPLORER_MODELS = (*(f"bundled:{name}" for name in BUNDLED), CLASSIC, IMAGENET)


def rf_rows(preset: Preset) -> list[dict]:
    """The receptive-field stack editor's rows of a preset (square kernels, as presets use)."""
    return [
        {
            "name": layer.name,
            "kind": layer.kind,
            "kernel": layer.kernel[0],
            "stride": layer.stride[0],
            "padding": layer.padding[0],
            "dilation": layer.dilation[0],
            "channels": layer.channels,
        }
        for layer in preset.layers
    ]


# The receptive-field stack editor's rows: ``conv.k3.p1.c8~conv1,relu~relu1,maxpool.k2.s2``.
RF_ROWS = RowFormat(
    kinds=RF_KINDS,
    columns=(
        Column("k", "kernel", 1),
        Column("s", "stride", 1),
        Column("p", "padding", 0),
        Column("d", "dilation", 1),
        Column("c", "channels"),
    ),
)
_RF_FIRST = next(iter(RF_PRESETS.values()))
RF_STACK = Stack(
    "stack",
    "rf.stack",
    token(_RF_FIRST.name),
    rows=RF_ROWS,
    named=named_stacks({name: rf_rows(p) for name, p in RF_PRESETS.items()}, RF_ROWS),
)
# The arithmetic page's chain of layers: ``conv.o16.k3.psame,relu,max_pool.k2,flatten,…``.
CHAIN_ROWS = RowFormat(
    kinds=arithmetic.CHAIN_KINDS,
    columns=(
        Column("o", "out"),
        Column("k", "kernel", 1),
        Column("s", "stride"),
        Column("p", "padding", "0", form="text"),
        Column("d", "dilation", 1),
    ),
    kind_column="layer",
    name_column=None,
)
TEXTBOOK_ROWS = [
    {"layer": layer.kind, "out": layer.out, "kernel": layer.kernel, "stride": layer.stride,
     "padding": str(layer.padding), "dilation": layer.dilation}
    for layer in arithmetic.TEXTBOOK_CHAIN
]  # fmt: skip
CHAIN = Stack(
    "chain",
    "arith.chain",
    "textbook",
    rows=CHAIN_ROWS,
    named=named_stacks({"textbook": TEXTBOOK_ROWS}, CHAIN_ROWS),
)


# The zoo's own stack (the Train page's layer editor): ``conv.o32.k5,relu,maxpool,dropout.r0_25``.
# Blank cells and a kind's own defaults are left out; the preset travels as ``preset``.
def _model_defaults() -> tuple[tuple[str, tuple[tuple[str, object], ...]], ...]:
    """Each kind's defaults, as the editor shows them for a layer of that kind left as it is."""
    from cnnlab.models import KINDS, LayerSpec, ModelSpec

    defaults = []
    for row in training.spec_rows(ModelSpec(tuple(LayerSpec(k) for k in KINDS))).to_dict("records"):
        kind = row.pop("kind")
        # Blank cells (None, or NaN in a number column: NaN is not equal to itself) are left out.
        defaults.append((kind, tuple((c, v) for c, v in row.items() if v is not None and v == v)))
    return tuple(defaults)


MODEL_ROWS = RowFormat(
    kinds=MODEL_KINDS,
    columns=(
        Column("o", "out"),
        Column("k", "kernel"),
        Column("s", "stride"),
        Column("p", "padding", form="text"),
        Column("d", "dilation"),
        Column("g", "groups"),
        Column("r", "p", form="real"),  # dropout's rate (p is the padding's letter)
        Column("b", "bias", form="flag"),
    ),
    name_column=None,
    by_kind=_model_defaults(),
)
ZOO_STACK = Stack("stack", "zoo.stack.rows", "", rows=MODEL_ROWS)
TRAIN_STACK = Stack("stack", "train.model.rows", "", rows=MODEL_ROWS)  # the Train page's own

# Parameters a page reads itself and the link keeps as they are: a shared experiment's run id
# (ui.experiments.SHARE_PARAM) on the three labs that train experiments.
PASSED_THROUGH: dict[str, tuple[str, ...]] = {
    page: ("experiment",) for page in ("residual", "choices", "detection")
}

PAGE_SETTINGS: dict[str, tuple[Setting, ...]] = {
    "home": (),
    "convolution": (
        *image("conv.image"),
        Choice("kernel", "conv.kernel", "Sobel x", options=(*kernels.PRESET_NAMES, "Custom…")),
        Choice("size", "conv.kernel_size", 3, options=(3, 5, 7)),
        Real("sigma", "conv.sigma", 1.0, low=0.3, high=3.0, step=0.1),
        Choice("channels", "conv.layout", next(iter(conv.LAYOUTS)), options=tuple(conv.LAYOUTS)),
        Whole("stride", "conv.stride", 1, low=1, high=8),
        Whole("dilation", "conv.dilation", 1, low=1, high=5),
        Choice("padding", "conv.padding", "same", options=("valid", "same", "number")),
        Choice("padding_mode", "conv.padding_mode", "zeros", options=conv.PADDING_MODES),
        Whole("padding_cells", "conv.padding_cells", 1, low=0, high=20),
        Real("bias", "conv.bias", 0.0, low=-255.0, high=255.0),
        Flag("relu", "conv.relu", False),
        Flag("flip", "conv.flip", False),
    ),
    "arithmetic": (
        Choice(
            "op", "arith.op", "conv", options=("conv", "conv_transpose", "max_pool", "avg_pool")
        ),
        Choice("dims", "arith.ndim", 2, options=(1, 2, 3)),
        # 1-D inputs are a row: their length is the width (ui.arithmetic.AXIS_KEYS).
        Whole("height", "arith.size.height", 28, low=0, high=1024),
        Whole("width", "arith.size.width", 28, low=0, high=1024),
        Whole("depth", "arith.size.depth", 28, low=0, high=1024),
        Whole("kernel", "arith.kernel.all", 5, low=-16, high=64),
        Whole("stride", "arith.stride.all", 2, low=-16, high=64),
        Whole("padding", "arith.padding.all", 1, low=-16, high=64),
        Whole("dilation", "arith.dilation.all", 1, low=-16, high=64),
        Flag("ceil", "arith.ceil_mode", False),
        # A question is its difficulty and seed: a teacher sends "this question".
        Choice(
            "quiz",
            "arith.quiz.difficulty",
            arithmetic.DIFFICULTIES[0],
            options=arithmetic.DIFFICULTIES,
        ),
        Whole("question", "arith.quiz.seed", 1, low=0, high=10**9),
        CHAIN,
        Whole("chain_c", "arith.chain.channels", 3, low=1, high=64),
        Whole("chain_h", "arith.chain.height", 32, low=1, high=512),
        Whole("chain_w", "arith.chain.width", 32, low=1, high=512),
    ),
    "pooling": (
        Choice("kind", "pool.kind", "max", options=POOL_KINDS),
        Whole("window", "pool.window", 2, low=1, high=6),
        Whole("stride", "pool.stride", 2, low=1, high=6),
        Whole("padding", "pool.padding", 0, low=0, high=3),
        Whole("dilation", "pool.dilation", 1, low=1, high=3),
        Flag("ceil", "pool.ceil", False),
        Flag("count_pad", "pool.count_pad", True),
        Choice("p", "pool.p", 2, options=(1, 2, 3, 4, 8)),
        Whole("seed", "pool.seed", 0, low=0, high=9_999),
        *image("pool.image"),
        Choice("side", "pool.side", 64, options=(32, 48, 64, 96, 128)),
        Choice("shift", "pool.shift_dir", "right", options=tuple(DIRECTIONS)),
        Choice("shift_mode", "pool.shift_mode", "crop", options=SHIFT_MODES),
        Whole("max_shift", "pool.max_shift", 6, low=1, high=12),
    ),
    "receptive_field": (
        *image("rf.image"),
        RF_STACK,
        Whole("size", "rf.size", _RF_FIRST.input_size, low=1, high=512),
        # Layers are counted from 1 on the page; the neuron's row and column from 0 (sliders).
        # Their defaults (the last layer, its centre) depend on the stack: the page chooses.
        Place("layer", "rf.layer", None, low=1, high=64, first=1),
        Place("row", "rf.row", None, low=0, high=4096),
        Place("col", "rf.col", None, low=0, high=4096),
        # The 1-D tree: its input length (the page starts at 16, or the input size if smaller)
        # and the cell of the chosen layer (the centre one unless the link says).
        Whole("tree", "rf.tree_size", 16, low=4, high=48),
        Place("cell", "rf.cell", None, low=0, high=48),
    ),
    "train": (
        Choice("data", "train.data.name", DATASETS[0], options=DATASETS),
        Whole("images", "train.data.limit", 0, low=0, high=60_000),
        Whole("epochs", "train.hp.epochs", int(_TRAIN["epochs"]), low=1, high=50),
        Choice(
            "batch",
            "train.hp.batch_size",
            int(_TRAIN["batch_size"]),
            options=training.BATCH_SIZES,
        ),
        Choice(
            "optimizer", "train.hp.optimizer", _TRAIN["optimizer"], options=("sgd", "adam", "adamw")
        ),
        Choice(
            "schedule",
            "train.hp.schedule",
            _TRAIN["schedule"],
            options=("constant", "cosine", "onecycle"),
        ),
        Whole("seed", "train.hp.seed", int(_TRAIN["seed"]), low=0, high=2**31 - 1),
        Choice("preset", "train.model.preset", "fast", options=tuple(MODEL_PRESETS)),
        TRAIN_STACK,  # the preset's rows as edited (nothing while they are the preset's)
        # Number boxes keep what is typed (their step is only the +/- buttons'): no grid here.
        Real("lr", "train.hp.lr", float(_TRAIN["lr"]), low=1e-5, high=1.0),
        Real("decay", "train.hp.weight_decay", float(_TRAIN["weight_decay"]), low=0.0, high=1.0),
        Real(
            "smoothing",
            "train.hp.label_smoothing",
            float(_TRAIN["label_smoothing"]),
            low=0.0,
            high=0.5,
        ),
        Flag("augment", "train.hp.augment", bool(_TRAIN["augment"])),
        Whole("patience", "train.hp.early_stopping", 0, low=0, high=50),
        # The toggle alone: the widgets it set travel as themselves (a learner may have changed
        # one since), so the link holds exactly what the page shows; the toggle adds the tuned
        # settings without a widget (the preset's augmentation shift).
        Flag("tuned", "train.hp.tuned", False),
    ),
    "activations": (
        *image("norm.image", default_sample="camera", draw=False),
        Real("slope", "norm.act.slope", 0.1, low=0.0, high=1.0, step=0.05),
        Real("temperature", "norm.softmax.t", 1.0, low=0.1, high=10.0, step=0.1),
        Whole("batch", "norm.bn.batch", 8, low=1, high=16),
        Real("gamma", "norm.bn.gamma", 1.0, low=0.0, high=3.0, step=0.1),
        Real("beta", "norm.bn.beta", 0.0, low=-2.0, high=2.0, step=0.1),
        Real("dropout", "norm.dropout.p", 0.5, low=0.0, high=0.9, step=0.05),
        Whole("mask_seed", "norm.dropout.seed", 0, low=0, high=1000),
    ),
    "choices": (
        Whole("classes", "ch.classes", 3, low=2, high=10),
        Choice(
            "moving", "ch.moving", "the true class", options=("the true class", "a wrong class")
        ),
        Choice("landscape", "ch.landscape", next(iter(LANDSCAPES)), options=tuple(LANDSCAPES)),
        Choice("sgd_lr", "ch.sgd_lr", 1e-3, options=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
        Choice("adaptive_lr", "ch.adaptive_lr", 3e-2, options=(1e-3, 3e-3, 1e-2, 3e-2, 0.1)),
        Whole("steps", "ch.steps", 200, low=10, high=500, step=10),
        Whole("shift", "ch.shift", 2, low=0, high=6),
        Flag("flip", "ch.flip", True),
    ),
    "zoo": (
        Choice("arch", "zoo.arch", "resnet18", options=ZOO_NAMES),
        # A side other than ResNet-18's 224 is in the link (another network's designed size too).
        Choice("side", "zoo.side", 224, options=ZOO_SIDES),
        Whole("mlp_c", "zoo.mlp.c", 3, low=1, high=16),
        Whole("mlp_h", "zoo.mlp.h", 224, low=4, high=1024),
        Whole("mlp_w", "zoo.mlp.w", 224, low=4, high=1024),
        Whole("hidden", "zoo.mlp.hidden", 1000, low=1, high=100_000),
        Whole("filters", "zoo.mlp.filters", 64, low=1, high=4096),
        Whole("mlp_kernel", "zoo.mlp.kernel", 3, low=1, high=11),
        Choice("preset", "zoo.stack.preset", "fast", options=tuple(MODEL_PRESETS)),
        ZOO_STACK,  # the preset's rows as edited (nothing while they are the preset's)
        Whole("stack_c", "zoo.stack.c", 1, low=1, high=16),
        Whole("stack_h", "zoo.stack.h", 28, low=4, high=512),
        Whole("stack_w", "zoo.stack.w", 28, low=4, high=512),
        Whole("classes", "zoo.stack.classes", 10, low=2, high=1000),
    ),
    "conv_variants": (
        Whole("c_in", "variants.c_in", 256, low=1, high=MAX_CHANNELS),
        Whole("c_out", "variants.c_out", 256, low=1, high=MAX_CHANNELS),
        Choice("kernel", "variants.kernel", 3, options=(1, 3, 5, 7, 9, 11)),
        Whole("groups", "variants.groups", 4, low=1, high=32),
        Choice("variant", "variants.pick", VARIANTS[0], options=VARIANTS),
        *image("variants.image", default_sample="cat", draw=False),
        Choice("image_variant", "variants.image_variant", VARIANTS[0], options=VARIANTS),
        Choice("signal", "variants.1d.signal", SIGNALS[0], options=SIGNALS),
        Choice("kernel_1d", "variants.1d.kernel", KERNELS_1D[0], options=KERNELS_1D),
        Choice("kernel_3d", "variants.3d.kernel", KERNELS_3D[0], options=KERNELS_3D),
    ),
    "explorer": (
        # The networks every server has (a learner's own runs stay private to them).
        Choice("model", "explorer.model", f"bundled:{BUNDLED[0]}", options=EXPLORER_MODELS),
        *image("explorer.image", default_sample="digit"),
        Real("temperature", "explorer.temperature", 1.0, low=0.1, high=10.0, step=0.1),
        Flag("every", "explorer.every", True),
        # Positions from 0 (a sequential network's layers are named so); the channel shown
        # first is the layer's top one (for this image: the page chooses).
        Place("layer", "explorer.layer", 0, low=0, high=999),
        Place("channel", "explorer.channel", None, low=0, high=9999),
        Choice("method", "explorer.method", METHODS[0], options=METHODS),
        # The explanation's class (the predicted one unless the link says), Grad-CAM's layer
        # (a position as above, the last with a grid unless the link says), the methods' own
        # parameters, and the map's opacity. The occlusion window's range is the network's
        # input size: the page checks it.
        Place("class", "explorer.class", None, low=0, high=9999),
        Place("cam_layer", "explorer.cam_layer", None, low=0, high=999),
        Whole("samples", "explorer.sg_samples", 16, low=4, high=64),
        Real("noise", "explorer.sg_noise", 0.15, low=0.05, high=0.5, step=0.05),
        Choice(
            "baseline",
            "explorer.ig_baseline",
            BASELINES[0],
            options=BASELINES,
            words=("black", "blurred", "average"),
        ),
        Place("window", "explorer.occ_window", None, low=1, high=512),
        Place("stride", "explorer.occ_stride", None, low=1, high=512),
        Real("opacity", "explorer.opacity", 0.6, low=0.0, high=1.0, step=0.05),
        Choice("attack", "explorer.attack", "FGSM", options=("FGSM", "PGD")),
        Real("epsilon", "explorer.epsilon", 4.0, low=0.0, high=32.0, step=0.5),
    ),
    "residual": (
        Whole("depth", "res.depth", 20, low=4, high=MAX_DEPTH, step=2),
        Choice("channels", "res.width", 8, options=(4, 8, 16)),
        Whole("steps", "res.steps", 10, low=0, high=40),
        Whole("seed", "res.seed", 0, low=0, high=9999),
        Choice("block", "res.block", BLOCK_KINDS[0], options=BLOCK_KINDS),
        Choice("stride", "res.stride", 1, options=(1, 2)),
    ),
    "detection": (
        Whole("seed", "det.seed", 7, low=0, high=9999),
        Whole("objects", "det.count", 5, low=1, high=8),
        Choice("stride", "det.stride", 4, options=(1, 2, 4, 7, 14)),
        Choice("heat", "det.heat", "any object", options=("any object", *SHAPE_CLASSES)),
        Real("min_score", "det.min_score", 0.6, low=0.3, high=0.99, step=0.01),
        Real("iou", "det.iou", 0.3, low=0.0, high=1.0, step=0.05),
        Flag("snap", "det.snap", True),
    ),
}
"""Every page's shareable settings, by the page's ``url_path`` (``home`` for the home page)."""

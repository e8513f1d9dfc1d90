"""A learner's trained models, for the pages that look inside networks (feature maps, receptive
fields): list the owner's runs that have usable weights, and load one back as an ``nn.Module``.

Ownership comes from the runs store: every function takes the ``owner`` id and another owner's
run is simply not found (:class:`~cnnlab.runs.RunNotFoundError`). Weights are read with
safetensors, which holds tensors only and cannot run code.

A trained model's layers also become a receptive-field stack (:func:`receptive_field_stack`), and
:func:`stack_prefix` cuts the trained network after any row of that stack, so the effective
receptive field of the *trained* network can be measured at the same neuron as the theory's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.models import ModelSpec, SpecError, build_model
from cnnlab.receptive_field import Layer, Preset
from cnnlab.runs import ACTIVE_STATUSES, Run, RunStore, load_weights


@dataclass(frozen=True)
class TrainedRun:
    """An ended run whose weights can be loaded: what it is, what it sees and how well it did."""

    run_id: str
    name: str
    dataset: str
    status: str
    spec: ModelSpec
    input_shape: tuple[int, int, int]  # (C, H, W) of one input image
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per-channel normalisation of inputs scaled to [0, 1]
    std: tuple[float, ...]
    test_accuracy: float | None
    created_at: float

    @property
    def label(self) -> str:
        """Short name for a picker, e.g. ``fast on shapes · 3f2a1c (97.1 %)``."""
        text = f"{self.name or self.spec.name} · {self.run_id[:6]}"
        if self.test_accuracy is not None:
            text += f" ({self.test_accuracy:.1%})"
        if self.status != "finished":
            text += f", {self.status.replace('_', ' ')}"
        return text


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A trained network loaded from its run, on the CPU and in ``eval()`` mode."""

    run: TrainedRun
    model: nn.Sequential

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images ``(N, C, H, W)`` as the network saw them in training."""
        from cnnlab.data import normalize

        expected = self.run.input_shape
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"This network takes images of {'×'.join(map(str, expected))} (channels × height "
                f"× width), got a batch of shape {tuple(images.shape)}."
            )
        return normalize(images, self.run.mean, self.run.std)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, classes)`` for uint8 images ``(N, C, H, W)``."""
        return torch.softmax(self.model(self.normalize(images)), dim=1)


def _trained_run(run: Run) -> TrainedRun | None:
    """The run as a :class:`TrainedRun`, or None when its metadata is incomplete."""
    meta = run.meta
    try:
        shape = tuple(int(n) for n in meta["input_shape"])
        classes = tuple(str(c) for c in meta["classes"])
        mean = tuple(float(m) for m in meta["mean"])
        std = tuple(float(s) for s in meta["std"])
        spec = ModelSpec.from_dict(run.spec)
    except (KeyError, TypeError, ValueError):
        return None  # a worker that died before it read the data set never wrote these
    if len(shape) != 3:
        return None
    accuracy = run.final.get("test_accuracy")
    return TrainedRun(
        run.run_id,
        run.name,
        run.dataset,
        run.status,
        spec,
        shape,  # type: ignore[arg-type]
        classes,
        mean,
        std,
        None if accuracy is None else float(accuracy),
        run.created_at,
    )


def list_trained(store: RunStore, owner: str) -> list[TrainedRun]:
    """The owner's ended runs that have saved weights, newest first.

    A run that was stopped or timed out counts too: it has the weights of where it ended.
    """
    found = []
    for run in store.list_runs(owner):
        if run.status in ACTIVE_STATUSES or store.weights_path(owner, run.run_id) is None:
            continue
        trained = _trained_run(run)
        if trained is not None:
            found.append(trained)
    return found


def load_trained(store: RunStore, owner: str, run_id: str) -> TrainedModel:
    """The owner's run ``run_id`` as a network with its trained weights, in ``eval()`` mode.

    Raises :class:`~cnnlab.runs.RunNotFoundError` if the owner has no such run, and
    ``ValueError`` (with the reason) if the run has no usable weights.
    """
    run = store.get_run(owner, run_id)
    if run.status in ACTIVE_STATUSES:
        raise ValueError("This run is still training: wait until it ends to use its network.")
    path = store.weights_path(owner, run_id)
    trained = _trained_run(run)
    if path is None or trained is None:
        raise ValueError(
            "This run ended before its first epoch did, so it has no trained weights to load."
        )
    try:
        model = build_model(trained.spec, trained.input_shape, len(trained.classes))
    except SpecError as exc:
        raise ValueError(f"The network of this run cannot be rebuilt: {exc}") from exc
    from safetensors import SafetensorError

    try:
        state = load_weights(path)
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ValueError(
            f"The saved weights of this run do not fit its network or are damaged ({exc})."
        ) from exc
    return TrainedModel(trained, model.eval())


# --- receptive fields --------------------------------------------------------------------------

_POINTWISE = {
    "batchnorm": "batchnorm",
    "relu": "relu",
    "leaky_relu": "identity",
    "gelu": "identity",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "dropout": "dropout",
}
"""Model layer kinds that act on each pixel alone, as receptive-field kinds (the rest pass)."""


@dataclass(frozen=True)
class FieldStack:
    """A model's spatial layers as receptive-field rows, and where each row is in the model.

    ``sources[i]`` is ``(model layer index, part)``: part ``""`` means row ``i``'s output is that
    model layer's output; ``"conv1"`` is the first conv inside a residual block.
    """

    layers: tuple[Layer, ...]
    sources: tuple[tuple[int, str], ...]


def receptive_field_stack(spec: ModelSpec) -> FieldStack:
    """The spatial part of ``spec`` (up to flatten / global pooling / linear) as a stack.

    Residual blocks become their main path's two 3×3 convs (the shortcut sees a smaller, centred
    window, so the block's field is the main path's). Raises ``ValueError`` for a layer whose
    window the receptive-field arithmetic cannot describe.
    """
    layers: list[Layer] = []
    sources: list[tuple[int, str]] = []
    for index, layer in enumerate(spec.layers):
        p = layer.resolved()
        name = f"{index + 1} {layer.kind}"
        if layer.kind == "conv":
            k, d = int(p["kernel"]), int(p["dilation"])
            padding = p["padding"]
            if padding == "same":
                span = d * (k - 1)
                if span % 2:
                    raise ValueError(
                        f"Layer {index + 1} (conv): a {k}×{k} kernel with 'same' padding pads "
                        f"one side more than the other, which this page cannot draw."
                    )
                padding = span // 2
            elif padding == "valid":
                padding = 0
            layers.append(Layer.make("conv", k, p["stride"], padding, d, p["out_channels"], name))
            sources.append((index, ""))
        elif layer.kind in ("maxpool", "avgpool"):
            stride = p["kernel"] if p["stride"] is None else p["stride"]
            layers.append(Layer.make(layer.kind, p["kernel"], stride, p["padding"], 1, None, name))
            sources.append((index, ""))
        elif layer.kind == "residual":
            out, stride = int(p["out_channels"]), int(p["stride"])
            layers.append(Layer.make("conv", 3, stride, 1, 1, out, f"{name} conv1"))
            sources.append((index, "conv1"))
            layers.append(Layer.make("conv", 3, 1, 1, 1, out, f"{name} conv2"))
            sources.append((index, ""))
        elif layer.kind in _POINTWISE:
            layers.append(Layer.make(_POINTWISE[layer.kind], name=f"{index + 1} {layer.kind}"))
            sources.append((index, ""))
        else:  # flatten, linear, global pooling: the spatial grid (and the field) ends here
            break
    return FieldStack(tuple(layers), tuple(sources))


def stack_prefix(model: nn.Sequential, stack: FieldStack, row: int) -> nn.Sequential:
    """The trained network cut after stack row ``row`` (shares its modules, no copy)."""
    if not 0 <= row < len(stack.sources):
        raise ValueError(f"There is no row {row + 1}; the stack has {len(stack.sources)}.")
    index, part = stack.sources[row]
    if part == "conv1":
        return nn.Sequential(*model[:index], model[index].conv1)
    return nn.Sequential(*model[: index + 1])


def receptive_field_preset(trained: TrainedRun) -> Preset:
    """The trained run as a receptive-field preset: its stack at its real input size."""
    c, h, w = trained.input_shape
    if h != w:
        raise ValueError(f"This network's input is {h}×{w}; the page draws square inputs only.")
    stack = receptive_field_stack(trained.spec)
    if not stack.layers:
        raise ValueError("This network has no convolution or pooling layer before it flattens.")
    accuracy = "" if trained.test_accuracy is None else f", {trained.test_accuracy:.1%} test"
    return Preset(
        trained.label,
        h,
        c,
        stack.layers,
        f"Your network, trained on {trained.dataset} ({c}×{h}×{w} inputs{accuracy}): its "
        f"layers up to the flatten / global pooling. Rows are named by their layer number on "
        f"the Train page.",
    )

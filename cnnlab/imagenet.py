"""An ImageNet-pretrained CNN for the explorer, when its weights are on this machine.

The network itself comes from a factory (``cnnlab.zoo.build("resnet18")``, whose module names
are torchvision's), the weights from a safetensors file: at ``CNNLAB_IMAGENET_WEIGHTS``, or in
the data folder after :func:`fetch_weights` downloaded them once with a pinned SHA-256. The app
works fully without them; nothing is downloaded unless a learner asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from torch import nn

from cnnlab.runs import default_data_dir, load_weights

# torchvision's ResNet-18 ImageNet weights (BSD-3-Clause), as converted to safetensors by timm.
# The file, its size and hash are pinned to one revision of the Hugging Face repository.
WEIGHTS_URL = (
    "https://huggingface.co/timm/resnet18.tv_in1k/resolve/"
    "bbd144b3e5565108aad885f145491d11bc6ce807/model.safetensors"
)
WEIGHTS_SHA256 = "694f673df6520a3158624e8a89af086f59923ee4cd7436fe5bc3bc71d295ad81"
WEIGHTS_MB = 47
WEIGHTS_FILE = "resnet18.tv_in1k.safetensors"
MEAN = (0.485, 0.456, 0.406)  # the ImageNet statistics every torchvision model was trained with
STD = (0.229, 0.224, 0.225)
LABELS_FILE = Path(__file__).resolve().parents[1] / "assets" / "imagenet_classes.txt"


def weights_path() -> Path:
    """Where the weights are read from: ``CNNLAB_IMAGENET_WEIGHTS`` or the data folder."""
    configured = os.environ.get("CNNLAB_IMAGENET_WEIGHTS")
    return Path(configured) if configured else default_data_dir() / "models" / WEIGHTS_FILE


def labels() -> tuple[str, ...]:
    """The 1,000 ImageNet class names, in the order of the network's outputs."""
    names = tuple(LABELS_FILE.read_text().splitlines())
    if len(names) != 1000:
        raise ValueError(f"{LABELS_FILE.name} must list 1,000 classes, it lists {len(names)}.")
    return names


def load_imagenet(path: Path, factory: Callable[[], nn.Module]) -> nn.Module:
    """``factory()`` with the weights of ``path`` (every key must match), in ``eval()`` mode."""
    if not path.is_file():
        raise ValueError(f"No ImageNet weights at {path}.")
    from safetensors import SafetensorError

    model = factory()
    try:
        model.load_state_dict(load_weights(path), strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ValueError(
            f"The file {path.name} does not hold weights for this network ({exc})."
        ) from exc
    return model.eval()


def fetch_weights(
    dest: Path, url: str = WEIGHTS_URL, sha256: str = WEIGHTS_SHA256, timeout: float = 60
) -> Path:
    """Download the weights to ``dest`` once, checked against ``sha256``; return ``dest``.

    A file that does not match is deleted and ``ValueError`` says so; so does a failed download.
    """
    import pooch  # only needed when something is downloaded
    import requests

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}",
            fname=dest.name,
            path=dest.parent,
            progressbar=False,
            downloader=pooch.HTTPDownloader(timeout=timeout, progressbar=False),
        )
    except ValueError as exc:  # pooch: the hash does not match (it has removed the file)
        raise ValueError(
            "The downloaded weights do not match their pinned checksum, so they were discarded."
        ) from exc
    except (requests.RequestException, OSError) as exc:
        raise ValueError(
            f"Could not download the weights ({exc}). Check the internet connection, or put "
            f"the file at {dest}."
        ) from exc
    return dest

"""The ImageNet network's loading path, offline: a locally generated safetensors checkpoint with
the network's own key names loads strictly; the pinned-checksum download is exercised against a
local HTTP server this test starts (a good file, a tampered one, no server at all)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from cnnlab import imagenet


class StandIn(nn.Module):
    """A tiny network with ResNet-style key names (conv1, bn1, fc), for the loader's contract."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn1(self.conv1(x))).mean(dim=(2, 3)))


def _checkpoint(path, model: nn.Module) -> None:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def test_a_local_checkpoint_loads_strictly_in_eval_mode(tmp_path):
    torch.manual_seed(0)
    source = StandIn()
    _checkpoint(tmp_path / "w.safetensors", source)
    model = imagenet.load_imagenet(tmp_path / "w.safetensors", StandIn)
    assert not model.training
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(model(x), source.eval()(x))


def test_resnet18_from_the_zoo_loads_a_checkpoint_with_torchvision_key_names(tmp_path):
    zoo = pytest.importorskip("cnnlab.zoo", reason="cnnlab.zoo (the architecture zoo) not merged")
    torch.manual_seed(0)
    source = zoo.build("resnet18")
    assert "layer4.1.bn2.running_var" in source.state_dict()  # torchvision's names
    _checkpoint(tmp_path / "resnet18.safetensors", source)
    model = imagenet.load_imagenet(tmp_path / "resnet18.safetensors", lambda: zoo.build("resnet18"))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source.eval()(x))
        assert model(x).shape == (1, len(imagenet.labels()))


def test_missing_or_foreign_weights_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="No ImageNet weights"):
        imagenet.load_imagenet(tmp_path / "none.safetensors", StandIn)
    save_file({"other.weight": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="does not hold weights"):
        imagenet.load_imagenet(tmp_path / "foreign.safetensors", StandIn)
    monkeypatch.setenv("CNNLAB_IMAGENET_WEIGHTS", str(tmp_path / "x.safetensors"))
    assert imagenet.weights_path() == tmp_path / "x.safetensors"


def test_labels_are_the_thousand_imagenet_classes_in_order():
    names = imagenet.labels()
    assert len(names) == 1000
    assert names[0] == "tench"
    assert names[281] == "tabby"
    assert names[999] == "toilet tissue"


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on a free loopback port, serving ``tmp_path / "www"``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_once_and_checks_the_pinned_checksum(server, tmp_path):
    root, url = server
    torch.manual_seed(1)
    _checkpoint(root / "model.safetensors", StandIn())
    digest = hashlib.sha256((root / "model.safetensors").read_bytes()).hexdigest()
    dest = tmp_path / "models" / imagenet.WEIGHTS_FILE
    imagenet.fetch_weights(dest, f"{url}/model.safetensors", digest, timeout=10)
    assert dest.read_bytes() == (root / "model.safetensors").read_bytes()
    imagenet.load_imagenet(dest, StandIn)
    (root / "model.safetensors").unlink()  # already there: no second download
    imagenet.fetch_weights(dest, f"{url}/model.safetensors", digest, timeout=10)


def test_a_tampered_download_is_discarded(server, tmp_path):
    root, url = server
    (root / "model.safetensors").write_bytes(b"tampered")
    dest = tmp_path / "models" / imagenet.WEIGHTS_FILE
    with pytest.raises(ValueError, match="pinned checksum"):
        imagenet.fetch_weights(dest, f"{url}/model.safetensors", "0" * 64, timeout=10)
    assert not dest.exists()


def test_no_server_is_a_clear_error(server, tmp_path):
    _, url = server
    dest = tmp_path / "models" / imagenet.WEIGHTS_FILE
    with pytest.raises(ValueError, match="Could not download"):
        imagenet.fetch_weights(dest, f"{url}/missing.safetensors", "0" * 64, timeout=10)

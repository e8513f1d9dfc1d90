"""Device selection: CUDA when present, CPU otherwise, and an explicit choice is honoured."""

from __future__ import annotations

import pytest
import torch

from cnnlab.device import describe_device, pick_device


def test_auto_pick_matches_cuda_availability(monkeypatch):
    monkeypatch.delenv("CNNLAB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected


def test_auto_pick_uses_cuda_when_torch_reports_it(monkeypatch):
    monkeypatch.delenv("CNNLAB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"


def test_environment_can_pin_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("CNNLAB_DEVICE", "cpu")
    assert pick_device().type == "cpu"


@pytest.mark.parametrize("bad", ["tpu", "gpu0"])
def test_unknown_device_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="Unknown device"):
        pick_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")


def test_cpu_description_for_the_ui():
    info = describe_device(torch.device("cpu"))
    assert not info.is_gpu
    assert info.threads == torch.get_num_threads()
    assert info.label.startswith("CPU: ")
    assert info.name

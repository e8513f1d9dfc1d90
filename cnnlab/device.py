"""Pick the compute device (CUDA when present, else CPU) and describe it for the UI."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceInfo:
    """What the app computes on, in words a learner can read."""

    device: torch.device
    name: str
    is_gpu: bool
    threads: int

    @property
    def label(self) -> str:
        """One line for the UI, e.g. ``GPU: NVIDIA H100 (cuda:0)`` or ``CPU (2 threads)``."""
        if self.is_gpu:
            return f"GPU: {self.name} ({self.device})"
        return f"CPU: {self.name} ({self.threads} thread{'' if self.threads == 1 else 's'})"


def pick_device(prefer: str | None = None) -> torch.device:
    """Return ``cuda`` when a GPU is usable, else ``cpu``; ``prefer`` ("cpu"/"cuda") overrides.

    The environment variable ``CNNLAB_DEVICE`` does the same, so a teacher can pin the CPU.
    """
    choice = (prefer or os.environ.get("CNNLAB_DEVICE", "")).strip().lower()
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"Device {choice!r} was asked for, but no CUDA GPU is available here.")
    if choice.startswith("cuda"):
        return torch.device(choice)
    if choice:
        raise ValueError(f"Unknown device {choice!r}: use 'cpu' or 'cuda'.")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device: torch.device | None = None) -> DeviceInfo:
    """Describe ``device`` (default: the one :func:`pick_device` chooses)."""
    device = device if device is not None else pick_device()
    if device.type == "cuda":
        return DeviceInfo(device, torch.cuda.get_device_name(device), True, torch.get_num_threads())
    return DeviceInfo(device, _cpu_name(), False, torch.get_num_threads())


def _cpu_name() -> str:
    # /proc/cpuinfo names the processor on Linux; elsewhere the architecture is the honest answer.
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "CPU"

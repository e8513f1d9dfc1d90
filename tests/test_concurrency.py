"""Pages run in threads of one server process: what one student's page computes must not leak
into another's. Each test runs two threads against shared state the way a class does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import torch
from torch import nn

from cnnlab.activations import curve
from cnnlab.attribution import feature_maps, grad_cam
from cnnlab.models import PRESETS, _flops, build_model, summarize
from cnnlab.seeding import seeded


def _together(*jobs: Callable[[], object], rounds: int = 20) -> list[BaseException]:
    """Run each job ``rounds`` times in its own thread, all at once; return what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def loop(job: Callable[[], object]) -> None:
        start.wait()
        try:
            for _ in range(rounds):
                job()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def test_counting_flops_installs_no_process_wide_module_hooks() -> None:
    from torch.nn.modules import module as torch_module

    seen: list[int] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            hooks = torch_module._global_forward_pre_hooks, torch_module._global_forward_hooks
            seen.append(sum(len(h) for h in hooks))
            return x.sum(dim=(2, 3))

    _flops(Probe(), (3, 4, 4))
    assert seen == [0]
    # The totals are still FlopCounterMode's: 2 FLOPs per multiply-add of a linear layer.
    assert _flops(nn.Linear(5, 7, device="meta"), (5,)) == 2 * 5 * 7


def test_autograd_through_modules_survives_a_concurrent_flop_count() -> None:
    spec = PRESETS["fast"]
    errors = _together(
        lambda: summarize(spec, (1, 28, 28), 10),
        lambda: curve("gelu"),
        rounds=30,
    )
    assert not errors, errors


def _shared_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(),
                         nn.LazyLinear(3)).eval()  # fmt: skip


def test_feature_maps_of_a_shared_model_are_each_students_own() -> None:
    model = _shared_model()
    a, b = torch.zeros(1, 1, 12, 12), torch.ones(1, 1, 12, 12)
    model(a)  # materialise the lazy layer before the threads share the model
    expected = {id(x): [m for _, m in feature_maps(model, x)] for x in (a, b)}
    mismatches: list[str] = []

    def check(x: torch.Tensor) -> Callable[[], None]:
        def job() -> None:
            got = [m for _, m in feature_maps(model, x)]
            if not all(torch.equal(g, e) for g, e in zip(got, expected[id(x)], strict=True)):
                mismatches.append("feature maps of the other student's image")
            cam = grad_cam(model, x, 0, "2")
            if not torch.equal(cam, grad_cam_alone[id(x)]):
                mismatches.append("Grad-CAM of the other student's image")

        return job

    grad_cam_alone = {id(x): grad_cam(model, x, 0, "2") for x in (a, b)}
    errors = _together(check(a), check(b), rounds=40)
    assert not errors, errors
    assert not mismatches, mismatches[:3]


def test_a_seed_gives_the_same_numbers_while_another_thread_draws() -> None:
    def draws(seed: int) -> list[float]:
        with seeded(seed):
            first = torch.rand(4)
            time.sleep(0.002)  # let the other thread run between the two draws
            return [*first.tolist(), *torch.rand(4).tolist()]

    alone = {1: draws(1), 2: draws(2)}
    results: dict[int, list[list[float]]] = {1: [], 2: []}
    errors = _together(
        lambda: results[1].append(draws(1)), lambda: results[2].append(draws(2)), rounds=25
    )
    assert not errors, errors
    assert all(r == alone[1] for r in results[1])
    assert all(r == alone[2] for r in results[2])
    # Built networks follow the seed too: the same initial weights as a lone build.
    with seeded(5):
        lone = build_model(PRESETS["fast"], (1, 28, 28), 10).state_dict()
    with seeded(5):
        again = build_model(PRESETS["fast"], (1, 28, 28), 10).state_dict()
    assert all(torch.equal(lone[k], again[k]) for k in lone)

"""Experiments: their arms, reproducible curves, the worker's run through the store, sharing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cnnlab import experiments, worker
from cnnlab.experiments import EXPERIMENTS, plan
from cnnlab.runs import RunNotFoundError, SqliteRunStore

# Small convolutions run steadiest on one thread on a shared machine (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(p: experiments.Plan, steps: int = 3) -> experiments.Plan:
    """``p`` cut to a few steps per arm on a few hundred images (the arms stay what they are)."""
    arms = tuple(
        dataclasses.replace(a, config=dataclasses.replace(a.config, max_steps=steps),
                            train_images=min(a.train_images, 200))
        for a in p.arms
    )  # fmt: skip
    return dataclasses.replace(p, arms=arms, train_images=200, test_images=50)


def test_each_experiment_compares_what_it_says():
    optimisers = plan("optimizers").arms
    assert [a.config.optimizer for a in optimisers] == ["sgd", "sgd", "rmsprop", "adam", "adamw"]
    assert [a.config.momentum for a in optimisers[:2]] == [0.0, 0.9]
    assert [a.config.loss for a in plan("losses").arms] == ["ce", "bce", "mse"]
    grid = plan("lr_batch").arms
    assert {(a.config.lr, a.config.batch_size) for a in grid} == {
        (lr, b) for lr in (1e-3, 0.05, 2.0) for b in (16, 128)
    }
    residual = plan("residual").arms
    assert [a.label for a in residual] == ["plain", "plain + BN", "residual", "residual + BN"]
    assert len({a.spec.name for a in residual}) == 4
    reg = {a.label: a for a in plan("regularisation").arms}
    base = reg["baseline"]
    assert reg["augmentation (shifts, flips)"].config.augment
    assert not base.config.augment
    assert any(layer.kind == "dropout" for layer in reg["dropout 0.5"].spec.layers)
    assert reg["weight decay 0.5 (AdamW)"].config.weight_decay == 0.5
    assert reg["L1 1e-4"].config.l1 == 1e-4
    assert reg["early stopping (patience 2)"].config.early_stopping_patience == 2
    # Each arm differs from the baseline in its one choice only.
    for arm in reg.values():
        assert arm.config.seed == base.config.seed
        assert arm.train_images == base.train_images
    # Every arm of an experiment gets the experiment's seed; quick trains on fewer images.
    for name in EXPERIMENTS:
        assert {a.config.seed for a in plan(name, seed=42).arms} <= {42}
        assert plan(name, quick=True).train_images <= plan(name, quick=False).train_images


@pytest.mark.parametrize(
    ("name", "seed", "words"),
    [
        ("boosting", 0, "Unknown"),
        ("losses", -1, "seed"),
        ("losses", 10_000, "seed"),
        ("losses", 1.5, "seed"),
    ],
)
def test_bad_requests_are_explained(name, seed, words):
    with pytest.raises(ValueError, match=words):
        plan(name, seed)


def test_same_seed_same_curves_and_another_seed_other_curves():
    p = tiny(plan("optimizers", seed=5))
    data = experiments.plan_data(p)
    first = experiments.train_arms(p, data, device="cpu")
    again = experiments.train_arms(p, data, device="cpu")
    other = experiments.train_arms(tiny(plan("optimizers", seed=6)), data, device="cpu")
    assert [r.label for r in first] == [a.label for a in p.arms]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.steps[:, :3], b.steps[:, :3])  # step, loss, accuracy
    assert not np.array_equal(first[0].steps[:, 1], other[0].steps[:, 1])


@pytest.fixture
def store(tmp_path) -> SqliteRunStore:
    return SqliteRunStore(tmp_path)


class _Sched:
    """What :func:`experiments.submit` needs of a scheduler: its store, caps and a wake-up."""

    def __init__(self, store):
        from cnnlab.runs import QueueCaps

        self.store = store
        self.limits = type("L", (), {"caps": QueueCaps()})()
        self.woken = 0

    def wake(self):
        self.woken += 1


def test_the_worker_trains_a_queued_experiment_and_stores_every_arms_curves(store, monkeypatch):
    monkeypatch.setattr(
        experiments, "plan_of", lambda spec: tiny(plan(spec["experiment"], spec["seed"]))
    )
    sched = _Sched(store)
    run_id = experiments.submit(sched, "teacher", "losses", seed=3, quick=True)
    assert sched.woken == 1
    assert store.get_run("teacher", run_id).status == "queued"
    with pytest.raises(ValueError, match="already have a run"):  # one active run per browser
        experiments.submit(sched, "teacher", "optimizers", seed=3, quick=True)
    run = worker.execute(store, run_id)
    assert run.status == "finished", run.error
    assert [a["label"] for a in run.final["arms"]] == [
        "cross-entropy",
        "binary cross-entropy",
        "MSE",
    ]
    assert run.final["seed"] == 3
    curves = experiments.curves(store, run, "teacher")
    assert len(curves) == 3
    for (steps, _epochs), arm in zip(curves, run.final["arms"], strict=True):
        assert steps[:, 0].tolist() == [1.0, 2.0, 3.0]
        assert np.isfinite(steps[:, 1]).all()
        assert arm["steps"] == 3
    assert run.progress["arm"] == 2
    assert run.progress["fraction"] == pytest.approx(1.0)


def test_a_stop_request_ends_the_experiment_as_stopped(store, monkeypatch):
    monkeypatch.setattr(
        experiments, "plan_of", lambda spec: tiny(plan(spec["experiment"]), steps=50)
    )
    run_id = experiments.submit(_Sched(store), "teacher", "losses", seed=0, quick=True)
    store.request_stop("teacher", run_id)  # a queued run ends at once; claim it anyway
    store.update_status(run_id, "running")
    run = worker.execute(store, run_id)
    assert run.status == "stopped"
    assert len(run.final["arms"]) == 1  # the stop came during the first arm


def test_a_shared_run_opens_for_another_owner_and_an_unshared_one_never(backend):
    store = backend.open()
    run_id = store.create_run("teacher", dataset="shapes", config={}, spec={"experiment": "losses"})
    store.put_array(run_id, "arm0.steps", np.ones((2, 4)))
    with pytest.raises(RunNotFoundError):
        store.get_shared_run(run_id)
    with pytest.raises(RunNotFoundError):
        store.get_shared_array(run_id, "arm0.steps")
    with pytest.raises(RunNotFoundError):  # only the owner may share it
        store.set_shared("student", run_id, True)
    store.set_shared("teacher", run_id, True)
    shared = store.get_shared_run(run_id)
    assert shared.run_id == run_id
    assert shared.owner == ""
    np.testing.assert_array_equal(store.get_shared_array(run_id, "arm0.steps"), np.ones((2, 4)))
    with pytest.raises(RunNotFoundError):  # sharing opens reading, not the owner's methods
        store.get_run("student", run_id)
    store.set_shared("teacher", run_id, False)
    with pytest.raises(RunNotFoundError):
        store.get_shared_run(run_id)
    for bad in ("nope", "../../etc", ""):
        with pytest.raises(RunNotFoundError):
            store.get_shared_run(bad)


def test_the_detector_experiment_stores_its_predictions_and_held_out_map(store, monkeypatch):
    from cnnlab import single_shot

    tiny_detector = single_shot.DetectorSettings(
        train_canvases=16, held_out_canvases=6, epochs=1, batch_size=8
    )
    monkeypatch.setattr(single_shot, "QUICK", tiny_detector)
    run_id = experiments.submit(_Sched(store), "teacher", "detector", seed=1, quick=True)
    run = worker.execute(store, run_id)
    assert run.status == "finished", run.error
    assert run.final["held_out_canvases"] == 6
    assert 0.0 <= run.final["map50"] <= 1.0
    images = store.get_array("teacher", run_id, "detector.images")
    assert images.shape == (single_shot.SHOWN, single_shot.SIDE, single_shot.SIDE)
    truth = store.get_array("teacher", run_id, "detector.truth")
    held = single_shot.canvases(6, held_out=True)
    assert torch.equal(torch.from_numpy(images), held.images[: single_shot.SHOWN])  # held out
    assert len(truth) == sum(len(b) for b in held.boxes[: single_shot.SHOWN])
    ((steps, epochs),) = experiments.curves(store, run, "teacher")
    assert len(steps) == 2
    assert epochs.shape == (1, 5)


def test_a_server_step_cap_reaches_every_network_of_an_experiment(store, monkeypatch):
    # CNNLAB_MAX_STEPS (tests, a teacher's quick demo) caps each arm as it caps a Train-page run.
    monkeypatch.setattr(
        experiments, "plan_of", lambda spec: tiny(plan(spec["experiment"], spec["seed"]), steps=9)
    )
    run_id = experiments.submit(_Sched(store), "teacher", "losses", seed=3, quick=True, max_steps=4)
    assert store.get_run("teacher", run_id).config["max_steps"] == 4
    run = worker.execute(store, run_id)
    assert run.status == "finished", run.error
    for steps, _epochs in experiments.curves(store, run, "teacher"):
        assert steps[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_server_step_cap_cuts_the_detector_mid_epoch(store, monkeypatch):
    from cnnlab import single_shot

    two_epochs = single_shot.DetectorSettings(
        train_canvases=16, held_out_canvases=6, epochs=2, batch_size=4
    )  # 4 steps an epoch
    monkeypatch.setattr(single_shot, "QUICK", two_epochs)
    run_id = experiments.submit(
        _Sched(store), "teacher", "detector", seed=1, quick=True, max_steps=6
    )
    run = worker.execute(store, run_id)
    assert run.status == "finished", run.error
    ((steps, epochs),) = experiments.curves(store, run, "teacher")
    assert steps[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert epochs[:, 0].tolist() == [1.0, 2.0]  # the second, cut short, is still evaluated

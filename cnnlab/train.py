"""Train headless from the command line, recording the run in the runs store like the page does.

    python -m cnnlab.train --preset fast --dataset shapes --epochs 3
    python -m cnnlab.train --resume RUN_ID      # go on from a stopped run's checkpoint

The settings start from the engine's teaching defaults (``TrainConfig``); ``--tuned`` starts
from the preset's benchmark-tuned ones instead. Public data sets are read from
``$CNNLAB_DATASETS_DIR/<name>`` when the server has them there, else downloaded once.
Progress lines go to stdout as training runs; the last line is one JSON object with
``test_accuracy``, ``train_seconds``, ``images_per_second``, ``device`` and ``run_id``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# Command-line flag -> TrainConfig field; only flags given on the command line override defaults.
_CONFIG_FLAGS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "optimizer": "optimizer",
    "schedule": "schedule",
    "weight_decay": "weight_decay",
    "label_smoothing": "label_smoothing",
    "seed": "seed",
    "max_steps": "max_steps",
    "device": "device",
    "early_stopping": "early_stopping_patience",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options."""
    from cnnlab.models import PRESETS

    p = argparse.ArgumentParser(prog="python -m cnnlab.train", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="fast", choices=sorted(PRESETS))
    p.add_argument("--dataset", default="shapes", help="shapes, mnist, fashion_mnist, kmnist, …")
    p.add_argument("--data-dir", help="a folder holding the data set's standard files")
    p.add_argument("--limit", type=int, help="use at most this many training images")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--schedule", choices=["constant", "cosine", "onecycle"])
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-steps", type=int, help="stop after this many steps (quick checks)")
    p.add_argument("--device", help="cpu or cuda (default: CUDA when available, else the CPU)")
    p.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better validation loss; keep the best epoch",
    )
    p.add_argument(
        "--tuned",
        action="store_true",
        help="start from the preset's benchmark-tuned settings (fast: label smoothing 0.3)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="go on with a stopped, interrupted or timed-out run from its last checkpoint "
        "(with its own settings: the other training flags are ignored)",
    )
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--owner", default="cli", help="owner id the run is recorded under")
    p.add_argument("--name", default="", help="a name for the run in the history")
    p.add_argument(
        "--augment",
        action="store_true",
        help="augment the training images: random shifts of up to 2 pixels (and mirror images "
        "for photos)",
    )
    p.add_argument(
        "--export",
        metavar="PATH",
        help="also write the trained network as PATH.safetensors + PATH.json (bundled models)",
    )
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig defaults (or, with ``--tuned``, the preset's tuned settings) overridden by
    the flags given; validated by the engine."""
    from cnnlab.training import TrainConfig, tuned_config

    overrides = {
        field: getattr(args, flag)
        for flag, field in _CONFIG_FLAGS.items()
        if getattr(args, flag) is not None
    }
    if args.augment:
        overrides["augment"] = True
    base = tuned_config(args.preset) if args.tuned else TrainConfig()
    return TrainConfig.from_dict({**base.to_dict(), **overrides}).to_dict()


def _print_progress(progress: Any) -> None:
    print(
        f"epoch {progress.epoch}/{progress.epochs} step {progress.step}/"
        f"{progress.total_steps} loss {progress.loss:.4f} acc {progress.accuracy:.3f} "
        f"{progress.images_per_second:,.0f} img/s eta {progress.eta_seconds:.0f}s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from cnnlab.runs import open_store
    from cnnlab.worker import execute

    args = parse_args(argv)
    store = open_store()
    try:
        # Everything that can be refused is checked before a run is recorded (or re-queued).
        run_id = _resume(store, args) if args.resume else _create(store, args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        run = execute(store, run_id, threads=args.threads, echo=_print_progress)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.export and run.status == "finished":
        from cnnlab.bundled import export_run

        export_run(store, args.owner, run_id, args.export, sys.argv[1:] if argv is None else argv)
        print(f"exported to {args.export}.safetensors and {args.export}.json", flush=True)
    for epoch in store.epochs(args.owner, run_id):
        val = "" if epoch.val_accuracy is None else f" val acc {epoch.val_accuracy:.4f}"
        print(f"epoch {epoch.epoch}: train loss {epoch.train_loss:.4f}{val}", flush=True)
    if run.final.get("early_stopped"):
        print(
            f"early stopping: the validation loss stopped improving; the network keeps the "
            f"weights of epoch {run.final['best_epoch']}",
            flush=True,
        )
    print(
        json.dumps(
            {
                "test_accuracy": run.final.get("test_accuracy"),
                "train_seconds": run.final.get("train_seconds"),
                "images_per_second": run.final.get("images_per_second"),
                "device": run.device,
                "run_id": run_id,
                "status": run.status,
            }
        ),
        flush=True,
    )
    return 0


def _create(store: Any, args: argparse.Namespace) -> str:
    """Check the flags, the device and the data, then record a new run; returns its id."""
    from cnnlab.data import load_dataset
    from cnnlab.device import pick_device
    from cnnlab.models import PRESETS
    from cnnlab.training import TrainConfig, small_data_advice, step_plan

    config = build_config(args)
    pick_device(config["device"])  # a GPU asked for where there is none: refused here
    data_options = {
        k: v for k, v in {"data_dir": args.data_dir, "limit": args.limit}.items() if v is not None
    }
    data = load_dataset(args.dataset, **data_options)
    cfg = TrainConfig.from_dict(config)
    advice = small_data_advice(step_plan(len(data.train_y), cfg), cfg, data.num_classes)
    if advice is not None:
        print(
            f"warning: {advice.message} Try --batch-size {advice.batch_size} "
            f"--epochs {advice.epochs}.",
            file=sys.stderr,
            flush=True,
        )
    run_id = store.create_run(
        args.owner,
        dataset=args.dataset,
        config=config,
        spec=PRESETS[args.preset].to_dict(),
        name=args.name or f"{args.preset} on {args.dataset}",
        meta={"data_options": data_options, "source": "cli"},
        status="running",
    )
    print(f"run {run_id}: {args.preset} on {args.dataset}, data in {store.data_dir}", flush=True)
    return run_id


def _resume(store: Any, args: argparse.Namespace) -> str:
    """Mark the owner's ended run to go on from its checkpoint in this process; returns its id."""
    from cnnlab.device import pick_device

    try:
        run = store.get_run(args.owner, args.resume)
    except KeyError:
        raise ValueError(
            f"No run {args.resume!r} of owner {args.owner!r} in {store.data_dir}."
        ) from None
    if not run.resumable:
        raise ValueError(
            f"Run {run.run_id} is {run.status.replace('_', ' ')}: only a run that ended early "
            f"(stopped, interrupted or timed out) with a checkpoint can be resumed."
        )
    pick_device(run.config.get("device"))
    store.update_status(
        run.run_id, "running", resume=1, stop_requested=0, error=None, finished_at=None
    )
    print(
        f"run {run.run_id}: resuming {run.name or run.dataset} after epoch "
        f"{run.checkpoint_epoch}, with its own settings",
        flush=True,
    )
    return run.run_id


if __name__ == "__main__":
    sys.exit(main())

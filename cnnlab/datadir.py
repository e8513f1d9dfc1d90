"""Where CNN Lab keeps its data: one folder that does not depend on the working directory.

``$CNNLAB_DATA_DIR`` when set (``~`` expanded, a relative path taken from the working directory);
otherwise the per-user data folder of the XDG base-directory rule that Linux desktops and most
tools follow: ``$XDG_DATA_HOME/cnnlab``, or ``~/.local/share/cnnlab``. The runs store, weights,
uploads and downloaded data sets live there, so the app, the class server and ``python -m
cnnlab.train`` started from any folder share one store.

Earlier versions used ``./data`` of the working directory (the checkout, for the scripts);
``migrate_legacy`` moves such a folder to the new place, and ``python -m cnnlab.datadir
--migrate-from data`` is how the scripts call it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "cnnlab"


def resolve_data_dir(environ: Mapping[str, str], home: Path) -> Path:
    """The data directory the rules above give for these environment variables and home folder."""
    configured = environ.get("CNNLAB_DATA_DIR", "").strip()
    if configured:
        path = Path(configured)
        if path.parts and path.parts[0] == "~":
            path = home.joinpath(*path.parts[1:])
        return path.resolve()
    xdg = environ.get("XDG_DATA_HOME", "").strip()
    # The XDG rule: a relative $XDG_DATA_HOME is invalid and ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / APP_NAME


def data_dir() -> Path:
    """This process's data directory (see the module docstring for the rules)."""
    return resolve_data_dir(os.environ, Path.home())


def _has_content(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def migrate_legacy(legacy: Path, target: Path) -> str | None:
    """Move a data folder of the old ``./data`` rule to ``target``; a sentence if anything was done.

    Only when ``legacy`` holds something and ``target`` does not (an empty folder counts as
    nothing): two stores are never merged; then the sentence says which one is used.
    """
    legacy, target = legacy.resolve(), target.resolve()
    if legacy == target or not _has_content(legacy):
        return None
    if _has_content(target):
        return (
            f"{legacy} (the old data folder) is no longer used: the data directory is {target}. "
            f"Set CNNLAB_DATA_DIR={legacy} to keep using the old one."
        )
    if target.is_dir():
        target.rmdir()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(legacy, target)
    return f"Moved the data folder {legacy} to {target}, the data directory from now on."


def main(argv: list[str] | None = None) -> None:
    """Print the data directory, after moving an old ``--migrate-from`` folder there."""
    parser = argparse.ArgumentParser(prog="python -m cnnlab.datadir", description=main.__doc__)
    parser.add_argument("--migrate-from", type=Path, help="a data folder of the old ./data rule")
    args = parser.parse_args(argv)
    target = data_dir()
    if args.migrate_from is not None and not os.environ.get("CNNLAB_DATA_DIR", "").strip():
        note = migrate_legacy(args.migrate_from, target)
        if note:
            print(note, file=sys.stderr, flush=True)
    print(target)


if __name__ == "__main__":
    main()

"""The data directory's rules (cnnlab/datadir.py): stable whatever the working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab import data, datadir, runs

REPO = Path(__file__).resolve().parents[1]


def test_the_variable_wins_over_everything(tmp_path: Path) -> None:
    env = {"CNNLAB_DATA_DIR": str(tmp_path / "mine"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert datadir.resolve_data_dir(env, tmp_path / "home") == tmp_path / "mine"


def test_a_relative_variable_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    found = datadir.resolve_data_dir({"CNNLAB_DATA_DIR": "rel/store"}, Path("/nohome"))
    assert found == tmp_path.resolve() / "rel" / "store"
    assert found.is_absolute()


def test_a_tilde_in_the_variable_is_the_home_folder(tmp_path: Path) -> None:
    found = datadir.resolve_data_dir({"CNNLAB_DATA_DIR": "~/cnn data"}, tmp_path)
    assert found == tmp_path.resolve() / "cnn data"


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_variable_counts_as_unset(tmp_path: Path, value: str) -> None:
    found = datadir.resolve_data_dir({"CNNLAB_DATA_DIR": value}, tmp_path)
    assert found == tmp_path / ".local" / "share" / "cnnlab"


def test_xdg_data_home_when_absolute(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert datadir.resolve_data_dir(env, tmp_path / "home") == tmp_path / "xdg" / "cnnlab"


def test_a_relative_xdg_data_home_is_ignored(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": "relative/xdg"}
    found = datadir.resolve_data_dir(env, tmp_path)
    assert found == tmp_path / ".local" / "share" / "cnnlab"


def test_store_and_data_set_cache_use_the_same_directory_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CNNLAB_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    expected = tmp_path / "home" / ".local" / "share" / "cnnlab"
    for folder in (tmp_path, REPO):
        monkeypatch.chdir(folder)
        assert runs.default_data_dir() == expected
        assert data.default_cache_dir() == expected / "datasets"


def test_migration_moves_an_old_data_folder(tmp_path: Path) -> None:
    legacy, target = tmp_path / "checkout" / "data", tmp_path / "share" / "cnnlab"
    (legacy / "runs").mkdir(parents=True)
    (legacy / "runs.sqlite").write_bytes(b"store")
    note = datadir.migrate_legacy(legacy, target)
    assert note is not None
    assert "Moved" in note
    assert str(target) in note
    assert not legacy.exists()
    assert (target / "runs.sqlite").read_bytes() == b"store"
    assert (target / "runs").is_dir()


def test_migration_fills_an_empty_target(tmp_path: Path) -> None:
    legacy, target = tmp_path / "data", tmp_path / "target"
    legacy.mkdir()
    (legacy / "runs.sqlite").write_bytes(b"store")
    target.mkdir()
    assert datadir.migrate_legacy(legacy, target) is not None
    assert (target / "runs.sqlite").read_bytes() == b"store"


def test_migration_never_merges_two_stores(tmp_path: Path) -> None:
    legacy, target = tmp_path / "data", tmp_path / "target"
    for folder, content in ((legacy, b"old"), (target, b"new")):
        folder.mkdir()
        (folder / "runs.sqlite").write_bytes(content)
    note = datadir.migrate_legacy(legacy, target)
    assert note is not None
    assert f"CNNLAB_DATA_DIR={legacy}" in note
    assert (legacy / "runs.sqlite").read_bytes() == b"old"
    assert (target / "runs.sqlite").read_bytes() == b"new"


@pytest.mark.parametrize("make", [False, True])
def test_nothing_to_migrate(tmp_path: Path, make: bool) -> None:
    legacy = tmp_path / "data"
    if make:
        legacy.mkdir()  # an empty old folder: nothing to move
    assert datadir.migrate_legacy(legacy, tmp_path / "target") is None
    assert not (tmp_path / "target").exists()


def test_the_command_migrates_only_without_the_variable(tmp_path: Path) -> None:
    """What the scripts run: with CNNLAB_DATA_DIR set, the old folder is left alone."""
    legacy = tmp_path / "data"
    legacy.mkdir()
    (legacy / "runs.sqlite").write_bytes(b"store")
    env = {k: v for k, v in os.environ.items() if k not in ("CNNLAB_DATA_DIR", "XDG_DATA_HOME")}
    command = [sys.executable, "-m", "cnnlab.datadir", "--migrate-from", str(legacy)]
    pinned = subprocess.run(
        command,
        env={**env, "CNNLAB_DATA_DIR": str(tmp_path / "pinned"), "HOME": str(tmp_path)},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert pinned.stdout.strip() == str(tmp_path / "pinned")
    assert legacy.exists()
    moved = subprocess.run(
        command, env={**env, "HOME": str(tmp_path)}, cwd=REPO, capture_output=True, text=True
    )
    target = tmp_path / ".local" / "share" / "cnnlab"
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip() == str(target)
    assert "Moved" in moved.stderr
    assert (target / "runs.sqlite").read_bytes() == b"store"

"""atomic_write and the clean-up of temp files a killed writer leaves behind."""
from __future__ import annotations

import os
from pathlib import Path

from threatnet.atomic import atomic_write, remove_stale


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    atomic_write(path, "old")
    atomic_write(path, b"new", mode=0o600)
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o600
    assert os.listdir(tmp_path) == ["cache.json"]


def test_remove_stale_takes_only_this_files_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    atomic_write(path, "current")
    stale = [tmp_path / ".cache.json.a1b2c3d4.tmp", tmp_path / ".cache.json.zz_9k0qx.tmp"]
    others = [tmp_path / ".cache.json5.x1b2c3d4.tmp", tmp_path / ".other.json.q1b2c3d4.tmp",
              tmp_path / "cache.json.tmp",
              tmp_path / ".cache.json.json.a1b2c3d4.tmp"]  # another file's: cache.json.json
    for f in stale + others:
        f.write_text("half a write")
    assert sorted(remove_stale(path)) == sorted(stale)
    assert path.read_text() == "current" and all(f.exists() for f in others)
    assert remove_stale(path) == []


def test_remove_stale_with_glob_characters_in_the_name(tmp_path: Path) -> None:
    path = tmp_path / "w[1]*.yaml"
    path.write_text("x")
    stale = tmp_path / ".w[1]*.yaml.abcd1234.tmp"
    stale.write_text("half")
    (tmp_path / ".w1x.yaml.abcd1234.tmp").write_text("not ours")
    assert remove_stale(path) == [stale]
    assert len(os.listdir(tmp_path)) == 2

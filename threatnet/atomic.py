"""Atomic file replacement: readers see the old file or the new one, never a torn write."""
from __future__ import annotations

import glob
import os
import re
import tempfile
from pathlib import Path


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def remove_stale(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files a killed ``atomic_write`` to ``path`` left behind, and
    return them. Nothing ever reads them; call it only where this process is the
    file's one writer and no write to it is under way (e.g. at start)."""
    target = Path(path)
    prefix = _temp_prefix(target)
    # exactly mkstemp's names: prefix, 8 random characters, suffix
    ours = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}\.tmp")
    removed = []
    for tmp in target.parent.glob(glob.escape(prefix) + "*.tmp"):
        if not ours.fullmatch(tmp.name):
            continue
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue
        removed.append(tmp)
    return removed


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644,
                 min_mtime: float | None = None) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory, fsync, rename.

    ``min_mtime`` forces the new file's mtime to at least that value: some readers
    (rbldnsd) compare whole-second mtimes and would miss a same-second replacement.
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_temp_prefix(target), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if min_mtime is not None:
            stamp = max(min_mtime, os.stat(tmp).st_mtime)
            os.utime(tmp, (stamp, stamp))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dirfd = os.open(target.parent, os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)

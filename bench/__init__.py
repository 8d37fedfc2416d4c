"""Benchmarks: each prints figures and asserts nothing.

Run one from the repository root as a module, e.g. ``.venv/bin/python -m bench.core``;
its docstring gives its options. They import ``threatnet``, the lab and each other as
packages from there.
"""
from __future__ import annotations

import shutil
from pathlib import Path


def leave(work: str | Path, keep: bool) -> None:
    """A benchmark's run directory: kept (and said where) with --keep, else removed."""
    if keep:
        print(f"run directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)

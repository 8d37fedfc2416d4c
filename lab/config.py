"""What the lab hands its processes: conf/ templates rendered into a run directory, with
fresh secrets. Nothing checked in is ever handed to a process that could rewrite it.
"""
from __future__ import annotations

import secrets
import string
from pathlib import Path
from typing import Mapping, Union

from lab import ROOT

CONF = ROOT / "conf"


def password(nbytes: int = 12) -> str:
    return secrets.token_urlsafe(nbytes)


def render(template: Union[str, Path], dest: Path, values: Mapping[str, object]) -> Path:
    """Fill `${name}` placeholders of a conf/ template (every one must be given)."""
    text = Path(CONF / template).read_text()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(string.Template(text).substitute({k: str(v) for k, v in values.items()}))
    return dest

"""What the lab hands its processes: conf/ templates rendered into a run directory, with
fresh secrets. Nothing checked in is ever handed to a process that could rewrite it.

A file that holds a secret (a password, a token, a private key) is created mode 0600 in
a directory of mode 0700 before the secret is written, and no secret is ever put on a
command line (other local users can read both in /proc).
"""
from __future__ import annotations

import os
import secrets
import string
from pathlib import Path
from typing import Mapping, Union

from lab import ROOT

CONF = ROOT / "conf"


def password(nbytes: int = 12) -> str:
    return secrets.token_urlsafe(nbytes)


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as a directory only its owner may enter."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, mode 0600 before a byte is written, in a 0700 directory."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # it may have existed with another mode
        f.write(text)
    return path


def render(template: Union[str, Path], dest: Path, values: Mapping[str, object]) -> Path:
    """Fill `${name}` placeholders of a conf/ template (every one must be given) into a
    private file: every template the lab renders holds a password."""
    text = Path(CONF / template).read_text()
    return private_file(dest, string.Template(text).substitute(
        {k: str(v) for k, v in values.items()}))

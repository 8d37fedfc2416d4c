"""The oldest Limnoria the plugins run on, and the check each plugin makes when it loads.

2023.11.18 is what Debian 13 ships (and Debian 12's backports). Older releases load the
plugins and answer commands, then fail on every channel line; refusing to load, with the
version to install, is the clear failure.
"""
from __future__ import annotations

import re

MINIMUM = "2023.11.18"  # also install_requires' floor in setup.cfg (a test compares them)


class LimnoriaTooOld(ImportError):
    """Raised by a plugin's import: Limnoria's loaders report an ImportError's text
    ("Failed to load X: import error (...)" at start, the text itself for `load X`)."""


def parse(version: str) -> tuple[int, int, int] | None:
    """(year, month, day) of a Limnoria version ("2023.11.18", "2024.12.20+git"), or None
    for a string that is not one (a checkout's own version: let it load)."""
    found = re.match(r"(\d{4})\.(\d{1,2})\.(\d{1,2})", version)
    return tuple(int(part) for part in found.groups()) if found else None  # type: ignore[return-value]


def require(plugin: str, version: str | None = None) -> None:
    """Raise LimnoriaTooOld, naming the minimum, if ``version`` (default: the running
    Limnoria's) is older than MINIMUM."""
    if version is None:
        import supybot.version
        version = supybot.version.version
    found = parse(version)
    if found is not None and found < parse(MINIMUM):  # type: ignore[operator]
        raise LimnoriaTooOld(
            f"{plugin} needs Limnoria {MINIMUM} or newer, this is Limnoria {version}: "
            f"pip install 'limnoria>={MINIMUM}' (Debian: bookworm-backports or trixie)")

"""Channel mode changes packed into as few MODE lines as the server allows.

ISUPPORT ``MODES`` is how many parameterised changes one MODE line may carry;
RFC 2812 3.2.3 fixes 3 when the server does not say, and ``MODES`` without a
value means no limit. A line must also fit in 512 bytes as the server relays it
to everyone, with our prefix in front, so long nicks cut a line short as well.
"""
from __future__ import annotations

from collections.abc import Iterable

DEFAULT_MODES = 3  # RFC 2812 3.2.3, for a server that does not advertise MODES

# What the server puts around our mode string when it relays it:
# ":" nick(64) "!" user(16) "@" host(128) " MODE " <channel> " " ... "\r\n",
# with the same generous NICKLEN/USERLEN/HOSTLEN budget as language.MAX_LINE_BYTES.
_RELAY_OVERHEAD = 1 + 64 + 1 + 16 + 1 + 128 + len(" MODE ") + 1 + 2

Change = tuple[str, str]  # ("+v", "nick")


def line_room(channel: str) -> int:
    """Bytes left for the mode string and its arguments in one relayed MODE line."""
    return 512 - _RELAY_OVERHEAD - len(channel.encode("utf-8", "replace"))


def batch(changes: Iterable[Change], per_line: int | None, room: int) -> list[list[Change]]:
    """Split ``changes`` (in order) into lines of at most ``per_line`` changes
    (None: no count limit) whose mode string and arguments fit in ``room`` bytes.

    A change too long to share a line still gets a line of its own.
    """
    if per_line is not None and per_line < 1:
        per_line = 1  # a server advertising MODES=0 can still take one change a line
    lines: list[list[Change]] = []
    line: list[Change] = []
    used = 0
    sign = ""
    for mode, arg in changes:
        size = 2 + len(arg.encode("utf-8", "replace"))  # mode char, space, argument
        if line and ((per_line is not None and len(line) >= per_line)
                     or used + size + (mode[0] != sign) > room):
            lines.append(line)
            line, used, sign = [], 0, ""
        if mode[0] != sign:
            used += 1
            sign = mode[0]
        line.append((mode, arg))
        used += size
    if line:
        lines.append(line)
    return lines

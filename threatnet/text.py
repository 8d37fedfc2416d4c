"""Free text (comments, reporter names) made safe for one IRC line or one DNS TXT string."""
from __future__ import annotations

import re
import unicodedata

# mIRC colours (\x03 with up to two digits, optionally ",bg") and hex colours (\x04).
_COLOUR = re.compile(r"\x03(?:[0-9]{1,2}(?:,[0-9]{1,2})?)?"
                     r"|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?")


def valid_utf8(text: str) -> str:
    """``text`` with each lone surrogate (it has no UTF-8 form) replaced by "?", as
    truncate_utf8 does, so that it always encodes."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that is at most ``limit`` UTF-8 bytes, cut on a
    character boundary. A lone surrogate (never valid UTF-8) becomes "?", so the
    result always encodes."""
    if text.isascii():
        return text[:limit]
    return text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


def clean_text(text: str) -> str:
    """``text`` on one line: IRC colour codes, control, format and line-separator
    characters become spaces, runs of whitespace one space, edges stripped."""
    text = _COLOUR.sub(" ", text)
    if not text.isprintable():
        text = "".join(" " if _unprintable(ch) else ch for ch in text)
    return " ".join(text.split())


def _unprintable(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] == "C" or category in ("Zl", "Zp")

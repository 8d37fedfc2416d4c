"""Topic: a ThreatNet channel topic, ``threatnet://host/path configuration``.

The URI names the protocol the channel speaks; the rest is the channel
configuration. The original left the configuration free-form; we read a small
vocabulary from it (``block=<seconds>``, ``quorum=<reporters>``, bare flags such as
``open``) and keep every other word, so a topic written by a newer agent survives a
round trip.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_BLOCK = 3600
# A topic can demand any block period, and an agent may only submit once it has
# listened that long (ThreatCache.synced): cap it so a topic cannot silence agents.
MAX_BLOCK = 7 * 86400
# Distinct reporters a threat needs before listeners act on it (threatnet/listener.py).
DEFAULT_QUORUM = 1
MAX_QUORUM = 16
# Flags this implementation acts on; the Guard warns about others but keeps them.
KNOWN_FLAGS = frozenset({"open", "tolerant", "devel", "ipv6"})

_SCHEME = "threatnet://"
_WS = " \t\n\r\x0b\x0c"
_SPACE = re.compile(r"\s+", re.ASCII)  # ASCII: \x1c-\x1f are IRC codes, not spaces
_WORD_SEP = re.compile(r"[,\s]+", re.ASCII)
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BLOCK_VALUE = re.compile(r"[1-9][0-9]{0,8}")
_BLOCK_REASON = f"block must be whole seconds, 1 to {MAX_BLOCK}"
_QUORUM_VALUE = re.compile(r"[1-9][0-9]?")
_QUORUM_REASON = f"quorum must be a number of reporters, 1 to {MAX_QUORUM}"


class TopicError(ValueError):
    """Not a ThreatNet topic; ``str(e)`` is a short human reason."""


@dataclass(frozen=True)
class Topic:
    """A parsed topic; build one with parse_topic() and derive others with replace()."""

    uri: str
    host: str
    path: str
    config: str
    words: tuple[str, ...]
    block: int
    flags: frozenset[str]
    quorum: int = DEFAULT_QUORUM

    def format(self) -> str:
        """The topic text; parse_topic(t.format()) == t."""
        return f"{self.uri} {self.config}" if self.config else self.uri

    def replace(self, *, block: int | None = None, flags: Iterable[str] | None = None,
                uri: str | None = None, quorum: int | None = None) -> Topic:
        """A topic with another URI, block period or flag set; other words are kept.

        Flags no longer wanted are dropped, new ones appended in sorted order, and
        the configuration is rewritten in the canonical ``word, word`` style.
        """
        if uri is not None and (not isinstance(uri, str) or _SPACE.search(uri)):
            raise TopicError("the URI must be one word")
        words = list(self.words)
        if flags is not None:
            if isinstance(flags, str):
                raise TopicError("flags must be a collection of words")
            wanted = {_flag(f) for f in flags}
            words = [w for w in words if "=" in w or w.lower() in wanted]
            present = {w.lower() for w in words if "=" not in w}
            words += sorted(wanted - present)
        if block is not None:
            if type(block) is not int or not 0 < block <= MAX_BLOCK:
                raise TopicError(_BLOCK_REASON)
            words = [w for w in words if _key(w) != "block"] + [f"block={block}"]
        if quorum is not None:
            if type(quorum) is not int or not 0 < quorum <= MAX_QUORUM:
                raise TopicError(_QUORUM_REASON)
            words = [w for w in words if _key(w) != "quorum"]
            if quorum != DEFAULT_QUORUM:
                words.append(f"quorum={quorum}")
        return parse_topic(f"{self.uri if uri is None else uri} {', '.join(words)}")


def parse_topic(text: object) -> Topic:
    """Parse a channel topic; raises only TopicError."""
    if not isinstance(text, str):
        raise TopicError("not a string")
    if not text.strip(_WS):
        raise TopicError("empty topic")
    if _FORBIDDEN.search(text):
        raise TopicError("line break or NUL in topic")
    if text[0] in _WS:
        raise TopicError("leading space")
    uri, *rest = _SPACE.split(text, 1)
    host, path = _split_uri(uri)
    config = rest[0].strip(_WS) if rest else ""
    words = tuple(w for w in _WORD_SEP.split(config) if w)
    block, quorum, flags = _vocabulary(words)
    return Topic(uri, host, path, config, words, block, flags, quorum)


def _split_uri(uri: str) -> tuple[str, str]:
    """Host and path of a ``threatnet://host/path`` URI."""
    if uri[:len(_SCHEME)].lower() != _SCHEME:
        raise TopicError("not a threatnet:// URI")
    if _CONTROL.search(uri) or not uri.isascii():
        raise TopicError("control or non-ASCII character in URI")
    host, slash, path = uri[len(_SCHEME):].partition("/")
    if not host:
        raise TopicError("no host in URI")
    if not slash:
        raise TopicError("no path in URI")
    return host, slash + path


def _vocabulary(words: tuple[str, ...]) -> tuple[int, int, frozenset[str]]:
    """The block period, the quorum and the (lowercased) bare flags among the words."""
    block = _number(words, "block", _BLOCK_VALUE, MAX_BLOCK, _BLOCK_REASON, DEFAULT_BLOCK)
    quorum = _number(words, "quorum", _QUORUM_VALUE, MAX_QUORUM, _QUORUM_REASON,
                     DEFAULT_QUORUM)
    return block, quorum, frozenset(w.lower() for w in words if "=" not in w)


def _number(words: tuple[str, ...], key: str, form: re.Pattern[str], highest: int,
            reason: str, default: int) -> int:
    """The value of the one ``key=N`` word (``default`` without one)."""
    values = [w.partition("=")[2] for w in words if _key(w) == key]
    if len(values) > 1:
        raise TopicError(f"{key} given more than once")
    if not values:
        return default
    if not form.fullmatch(values[0]) or int(values[0]) > highest:
        raise TopicError(reason)
    return int(values[0])


def _key(word: str) -> str | None:
    """The lowercased key of a ``key=value`` word, None for a bare flag."""
    key, eq, _ = word.partition("=")
    return key.lower() if eq else None


def _flag(flag: str) -> str:
    """A flag fit to write into a topic: one lowercase word."""
    if not isinstance(flag, str) or not flag or "=" in flag or _WORD_SEP.search(flag) \
            or _CONTROL.search(flag):
        raise TopicError("a flag must be one word without '=' or ','")
    return flag.lower()

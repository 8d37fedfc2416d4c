"""Whitelist store: who gets voice in a ThreatNet channel.

The file is YAML an operator edits by hand::

    channels:
      "#threatnet":            # quoted: an unquoted # starts a YAML comment
        - 192.0.2.0/24         # office
        - 2001:db8::/48
        - account:alice        # services account name

Channel and account names compare case-insensitively under IRC rfc1459 casemapping
(A-Z and ``[]\\~`` fold to a-z and ``{}|^``: threatnet.names), account names under the
server's own CASEMAPPING where the caller passes it. An entry is canonical text: ``10.0.0.1`` and ``::ffff:10.0.0.1``
are the same entry, so are ``account:Alice`` and ``account:alice``.

Fail closed: a missing file is an empty whitelist, an invalid one raises
WhitelistError and yields no Whitelist at all. ``Whitelist()`` is the empty
whitelist and there is no "allow everyone" value, so a caller that keeps the
last good Whitelist (or ``Whitelist()``) on error can only ever trust fewer.
"""
from __future__ import annotations

import bisect
import io
import json
import os
import re
import stat
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError

from .address import KEY_LAST, V4_MAPPED_FIRST, V4_MAPPED_LAST, AddressError, Network, parse_network
from .atomic import atomic_write
from .names import RFC1459, fold

ACCOUNT_PREFIX = "account:"
_CHANTYPES = "#&+!"
# Spaces/separators, control and format characters: they hide or split names.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zs", "Zl", "Zp"})
# YAML's own line breaks, so line numbers here agree with PyYAML's marks.
_BREAKS = "\r\n\x85\u2028\u2029"
_LINE = re.compile(f"[^{_BREAKS}]*(?:\r\n|[{_BREAKS}])?")
_NULL = "tag:yaml.org,2002:null"
_EVERYTHING = {(0, KEY_LAST), (V4_MAPPED_FIRST, V4_MAPPED_LAST)}


class WhitelistError(ValueError):
    """A bad whitelist file or entry; ``str(e)`` is ``file:line: 'entry': reason``.

    ``file``, ``line`` and ``entry`` are None where they do not apply (an entry
    typed in a command has no file; a YAML syntax error has no entry).
    """

    def __init__(self, reason: str, *, file: str | None = None, line: int | None = None,
                 entry: str | None = None) -> None:
        self.reason, self.file, self.line, self.entry = reason, file, line, entry
        where = "".join(f"{part}:" for part in (file, line) if part is not None)
        what = f"{entry!r}: " if entry is not None else ""
        super().__init__(f"{where} {what}{reason}" if where else f"{what}{reason}")


class Entry(NamedTuple):
    """One whitelist entry: ``text`` is canonical; exactly one of network/account is set."""

    text: str
    network: Network | None
    account: str | None  # as written: folded by the server's casemapping when compared


def parse_entry(text: str) -> Entry:
    """Parse ``IP``, ``CIDR`` or ``account:NAME`` strictly; raises WhitelistError."""
    if not text:
        raise WhitelistError("empty entry", entry=text)
    if text[:len(ACCOUNT_PREFIX)].lower() == ACCOUNT_PREFIX:
        account = text[len(ACCOUNT_PREFIX):]
        if not account:
            raise WhitelistError("empty account name", entry=text)
        if account == "*":  # what extended-join reports for "not logged in"
            raise WhitelistError("'*' means no account", entry=text)
        if _bad_char(account):
            raise WhitelistError("spaces or control characters in account name", entry=text)
        return Entry(ACCOUNT_PREFIX + fold(account), None, account)
    try:
        network = parse_network(text)
    except AddressError as e:
        reason = str(e) if any(c in text for c in ".:") else "not an IP, CIDR or account:NAME"
        raise WhitelistError(reason, entry=text) from None
    if (network.first, network.last) in _EVERYTHING:
        raise WhitelistError("matches every address", entry=text)
    return Entry(network.text, network, None)


class _Channel(NamedTuple):
    name: str  # as first written
    entries: tuple[Entry, ...]
    starts: list[int]  # merged, sorted key ranges: starts[i]..ends[i]
    ends: list[int]
    accounts: frozenset[str]  # folded (rfc1459)


class Whitelist:
    """Immutable per-channel whitelist; ``Whitelist()`` is empty and trusts nobody.

    Build one with WhitelistStore or parse_whitelist; the constructor takes already
    parsed entries and is there for those and for the empty whitelist.
    """

    __slots__ = ("_channels", "_accounts")

    def __init__(self, channels: Mapping[str, Sequence[Entry]] | None = None) -> None:
        self._channels = {fold(name): _channel(name, entries)
                          for name, entries in (channels or {}).items()}
        self._accounts: dict[tuple[str, str], frozenset[str]] = {}  # under other casemappings

    def qualifies(self, channel: str, key: int | None, account: str | None,
                  casemapping: str | None = RFC1459) -> bool:
        """True if ``key`` is in one of the channel's networks or ``account`` is listed;
        ``casemapping`` is the server's (ISUPPORT CASEMAPPING), as services compare."""
        folded = fold(channel)
        found = self._channels.get(folded)
        if found is None:
            return False
        if key is not None:
            i = bisect.bisect_right(found.starts, key) - 1
            if i >= 0 and key <= found.ends[i]:
                return True
        if account is None or account == "*":  # "*": extended-join's "not logged in"
            return False
        accounts = found.accounts
        if casemapping not in (None, RFC1459):
            accounts = self._accounts.get((folded, casemapping))
            if accounts is None:
                accounts = self._accounts[folded, casemapping] = frozenset(
                    fold(e.account, casemapping) for e in found.entries if e.account)
        return fold(account, casemapping) in accounts

    def why(self, channel: str, key: int | None, account: str | None,
            casemapping: str | None = RFC1459) -> str | None:
        """The first of the channel's entries that makes a member qualify (its canonical
        text), or None: what an operator reads, not the hot path (``qualifies``)."""
        for entry in self._entries(channel):
            network = entry.network
            if network is not None and key is not None and network.first <= key <= network.last:
                return entry.text
            if entry.account is not None and account not in (None, "*") \
                    and fold(entry.account, casemapping) == fold(account, casemapping):
                return entry.text
        return None

    def address_test(self, channel: str) -> Callable[[int], bool]:
        """A test of keys against the channel's networks only (accounts aside): the
        Guard's, for every threat line."""
        found = self._channels.get(fold(channel))
        if found is None or not found.starts:
            return lambda key: False
        starts, ends = found.starts, found.ends

        def covered(key: int) -> bool:
            i = bisect.bisect_right(starts, key) - 1
            return i >= 0 and key <= ends[i]
        return covered

    def entries(self, channel: str) -> list[str]:
        """The channel's entries as canonical text, in file order."""
        return [e.text for e in self._entries(channel)]

    def _entries(self, channel: str) -> tuple[Entry, ...]:
        found = self._channels.get(fold(channel))
        return found.entries if found else ()

    def channels(self) -> list[str]:
        """Channel names as written in the file, including ones with no entries."""
        return [c.name for c in self._channels.values()]

    def _replace(self, channel: str, entries: Sequence[Entry]) -> Whitelist:
        """A copy with ``channel``'s entries replaced (keeping its written name)."""
        lists = {c.name: c.entries for c in self._channels.values()}
        found = self._channels.get(fold(channel))
        lists[found.name if found else channel] = tuple(entries)
        return Whitelist(lists)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Whitelist):
            return NotImplemented
        return self._texts() == other._texts()

    def _texts(self) -> dict[str, tuple[str, list[str]]]:
        return {k: (c.name, [e.text for e in c.entries]) for k, c in self._channels.items()}

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Whitelist({ {c.name: self.entries(c.name) for c in self._channels.values()} })"


def _channel(name: str, entries: Sequence[Entry]) -> _Channel:
    starts: list[int] = []
    ends: list[int] = []
    for first, last in sorted((e.network.first, e.network.last) for e in entries if e.network):
        if ends and first <= ends[-1] + 1:  # overlapping or adjacent: one range
            ends[-1] = max(ends[-1], last)
        else:
            starts.append(first)
            ends.append(last)
    accounts = frozenset(fold(e.account) for e in entries if e.account is not None)
    return _Channel(name, tuple(entries), starts, ends, accounts)


def _bad_char(text: str) -> bool:
    return any(unicodedata.category(c) in _BAD_CATEGORIES for c in text)


def _channel_problem(name: str) -> str | None:
    if not name or name[0] not in _CHANTYPES:
        return f"not a channel name (must start with one of {_CHANTYPES})"
    if "," in name or _bad_char(name):
        return "spaces, commas or control characters in channel name"
    return None


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases: a whitelist needs none, and refusing
    them rules out alias bombs (composing shares nodes, but walking them would not)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(problem="anchors and aliases are not allowed",
                                       problem_mark=event.start_mark)
        return super().compose_node(parent, index)


class _Parsed(NamedTuple):
    """A valid file: the Whitelist plus the nodes that locate text edits."""

    whitelist: Whitelist
    channels: yaml.Node | None  # the 'channels' key node
    lists: dict[str, tuple[yaml.Node, yaml.Node]]  # folded name -> (key node, value node)


def parse_whitelist(text: str, file: str = "whitelist.yaml") -> Whitelist:
    """Validate whitelist YAML; errors name ``file``, the line and the entry."""
    return _parse(text, file).whitelist


def _parse(text: str, file: str) -> _Parsed:
    def error(reason: str, node: yaml.Node, entry: str | None = None) -> WhitelistError:
        return WhitelistError(reason, file=file, line=node.start_mark.line + 1, entry=entry)

    try:
        loader = _Loader(text)  # its Reader refuses non-printable characters already
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        problem = ", ".join(part for part in (e.context, e.problem) if part)
        raise WhitelistError(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        raise WhitelistError(f"invalid YAML: character #x{e.character:04x} not allowed",
                             file=file, line=line) from None

    if root is None:  # empty, or comments only
        return _Parsed(Whitelist(), None, {})
    if not isinstance(root, yaml.MappingNode):
        raise error("top level must be a mapping with a 'channels' key", root)
    channels_key = channels = None
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode) or key.value != "channels":
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            raise error("unknown top-level key (only 'channels' is allowed)", key, name)
        if channels_key is not None:
            raise error(f"duplicate key (also on line {channels_key.start_mark.line + 1})",
                        key, "channels")
        channels_key, channels = key, value
    if channels is None or channels.tag == _NULL:
        return _Parsed(Whitelist(), channels_key, {})
    if not isinstance(channels, yaml.MappingNode):
        hint = " (quote channel names: # starts a YAML comment)" \
            if isinstance(channels, yaml.SequenceNode) else ""
        raise error(f"'channels' must map channel names to lists{hint}", channels)

    lists: dict[str, list[Entry]] = {}
    nodes: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in channels.value:
        if not isinstance(key, yaml.ScalarNode):
            raise error("channel name must be a string", key)
        name = key.value
        if problem := _channel_problem(name):
            raise error(problem, key, name)
        if (seen := nodes.get(fold(name))) is not None:
            raise error(f"duplicate channel (also on line {seen[0].start_mark.line + 1})", key, name)
        nodes[fold(name)] = key, value
        lists[name] = []
        if value.tag == _NULL:  # "#chan": with nothing under it
            continue
        if not isinstance(value, yaml.SequenceNode):
            raise error("must be a list of entries", value, name)
        lines: dict[str, int] = {}
        for item in value.value:
            if not isinstance(item, yaml.ScalarNode):
                raise error("entry must be a single string", item)
            # The raw scalar text: YAML 1.1 would read 1:2:3:4:5:6:7:8 as an int.
            try:
                entry = parse_entry(item.value)
            except WhitelistError as e:
                raise error(e.reason, item, item.value) from None
            if entry.text in lines:
                raise error(f"duplicate entry (also on line {lines[entry.text]})", item, item.value)
            lines[entry.text] = item.start_mark.line + 1
            lists[name].append(entry)
    return _Parsed(Whitelist(lists), channels_key, nodes)


class WhitelistStore:
    """The whitelist file: ``load()`` reads it, ``add``/``remove`` edit it atomically.

    Every comment survives an edit. ``add`` inserts a line under the channel's list
    (or a new channel at the end of ``channels``), ``remove`` deletes the entry's line
    (and with it the comment on that line only). A layout a line edit cannot handle
    (flow style ``[a, b]``, an empty ``[]``, ``~``, a folded scalar) is edited by a
    ruamel.yaml round trip instead. Either result is written only if it parses back
    to exactly the intended whitelist and keeps every other comment; otherwise the
    edit fails with an error and the file is left alone. Every edit reads the file
    afresh, so hand edits made meanwhile are kept.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # one read-modify-write at a time

    def load(self) -> Whitelist:
        """The current whitelist; a missing file is empty, an invalid one raises WhitelistError."""
        return self._read()[1].whitelist

    def add(self, channel: str, entry: str) -> Whitelist:
        """Add ``entry`` to ``channel``, save and return the new whitelist.

        Raises WhitelistError (and changes nothing) for an invalid channel or entry,
        an entry already present, an invalid file or a failed write.
        """
        with self._lock:
            new = parse_entry(entry)
            if problem := _channel_problem(channel):
                raise WhitelistError(problem, entry=channel)
            text, parsed = self._read()
            old = parsed.whitelist
            if new.text in old.entries(channel):
                raise WhitelistError(f"already in {channel}", entry=new.text)
            wanted = old._replace(channel, [*old._entries(channel), new])
            return self._save(wanted, text, None, (
                lambda: _edit_add(text, parsed, channel, new),
                lambda: _round_trip(text, parsed, lambda doc: _rt_add(doc, channel, new))))

    def remove(self, channel: str, entry: str) -> Whitelist:
        """Remove ``entry`` from ``channel``, save and return the new whitelist.

        Raises WhitelistError (and changes nothing) for an invalid entry, an entry
        not present, an invalid file or a failed write.
        """
        with self._lock:
            gone = parse_entry(entry)
            text, parsed = self._read()
            old = parsed.whitelist
            if gone.text not in old.entries(channel):
                raise WhitelistError(f"not in {channel}", entry=gone.text)
            wanted = old._replace(channel, [e for e in old._entries(channel) if e.text != gone.text])
            return self._save(wanted, text, _own_line(text, parsed, channel, gone), (
                lambda: _edit_remove(text, parsed, channel, gone),
                lambda: _round_trip(text, parsed, lambda doc: _rt_remove(doc, channel, gone))))

    def _read(self) -> tuple[str, _Parsed]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as e:
            raise WhitelistError(f"cannot read: {e.strerror}", file=str(self.path)) from None
        try:
            text = data.decode()
        except UnicodeDecodeError as e:
            raise WhitelistError("not valid UTF-8", file=str(self.path),
                                 line=data.count(b"\n", 0, e.start) + 1) from None
        return text, _parse(text, str(self.path))

    def _save(self, wanted: Whitelist, old: str, dropped: int | None,
              edits: Iterable[Callable[[], str | None]]) -> Whitelist:
        """Write the first edit whose text parses back to ``wanted`` and keeps every
        comment of ``old`` (but the one on line index ``dropped``, a removed entry's)."""
        text = next((edited for edit in edits if (edited := edit()) is not None
                     and _parses_to(edited, wanted) and _keeps_comments(old, edited, dropped)),
                    None)
        if text is None:
            raise WhitelistError("cannot make this edit without losing a comment: edit the "
                                 "file by hand", file=str(self.path))
        target = os.path.realpath(self.path)  # write through a symlink, not over it
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o644
        try:
            atomic_write(target, text, mode=mode)
        except OSError as e:
            raise WhitelistError(f"cannot write: {e.strerror or e}", file=str(self.path)) from None
        return wanted


def _parses_to(text: str, wanted: Whitelist) -> bool:
    try:
        return parse_whitelist(text) == wanted
    except WhitelistError:
        return False


def _lines(text: str) -> list[str]:
    """Lines with their terminators, split where PyYAML counts lines."""
    return [line for line in _LINE.findall(text) if line]


def _newline(lines: Sequence[str]) -> str:
    for line in lines:
        stripped = line.rstrip(_BREAKS)
        if stripped != line:
            return line[len(stripped):]
    return "\n"


def _insert(lines: list[str], after: int, new: Iterable[str]) -> str:
    """``lines`` with ``new`` inserted after line index ``after`` (-1: at the end)."""
    nl = _newline(lines)
    at = len(lines) if after < 0 else after + 1
    if at == len(lines) and lines and lines[-1] == lines[-1].rstrip(_BREAKS):
        lines[-1] += nl  # the file's last line had no line break
    lines[at:at] = [line + nl for line in new]
    return "".join(lines)


def _last_line(key: yaml.Node, value: yaml.Node) -> int:
    """Index of the last line of a channel's block: its last item, else its key."""
    if isinstance(value, yaml.SequenceNode) and value.value:
        return value.value[-1].start_mark.line
    return key.start_mark.line


def _edit_add(text: str, parsed: _Parsed, channel: str, entry: Entry) -> str | None:
    """Text with ``entry`` on a new line under ``channel``; None if the layout is unsuitable."""
    lines = _lines(text)
    item = f"- {_scalar(entry.text)}"
    found = parsed.lists.get(fold(channel))
    if found is not None:
        key, value = found
        if isinstance(value, yaml.SequenceNode):
            if value.flow_style or not value.value:
                return None
            last = value.value[-1].start_mark.line
            indent = lines[last][:len(lines[last]) - len(lines[last].lstrip())]
            return _insert(lines, last, [indent + item])
        return _insert(lines, key.start_mark.line, [" " * (key.start_mark.column + 2) + item])
    block = [f"{_scalar(channel)}:", f"  {item}"]
    if parsed.lists:  # after the last channel, at the same indentation
        key, value = list(parsed.lists.values())[-1]
        indent = " " * key.start_mark.column
        return _insert(lines, _last_line(key, value), [indent + line for line in block])
    if parsed.channels is not None:  # "channels:" with nothing under it
        indent = " " * (parsed.channels.start_mark.column + 2)
        return _insert(lines, parsed.channels.start_mark.line, [indent + line for line in block])
    return _insert(lines, -1, ["channels:"] + [f"  {line}" for line in block])


def _edit_remove(text: str, parsed: _Parsed, channel: str, entry: Entry) -> str | None:
    """Text without the entry's line; None if that line holds anything else."""
    line = _own_line(text, parsed, channel, entry)
    if line is None:
        return None
    lines = _lines(text)
    del lines[line]
    return "".join(lines)


def _own_line(text: str, parsed: _Parsed, channel: str, entry: Entry) -> int | None:
    """The line index of ``entry`` in ``channel`` if that line holds nothing else (its
    comment goes with it), else None."""
    _, value = parsed.lists[fold(channel)]
    item = next(item for item in value.value if parse_entry(item.value).text == entry.text)
    line = item.start_mark.line
    if value.flow_style or item.end_mark.line != line \
            or not _lines(text)[line].lstrip().startswith("-"):
        return None
    return line


def _comments(text: str) -> list[tuple[int, str]]:
    """Every comment of whitelist ``text``: (line index, text from its ``#``). A ``#``
    starts one at the start of a line or after a blank; in a valid whitelist no string
    holds a blank ("#chan" keys start with a quote)."""
    found = []
    for number, line in enumerate(_lines(text)):
        at = next((i for i, c in enumerate(line) if c == "#" and (i == 0 or line[i - 1] in " \t")),
                  None)
        if at is not None:
            found.append((number, line[at:].rstrip()))
    return found


def _keeps_comments(old: str, new: str, dropped: int | None) -> bool:
    """Whether ``new`` has every comment of ``old`` but the one on line index ``dropped``."""
    before = Counter(text for line, text in _comments(old) if line != dropped)
    return not before - Counter(text for _, text in _comments(new))


def _indents(parsed: _Parsed) -> dict[str, int]:
    """ruamel.yaml's indent settings for the file's own layout (else the example's)."""
    mapping, sequence, offset = 2, 4, 2
    keys = list(parsed.lists.values())
    if parsed.channels is not None and keys:
        mapping = keys[0][0].start_mark.column - parsed.channels.start_mark.column or mapping
    for key, value in keys:
        if isinstance(value, yaml.SequenceNode) and not value.flow_style and value.value:
            offset = value.start_mark.column - key.start_mark.column  # where the dash is
            sequence = value.value[0].start_mark.column - key.start_mark.column
            break
    return {"mapping": mapping, "sequence": max(sequence, offset + 2), "offset": offset}


def _round_trip(text: str, parsed: _Parsed, change: Callable[[Any], Any]) -> str | None:
    """``text`` loaded by ruamel.yaml (comments attached), changed, dumped; None if
    ruamel.yaml cannot."""
    rt = YAML()  # round trip
    rt.preserve_quotes = True
    rt.width = 1 << 16  # never fold a line
    rt.indent(**_indents(parsed))
    out = io.StringIO()
    try:
        rt.dump(change(rt.load(text)), out)
    except RuamelError:
        return None
    if parsed.channels is None and text.strip():  # comments only: ruamel.yaml drops them
        return text + ("" if text.endswith(("\n", "\r")) else "\n") + out.getvalue()
    return out.getvalue()


def _rt_key(channels: CommentedMap, channel: str) -> str | None:
    return next((key for key in channels if fold(key) == fold(channel)), None)


def _rt_add(doc: CommentedMap | None, channel: str, entry: Entry) -> CommentedMap:
    if doc is None:
        doc = CommentedMap()
    if doc.get("channels") is None:
        doc["channels"] = CommentedMap()
    channels = doc["channels"]
    key = _rt_key(channels, channel)
    if key is not None and isinstance(channels[key], list):
        channels[key].append(entry.text)
    else:  # a new channel, or "#c": ~
        channels[key if key is not None else channel] = CommentedSeq([entry.text])
    return doc


def _rt_remove(doc: CommentedMap, channel: str, entry: Entry) -> CommentedMap:
    items = doc["channels"][_rt_key(doc["channels"], channel)]
    del items[next(i for i, item in enumerate(items) if parse_entry(item).text == entry.text)]
    return doc


def _scalar(text: str) -> str:
    """``text`` plain if YAML reads it back as that string, else double-quoted."""
    try:
        if yaml.safe_load(text) == text:
            return text
    except yaml.YAMLError:
        pass
    return json.dumps(text, ensure_ascii=False)

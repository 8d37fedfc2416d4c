"""Whitelist store: parsing, strict validation messages, qualifies, atomic comment-keeping edits."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threatnet.address import parse_ip
from threatnet.whitelist import (Whitelist, WhitelistError, WhitelistStore, parse_entry,
                                 parse_whitelist)

EXAMPLE = """\
# ThreatNet whitelist
channels:
  "#threatnet":
    - 192.0.2.0/24        # office
    - 2001:db8::/48
    # - 203.0.113.9       (disabled)
    - account:Alice
  "#Other[1]":
    - 198.51.100.7
"""


@pytest.fixture
def store(tmp_path: Path) -> WhitelistStore:
    path = tmp_path / "whitelist.yaml"
    path.write_text(EXAMPLE)
    return WhitelistStore(path)


def key(text: str) -> int:
    return parse_ip(text)


# --- loading ---------------------------------------------------------------------------------

def test_valid_file(store: WhitelistStore) -> None:
    wl = store.load()
    assert wl.channels() == ["#threatnet", "#Other[1]"]
    assert wl.entries("#threatnet") == ["192.0.2.0/24", "2001:db8::/48", "account:alice"]
    assert wl.entries("#other{1}") == ["198.51.100.7"]
    assert wl.entries("#nowhere") == []


def test_missing_file_is_empty(tmp_path: Path) -> None:
    wl = WhitelistStore(tmp_path / "absent.yaml").load()
    assert wl == Whitelist()
    assert wl.channels() == []
    assert not wl.qualifies("#threatnet", key("192.0.2.1"), "alice")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "channels:\n", "channels: {}\n"])
def test_empty_documents(text: str) -> None:
    assert parse_whitelist(text) == Whitelist()


def test_channel_without_entries() -> None:
    wl = parse_whitelist('channels:\n  "#a":\n  "#b": []\n')
    assert wl.channels() == ["#a", "#b"]
    assert wl.entries("#a") == []


def test_entries_are_canonical() -> None:
    wl = parse_whitelist("channels:\n  '#c':\n    - ::FFFF:10.0.0.1\n    - 2001:DB8:0::/32\n"
                         "    - ACCOUNT:Bob\n    - 1:2:3:4:5:6:7:8\n")
    assert wl.entries("#c") == ["10.0.0.1", "2001:db8::/32", "account:bob", "1:2:3:4:5:6:7:8"]


# --- invalid files: exact file:line: 'entry': reason -----------------------------------------

INVALID = [
    ("channels:\n  '#c':\n    - 10.1.2.3/8\n",
     "w.yaml:3: '10.1.2.3/8': host bits set: did you mean 10.0.0.0/8?"),
    ("channels:\n  '#c':\n    - 10.0.0.1\n    - ::ffff:10.0.0.1\n",
     "w.yaml:4: '::ffff:10.0.0.1': duplicate entry (also on line 3)"),
    ("channels:\n  '#c':\n    - account:alice\n    - account:ALICE\n",
     "w.yaml:4: 'account:ALICE': duplicate entry (also on line 3)"),
    ("channels:\n  '#c': []\nextra: 1\n",
     "w.yaml:3: 'extra': unknown top-level key (only 'channels' is allowed)"),
    ("channels:\n  '#c': 10.0.0.1\n",
     "w.yaml:2: '#c': must be a list of entries"),
    ("channels:\n  '#c':\n    a: b\n",
     "w.yaml:3: '#c': must be a list of entries"),
    ("channels:\n  threatnet:\n    - 10.0.0.1\n",
     "w.yaml:2: 'threatnet': not a channel name (must start with one of #&+!)"),
    ("channels:\n  '#a b': []\n",
     "w.yaml:2: '#a b': spaces, commas or control characters in channel name"),
    ("channels:\n  '#Chan[x]': []\n  '#chan{X}': []\n",
     "w.yaml:3: '#chan{X}': duplicate channel (also on line 2)"),
    ("channels:\n  '#c':\n    - account:al ice\n",
     "w.yaml:3: 'account:al ice': spaces or control characters in account name"),
    ('channels:\n  "#c":\n    - "account:al\\u200bice"\n',
     "w.yaml:3: 'account:al\\u200bice': spaces or control characters in account name"),
    ("channels:\n  '#c':\n    - 'account:*'\n",
     "w.yaml:3: 'account:*': '*' means no account"),
    ("channels:\n  '#c':\n    - alice\n",
     "w.yaml:3: 'alice': not an IP, CIDR or account:NAME"),
    ("channels:\n  '#c':\n    - 0.0.0.0/0\n",
     "w.yaml:3: '0.0.0.0/0': matches every address"),
    ("channels:\n  '#c':\n    - ::/0\n",
     "w.yaml:3: '::/0': matches every address"),
    ("channels:\n  '#c':\n    - [10.0.0.1]\n",
     "w.yaml:3: entry must be a single string"),
    ("- 10.0.0.1\n",
     "w.yaml:1: top level must be a mapping with a 'channels' key"),
    ("channels:\n#threatnet:\n  - 10.0.0.1\n",
     "w.yaml:3: 'channels' must map channel names to lists"
     " (quote channel names: # starts a YAML comment)"),
    ("channels: {}\nchannels: {}\n",
     "w.yaml:2: 'channels': duplicate key (also on line 1)"),
    ("channels:\n  '#c': &x\n    - 10.0.0.1\n  '#d': *x\n",
     "w.yaml:2: invalid YAML: anchors and aliases are not allowed"),
    ("channels:\n  '#c': [\n",
     "w.yaml:3: invalid YAML: while parsing a flow node, expected the node content,"
     " but found '<stream end>'"),
    ("channels: {}\n---\nchannels: {}\n",
     "w.yaml:2: invalid YAML: expected a single document in the stream,"
     " but found another document"),
    ("channels:\n  '#c':\n    - 10.0.0.1 \x07\n",
     "w.yaml:3: invalid YAML: character #x0007 not allowed"),
]


@pytest.mark.parametrize("text, message", INVALID)
def test_invalid_file(text: str, message: str) -> None:
    with pytest.raises(WhitelistError) as caught:
        parse_whitelist(text, "w.yaml")
    assert str(caught.value) == message


def test_invalid_file_error_names_path(tmp_path: Path) -> None:
    path = tmp_path / "whitelist.yaml"
    path.write_text("channels:\n  '#c':\n    - 10.1.2.3/8\n")
    with pytest.raises(WhitelistError) as caught:
        WhitelistStore(path).load()
    e = caught.value
    assert (e.file, e.line, e.entry) == (str(path), 3, "10.1.2.3/8")
    assert str(e) == f"{path}:3: '10.1.2.3/8': host bits set: did you mean 10.0.0.0/8?"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "whitelist.yaml"
    path.write_bytes(b"channels:\n  '#c':\n    - account:\xff\n")
    with pytest.raises(WhitelistError, match=r":3: not valid UTF-8$"):
        WhitelistStore(path).load()


def test_unreadable_is_an_error_not_empty(tmp_path: Path) -> None:
    with pytest.raises(WhitelistError, match="cannot read"):
        WhitelistStore(tmp_path).load()  # a directory


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [10.0.0.1]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 30)]
    with pytest.raises(WhitelistError, match="anchors and aliases"):
        parse_whitelist("\n".join(lines))


# --- parse_entry -----------------------------------------------------------------------------

def test_parse_entry() -> None:
    assert parse_entry("192.0.2.0/24").network is not None
    assert parse_entry("account:Alice") == ("account:alice", None, "Alice")
    with pytest.raises(WhitelistError) as caught:
        parse_entry("10.1.2.3/8")
    assert (caught.value.file, caught.value.line) == (None, None)
    assert str(caught.value) == "'10.1.2.3/8': host bits set: did you mean 10.0.0.0/8?"
    for bad in ["", "account:", "account:a\tb", "10.1", "10.0.0.1 ", "192.0.2.0/24\n"]:
        with pytest.raises(WhitelistError):
            parse_entry(bad)


# --- qualifies -------------------------------------------------------------------------------

def test_qualifies(store: WhitelistStore) -> None:
    wl = store.load()
    q = wl.qualifies
    assert q("#threatnet", key("192.0.2.0"), None)
    assert q("#threatnet", key("192.0.2.255"), None)
    assert not q("#threatnet", key("192.0.3.0"), None)
    assert not q("#threatnet", key("192.0.1.255"), None)
    assert q("#threatnet", key("::ffff:192.0.2.9"), None)  # the same key as 192.0.2.9
    assert q("#threatnet", key("2001:db8:0:ffff::1"), None)
    assert not q("#threatnet", key("2001:db8:1::1"), None)
    assert q("#other[1]", key("198.51.100.7"), None)
    assert not q("#other[1]", key("198.51.100.8"), None)
    assert not q("#other[1]", key("192.0.2.1"), None)  # per channel
    assert not q("#threatnet", None, None)
    assert not q("#elsewhere", key("192.0.2.1"), "alice")


def test_qualifies_account_and_casemapping(store: WhitelistStore) -> None:
    wl = store.load()
    assert wl.qualifies("#threatnet", None, "alice")
    assert wl.qualifies("#THREATNET", key("203.0.113.1"), "ALICE")
    assert not wl.qualifies("#threatnet", None, "bob")
    assert not wl.qualifies("#threatnet", None, "*")
    assert wl.qualifies("#OTHER{1}", key("198.51.100.7"), None)  # [ ] fold to { }
    assert wl.qualifies("#other[1]", key("198.51.100.7"), None)
    assert parse_whitelist("channels:\n  '#a~\\':\n    - account:x\n").qualifies("#a^|", None, "X")


def test_accounts_fold_as_the_servers_services_do() -> None:
    # Services compare accounts by the server's CASEMAPPING; before threatnet.names the
    # whitelist used str.casefold and never voiced {bot} for account:[Bot], while the
    # listener's trust rule did trust it.
    wl = parse_whitelist("channels:\n  '#c':\n    - account:[Bot]\n    - account:Ärger\n")
    assert wl.qualifies("#c", None, "{bot}")
    assert wl.qualifies("#c", None, "{bot}", "rfc1459")
    assert wl.qualifies("#c", None, "[BOT]", "ascii")
    assert not wl.qualifies("#c", None, "{bot}", "ascii")  # another account there
    assert not wl.qualifies("#c", None, "ärger")  # rfc1459 folds ASCII only
    assert wl.qualifies("#c", None, "ärger", "rfc7613")


def test_qualifies_overlapping_and_adjacent_ranges() -> None:
    wl = parse_whitelist("channels:\n  '#c':\n    - 10.0.0.0/8\n    - 10.1.0.0/16\n"
                         "    - 11.0.0.0/8\n    - 10.0.0.5\n    - 13.0.0.1\n")
    assert all(wl.qualifies("#c", key(ip), None)
               for ip in ["10.0.0.0", "10.1.2.3", "10.255.255.255", "11.0.0.0", "11.255.255.255",
                          "13.0.0.1"])
    assert not any(wl.qualifies("#c", key(ip), None)
                   for ip in ["9.255.255.255", "12.0.0.0", "13.0.0.0", "13.0.0.2", "::a00:1"])


def test_ipv4_entries_do_not_match_ipv6_keys() -> None:
    wl = parse_whitelist("channels:\n  '#c':\n    - 10.0.0.0/8\n")
    assert not wl.qualifies("#c", key("::10.0.0.1"), None)  # IPv4-compatible, not mapped


# --- fail-closed use -------------------------------------------------------------------------

def test_fail_closed_usage(store: WhitelistStore) -> None:
    current = Whitelist()  # what a caller holds before any load succeeds: trusts nobody
    assert not current.qualifies("#threatnet", key("192.0.2.1"), "alice")
    current = store.load()
    assert current.qualifies("#threatnet", key("192.0.2.1"), None)

    store.path.write_text(EXAMPLE + "  '#broken': 1\n")
    try:
        current = store.load()
    except WhitelistError:
        pass  # keep the last good whitelist: an error never widens trust
    assert current.qualifies("#threatnet", key("192.0.2.1"), None)
    assert not current.qualifies("#broken", key("192.0.2.1"), None)
    with pytest.raises(WhitelistError):
        store.add("#threatnet", "203.0.113.1")  # no edits on top of an invalid file
    assert store.path.read_text() == EXAMPLE + "  '#broken': 1\n"


def test_whitelist_is_immutable(store: WhitelistStore) -> None:
    wl = store.load()
    with pytest.raises(AttributeError):
        wl.extra = 1  # type: ignore[attr-defined]
    wl.entries("#threatnet").append("0.0.0.0/0")
    wl.channels().append("#x")
    assert wl == store.load()


# --- add / remove ----------------------------------------------------------------------------

def test_add_appends_a_line_and_keeps_comments(store: WhitelistStore) -> None:
    wl = store.add("#ThreatNet", "203.0.113.0/24")
    assert wl.entries("#threatnet")[-1] == "203.0.113.0/24"
    assert wl == store.load()
    assert store.path.read_text() == EXAMPLE.replace(
        "    - account:Alice\n", "    - account:Alice\n    - 203.0.113.0/24\n")


def test_add_new_channel(store: WhitelistStore) -> None:
    store.add("#new", "account:Bob")
    assert store.path.read_text() == EXAMPLE + '  "#new":\n    - account:bob\n'
    assert store.load().qualifies("#NEW", None, "bob")


def test_add_to_channel_without_entries(tmp_path: Path) -> None:
    store = WhitelistStore(tmp_path / "w.yaml")
    store.path.write_text('channels:\n  "#a":   # empty for now\n  "#b":\n    - 10.0.0.1\n')
    store.add("#a", "::1")
    assert store.path.read_text() == (
        'channels:\n  "#a":   # empty for now\n    - ::1\n  "#b":\n    - 10.0.0.1\n')


def test_add_creates_missing_file(tmp_path: Path) -> None:
    store = WhitelistStore(tmp_path / "w.yaml")
    store.add("#c", "1:2:3:4:5:6:7:8")
    assert store.path.read_text() == 'channels:\n  "#c":\n    - "1:2:3:4:5:6:7:8"\n'
    assert store.load().entries("#c") == ["1:2:3:4:5:6:7:8"]


@pytest.mark.parametrize("text", ["# header\n", "# header\nchannels:\n", "channels:  # here\n"])
def test_add_to_file_without_channels(tmp_path: Path, text: str) -> None:
    store = WhitelistStore(tmp_path / "w.yaml")
    store.path.write_text(text)
    store.add("#c", "10.0.0.1")
    new = store.path.read_text()
    assert new.startswith(text)
    assert store.load().entries("#c") == ["10.0.0.1"]


def test_add_without_trailing_newline(tmp_path: Path) -> None:
    store = WhitelistStore(tmp_path / "w.yaml")
    store.path.write_text("channels:\n  '#c':\n    - 10.0.0.1  # last")
    store.add("#c", "10.0.0.2")
    assert store.path.read_text() == "channels:\n  '#c':\n    - 10.0.0.1  # last\n    - 10.0.0.2\n"


def test_crlf_layout_is_kept(tmp_path: Path) -> None:
    store = WhitelistStore(tmp_path / "w.yaml")
    store.path.write_bytes(b"# c\r\nchannels:\r\n  '#c':\r\n    - 10.0.0.1\r\n")
    store.add("#c", "10.0.0.2")
    assert store.path.read_bytes() == (
        b"# c\r\nchannels:\r\n  '#c':\r\n    - 10.0.0.1\r\n    - 10.0.0.2\r\n")


def test_remove_deletes_only_that_line(store: WhitelistStore) -> None:
    wl = store.remove("#threatnet", "2001:DB8::/48")
    assert wl.entries("#threatnet") == ["192.0.2.0/24", "account:alice"]
    assert store.path.read_text() == EXAMPLE.replace("    - 2001:db8::/48\n", "")
    store.remove("#threatnet", "account:ALICE")  # canonical match, not textual
    assert store.path.read_text() == (
        EXAMPLE.replace("    - 2001:db8::/48\n", "").replace("    - account:Alice\n", ""))


def test_remove_last_entry_leaves_the_channel(store: WhitelistStore) -> None:
    wl = store.remove("#other[1]", "198.51.100.7")
    assert wl.channels() == ["#threatnet", "#Other[1]"]
    assert wl.entries("#Other[1]") == []
    assert store.path.read_text() == EXAMPLE.replace("    - 198.51.100.7\n", "")
    store.add("#Other[1]", "198.51.100.8")
    assert store.load().entries("#other[1]") == ["198.51.100.8"]


def test_flow_style_is_edited_by_a_round_trip_keeping_comments(tmp_path: Path) -> None:
    store = WhitelistStore(tmp_path / "w.yaml")
    store.path.write_text("# header kept\n\nchannels: {'#c': [10.0.0.1, 10.0.0.2]}  # kept\n")
    store.remove("#c", "10.0.0.1")
    assert store.path.read_text().startswith("# header kept\n\nchannels: {'#c': [10.0.0.2]}")
    assert store.path.read_text().rstrip().endswith("# kept")
    store.add("#c", "10.0.0.3")
    assert store.load().entries("#c") == ["10.0.0.2", "10.0.0.3"]
    assert store.path.read_text().rstrip().endswith("# kept")


def comments(text: str) -> list[str]:
    """The comments of a whitelist file (none of these files quotes a #)."""
    return [line[line.index("# "):].rstrip() for line in text.splitlines() if "# " in line]


# Layouts an operator may write: block lists with comments everywhere, a trailing comment on
# the last entry and after it, flow lists, [], ~, a folded scalar, other indentations.
LAYOUTS = [
    ('# head\nchannels:   # all of them\n  "#a":   # main\n    - 10.0.0.1   # one\n'
     '    # between entries\n    - 10.0.0.2   # two\n  # before b\n  "#b":\n    - 10.0.0.3\n'
     '# tail\n'),
    '# head\nchannels:\n  "#a": [10.0.0.1, 10.0.0.2]   # flow, with a comment\n# tail\n',
    '# head\nchannels:\n  "#a": []   # nobody yet\n  "#b":\n    - 10.0.0.3  # three\n# tail\n',
    '# head\nchannels:\n  "#a": ~   # nobody yet\n# tail\n',
    '# head\nchannels:\n  "#a":\n    - >-\n      10.0.0.1\n    - 10.0.0.2  # two\n# tail\n',
    '# head\nchannels:\n    "#a":   # four spaces\n    - 10.0.0.1   # no dash offset\n# tail\n',
]


@pytest.mark.parametrize("text", LAYOUTS)
@pytest.mark.parametrize("channel", ["#A", "#new"])
def test_add_keeps_every_comment(tmp_path: Path, text: str, channel: str) -> None:
    store = WhitelistStore(tmp_path / "w.yaml")
    store.path.write_text(text)
    before = store.load()
    store.add(channel, "203.0.113.0/24")
    assert store.load().entries(channel) == [*before.entries(channel), "203.0.113.0/24"]
    assert comments(store.path.read_text()) == comments(text)


@pytest.mark.parametrize("text", LAYOUTS)
@pytest.mark.parametrize("entry", ["10.0.0.1", "10.0.0.2"])
def test_remove_keeps_every_other_comment(tmp_path: Path, text: str, entry: str) -> None:
    store = WhitelistStore(tmp_path / "w.yaml")
    store.path.write_text(text)
    if entry not in store.load().entries("#a"):
        pytest.skip("not in this layout")
    store.remove("#a", entry)
    assert entry not in store.load().entries("#a")
    own = comments(next((line for line in text.splitlines()  # a block entry's own line
                         if line.lstrip().startswith(f"- {entry} ")), ""))
    assert [c for c in comments(store.path.read_text()) if c not in own] == \
        [c for c in comments(text) if c not in own]


def test_every_comment_of_the_example_config_survives_edits(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parent.parent / "conf" / "whitelist.yaml").read_text()
    store = WhitelistStore(tmp_path / "whitelist.yaml")
    store.path.write_text(example)
    store.add("#threatnet-test", "203.0.113.7")  # after an entry with a trailing comment
    store.add("#threatnet", "203.0.113.8")
    store.add("#new", "account:carol")
    store.remove("#threatnet", "account:alice")
    assert comments(store.path.read_text()) == comments(example)


def test_an_edit_that_would_lose_a_comment_fails_and_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from threatnet import whitelist

    monkeypatch.setattr(whitelist, "_round_trip", lambda *args: "channels: {'#a': [10.0.0.2]}\n")
    store = WhitelistStore(tmp_path / "w.yaml")
    text = "channels: {'#a': [10.0.0.1]}   # kept\n"
    store.path.write_text(text)
    with pytest.raises(WhitelistError, match="cannot make this edit without losing a comment"):
        store.add("#a", "10.0.0.2")
    assert store.path.read_text() == text


@pytest.mark.parametrize("op, channel, entry, message", [
    ("add", "#threatnet", "192.0.2.0/24", "'192.0.2.0/24': already in #threatnet"),
    ("add", "#threatnet", "account:ALICE", "'account:alice': already in #threatnet"),
    ("add", "#threatnet", "10.1.2.3/8", "'10.1.2.3/8': host bits set: did you mean 10.0.0.0/8?"),
    ("add", "threatnet", "10.0.0.1",
     "'threatnet': not a channel name (must start with one of #&+!)"),
    ("remove", "#threatnet", "203.0.113.9", "'203.0.113.9': not in #threatnet"),
    ("remove", "#nowhere", "192.0.2.0/24", "'192.0.2.0/24': not in #nowhere"),
    ("remove", "#threatnet", "account:", "'account:': empty account name"),
])
def test_edit_errors_change_nothing(store: WhitelistStore, op: str, channel: str, entry: str,
                                    message: str) -> None:
    with pytest.raises(WhitelistError) as caught:
        getattr(store, op)(channel, entry)
    assert str(caught.value) == message
    assert store.path.read_text() == EXAMPLE


def test_failed_write_keeps_old_file(store: WhitelistStore,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(WhitelistError, match="cannot write: No space left on device"):
        store.add("#threatnet", "203.0.113.1")
    with pytest.raises(WhitelistError, match="cannot write"):
        store.remove("#threatnet", "192.0.2.0/24")
    monkeypatch.undo()
    assert store.path.read_text() == EXAMPLE
    assert os.listdir(store.path.parent) == ["whitelist.yaml"]  # no temp files left


def test_write_keeps_mode_and_symlink(store: WhitelistStore, tmp_path: Path) -> None:
    store.path.chmod(0o600)
    link = tmp_path / "link.yaml"
    link.symlink_to(store.path)
    WhitelistStore(link).add("#threatnet", "203.0.113.1")
    assert link.is_symlink()
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert "203.0.113.1" in store.load().entries("#threatnet")


def test_edits_reread_the_file(store: WhitelistStore) -> None:
    store.path.write_text(EXAMPLE + "  '#hand':\n    - 10.9.9.9  # added by hand\n")
    store.add("#hand", "10.9.9.10")
    assert store.path.read_text() == (
        EXAMPLE + "  '#hand':\n    - 10.9.9.9  # added by hand\n    - 10.9.9.10\n")


def test_account_needing_quotes_round_trips(store: WhitelistStore) -> None:
    store.add("#threatnet", "account:odd:")
    assert '    - "account:odd:"\n' in store.path.read_text()
    assert store.load().qualifies("#threatnet", None, "ODD:")
    store.remove("#threatnet", "account:odd:")
    assert store.path.read_text() == EXAMPLE


def test_example_config_is_valid() -> None:
    conf = Path(__file__).resolve().parent.parent / "conf" / "whitelist.yaml"
    wl = WhitelistStore(conf).load()
    assert wl.qualifies("#threatnet", key("192.0.2.1"), None)
    assert wl.qualifies("#threatnet", None, "Alice")


# --- property: any sequence of edits keeps the file equal to a simple model --------------------

CHANNELS = ["#a", "#B", "&c"]
ENTRIES = ["10.0.0.0/8", "10.0.0.1", "2001:db8::/32", "::1", "account:x", "account:y:", "1:2::"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(CHANNELS), st.sampled_from(ENTRIES)),
                max_size=25))
def test_edits_match_model(ops: list[tuple[bool, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "w.yaml")
        path.write_text("# keep me\nchannels:\n  '#a':  # the a channel\n    - 192.0.2.1\n")
        store = WhitelistStore(path)
        model = {"#a": ["192.0.2.1"]}
        for adding, channel, entry in ops:
            listed = model.get(channel.lower(), [])
            if adding == (entry in listed):
                with pytest.raises(WhitelistError):
                    (store.add if adding else store.remove)(channel, entry)
                continue
            (store.add if adding else store.remove)(channel, entry)
            if adding:
                model.setdefault(channel.lower(), []).append(entry)
            else:
                listed.remove(entry)
        wl = store.load()
        assert {c.lower(): wl.entries(c) for c in wl.channels()} == {
            c: e for c, e in model.items()}
        assert path.read_text().startswith("# keep me\nchannels:\n  '#a':  # the a channel\n")


def test_why_names_the_entry_that_vouches() -> None:
    whitelist = parse_whitelist('channels:\n  "#tn":\n    - 192.0.2.0/24\n    - account:[Bot]\n')
    assert whitelist.why("#TN", parse_ip("192.0.2.9"), None) == "192.0.2.0/24"
    assert whitelist.why("#tn", parse_ip("198.51.100.1"), "{bot}") == "account:{bot}"
    assert whitelist.why("#tn", parse_ip("198.51.100.1"), "{bot}", "ascii") is None
    assert whitelist.why("#tn", None, "*") is None
    assert whitelist.why("#other", parse_ip("192.0.2.9"), "[Bot]") is None

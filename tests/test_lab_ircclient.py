"""The lab's IRC client reads lines as Limnoria does: IRCv3 tag escapes, source, parameters."""
import pytest

from lab.ircclient import parse

# (tag value on the wire, what it means): the message-tags escapes, alone and next to each
# other, where a parser that replaces one escape after another goes wrong.
TAG_VALUES = [
    (r"a\sb", "a b"),
    (r"a\:b", "a;b"),
    (r"a\\b", "a\\b"),
    (r"a\rb\nc", "a\rb\nc"),
    (r"\s\:\\\r\n", " ;\\\r\n"),
    (r"\\s", "\\s"),  # an escaped backslash, then "s"
    (r"\\:", "\\:"),
    (r"\\\s", "\\ "),
    (r"\q", "q"),  # an unknown escape is the character itself
    ("x\\", "x"),  # a lone backslash at the end is dropped
    ("", ""),
]


@pytest.mark.parametrize("wire, meant", TAG_VALUES)
def test_tag_value_escapes(wire: str, meant: str) -> None:
    line = parse(f"@account=bob;x={wire};label :n!u@h PRIVMSG #c :hi")
    assert line.tags == {"account": "bob", "x": meant, "label": ""}
    assert line.params == ["#c", "hi"]


def test_line_fields() -> None:
    line = parse(":nick!user@192.0.2.1 privmsg #chan :hello  world ", 12.5)
    assert (line.command, line.params, line.source) == ("PRIVMSG", ["#chan", "hello  world "],
                                                        "nick!user@192.0.2.1")
    assert (line.nick, line.host, line.text, line.received) == ("nick", "192.0.2.1",
                                                                "hello  world ", 12.5)
    server = parse(":irc.test CAP * LS * :sasl=PLAIN multi-prefix")
    assert (server.nick, server.host, server.params) == (
        "irc.test", "", ["*", "LS", "*", "sasl=PLAIN multi-prefix"])
    assert parse("PING :irc.test").params == ["irc.test"]


def test_unparsable_line_is_kept_without_a_command() -> None:
    line = parse(":only.a.source")
    assert (line.raw, line.command, line.params) == (":only.a.source", "", [])

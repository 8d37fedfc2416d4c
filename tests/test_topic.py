"""Topic: vectors in tests/vectors/topic.yaml, then replace() and properties."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from threatnet.topic import DEFAULT_BLOCK, MAX_BLOCK, Topic, TopicError, parse_topic

VECTORS = yaml.safe_load((Path(__file__).parent / "vectors" / "topic.yaml").read_text("utf-8"))
BASE = "threatnet://ali.as/threatnet/topic/iponly"


@pytest.mark.parametrize("case", VECTORS["accepted"], ids=lambda c: repr(c["topic"]))
def test_accepted(case: dict) -> None:
    topic = parse_topic(case["topic"])
    uri = case.get("uri", case["topic"].split(None, 1)[0])
    assert topic.uri == uri
    assert topic.host == case.get("host", topic.host)
    assert topic.path == case.get("path", topic.path)
    assert topic.config == case.get("config", case["topic"][len(uri):].strip())
    assert topic.words == tuple(case.get("words", ()))
    assert topic.block == case.get("block", DEFAULT_BLOCK)
    assert topic.quorum == case.get("quorum", 1)
    assert topic.flags == frozenset(case.get("flags", ()))
    assert topic.format() == case.get("formatted", case["topic"])
    assert parse_topic(topic.format()) == topic


@pytest.mark.parametrize("case", VECTORS["rejected"], ids=lambda c: repr(c["topic"]))
def test_rejected(case: dict) -> None:
    with pytest.raises(TopicError) as err:
        parse_topic(case["topic"])
    assert case["reason"] in str(err.value)


def test_replace_builds_a_topic_from_config() -> None:
    topic = parse_topic(BASE).replace(block=600, flags=["open", "IPv6"])
    assert topic.format() == f"{BASE} ipv6, open, block=600"
    assert (topic.block, topic.flags) == (600, frozenset({"open", "ipv6"}))
    assert parse_topic(topic.format()) == topic


def test_replace_sets_and_clears_the_quorum() -> None:
    topic = parse_topic(f"{BASE} open").replace(quorum=3)
    assert (topic.words, topic.quorum) == (("open", "quorum=3"), 3)
    assert topic.replace(quorum=1).words == ("open",)  # the default is not written


def test_replace_keeps_unknown_words_and_order() -> None:
    topic = parse_topic(f"{BASE} open future=x, shiny block=60 devel")
    new = topic.replace(block=120, flags={"open", "devel", "tolerant"})
    assert new.words == ("open", "future=x", "devel", "tolerant", "block=120")
    assert new.config == "open, future=x, devel, tolerant, block=120"


def test_replace_changes_only_what_is_asked() -> None:
    topic = parse_topic(f"{BASE} open, block=60")
    assert topic.replace(uri="threatnet://example.org/v2").format() == \
        "threatnet://example.org/v2 open, block=60"
    assert topic.replace(block=90).words == ("open", "block=90")
    assert topic.replace(flags=()).words == ("block=60",)
    assert topic.replace() == parse_topic(f"{BASE} open, block=60")


@pytest.mark.parametrize("kwargs, reason", [
    ({"block": 0}, "block must be"),
    ({"block": -5}, "block must be"),
    ({"block": MAX_BLOCK + 1}, "block must be"),
    ({"block": 60.0}, "block must be"),
    ({"block": True}, "block must be"),
    ({"quorum": 0}, "quorum must be"),
    ({"quorum": 17}, "quorum must be"),
    ({"quorum": 2.0}, "quorum must be"),
    ({"flags": "open"}, "collection"),
    ({"flags": ["block=5"]}, "one word"),
    ({"flags": ["two words"]}, "one word"),
    ({"flags": ["a,b"]}, "one word"),
    ({"flags": [""]}, "one word"),
    ({"flags": ["bad\x02"]}, "one word"),
    ({"flags": [3]}, "one word"),
    ({"uri": "threatnet://a/b open"}, "one word"),
    ({"uri": "foo://a/b"}, "threatnet://"),
    ({"uri": "threatnet://a"}, "no path"),
])
def test_replace_rejects(kwargs: dict, reason: str) -> None:
    with pytest.raises(TopicError) as err:
        parse_topic(BASE).replace(**kwargs)
    assert reason in str(err.value)


@given(st.one_of(st.text(), st.text(st.characters(max_codepoint=0x7F)).map(lambda s: BASE + s),
                 st.binary(), st.none(), st.integers()))
def test_parse_raises_only_topic_error(text: object) -> None:
    try:
        assert isinstance(parse_topic(text), Topic)
    except TopicError as e:
        assert str(e) and str(e).isprintable()


hosts = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True)
paths = st.from_regex(r"/[A-Za-z0-9/._~-]{0,30}", fullmatch=True)
flag_words = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True).filter(lambda w: w != "block")
other_words = st.from_regex(r"[a-z]{1,8}=[A-Za-z0-9.:]{0,8}", fullmatch=True).filter(
    lambda w: not w.startswith("block="))
separators = st.sampled_from([" ", ", ", ",", "  ", "\t", " , "])


@given(hosts, paths, st.lists(st.one_of(flag_words, other_words), max_size=6), separators,
       st.one_of(st.none(), st.integers(1, MAX_BLOCK)))
def test_round_trip(host: str, path: str, words: list[str], sep: str, block: int | None) -> None:
    if block is not None:
        words = [*words, f"block={block}"]
    topic = parse_topic(f"threatnet://{host}{path} {sep.join(words)}")
    assert (topic.host, topic.path, topic.words) == (host, path, tuple(words))
    assert topic.block == (DEFAULT_BLOCK if block is None else block)
    assert parse_topic(topic.format()) == topic


@given(st.lists(st.one_of(flag_words, other_words), max_size=6),
       st.integers(1, MAX_BLOCK), st.frozensets(flag_words, max_size=4))
def test_replace_round_trip(words: list[str], block: int, flags: frozenset[str]) -> None:
    topic = parse_topic(f"{BASE} {' '.join(words)}").replace(block=block, flags=flags)
    assert (topic.block, topic.flags) == (block, flags)
    assert [w for w in topic.words if "=" in w and not w.startswith("block=")] == \
        [w for w in words if "=" in w]
    assert parse_topic(topic.format()) == topic

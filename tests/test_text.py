"""threatnet.text: one line of free text, the one UTF-8 truncation, text that encodes."""
import pytest
from hypothesis import given, strategies as st

from threatnet.text import clean_text, truncate_utf8, valid_utf8


@pytest.mark.parametrize("raw, clean", [
    ("plain", "plain"),
    ("line\nbreak\r\x00nul", "line break nul"),
    ("\x02bold\x02 \x0304,12colour\x03 \x1freset\x0f", "bold colour reset"),
    ("\x0399,5x \x03,y", "x ,y"),
    ("para\u2029sep\u2028line\u200bzw", "para sep line zw"),
    ("  many   spaces\t", "many spaces"),
    ("ünïcödé ✓", "ünïcödé ✓"),
])
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


def test_truncate_utf8_keeps_whole_characters():
    assert truncate_utf8("ééé", 5) == "éé"
    assert truncate_utf8("abc", 5) == "abc"


def test_truncate_utf8_turns_a_lone_surrogate_into_a_question_mark():
    assert truncate_utf8("x\ud800y", 10) == "x?y"
    assert truncate_utf8("\ud800" * 3, 2) == "??"


@given(st.text(), st.integers(min_value=0, max_value=600))
def test_truncate_utf8_is_the_longest_prefix_that_fits(text, limit):
    cut = truncate_utf8(text, limit)
    data = cut.encode("utf-8")  # never raises: lone surrogates are gone
    assert len(data) <= limit
    whole = text.encode("utf-8", "replace")
    assert whole.startswith(data)
    if len(whole) > limit:  # only a character that would not fit whole was dropped
        assert len(whole[len(data):].decode("utf-8", "ignore")[:1].encode()) > limit - len(data)


def test_valid_utf8_replaces_only_lone_surrogates():
    assert valid_utf8("x\ud800y\udfff") == "x?y?"
    assert valid_utf8("ünï \U0001f600") == "ünï \U0001f600"
    plain = "plain"
    assert valid_utf8(plain) is plain


@given(st.text())
def test_valid_utf8_always_encodes(text):
    assert valid_utf8(text).encode("utf-8") == text.encode("utf-8", "replace")

"""Conversation: which channel lines are questions, and which lines answer them."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from threatnet.conversation import Conversation, Talk, addressee


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("text, nick", [
    ("ammobot: status", "ammobot"), ("ammobot, status", "ammobot"), ("ammobot:", "ammobot"),
    ("[Bot]: hi", "[Bot]"), ("ammobot:status", None), (" ammobot: status", None),
    ("!tn status", None), ("45.0.0.1 ssh", None), ("", None), (":", None), (", x", None),
])
def test_addressee(text, nick) -> None:
    assert addressee(text) == nick


def test_a_question_to_an_agent_is_answered_by_that_agent_only() -> None:
    talk = Conversation(Clock())
    assert talk.ask("newbie", Talk(to="ammobot", to_voiced=True), 10)
    assert not talk.answer("agent2", "chat", voiced=True, lines=3)
    assert not talk.answer("newbie", "ammobot: and more", voiced=False, lines=3)  # the asker
    answer = "Online 74 seconds. 6 events at 0.1/s"  # no "newbie:" needed
    assert [talk.answer("AmmoBot", answer, voiced=True, lines=3) for _ in range(4)] == \
        [True, True, True, False]


def test_a_command_is_answered_by_every_agent_that_heard_it() -> None:
    talk = Conversation(Clock())
    assert talk.ask("newbie", Talk(command=True, heard=frozenset({"newbie", "a1", "lst"})), 10)
    assert talk.answer("a1", "anything at all", voiced=True, lines=2)
    assert not talk.answer("late", "joined after the question", voiced=True, lines=2)
    # An unvoiced member answers as Limnoria does, with the asker's nick, once.
    assert not talk.answer("lst", "3 threats", voiced=False, lines=2)
    assert talk.answer("lst", "Newbie: 3 threats", voiced=False, lines=2)
    assert not talk.answer("lst", "newbie: and again", voiced=False, lines=2)


def test_no_question_without_someone_to_answer_it() -> None:
    talk = Conversation(Clock())
    assert not talk.ask("mallory", Talk(), 10)
    assert not talk.ask("mallory", Talk(to="Mallory", to_voiced=True), 10)  # to oneself
    assert not talk.answer("mallory", "mallory: spam", voiced=False, lines=3)
    assert len(talk) == 0


def test_answers_only_within_the_window() -> None:
    clock = Clock()
    talk = Conversation(clock)
    talk.ask("op", Talk(to="a1"), 10)
    clock.now += 10
    assert not talk.answer("a1", "too late", voiced=True, lines=3)
    assert talk.ask("op", Talk(to="a1"), 0)  # a question, but answered in private only
    assert not talk.answer("a1", "here?", voiced=True, lines=3) and len(talk) == 0


def test_nicks_compare_as_the_server_folds_them() -> None:
    talk = Conversation(Clock())
    talk.ask("op", Talk(to="[Bot]"), 10, casemapping="rfc1459")
    assert talk.answer("{bot}", "ok", voiced=True, lines=1, casemapping="rfc1459")
    talk.ask("op", Talk(to="[Bot]"), 10, casemapping="ascii")
    assert not talk.answer("{bot}", "ok", voiced=True, lines=1, casemapping="ascii")

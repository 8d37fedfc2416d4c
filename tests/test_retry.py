"""Retries: the backoff schedule for what a bot sends until the server's state shows it held."""
from __future__ import annotations

from dataclasses import dataclass

from threatnet.retry import Attempt, Retries, delay


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_doubles_up_to_the_cap() -> None:
    assert [delay(n, 1, 60) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert [delay(n, 10, 300) for n in range(1, 7)] == [10, 20, 40, 80, 160, 300]
    assert delay(0) == 1


def test_sent_is_checked_after_the_backoff_until_it_holds() -> None:
    clock = Clock()
    retries: Retries[str] = Retries(clock)
    assert retries.sent("topic") == Attempt(1, 1001.0)
    assert retries.waiting("topic") and retries.due() == [] and retries.next_due() == 1001.0
    clock.now += 1
    assert retries.due() == ["topic"] and not retries.waiting("topic")
    assert retries.sent("topic") == Attempt(2, 1003.0)
    assert retries.held("topic") == Attempt(2, 1003.0)
    assert "topic" not in retries and retries.next_due() is None and retries.held("topic") is None


def test_a_refusal_keeps_the_schedule_and_says_why() -> None:
    clock = Clock()
    retries: Retries[str] = Retries(clock)
    retries.sent("topic")
    assert retries.refused("topic", "437 Retry topic change later") == \
        Attempt(1, 1001.0, "437 Retry topic change later")
    clock.now += 1
    assert retries.sent("topic").reason == "437 Retry topic change later"  # still the last word
    # Someone changed it again: a new start, checked after the first wait.
    assert retries.sent("topic", fresh=True) == Attempt(1, 1002.0)


def test_a_refusal_of_what_was_not_sent_is_due_after_the_first_wait() -> None:
    clock = Clock()
    retries: Retries[str] = Retries(clock, first=10, cap=300)
    assert retries.refused("#tn", "474 Cannot join channel") == \
        Attempt(0, 1010.0, "474 Cannot join channel")
    clock.now += 10
    assert retries.due() == ["#tn"]
    assert retries.sent("#tn") == Attempt(1, 1020.0, "474 Cannot join channel")


def test_due_earliest_first() -> None:
    clock = Clock()
    retries: Retries[str] = Retries(clock)
    for key in ("a", "b", "c"):
        retries.sent(key)
    retries.sent("a")  # its second attempt: checked later
    clock.now += 5
    assert retries.due() == ["b", "c", "a"] and len(retries) == 3
    assert sorted(retries.keys()) == ["a", "b", "c"] and retries.get("b") == Attempt(1, 1001.0)

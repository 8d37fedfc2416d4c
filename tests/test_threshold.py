"""Threshold: failures per address in a sliding window, attempts not lines, bounded memory.
The clock is injected; nothing sleeps."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from threatnet.threshold import CAPACITY, Counted, Find, Kind, Threshold

PASSWORD = Kind("sshd: failed password", "failed password", "failed passwords")
INVALID = Kind("sshd: invalid user", "invalid user", "invalid users")
SCAN = Kind("sshd: scan", "scan", "scans")
A, B, C = 1, 2, 3  # address keys


def failure(kind: Kind = PASSWORD, **kw) -> Find:
    return Find("203.0.113.7", kind, **kw)


def counts(threshold: Threshold, key: int, finds: list[tuple[float, Find]]) -> list[Counted]:
    """What adding ``finds`` (time, find) to ``key`` reports."""
    return [c for now, find in finds if (c := threshold.add(key, find, now)) is not None]


def test_below_the_threshold_nothing_at_it_one_report_with_the_count() -> None:
    t = Threshold(maxretry=5, findtime=600)
    assert [t.add(A, failure(), now) for now in (0, 1, 2, 3)] == [None] * 4
    assert t.below(3) == 1
    assert t.add(A, failure(), 4) == Counted(5, ((PASSWORD, 5),))
    assert t.below(4) == 0 and t.reached == 1
    # The count starts again: a second report needs five more (while the first is
    # current the provider refuses it as a duplicate anyway).
    assert counts(t, A, [(5 + n, failure()) for n in range(4)]) == []
    assert t.add(A, failure(), 9) == Counted(5, ((PASSWORD, 5),))


def test_addresses_are_counted_apart() -> None:
    t = Threshold(maxretry=2, findtime=600)
    assert t.add(A, failure(), 0) is None
    assert t.add(B, failure(), 1) is None
    assert t.add(A, failure(), 2) is not None
    assert t.below(2) == 1


def test_the_window_slides() -> None:
    t = Threshold(maxretry=3, findtime=600)
    assert counts(t, A, [(0, failure()), (300, failure())]) == []
    assert t.add(A, failure(), 600) is None  # the first is exactly findtime old: out
    assert t.add(A, failure(), 899) == Counted(3, ((PASSWORD, 3),))  # 300, 600, 899


def test_an_address_quiet_for_findtime_is_forgotten() -> None:
    clock = Clock()
    t = Threshold(maxretry=5, findtime=60, clock=clock)
    t.add(A, failure())
    clock.now += 30
    t.add(B, failure())
    assert t.below() == 2
    clock.now += 30  # A's failure is 60 s old
    assert t.below() == 1
    clock.now += 30
    t.prune()
    assert t.below() == 0 and t.evicted == 0


def test_when_full_the_addresses_that_failed_least_recently_are_forgotten() -> None:
    t = Threshold(maxretry=3, findtime=600, capacity=4)  # 4 failures remembered
    for now, key in enumerate((A, B, C, A)):  # A fails again: the most recent now
        t.add(key, failure(), now)
    t.add(4, failure(), 4)  # one too many: B goes
    assert (t.below(4), t.evicted) == (3, 1)
    assert t.add(B, failure(), 5) is None  # B starts from 1 again, and C goes
    assert t.evicted == 2
    assert t.add(A, failure(), 6) == Counted(3, ((PASSWORD, 3),))  # A kept its count
    assert CAPACITY == 10_000


def test_a_flood_of_one_off_addresses_cannot_hide_a_persistent_attacker() -> None:
    t = Threshold(maxretry=5, findtime=600, capacity=100)
    reported = []
    for now in range(5):
        for n in range(50):  # 50 one-off addresses between two attempts of A
            t.add(1000 + now * 50 + n, failure(), now + n / 100)
        if t.add(A, failure(), now + 0.5) is not None:
            reported.append(now)
    assert reported == [4] and t.evicted > 100 and t.below(5) <= 100


def test_attempts_count_not_lines() -> None:
    """sshd's lines about one connection (same session: its process id) count as many
    as its attempts, at least 1."""
    t = Threshold(maxretry=3, findtime=600)
    typo = [(0, failure(INVALID, session="100", attempt=False)),  # Invalid user alcie
            (1, failure(INVALID, session="100")),  # Failed password for invalid user alcie
            (2, failure(INVALID, session="100")),
            (3, failure(INVALID, session="100", attempt=False))]  # Connection closed by ...
    assert counts(t, A, typo) == []  # 2 attempts
    assert counts(t, A, [(4, failure(session="101"))]) == [Counted(3, ((INVALID, 2),
                                                                        (PASSWORD, 1)))]


def test_a_connection_without_attempts_counts_once() -> None:
    t = Threshold(maxretry=2, findtime=600)
    lines = [(0, failure(SCAN, session="7", attempt=False)),
             (1, failure(SCAN, session="7", attempt=False))]
    assert counts(t, A, lines) == []
    assert t.add(A, failure(SCAN, session="8", attempt=False), 2) == Counted(2, ((SCAN, 2),))
    # Without a session (a bare line) every line counts.
    assert counts(t, B, [(0, failure(SCAN, attempt=False))] * 2) == [Counted(2, ((SCAN, 2),))]


def test_repeated_lines_count_their_times() -> None:
    t = Threshold(maxretry=5, findtime=600)
    assert t.add(A, failure(session="9", attempt=False), 0) is None  # counted 1
    # "message repeated 4 times: [Failed password ...]": the first of them is the one
    # the connection line counted.
    assert t.add(A, failure(times=4, session="9"), 1) is None  # 4 in all
    assert t.add(A, failure(times=3, session="10"), 2) == Counted(7, ((PASSWORD, 7),))


def test_kinds_are_named_most_frequent_first() -> None:
    t = Threshold(maxretry=5, findtime=600)
    found = [failure(INVALID), failure(PASSWORD), failure(INVALID), failure(SCAN),
             failure(INVALID)]
    [counted] = counts(t, A, list(enumerate(found)))
    assert counted.kinds == ((INVALID, 3), (PASSWORD, 1), (SCAN, 1))
    assert t.describe(counted, "sshd") == "sshd: 3 invalid users, 1 failed password, 1 scan in 600 s"
    assert t.describe(Counted(5, ((PASSWORD, 5),)), "") == "5 failed passwords in 600 s"


def test_a_threshold_of_one_reports_each_find_alone() -> None:
    t = Threshold()
    assert str(t) == "threshold 1"
    counted = t.add(A, failure(INVALID, session="1", attempt=False), 0)
    assert counted == Counted(1, ((INVALID, 1),))
    assert t.describe(counted, "sshd") == "sshd: invalid user"
    assert t.below(0) == 0 and t.reached == 1
    assert str(Threshold(5, 600)) == "threshold 5 in 600 s"


@pytest.mark.parametrize("args, error", [
    ((0, 600), "maxretry must be 1 to 100"),
    ((101, 600), "maxretry must be 1 to 100"),
    ((5, 0), "findtime must be 1 to 86400 seconds"),
    ((5, 86401), "findtime must be 1 to 86400 seconds"),
])
def test_bad_settings(args: tuple[int, int], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Threshold(*args)
    with pytest.raises(ValueError, match="capacity must be >= maxretry"):
        Threshold(maxretry=5, capacity=4)


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=200, deadline=None)
@given(maxretry=st.integers(1, 6), findtime=st.integers(1, 50), capacity=st.integers(1, 12),
       events=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 20)), max_size=60))
def test_same_as_counting_every_failure_in_the_window(maxretry: int, findtime: int,
                                                      capacity: int,
                                                      events: list[tuple[int, int]]) -> None:
    """Without sessions, an address is reported exactly when a model that keeps every
    failure time (and forgets addresses as the threshold does) says it reached
    maxretry within findtime; memory stays within capacity and maxretry - 1."""
    capacity = max(capacity, maxretry)
    t = Threshold(maxretry, findtime, capacity=capacity)
    model: dict[int, list[float]] = {}  # key -> failure times, in order of last failure
    now = 0.0
    for key, step in events:
        now += step
        for k in [k for k, times in model.items() if times[-1] <= now - findtime]:
            del model[k]
        times = [x for x in model.pop(key, []) if x > now - findtime] + [now]
        if len(times) < maxretry:
            model[key] = times
            while sum(map(len, model.values())) > capacity:
                del model[next(iter(model))]
        want = len(times) >= maxretry
        assert (t.add(key, failure(), now) is not None) == want
        assert t.below(now) == len(model)
        assert all(len(v) < maxretry for v in t._counted.values())
        assert t._size == sum(map(len, t._counted.values())) <= capacity

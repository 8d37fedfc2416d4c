"""Outbox: bounded drop-oldest queue with a token-bucket release rate."""
import pytest
from hypothesis import given, strategies as st

from threatnet.outbox import Outbox


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate():
    clock = Clock()
    box = Outbox(rate=2, burst=3, maxlen=100, clock=clock)
    for i in range(10):
        box.put(i)
    assert box.take() == [0, 1, 2]
    assert box.take() == []
    clock.now += 0.4
    assert box.take() == []
    clock.now += 0.1  # 0.5 s at 2/s = one token
    assert box.take() == [3]
    clock.now += 10  # refill is capped at the burst
    assert box.take() == [4, 5, 6]
    assert box.stats() == {"waiting": 3, "sent": 7, "dropped": 0}


def test_idle_tokens_capped_at_burst():
    clock = Clock()
    box = Outbox(rate=1, burst=2, maxlen=10, clock=clock)
    clock.now += 3600
    for i in range(5):
        box.put(i)
    assert box.take() == [0, 1]


def test_drop_oldest_when_full():
    box = Outbox(rate=1, burst=1, maxlen=3, clock=Clock())
    assert [box.put(i) for i in range(5)] == [None, None, None, 0, 1]
    assert len(box) == 3
    assert box.dropped == 2
    assert box.take() == [2]


def test_clock_stepping_back_does_not_drain_or_refill():
    clock = Clock()
    box = Outbox(rate=1, burst=1, maxlen=10, clock=clock)
    box.put("a")
    box.put("b")
    assert box.take() == ["a"]
    clock.now -= 500
    assert box.take() == []
    clock.now += 1
    assert box.take() == ["b"]


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"burst": 0}, {"maxlen": 0}])
def test_rejects_nonsense(kwargs):
    args = {"rate": 1, "burst": 1, "maxlen": 1, **kwargs}
    with pytest.raises(ValueError):
        Outbox(**args)


@given(st.lists(st.one_of(st.integers(0, 50).map(lambda n: ("put", n)),
                          st.floats(0, 5).map(lambda dt: ("tick", dt))), max_size=200),
       st.integers(1, 8), st.integers(1, 20))
def test_never_exceeds_rate_and_loses_nothing_silently(ops, burst, maxlen):
    clock = Clock()
    rate = 3.0
    box = Outbox(rate=rate, burst=burst, maxlen=maxlen, clock=clock)
    put = taken = 0
    elapsed = 0.0
    for op, arg in ops:
        if op == "put":
            box.put(arg)
            put += 1
        else:
            clock.now += arg
            elapsed += arg
            taken += len(box.take())
            # Token bucket bound: never more than burst + rate * elapsed in total.
            assert taken <= burst + rate * elapsed + 1e-9
        assert len(box) <= maxlen
    assert put == taken + box.dropped + len(box)
    assert box.sent == taken


def test_due_keeps_the_outbox_own_time():
    clock = Clock()
    box = Outbox(rate=4, burst=2, maxlen=100, clock=clock)
    assert box.due() is None  # nothing waits: no timer
    for i in range(5):
        box.put(i)
    assert box.due() == 0
    assert box.take() == [0, 1]
    assert box.due() == pytest.approx(0.25)  # one token at 4/s
    clock.now += 0.25
    assert box.due() == 0 and box.take() == [2]
    clock.now += 0.1
    assert box.due() == pytest.approx(0.15)


def test_due_batches_a_fast_backlog():
    clock = Clock()
    box = Outbox(rate=1000, burst=100, maxlen=10_000, clock=clock)
    for i in range(1000):
        box.put(i)
    assert len(box.take()) == 100
    # Behind a backlog, wake for 10 ms of tokens (10 items), not for each item.
    assert box.due() == pytest.approx(0.01)
    clock.now += box.due()
    assert len(box.take()) == 10


def test_released_at_rate_from_its_own_timer():
    """Draining whenever due() says (and never otherwise) releases burst, then rate."""
    clock = Clock()
    box = Outbox(rate=500, burst=50, maxlen=10_000, clock=clock)
    for i in range(1050):
        box.put(i)
    start, taken, wakeups = clock.now, 0, 0
    while len(box):
        clock.now += box.due()
        taken += len(box.take())
        wakeups += 1
    assert taken == 1050
    assert clock.now - start == pytest.approx(1000 / 500)
    assert wakeups <= 1 + 1000 / 5  # batches of 5 (10 ms at 500/s)

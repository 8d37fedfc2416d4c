"""Waking Limnoria's driver loop: a Readable's callback runs from SocketDriver._select
(the select of the bot's only loop) as soon as its descriptor is readable; a Wakeup
is woken by another thread or by its own timer."""
from __future__ import annotations

import socket
import threading
from types import SimpleNamespace

from supybot.drivers.Socket import SocketDriver

from threatnet_irc.wakeup import Readable, Wakeup


def test_readable_runs_in_the_driver_select():
    a, b = socket.socketpair()
    calls = []
    hook = Readable(a.fileno(), lambda: calls.append(a.recv(10)))
    try:
        assert hook.active and hook in SocketDriver._instances
        b.send(b"x")
        SocketDriver._select()
        assert calls == [b"x"]
    finally:
        hook.close()
        a.close()
        b.close()
    assert hook not in SocketDriver._instances


def test_wake_from_another_thread_and_from_the_timer():
    calls = []
    wakeup = Wakeup(lambda: calls.append(threading.current_thread()))
    try:
        thread = threading.Thread(target=wakeup.wake)
        thread.start()
        thread.join()
        SocketDriver._select()
        assert calls == [threading.current_thread()]  # on the loop's thread, once
        wakeup.after(0.01)
        SocketDriver._select()
        assert len(calls) == 2
        wakeup.wake()
        wakeup.wake()
        SocketDriver._select()
        assert len(calls) == 3  # two requests before the loop ran: one call
    finally:
        wakeup.close()
    assert not any(isinstance(i, Readable) for i in SocketDriver._instances)


def test_a_failing_callback_does_not_stop_the_loop():
    def fail():
        raise RuntimeError("boom")
    wakeup = Wakeup(fail)
    try:
        wakeup.wake()
        SocketDriver._select()  # logged, not raised
    finally:
        wakeup.close()


def test_kept_awake_no_select_waits_until_settled(monkeypatch):
    """A bot on several networks selects once per network each loop, the schedule once:
    kept awake, every one of those selects finds the wake-up ready (none waits for
    drivers.poll) until the schedule event that asked for it settles."""
    import select

    import supybot.drivers.Socket as driver
    ready = []

    def recording(r, w, x, timeout):
        answer = select.select(r, w, x, 0)  # never wait: the test only reads readiness
        ready.append(bool(answer[0]))
        return answer
    monkeypatch.setattr(driver, "select", SimpleNamespace(select=recording,
                                                          error=select.error))
    calls = []
    wakeup = Wakeup(lambda: calls.append(1))
    try:
        wakeup.keep_awake()
        for _ in range(3):
            SocketDriver._select()
        assert ready == [True] * 3 and calls == []  # the byte stays for the selects to come
        wakeup.settle()
        SocketDriver._select()
        assert calls == [1]  # read now, the callback once
        SocketDriver._select()
        assert ready[-1] is False and calls == [1]  # then selects may wait again
    finally:
        wakeup.close()


def test_kept_awake_for_a_limited_time_only():
    """An event that never settles (the wall clock stepped back holds it) cannot keep
    the loop spinning: past the limit the wake-up is read as usual."""
    calls = []
    wakeup = Wakeup(lambda: calls.append(1))
    try:
        wakeup.keep_awake(limit=0)
        SocketDriver._select()
        assert calls == [1]
    finally:
        wakeup.close()

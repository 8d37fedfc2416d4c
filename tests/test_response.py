"""Threat Response host and the Threat value: threads, coalescing, expiry, backoff, filters."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from threatnet.address import parse_ip
from threatnet.filter import NetworkFilter
from threatnet.response import Responder, ResponderError, Threat, ThreatResponse


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class Recorder(Responder):
    """Records every call; can be told to fail or to block."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = []
        self.fail = None  # exception to raise
        self.gate = threading.Event()
        self.gate.set()
        self.closed = False

    def update(self, added, removed, now):
        self.gate.wait(5)
        if self.fail:
            raise self.fail
        self.calls.append(("update", sorted(t.ip for t in added), sorted(t.ip for t in removed)))

    def resync(self, threats, now):
        self.gate.wait(5)
        if self.fail:
            raise self.fail
        self.calls.append(("resync", sorted(t.ip for t in threats)))

    def close(self):
        self.closed = True


def threat(ip, ttl=60.0, comment="scan", reporter="nick"):
    return Threat.make(ip, comment, reporter, time.time() + ttl)


@pytest.fixture
def host():
    hosts = []

    def make(*responders, **kw):
        """A started host whose first apply (the resync to nothing) is done and forgotten."""
        h = ThreatResponse(responders, **kw)
        h.start()
        hosts.append(h)
        assert h.wait_idle(3)
        for r in responders:
            r.calls.clear()
        return h

    yield make
    for h in hosts:
        h.stop(timeout=5)


# -- Threat

def test_threat_make_from_text_and_key():
    t = Threat.make("203.0.113.7", "ssh brute force", "alice", 1000)
    assert t == Threat(parse_ip("203.0.113.7"), "203.0.113.7", "ssh brute force", "alice", 1000.0)
    assert t.v4 and t.prefix == 128
    assert Threat.make(parse_ip("2001:db8::7")).ip == "2001:db8::7"
    assert Threat.make("2001:DB8:0::7").ip == "2001:db8::7"
    assert not Threat.make("2001:db8::7").v4


def test_threat_make_ipv6_network():
    t = Threat.make("2001:db8:1:2::/64", expires_at=5)
    assert (t.ip, t.prefix, t.key) == ("2001:db8:1:2::/64", 64, parse_ip("2001:db8:1:2::"))


def test_threat_make_rejects_ipv4_network_and_bad_text():
    with pytest.raises(ValueError, match="IPv4 networks"):
        Threat.make("203.0.113.0/24")
    with pytest.raises(ValueError):
        Threat.make("010.1.1.1")


def test_threat_remaining():
    assert Threat.make("192.0.2.1", expires_at=100).remaining(40) == 60


# -- host

def test_events_reach_a_responder_off_the_callers_thread(host):
    r = Recorder()
    h = host(r)
    r.gate.clear()  # the responder is stuck...
    h.added(threat("192.0.2.1"))
    h.added(threat("192.0.2.2"))  # ...yet the caller never waits
    assert not h.wait_idle(0.05)
    r.gate.set()
    assert h.wait_idle(3)
    applied = [ip for call in r.calls for ip in call[1]]
    assert applied == ["192.0.2.1", "192.0.2.2"]


def test_burst_is_coalesced_within_the_interval(host):
    r = Recorder(interval=0.3)
    h = host(r)
    h.added(threat("192.0.2.1"))
    assert wait_for(lambda: r.calls)  # the first event goes at once
    for i in range(2, 50):
        h.added(threat(f"192.0.2.{i}"))
    h.expired(parse_ip("192.0.2.1"))
    assert h.wait_idle(3)
    assert r.calls[0] == ("update", ["192.0.2.1"], [])
    assert len(r.calls) == 2
    kind, added, removed = r.calls[1]
    assert len(added) == 48 and removed == ["192.0.2.1"]


def test_add_then_expire_in_one_batch_is_only_a_removal(host):
    r = Recorder(interval=0.2)
    h = host(r)
    h.added(threat("192.0.2.1"))
    assert wait_for(lambda: r.calls)
    h.added(threat("192.0.2.9"))
    h.expired(parse_ip("192.0.2.9"))
    h.expired(parse_ip("192.0.2.77"))  # unknown key: nothing to do
    assert h.wait_idle(3)
    assert r.calls[1:] == [("update", [], ["192.0.2.9"])]


def test_expired_report_of_an_older_entry_keeps_the_renewal(host):
    r = Recorder()
    h = host(r)
    old = threat("192.0.2.1", ttl=1)
    new = threat("192.0.2.1", ttl=60)
    h.added(old)
    h.added(new)
    h.expired(old.key, old.expires_at)  # late report of the first entry
    assert h.wait_idle(3)
    assert h.status()[0].threats == 1
    h.expired(new.key, new.expires_at)
    assert h.wait_idle(3)
    assert h.status()[0].threats == 0
    assert r.calls[-1] == ("update", [], ["192.0.2.1"])


def test_threats_are_removed_at_expiry_without_being_told(host):
    r = Recorder()
    h = host(r)
    h.added(threat("192.0.2.1", ttl=0.2))
    h.added(threat("192.0.2.2", ttl=60))
    assert wait_for(lambda: ("update", [], ["192.0.2.1"]) in r.calls, timeout=2)
    assert h.status()[0].threats == 1


def test_responder_that_expires_itself_gets_no_expiry_removals(host):
    r = Recorder()
    r.expires_itself = True
    h = host(r)
    h.added(threat("192.0.2.1", ttl=0.2))
    assert wait_for(lambda: r.calls)
    assert wait_for(lambda: h.status()[0].threats == 0, timeout=2)
    h.expired(parse_ip("192.0.2.1"))
    assert h.wait_idle(2)
    assert r.calls == [("update", ["192.0.2.1"], [])]


def test_already_expired_threat_is_ignored(host):
    r = Recorder()
    h = host(r)
    h.added(threat("192.0.2.1", ttl=-1))
    assert h.wait_idle(2)
    assert r.calls == []


def test_resync_replaces_state(host):
    r = Recorder()
    h = host(r)
    h.added(threat("192.0.2.1"))
    assert h.wait_idle(2)
    h.resync([threat("192.0.2.5"), threat("192.0.2.6"), threat("192.0.2.7", ttl=-5)])
    h.added(threat("192.0.2.8"))
    assert h.wait_idle(2)
    assert r.calls[1:] in ([("resync", ["192.0.2.5", "192.0.2.6"]), ("update", ["192.0.2.8"], [])],
                           [("resync", ["192.0.2.5", "192.0.2.6", "192.0.2.8"])])  # coalesced
    assert h.status()[0].threats == 3


def test_resync_consumes_the_iterable_on_the_callers_thread(host):
    r = Recorder()
    h = host(r)
    seen = []

    def entries():
        seen.append(threading.current_thread())
        yield threat("192.0.2.1")

    h.resync(entries())
    assert seen == [threading.current_thread()]
    assert h.wait_idle(2)


def test_failure_retries_with_backoff_as_a_resync(host, caplog):
    r = Recorder()
    h = host(r, backoff=(0.05, 0.2))
    r.fail = ResponderError("nft: permission denied")
    with caplog.at_level(logging.WARNING, logger="threatnet.response"):
        h.added(threat("192.0.2.1"))
        assert wait_for(lambda: h.status()[0].failures >= 3)
        status = h.status()[0]
        assert status.last_error == "nft: permission denied" and status.pending
        assert not h.wait_idle(0.01)
        r.fail = None
        h.added(threat("192.0.2.2"))
        assert h.wait_idle(3)
    assert r.calls[-1] == ("resync", ["192.0.2.1", "192.0.2.2"])
    status = h.status()[0]
    assert (status.failures, status.last_error, status.applies) == (0, None, 2)  # with start
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert errors and "permission denied" in errors[0].getMessage()
    assert "retrying in" in errors[0].getMessage()
    assert any("recovered" in rec.getMessage() for rec in caplog.records)


def test_backoff_doubles_and_is_capped(host):
    r = Recorder()
    h = host(r, backoff=(0.02, 0.08))
    r.fail = ResponderError("down")
    h.added(threat("192.0.2.1"))
    assert wait_for(lambda: h.status()[0].failures >= 5)
    assert h.status()[0].retry_in <= 0.08


def test_one_failing_responder_does_not_hold_up_another(host):
    bad, good = Recorder(name="bad"), Recorder(name="good")
    h = host(bad, good, backoff=(10, 10))
    bad.fail = RuntimeError("boom")
    bad.gate.clear()  # also slow
    h.added(threat("192.0.2.1"))
    assert wait_for(lambda: good.calls == [("update", ["192.0.2.1"], [])])
    bad.gate.set()
    assert wait_for(lambda: h.status()[0].failures == 1)
    assert h.status()[0].last_error == "RuntimeError: boom"


def test_filters_choose_what_a_responder_hears(host):
    customers = NetworkFilter("keep", ["198.51.100.0/24", "2001:db8::/32"])
    ours = Recorder(name="ours", filters=[customers])
    theirs = Recorder(name="theirs", filters=[NetworkFilter("discard", ["LOCAL"])])
    h = host(ours, theirs)
    for ip in ("198.51.100.7", "203.0.113.9", "10.1.2.3", "2001:db8::1"):
        h.added(threat(ip))
    assert h.wait_idle(2)
    h.expired(parse_ip("203.0.113.9"))
    assert h.wait_idle(2)
    assert [ip for c in ours.calls for ip in c[1]] == ["198.51.100.7", "2001:db8::1"]
    assert all(c[2] == [] for c in ours.calls)  # never told to remove what it never had
    heard = sorted(ip for c in theirs.calls for ip in c[1])
    assert heard == ["198.51.100.7", "2001:db8::1", "203.0.113.9"]
    assert theirs.calls[-1] == ("update", [], ["203.0.113.9"])


def test_stop_flushes_pending_and_closes(host):
    r = Recorder(interval=30)
    h = ThreatResponse([r])
    h.start()
    assert wait_for(lambda: r.calls)  # the first resync
    h.added(threat("192.0.2.1"))  # held back by the interval
    h.added(threat("192.0.2.2"))
    h.stop(timeout=3)
    assert r.calls == [("resync", []), ("update", ["192.0.2.1", "192.0.2.2"], [])]
    assert r.closed


def test_duplicate_responder_names_are_refused():
    with pytest.raises(ValueError, match="two responders"):
        ThreatResponse([Recorder(name="x"), Recorder(name="x")])


def test_responder_added_after_start_runs(host):
    h = host()
    r = Recorder()
    h.add(r, [threat("192.0.2.1")])
    assert h.wait_idle(2)
    h.added(threat("192.0.2.2"))
    assert h.wait_idle(2)
    assert r.calls == [("resync", ["192.0.2.1"]), ("update", ["192.0.2.2"], [])]


def test_start_resyncs_every_responder_to_the_snapshot():
    a, b = Recorder(name="a"), Recorder(name="b")
    h = ThreatResponse([a, b])
    h.start(iter([threat("192.0.2.1"), threat("192.0.2.2", ttl=-1)]))
    try:
        assert h.wait_idle(3)
        assert a.calls == b.calls == [("resync", ["192.0.2.1"])]
        with pytest.raises(RuntimeError):
            h.start()
    finally:
        h.stop()


def test_start_without_snapshot_clears_the_target():
    r = Recorder()
    h = ThreatResponse([r])
    h.start()
    try:
        assert h.wait_idle(3)
        assert r.calls == [("resync", [])]
    finally:
        h.stop()


def test_due_asks_for_an_empty_update(host):
    class Due(Recorder):
        at = None

        def due(self):
            return self.at

    r = Due()
    r.at = time.time() + 0.1
    host(r)

    def refreshed():
        if ("update", [], []) in r.calls:
            r.at = None
            return True
        return False

    assert wait_for(refreshed, timeout=2)


def test_caller_cost_is_small(host):
    r = Recorder()
    h = host(r, Recorder(name="b"), Recorder(name="c"))
    r.gate.clear()
    threats = [threat(f"10.0.{i // 256}.{i % 256}") for i in range(10000)]
    start = time.perf_counter()
    for t in threats:
        h.added(t)
    elapsed = time.perf_counter() - start
    r.gate.set()
    assert h.wait_idle(10)
    assert elapsed < 2.0  # three responders; typically ~0.2 s on one core


def test_log_formats_use_only_percent_s():
    """Inside Limnoria a logger formats with supybot's format(): no %d, %g, %x."""
    import re
    from pathlib import Path

    import threatnet.response
    calls = re.compile(r"log\.\w+\((?:logging\.\w+[^,]*,\s*)?\s*((?:\"[^\"]*\"\s*)+)")
    for path in Path(threatnet.response.__file__).parent.glob("*.py"):
        for match in calls.finditer(path.read_text()):
            specs = set(re.findall(r"%.", match.group(1)))
            assert specs <= {"%s"}, f"{path.name}: {match.group(1)!r}"

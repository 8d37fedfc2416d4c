"""ChangeLog and ChangesResponder (threatnet/response/changes.py), and the host's
errors and lag in ResponderStatus."""
import threading
import time

from threatnet.response import (ChangeLog, ChangesResponder, Responder, ResponderError, Threat,
                                ThreatResponse)

NOW = 1_000_000.0


def threat(ip, expires_at=NOW + 3600, comment=""):
    return Threat.make(ip, comment, "alice", expires_at)


def kinds(read):
    return [(c.kind, c.threat.ip) for c in read.changes]


def test_read_after_a_cursor_and_follow_from_now():
    log = ChangeLog()
    start = log.read(None)
    assert start == (([], 1, False))
    log.append("added", "net", "#a", [threat("45.0.0.1"), threat("45.0.0.2")])
    read = log.read(start.next, log.stream)
    assert kinds(read) == [("added", "45.0.0.1"), ("added", "45.0.0.2")]
    assert [c.seq for c in read.changes] == [1, 2] and read.next == 3 and not read.resync
    assert log.read(read.next) == ([], 3, False)
    assert kinds(log.read(2)) == [("added", "45.0.0.2")]


def test_filters_and_limit():
    log = ChangeLog()
    log.append("added", "net", "#a", [threat("45.0.0.1")])
    log.append("added", "net", "#b", [threat("45.0.0.2")])
    log.append("expired", "other", "#a", [threat("45.0.0.3")])
    assert kinds(log.read(1, channel="#a")) == [("added", "45.0.0.1"), ("expired", "45.0.0.3")]
    assert kinds(log.read(1, network="net", channel="#a")) == [("added", "45.0.0.1")]
    first = log.read(1, limit=2)
    assert len(first.changes) == 2 and first.next == 3
    assert kinds(log.read(first.next)) == [("expired", "45.0.0.3")]


def test_resync_for_another_stream_a_lost_cursor_or_one_from_the_future():
    log = ChangeLog(size=2)
    log.append("added", "net", "#a", [threat(f"45.0.0.{n}") for n in range(1, 4)])
    assert log.read(1).resync  # fell out of the last 2
    assert not log.read(2).resync
    assert log.read(2, "not-this-stream").resync
    assert log.read(99).resync
    assert ChangeLog().stream != log.stream


def test_wait():
    log = ChangeLog()
    assert not log.wait(1, 0.01)
    timer = threading.Timer(0.05, log.append, ("added", "n", "#a", [threat("45.0.0.1")]))
    timer.start()
    began = time.monotonic()
    assert log.wait(1, 5)
    assert time.monotonic() - began < 2


def test_responder_writes_changes_and_resyncs_as_differences():
    log = ChangeLog()
    r = ChangesResponder(log, "net", "#a")
    a, b, c = threat("45.0.0.1"), threat("45.0.0.2"), threat("45.0.0.3")
    r.resync([a, b], NOW)
    r.update([c], [a], NOW)
    assert kinds(log.read(1)) == [("added", "45.0.0.1"), ("added", "45.0.0.2"),
                                  ("expired", "45.0.0.1"), ("added", "45.0.0.3")]
    assert sorted(t.ip for t in r.current()) == ["45.0.0.2", "45.0.0.3"]
    cursor = log.next
    r.resync([b, c], NOW)  # nothing changed
    assert log.read(cursor).changes == []
    renewed = b._replace(expires_at=NOW + 7200)
    r.resync([renewed], NOW)
    assert kinds(log.read(cursor)) == [("expired", "45.0.0.3"), ("added", "45.0.0.2")]
    assert log.read(cursor).changes[1].threat.expires_at == NOW + 7200
    r.update([], [a], NOW)  # removing what it does not hold writes nothing
    assert log.next == cursor + 2


def test_responder_on_a_host_reports_expiry_at_its_time():
    log = ChangeLog()
    host = ThreatResponse([ChangesResponder(log, "net", "#a")])
    host.start()
    try:
        host.added(Threat.make("45.0.0.1", "soon", "alice", time.time() + 0.2))
        assert log.wait(1, 5)
        assert log.wait(2, 5)
        assert kinds(log.read(1)) == [("added", "45.0.0.1"), ("expired", "45.0.0.1")]
    finally:
        host.stop()


class Failing(Responder):
    name = "failing"

    def __init__(self):
        super().__init__()
        self.fail = True

    def update(self, added, removed, now):
        if self.fail:
            raise ResponderError("target unavailable")

    def resync(self, threats, now):
        self.update(threats, (), now)


def test_status_counts_errors_and_shows_lag():
    responder = Failing()
    host = ThreatResponse([responder], backoff=(0.05, 0.05))
    host.start()
    try:
        host.added(threat("45.0.0.1", time.time() + 60))
        deadline = time.monotonic() + 5
        while host.status()[0].errors < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        status = host.status()[0]
        assert status.errors >= 2 and status.failures == status.errors
        assert status.pending and status.lag > 0
        responder.fail = False
        assert host.wait_idle(5)
        status = host.status()[0]
        assert (status.failures, status.lag, status.pending) == (0, 0.0, False)
        assert status.errors >= 2  # errors count for ever; failures reset on success
    finally:
        host.stop()

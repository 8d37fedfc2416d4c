"""threatnet.crowdsec: Go durations, decisions, each bouncer's stream, lookups, and the
feed's choice of what a CrowdSec made itself."""
import io
import json
import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threatnet.crowdsec import (CrowdSecFeed, Filters, Source, StreamQuery, Streams, decision,
                                go_duration, local_bans, lookup, parse_go_duration,
                                parse_lookup_query, parse_stream_query, read_credentials)
from threatnet.feed import Position
from threatnet.response.responder import Threat

NOW = 1_000_000.0
NET, CHAN = "net", "#tn"


def threat(ip, left=60.0, comment="ssh brute force"):
    return Threat.make(ip, comment, "alice", NOW + left)


def pull(streams, threats, startup=False, name="fw", now=NOW, **filters):
    return streams.pull(name, [Source(NET, CHAN, lambda: threats)],
                        StreamQuery(startup, Filters(**filters) if filters else Filters()), now)


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (0.5, "0.5s"), (59.532, "59.532s"), (60, "1m0s"), (3600, "1h0m0s"),
    (14399.9, "3h59m59.9s"), (-1.25, "-1.25s"), (0.0004, "0s"), (90061, "25h1m1s")])
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_go_duration_parses_back(seconds):
    assert parse_go_duration(go_duration(seconds)) == pytest.approx(seconds, abs=0.0006)


@pytest.mark.parametrize("text", ["", "10", "1x", "s", "1..2s", "-", "1h2"])
def test_parse_go_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_go_duration(text)


def test_decision_shape():
    d = decision(NET, CHAN, threat("45.0.0.9", 59.532), NOW)
    assert d == {"id": d["id"], "origin": "threatnet", "scenario":
                 "threatnet net #tn: ssh brute force", "scope": "Ip", "type": "ban",
                 "value": "45.0.0.9", "simulated": False, "duration": "59.532s"}
    assert 0 < d["id"] < 1 << 48
    net = decision(NET, CHAN, threat("2001:db8:1:2::/64"), NOW)
    assert (net["scope"], net["value"]) == ("Range", "2001:db8:1:2::/64")
    gone = decision(NET, CHAN, threat("45.0.0.9", 30), NOW, deleted=True)
    assert gone["duration"] == "0s"  # taken back early: nothing left


def test_stream_new_then_nothing_then_deleted():
    s = Streams()
    a, b = threat("45.0.0.1"), threat("45.0.0.2")
    first = pull(s, [a, b], startup=True)
    assert [d["value"] for d in first.new] == ["45.0.0.1", "45.0.0.2"]
    assert first.deleted == []
    assert pull(s, [a, b]) == ([], [])
    gone = pull(s, [a])
    assert gone.new == [] and [d["value"] for d in gone.deleted] == ["45.0.0.2"]
    assert gone.deleted[0]["duration"] == "0s"


def test_stream_expired_threats_are_deleted():
    s = Streams()
    a = threat("45.0.0.1", left=10)
    pull(s, [a], startup=True)
    later = pull(s, [a], now=NOW + 11)  # the mirror still holds it: expiry is the clock's
    assert later.new == [] and later.deleted[0]["value"] == "45.0.0.1"
    assert later.deleted[0]["duration"] == "-1s"


def test_stream_renewed_is_deleted_and_new():
    s = Streams()
    pull(s, [threat("45.0.0.1", 10)], startup=True)
    renewed = pull(s, [threat("45.0.0.1", 3600)])
    assert [d["value"] for d in renewed.deleted] == ["45.0.0.1"]
    assert [d["duration"] for d in renewed.new] == ["1h0m0s"]
    assert renewed.new[0]["id"] != renewed.deleted[0]["id"]


def test_stream_startup_resends_everything_and_bouncers_are_separate():
    s = Streams()
    a = threat("45.0.0.1")
    pull(s, [a], startup=True)
    assert len(pull(s, [a], startup=True).new) == 1
    assert len(pull(s, [a], name="other").new) == 1  # unknown bouncer: all is new
    s.forget("fw")
    assert len(pull(s, [a]).new) == 1


def test_stream_scopes_filter():
    s = Streams()
    both = [threat("45.0.0.1"), threat("2001:db8::/64")]
    assert [d["scope"] for d in pull(s, both, startup=True, scopes=frozenset({"Ip"})).new] \
        == ["Ip"]
    assert pull(s, both, startup=True, origins=frozenset({"crowdsec"})).new == []
    assert len(pull(s, both, startup=True, containing=("ssh",)).new) == 2
    assert pull(s, both, startup=True, not_containing=("#tn",)).new == []


def test_parse_stream_query():
    assert parse_stream_query({}) == StreamQuery(False, Filters())
    q = parse_stream_query({"startup": "true", "scopes": "ip", "origins": "threatnet,cscli"})
    assert q.startup and q.filters.scopes == {"Ip"}
    assert q.filters.origins == {"threatnet", "cscli"}
    assert parse_stream_query({"community_pull": "false", "bogus": "1"}) == \
        StreamQuery(False, Filters())  # others are ignored, as LAPI does
    for bad in ({"startup": "maybe"}, {"scopes": ""}, {"dedup": "x"}):
        with pytest.raises(ValueError):
            parse_stream_query(bad)


def test_lookup():
    threats = [threat("45.0.0.1"), threat("2001:db8::/64"), threat("45.0.0.3", -1)]
    src = [Source(NET, CHAN, lambda: threats)]

    def ask(**fields):
        return lookup(src, parse_lookup_query(fields), NOW)
    assert ask(ip="45.0.0.2") is None
    assert [d["value"] for d in ask(ip="45.0.0.1")] == ["45.0.0.1"]
    assert [d["value"] for d in ask(ip="2001:db8::7")] == ["2001:db8::/64"]
    assert ask(ip="45.0.0.3") is None  # expired
    assert [d["value"] for d in ask(range="45.0.0.0/24", contains="false")] == ["45.0.0.1"]
    assert ask(range="45.0.0.0/24") is None  # no decision contains the whole /24
    assert ask(ip="45.0.0.1", type="captcha") is None
    assert ask(value="45.0.0.1")[0]["value"] == "45.0.0.1"
    for bad in ({"ip": "nope"}, {"range": "45.0.0.0/33"}, {"ip": "1.2.3.4", "range": "::/0"},
                {"contains": "perhaps"}):
        with pytest.raises(ValueError):
            parse_lookup_query(bad)


def lapi(*decisions):
    return [dict({"scope": "Ip", "type": "ban", "duration": "3h59m", "scenario":
                  "crowdsecurity/ssh-bf"}, **d) for d in decisions]


def test_local_bans_only_from_here():
    found, skipped = local_bans(lapi(
        {"id": 1, "origin": "crowdsec", "value": "45.0.0.1"},
        {"id": 2, "origin": "cscli", "value": "45.0.0.2", "scenario": "manual 'ban' from 'x'"},
        {"id": 3, "origin": "CAPI", "value": "45.0.0.3"},
        {"id": 4, "origin": "lists", "value": "45.0.0.4"},
        {"id": 5, "origin": "cscli-import", "value": "45.0.0.5"},
        {"id": 6, "origin": "console", "value": "45.0.0.6"},
        {"id": 7, "origin": "crowdsec", "value": "45.0.0.0/24", "scope": "Range"},
        {"id": 8, "origin": "crowdsec", "value": "45.0.0.8", "type": "captcha"},
        {"id": "9", "origin": "crowdsec", "value": "45.0.0.9"}) + ["junk"])
    assert [(f.id, f.ip, f.comment) for f in found] == [
        (1, "45.0.0.1", "crowdsec: crowdsecurity/ssh-bf"),
        (2, "45.0.0.2", "crowdsec: manual ban (cscli)")]
    assert skipped == 8
    assert local_bans(None) == ([], 0)


def write_creds(tmp_path, text, mode=0o600):
    path = tmp_path / "lapi.yaml"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def test_read_credentials(tmp_path):
    path = write_creds(tmp_path, "api_url: http://127.0.0.1:8080\napi_key: abc\n"
                                 "update_frequency: 500ms\n")
    creds = read_credentials(path)
    assert (creds.url, creds.key, creds.interval) == ("http://127.0.0.1:8080/", "abc", 0.5)
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_credentials(path)
    for bad in ("api_key: abc\n", "api_url: ftp://x/\napi_key: a\n", "- x\n",
                "api_url: http://x/\napi_key: a\nupdate_frequency: 2d\n"):
        with pytest.raises(ValueError):
            read_credentials(write_creds(tmp_path, bad))


class FakeLapi:
    """urlopen's stand-in: answers each pull from a list, records the URLs."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.urls = []
        self.keys = []

    def __call__(self, request, timeout):
        self.urls.append(request.full_url)
        self.keys.append(request.get_header("X-api-key"))
        body = self.answers.pop(0) if self.answers else {"new": None, "deleted": None}
        return io.BytesIO(json.dumps(body).encode())


def wait(feed, pulls):
    deadline = time.monotonic() + 5
    while feed.pulls < pulls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feed.pulls >= pulls, feed.error


def test_feed_starts_at_the_end_then_reports_local_bans(tmp_path):
    path = write_creds(tmp_path, "api_url: http://lapi:8080/\napi_key: k1\n"
                                 "update_frequency: 100ms\n")
    lapi_ = FakeLapi({"new": lapi({"id": 7, "origin": "crowdsec", "value": "45.0.0.7"}),
                      "deleted": None},
                     {"new": lapi({"id": 8, "origin": "crowdsec", "value": "45.0.0.8"},
                                  {"id": 9, "origin": "lists", "value": "45.0.0.9"}),
                      "deleted": []})
    feed = CrowdSecFeed(path, opener=lapi_)
    try:
        assert feed.pulls == 0 and feed.poll() == []  # the first poll starts the pulls
        wait(feed, 2)
        assert [t.ip for t in feed.poll()] == ["45.0.0.8"]
        assert lapi_.urls[:2] == ["http://lapi:8080/v1/decisions/stream?startup=true",
                                  "http://lapi:8080/v1/decisions/stream"]
        assert lapi_.keys[0] == "k1"
        assert feed.position() == Position(0, 0, 8)
        assert feed.stats()["skipped"] == 1 and feed.stats()["threats"] == 1
    finally:
        feed.close()


def test_feed_resumes_after_the_saved_id(tmp_path):
    path = write_creds(tmp_path, "api_url: http://lapi/\napi_key: k\n")
    lapi_ = FakeLapi({"new": lapi({"id": 7, "origin": "crowdsec", "value": "45.0.0.7"},
                                  {"id": 8, "origin": "cscli", "value": "45.0.0.8"}),
                      "deleted": None})
    feed = CrowdSecFeed(path, opener=lapi_)
    try:
        assert feed.resume(Position(0, 0, 7), NOW)  # before the first poll: never too late
        assert feed.poll() == []
        wait(feed, 1)
        assert [(t.ip, t.comment) for t in feed.poll()] == \
            [("45.0.0.8", "crowdsec: manual ban (cscli)")]
    finally:
        feed.close()


def test_feed_error_is_kept(tmp_path):
    path = write_creds(tmp_path, "api_url: http://lapi/\napi_key: k\n", mode=0o640)
    feed = CrowdSecFeed(path, opener=FakeLapi())
    try:
        feed.poll()
        deadline = time.monotonic() + 5
        while feed.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "chmod 600" in feed.error
    finally:
        feed.close()


class Mirror:
    """A channel's ChangesResponder writing to a ChangeLog, and a Source that counts how
    often a pull read every current threat."""

    def __init__(self, size=100):
        from threatnet.response.changes import ChangeLog, ChangesResponder
        self.log = ChangeLog(size)
        self.responder = ChangesResponder(self.log, NET, CHAN)
        self.full_reads = 0

    def current(self):
        self.full_reads += 1
        return self.responder.current()

    def source(self):
        return [Source(NET, CHAN, self.current)]

    def pull(self, streams, startup=False, now=NOW, filters=Filters()):
        got = streams.pull("fw", self.source(), StreamQuery(startup, filters), now)
        return sorted(d["value"] for d in got.new), sorted(d["value"] for d in got.deleted)


def test_increments_read_the_change_log_only():
    m = Mirror()
    s = Streams(m.log)
    a, b, c = threat("45.0.0.1"), threat("45.0.0.2"), threat("45.0.0.3")
    m.responder.update([a, b], [], NOW)
    assert m.pull(s, startup=True) == (["45.0.0.1", "45.0.0.2"], [])
    m.responder.update([c], [a], NOW)
    assert m.pull(s) == (["45.0.0.3"], ["45.0.0.1"])
    assert m.pull(s) == ([], [])
    assert m.full_reads == 1
    m.responder.update([threat("45.0.0.3", 7200)], [], NOW)  # renewed
    assert m.pull(s) == (["45.0.0.3"], ["45.0.0.3"])
    d = threat("45.0.0.4")
    m.responder.update([d], [], NOW)
    m.responder.update([], [d], NOW)  # said and withdrawn between two pulls
    m.responder.update([a], [], NOW)
    m.responder.update([], [a], NOW)
    m.responder.update([a], [], NOW)  # withdrawn and said again
    assert m.pull(s) == (["45.0.0.1"], [])
    assert m.full_reads == 1


def test_increment_falls_back_to_the_difference():
    m = Mirror(size=2)
    s = Streams(m.log)
    a = threat("45.0.0.1")
    m.responder.update([a], [], NOW)
    m.pull(s, startup=True)
    m.responder.update([threat(f"45.0.1.{n}") for n in range(5)], [a], NOW)  # log overflows
    new, deleted = m.pull(s)
    assert (len(new), deleted) == (5, ["45.0.0.1"])
    assert m.full_reads == 2
    assert m.pull(s) == ([], [])
    # other filters: the difference too, under the new ones
    assert m.pull(s, filters=Filters(scopes=frozenset({"Range"}))) == ([], sorted(
        f"45.0.1.{n}" for n in range(5)))
    assert m.full_reads == 3


def test_feed_withdraws_what_the_operator_deleted(tmp_path):
    path = write_creds(tmp_path, "api_url: http://lapi/\napi_key: k\nupdate_frequency: 100ms\n")
    gone = {"id": 8, "origin": "cscli", "value": "45.0.0.8", "duration": "-1.1s"}
    lapi_ = FakeLapi({"new": None, "deleted": None},
                     {"new": lapi({"id": 8, "origin": "cscli", "value": "45.0.0.8",
                                   "duration": "59m58s"},
                                  {"id": 9, "origin": "crowdsec", "value": "45.0.0.9",
                                   "duration": "3s"}),
                      "deleted": None})
    feed = CrowdSecFeed(path, opener=lapi_)
    try:
        feed.poll()
        wait(feed, 2)
        assert [t.ip for t in feed.poll()] == ["45.0.0.8", "45.0.0.9"]
        # deleted an hour early (an operator), then again (LAPI repeats it); 9 expired
        lapi_.answers += [{"new": None, "deleted": [gone]}, {"new": None, "deleted": [gone]},
                          {"new": None, "deleted": [dict(gone, id=9, value="45.0.0.9")]}]
        wait(feed, 6)
        assert feed.withdrawn() == ["45.0.0.8"]
        assert feed.withdrawn() == []
    finally:
        feed.close()


def test_taken_back_only_early():
    from threatnet.crowdsec import taken_back
    reported = {1: ("45.0.0.1", NOW + 3600), 2: ("45.0.0.2", NOW + 3)}
    deleted = [{"id": 1}, {"id": 2}, {"id": 3}, {"id": "1"}, "junk"]
    assert taken_back(deleted, reported, NOW) == [1]
    assert taken_back(None, reported, NOW) == []


def test_an_increment_of_two_channels_misses_no_change_written_meanwhile():
    """A change written to one channel while the pull reads the log (responders write
    from their own threads) is in the next pull: one read of the log, one cursor."""
    from threatnet.response.changes import ChangeLog, ChangesResponder
    log = ChangeLog(100)
    east = ChangesResponder(log, NET, CHAN)
    west = ChangesResponder(log, NET, "#west")
    sources = [Source(NET, CHAN, east.current), Source(NET, "#west", west.current)]
    s = Streams(log)
    s.pull("fw", sources, StreamQuery(True, Filters()), NOW)
    west.update([threat("45.0.0.2")], [], NOW)
    reads = []
    real_read = log.read

    def read(*args, **kwargs):  # another thread writes while the pull reads
        found = real_read(*args, **kwargs)
        if not reads:
            east.update([threat("45.0.0.1")], [], NOW)
        reads.append(found)
        return found
    log.read = read
    got = [d["value"] for d in s.pull("fw", sources, StreamQuery(False, Filters()), NOW).new]
    got += [d["value"] for d in s.pull("fw", sources, StreamQuery(False, Filters()), NOW).new]
    assert sorted(got) == ["45.0.0.1", "45.0.0.2"]

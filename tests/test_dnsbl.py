"""DNSBL lookup (threatnet/dnsbl.py): the setting's syntax, query names, what an answer
means, and DnsblLookup's queue, cache, deadlines and counters, with a fake resolver and
an injected clock (``workers=0``: the test resolves queued lookups with ``work_once``).
The resolver over real DNS is tested against rbldnsd in
tests/integration/test_bridge_dnsbl.py."""
from __future__ import annotations

import threading

import pytest

from threatnet.address import parse_ip
from threatnet.dnsbl import (FAILURE_TTL, LISTED, MIN_TTL, Answer, DnsblError, DnsblLookup,
                             DnsblSpec, LookupStatus, listing, parse_dnsbl, query_name)
from threatnet.filter import PENDING
from threatnet.language import parse_message

ZONE = "bl.example.net"
SPEC = DnsblSpec(ZONE)
T0 = 1_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeDns:
    """Answers from a table: ip -> Answer, or an exception to raise. Unknown names are
    NXDOMAIN with TTL 30."""

    def __init__(self, table: dict[str, Answer | Exception] | None = None) -> None:
        self.table = {query_name(parse_ip(ip), ZONE): a for ip, a in (table or {}).items()}
        self.asked: list[tuple[str, float]] = []

    def __call__(self, name: str, timeout: float) -> Answer:
        self.asked.append((name, timeout))
        answer = self.table.get(name, Answer((), 30.0))
        if isinstance(answer, Exception):
            raise answer
        return answer


LISTED_ANSWER = Answer(("127.0.0.2",), 30.0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def lookup(clock: Clock, dns: FakeDns, **kw: object) -> DnsblLookup:
    return DnsblLookup(SPEC, dns, clock=clock, workers=0, **kw)  # type: ignore[arg-type]


def key(ip: str) -> int:
    return parse_ip(ip)


# --- the setting --------------------------------------------------------------------------


@pytest.mark.parametrize("text, spec", [
    ("", None),
    ("  ", None),
    ("bl.example.net", DnsblSpec("bl.example.net")),
    ("BL.Example.NET.", DnsblSpec("bl.example.net")),
    ("zen.spamhaus.org@127.0.0.1", DnsblSpec("zen.spamhaus.org", ("127.0.0.1", 53))),
    ("bl.uni.example@10.0.0.53:5353", DnsblSpec("bl.uni.example", ("10.0.0.53", 5353))),
    ("bl.uni.example@::1", DnsblSpec("bl.uni.example", ("::1", 53))),
    ("bl.uni.example@[2001:DB8::35]:5353", DnsblSpec("bl.uni.example", ("2001:db8::35", 5353))),
    ("bl.uni.example@[::1]", DnsblSpec("bl.uni.example", ("::1", 53))),
    ("a-1.b2.example", DnsblSpec("a-1.b2.example")),
])
def test_parse_dnsbl(text: str, spec: DnsblSpec | None) -> None:
    assert parse_dnsbl(text) == spec
    if spec is not None:  # str() is the canonical setting
        assert parse_dnsbl(str(spec)) == spec


@pytest.mark.parametrize("text, error", [
    ("True", "'True': a DNSBL zone is a domain name with a dot, e.g. bl.example.net"),
    ("bl..example.net", "'bl..example.net': '' is not a DNS label (letters, digits and -, "
                        "at most 63, not starting or ending with -)"),
    ("bl_x.example.net", "'bl_x.example.net': 'bl_x' is not a DNS label (letters, digits "
                         "and -, at most 63, not starting or ending with -)"),
    ("-bl.example.net", "'-bl.example.net': '-bl' is not a DNS label (letters, digits and -, "
                        "at most 63, not starting or ending with -)"),
    ("127.0.0.1", "'127.0.0.1': '127.0.0.1' is an address, not a zone; e.g. bl.example.net, "
                  "and zone@address to name the server"),
    ("::1@::1", "'::1@::1': '::1' is an address, not a zone; e.g. bl.example.net, and "
                "zone@address to name the server"),
    ("bl.example.net@ns.example.net", "'bl.example.net@ns.example.net': the server must be "
                                      "an IP address, not 'ns.example.net' (the system's "
                                      "resolvers: no @)"),
    ("bl.example.net@127.0.0.1:0", "'bl.example.net@127.0.0.1:0': '0' is not a port "
                                   "(1-65535)"),
    ("bl.example.net@127.0.0.1:99999", "'bl.example.net@127.0.0.1:99999': '99999' is not a "
                                       "port (1-65535)"),
    ("bl.example.net@[::1]5353", "'bl.example.net@[::1]5353': write an IPv6 server as "
                                 "[address]:port"),
    ("bl.example.net@", "'bl.example.net@': the server must be an IP address, not '' (the "
                        "system's resolvers: no @)"),
])
def test_parse_dnsbl_errors(text: str, error: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_dnsbl(text)
    assert str(caught.value) == error


def test_long_zone_leaves_room_for_ipv6() -> None:
    zone = ".".join(["a" * 63] * 3)  # 191 characters
    with pytest.raises(ValueError, match="no room for an IPv6 address"):
        parse_dnsbl(zone)
    assert len(query_name(key("2001:db8::1"), zone[:189])) == 253


# --- query names and answers --------------------------------------------------------------


@pytest.mark.parametrize("ip, name", [
    ("192.0.2.99", "99.2.0.192.bl.example.net"),  # RFC 5782 2.1
    ("::ffff:192.0.2.99", "99.2.0.192.bl.example.net"),  # the same key
    ("2001:db8:1:2:3:4:567:89ab",  # RFC 5782 2.4
     "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example.net"),
])
def test_query_name(ip: str, name: str) -> None:
    assert query_name(key(ip), ZONE) == name


def test_listing() -> None:
    assert listing(("127.0.0.2",)) is True
    assert listing(("127.0.0.4", "127.0.0.10")) is True
    assert listing(()) is False
    with pytest.raises(ValueError, match="answered 198.51.100.7, outside 127.0.0.0/8"):
        listing(("198.51.100.7",))
    with pytest.raises(ValueError, match="answered 127.255.255.254, an error code"):
        listing(("127.255.255.254",))


# --- DnsblLookup ----------------------------------------------------------------------------


def test_asks_once_then_answers_from_the_cache(clock: Clock) -> None:
    dns = FakeDns({"192.0.2.1": LISTED_ANSWER})
    bl = lookup(clock, dns)
    assert bl.check(key("192.0.2.1")) == PENDING
    assert bl.check(key("192.0.2.1")) == PENDING  # still one lookup
    assert bl.check(key("192.0.2.2")) == PENDING
    assert bl.status().waiting == 2
    assert bl.work_once() and bl.work_once() and not bl.work_once()
    assert dns.asked == [("1.2.0.192.bl.example.net", 2.0), ("2.2.0.192.bl.example.net", 2.0)]
    assert bl.check(key("192.0.2.1")) == LISTED
    assert bl.check(key("192.0.2.2")) is None
    assert bl.screen(parse_message("192.0.2.1 ssh")) == LISTED
    assert len(dns.asked) == 2
    assert bl.status() == LookupStatus(SPEC, 1, 1, {}, 0, 2, None)


@pytest.mark.parametrize("ttl, kept", [(0.0, MIN_TTL), (30.0, 30.0), (86400.0, 60.0)])
def test_answers_are_cached_for_their_ttl_within_bounds(clock: Clock, ttl: float,
                                                        kept: float) -> None:
    dns = FakeDns({"192.0.2.1": Answer(("127.0.0.2",), ttl)})
    bl = lookup(clock, dns)
    bl.check(key("192.0.2.1"))
    bl.work_once()
    assert bl.check(key("192.0.2.1")) == LISTED
    clock.now += kept - 1
    assert bl.check(key("192.0.2.1")) == LISTED
    clock.now += 1
    assert bl.check(key("192.0.2.1")) == PENDING  # asked again
    assert bl.work_once() and len(dns.asked) == 2


def test_negative_answers_are_cached_too(clock: Clock) -> None:
    dns = FakeDns({"192.0.2.1": Answer((), 20.0)})
    bl = lookup(clock, dns)
    bl.check(key("192.0.2.1"))
    bl.work_once()
    assert bl.check(key("192.0.2.1")) is None
    clock.now += 19
    assert bl.check(key("192.0.2.1")) is None
    clock.now += 1
    assert bl.check(key("192.0.2.1")) == PENDING


def test_no_answer_by_the_deadline_passes_unchecked(clock: Clock) -> None:
    dns = FakeDns({"192.0.2.1": LISTED_ANSWER})
    bl = lookup(clock, dns, timeout=1.5)
    assert bl.check(key("192.0.2.1")) == PENDING
    clock.now += 1.4
    assert bl.check(key("192.0.2.1")) == PENDING
    clock.now += 0.1
    assert bl.check(key("192.0.2.1")) is None
    status = bl.status()
    assert (status.failed, status.waiting) == ({"timeout": 1}, 0)
    assert status.last_error == "1.2.0.192.bl.example.net: no answer within 1.5 s"
    # The worker gets to it late: it does not ask (nobody waits), and nothing changes.
    assert bl.work_once() and dns.asked == []
    assert bl.check(key("192.0.2.1")) is None
    assert bl.status().failed == {"timeout": 1}
    # The failure is remembered for a while (a down DNSBL delays each address once).
    clock.now += FAILURE_TTL - 1
    assert bl.check(key("192.0.2.1")) is None
    clock.now += 1
    assert bl.check(key("192.0.2.1")) == PENDING


def test_an_answer_in_before_the_caller_looks_again_counts_though_late(clock: Clock) -> None:
    def slow(name: str, timeout: float) -> Answer:
        clock.now += 2  # the worker took it in time, the answer came after the deadline
        return Answer((), 30.0)
    bl = DnsblLookup(SPEC, slow, clock=clock, workers=0, timeout=1.0)
    bl.check(key("192.0.2.1"))
    bl.work_once()
    assert bl.check(key("192.0.2.1")) is None
    assert (bl.status().clear, bl.status().failed) == (1, {})


@pytest.mark.parametrize("raised, reason, error", [
    (DnsblError("error", "All nameservers failed to answer the query"), "error",
     "1.2.0.192.bl.example.net: All nameservers failed to answer the query"),
    (DnsblError("timeout", "no answer within 2 s"), "timeout",
     "1.2.0.192.bl.example.net: no answer within 2 s"),
    (RuntimeError("bug"), "error", "1.2.0.192.bl.example.net: RuntimeError: bug"),
])
def test_errors_pass_unchecked_and_are_counted(clock: Clock, raised: Exception, reason: str,
                                                error: str) -> None:
    bl = lookup(clock, FakeDns({"192.0.2.1": raised}))
    bl.check(key("192.0.2.1"))
    assert bl.work_once()  # the worker goes on
    assert bl.check(key("192.0.2.1")) is None
    assert (bl.status().failed, bl.status().last_error) == ({reason: 1}, error)


@pytest.mark.parametrize("address", ["198.51.100.7", "127.255.255.254"])
def test_a_bad_answer_is_never_a_listing(clock: Clock, address: str) -> None:
    bl = lookup(clock, FakeDns({"192.0.2.1": Answer((address,), 300.0)}))
    bl.check(key("192.0.2.1"))
    bl.work_once()
    assert bl.check(key("192.0.2.1")) is None
    assert bl.status().failed == {"bad answer": 1}
    assert bl.status().last_error.startswith(f"1.2.0.192.bl.example.net: answered {address}")


def test_outstanding_lookups_are_bounded(clock: Clock) -> None:
    dns = FakeDns()
    bl = lookup(clock, dns, queue_size=2)
    assert [bl.check(key(f"192.0.2.{n}")) for n in (1, 2, 3)] == [PENDING, PENDING, None]
    assert bl.status().failed == {"busy": 1}
    assert bl.status().last_error == "2 lookups outstanding"
    bl.work_once()
    assert bl.check(key("192.0.2.1")) is None  # answered: room again
    assert bl.check(key("192.0.2.4")) == PENDING


def test_cache_is_bounded_oldest_first(clock: Clock) -> None:
    dns = FakeDns()
    bl = lookup(clock, dns, max_entries=2)
    for n in (1, 2, 3):
        bl.check(key(f"192.0.2.{n}"))
        bl.work_once()
        bl.check(key(f"192.0.2.{n}"))
    assert bl.status().cached == 2
    assert bl.check(key("192.0.2.3")) is None
    assert bl.check(key("192.0.2.1")) == PENDING  # forgotten: asked again


def test_expire_forgets_old_answers_and_times_out_lookups(clock: Clock) -> None:
    bl = lookup(clock, FakeDns())
    bl.check(key("192.0.2.1"))
    bl.work_once()
    bl.check(key("192.0.2.2"))
    clock.now += 30
    bl.expire()
    status = bl.status()
    assert (status.cached, status.waiting, status.failed) == (1, 0, {"timeout": 1})


def test_status_format() -> None:
    spec = DnsblSpec("bl.example.net", ("127.0.0.1", 5353))
    assert LookupStatus(spec, 0, 0, {}, 0, 0, None).format() == (
        "dnsbl bl.example.net@127.0.0.1:5353: listed 0, not listed 0, failed 0; "
        "waiting 0, cached 0")
    assert LookupStatus(DnsblSpec("bl.example.net", ("::1", 53)), 2, 5,
                        {"timeout": 2, "busy": 1}, 1, 7, "x: no answer within 2 s").format() == (
        "dnsbl bl.example.net@[::1]: listed 2, not listed 5, failed 3 (busy 1, timeout 2: "
        "passed unchecked); waiting 1, cached 7; last error: x: no answer within 2 s")


def test_worker_threads(clock: Clock) -> None:
    release = threading.Event()

    def dns(name: str, timeout: float) -> Answer:
        release.wait(5)
        return LISTED_ANSWER
    bl = DnsblLookup(SPEC, dns, clock=clock, workers=2)
    assert bl.check(key("192.0.2.1")) == PENDING
    assert bl.check(key("192.0.2.2")) == PENDING
    assert not bl.wait_idle(0.05)  # both workers are resolving, the caller is not waiting
    release.set()
    assert bl.wait_idle(5)
    assert bl.check(key("192.0.2.1")) == LISTED and bl.check(key("192.0.2.2")) == LISTED
    bl.close()
    assert bl.check(key("192.0.2.3")) is None  # closed: passes unchecked
    assert not bl.work_once(block=True)


def test_a_clock_stepping_back_neither_keeps_answers_nor_waits_longer(clock: Clock) -> None:
    bl = lookup(clock, FakeDns({"192.0.2.1": LISTED_ANSWER}))
    bl.check(key("192.0.2.1"))
    bl.work_once()
    assert bl.check(key("192.0.2.1")) == LISTED
    clock.now -= 3600
    assert bl.check(key("192.0.2.1")) == PENDING  # the answer is from the future: ask again
    clock.now -= 3600
    assert bl.check(key("192.0.2.1")) is None  # asked in the future: count it timed out
    assert bl.status().failed == {"timeout": 1}

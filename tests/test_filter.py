"""Threat Filter: network keywords (parity with ThreatNet::Filter::Network), keep/discard,
IPv6, construction errors, Null, and Chain short-circuiting."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork, IPSet

from threatnet.address import parse_ip
from threatnet.cache import ThreatCache
from threatnet.envelope import Envelope
from threatnet.filter import KEYWORDS, Chain, NetworkFilter, NullFilter
from threatnet.language import ThreatMessage, parse_message


def msg(ip: str, comment: str = "") -> ThreatMessage:
    return parse_message(f"{ip} {comment}", created=0.0)


# (keyword, ip, inside the keyword's networks?) — edges of every block, and neighbours.
KEYWORD_TABLE = [
    ("RFC1918", "10.0.0.0", True), ("RFC1918", "10.255.255.255", True),
    ("RFC1918", "11.0.0.0", False), ("RFC1918", "9.255.255.255", False),
    ("RFC1918", "172.16.0.0", True), ("RFC1918", "172.31.255.255", True),
    ("RFC1918", "172.15.255.255", False), ("RFC1918", "172.32.0.0", False),
    ("RFC1918", "192.168.0.1", True), ("RFC1918", "192.169.0.0", False),
    ("RFC1918", "127.0.0.1", False),  # "specifically does NOT include the localhost space"
    ("RFC1918", "8.8.8.8", False), ("RFC1918", "::1", False), ("RFC1918", "fd00::1", False),

    ("RFC3330", "0.0.0.0", True), ("RFC3330", "0.255.255.255", True),
    ("RFC3330", "10.1.2.3", True), ("RFC3330", "127.0.0.1", True),
    ("RFC3330", "169.254.1.1", True), ("RFC3330", "169.255.0.0", False),
    ("RFC3330", "172.20.0.1", True), ("RFC3330", "192.0.2.200", True),
    ("RFC3330", "192.0.3.0", False), ("RFC3330", "192.168.1.1", True),
    ("RFC3330", "192.88.99.1", True), ("RFC3330", "198.18.0.0", True),
    ("RFC3330", "198.19.255.255", True), ("RFC3330", "198.20.0.0", False),
    ("RFC3330", "224.0.0.1", True), ("RFC3330", "239.255.255.255", True),
    ("RFC3330", "240.0.0.1", True), ("RFC3330", "255.255.255.255", True),
    ("RFC3330", "1.0.0.0", False), ("RFC3330", "8.8.8.8", False),
    ("RFC3330", "100.64.0.1", False), ("RFC3330", "198.51.100.1", False),
    ("RFC3330", "2001:db8::1", False),

    ("LOCAL", "127.0.0.1", True), ("LOCAL", "127.255.255.255", True),
    ("LOCAL", "10.0.0.1", True), ("LOCAL", "172.16.0.1", True),
    ("LOCAL", "192.168.255.255", True), ("LOCAL", "128.0.0.0", False),
    ("LOCAL", "169.254.1.1", False), ("LOCAL", "0.1.2.3", False), ("LOCAL", "::1", False),

    ("BOGONS", "0.0.0.0", True), ("BOGONS", "10.1.1.1", True), ("BOGONS", "100.64.0.1", True),
    ("BOGONS", "100.127.255.255", True), ("BOGONS", "100.128.0.0", False),
    ("BOGONS", "127.0.0.1", True), ("BOGONS", "169.254.0.1", True),
    ("BOGONS", "192.0.0.9", True), ("BOGONS", "192.0.2.1", True),
    ("BOGONS", "192.31.196.1", True), ("BOGONS", "192.52.193.1", True),
    ("BOGONS", "192.88.99.2", True), ("BOGONS", "192.175.48.1", True),
    ("BOGONS", "198.18.0.1", True), ("BOGONS", "198.51.100.7", True),
    ("BOGONS", "203.0.113.9", True), ("BOGONS", "224.0.0.251", True),
    ("BOGONS", "240.0.0.1", True), ("BOGONS", "255.255.255.255", True),
    ("BOGONS", "1.1.1.1", False), ("BOGONS", "8.8.8.8", False),
    ("BOGONS", "223.255.255.255", False), ("BOGONS", "192.0.1.255", False),
    ("BOGONS", "::ffff:8.8.8.8", False),  # IPv4 written as IPv6 is still 8.8.8.8
    ("BOGONS", "::", True), ("BOGONS", "::1", True), ("BOGONS", "::8.8.8.8", True),
    ("BOGONS", "64:ff9b::808:808", True), ("BOGONS", "100::1", True),
    ("BOGONS", "fe80::1", True), ("BOGONS", "fc00::1", True), ("BOGONS", "fdff::1", True),
    ("BOGONS", "ff02::1", True), ("BOGONS", "5f00::1", True), ("BOGONS", "4000::1", True),
    ("BOGONS", "2001::1", True), ("BOGONS", "2001:1ff::1", True), ("BOGONS", "2001:db8::1", True),
    ("BOGONS", "2002:c000:201::1", True), ("BOGONS", "3fff::1", True),
    ("BOGONS", "2620:4f:8000::1", True),
    ("BOGONS", "2001:200::1", False), ("BOGONS", "2001:4860:4860::8888", False),
    ("BOGONS", "2606:4700:4700::1111", False), ("BOGONS", "2a00:1450:4001::1", False),
    ("BOGONS", "2620:4f:8001::1", False), ("BOGONS", "3ffe:ffff::1", False),
]


@pytest.mark.parametrize(("keyword", "ip", "inside"), KEYWORD_TABLE)
def test_keyword_keep_and_discard(keyword: str, ip: str, inside: bool) -> None:
    key = parse_ip(ip)
    assert NetworkFilter("keep", [keyword]).accepts(key) is inside
    assert NetworkFilter("discard", [keyword]).accepts(key) is not inside


@pytest.mark.parametrize("spelling", ["rfc1918", "Rfc1918", "RFC1918", " rfc1918 "])
def test_keywords_are_case_insensitive(spelling: str) -> None:
    f = NetworkFilter("keep", [spelling])
    assert f.accepts(parse_ip("192.168.1.1")) and not f.accepts(parse_ip("8.8.8.8"))


def test_keyword_tables_nest() -> None:
    # Every original keyword is a subset of BOGONS, LOCAL = RFC1918 + 127/8.
    bogons = NetworkFilter("keep", ["bogons"])
    for word in ("RFC1918", "RFC3330", "LOCAL"):
        for cidr in KEYWORDS[word]:
            net = IPNetwork(cidr)
            for ip in (net.first, net.last):
                assert bogons.accepts(parse_ip(str(IPAddress(ip))))
    assert set(KEYWORDS["LOCAL"]) == set(KEYWORDS["RFC1918"]) | {"127.0.0.0/8"}


def test_original_synopsis_mixes_ips_keywords_and_cidrs() -> None:
    not_local = NetworkFilter("discard", ["123.123.123.123", "LOCAL", "111.245.76.248/29",
                                          "222.234.52.192/29"])
    kept = {ip: not_local.accepts(parse_ip(ip)) for ip in (
        "123.123.123.123", "123.123.123.124", "127.0.0.1", "111.245.76.255",
        "111.245.76.247", "222.234.52.199", "222.234.52.200")}
    assert kept == {"123.123.123.123": False, "123.123.123.124": True, "127.0.0.1": False,
                    "111.245.76.255": False, "111.245.76.247": True,
                    "222.234.52.199": False, "222.234.52.200": True}


def test_ipv6_networks() -> None:
    ours = NetworkFilter("keep", ["2001:db8:42::/48", "2001:db8:ff::7"])
    assert ours.accepts(parse_ip("2001:db8:42:ffff::1"))
    assert ours.accepts(parse_ip("2001:db8:ff::7"))
    assert not ours.accepts(parse_ip("2001:db8:ff::8"))
    assert not ours.accepts(parse_ip("2001:db8:43::1"))
    assert not ours.accepts(parse_ip("10.0.0.1"))


def test_ipv4_mapped_written_as_ipv6_is_ipv4() -> None:
    assert NetworkFilter("keep", ["::ffff:10.0.0.0/104"]).accepts(parse_ip("10.9.9.9"))
    assert NetworkFilter("keep", ["10.0.0.0/8"]).accepts(parse_ip("::ffff:10.9.9.9"))


def test_screen_returns_the_filter_name() -> None:
    default = NetworkFilter("discard", ["RFC3330"])
    named = NetworkFilter("discard", ["BOGONS"], name="bogon")
    assert default.screen(msg("8.8.8.8")) is None
    assert default.screen(msg("127.0.0.1")) == "filtered"
    assert named.screen(msg("fe80::1")) == "bogon"


def test_networks_and_mode_are_kept_as_given() -> None:
    f = NetworkFilter("discard", ["local", "10.0.0.0/8"])
    assert f.mode == "discard"
    assert f.networks == ("local", "10.0.0.0/8")


@pytest.mark.parametrize(("entries", "message"), [
    (["RFC1919"], "unknown network keyword 'RFC1919'"),
    (["bogon"], "unknown network keyword 'bogon'"),
    (["10.0.0.1/8"], "bad network '10.0.0.1/8': host bits set: did you mean 10.0.0.0/8?"),
    (["LOCAL", "300.1.1.1"], "bad network '300.1.1.1'"),
    (["10.0.0.0/33"], "bad network '10.0.0.0/33'"),
    (["2001:db8::/129"], "bad network '2001:db8::/129'"),
    ([""], "bad network ''"),
    ([], "at least one network"),
])
def test_bad_networks_name_the_entry(entries: list[str], message: str) -> None:
    with pytest.raises(ValueError) as e:
        NetworkFilter("keep", entries)
    assert message in str(e.value)


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="'keep' or 'discard'"):
        NetworkFilter("drop", ["LOCAL"])  # type: ignore[arg-type]


def test_null_filter_keeps_everything() -> None:
    null = NullFilter()
    assert null.screen(msg("127.0.0.1")) is None
    assert Chain([null]).check(msg("::1")) is None


# --- Chain ----------------------------------------------------------------------------------


class Recorder:
    """A stateful filter: remembers what it saw, keeps everything."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        self.seen.append(msg.ip)
        return None


def test_chain_stops_at_the_first_rejection() -> None:
    before, after = Recorder(), Recorder()
    chain = Chain([before, NetworkFilter("discard", ["RFC3330"], name="reserved"),
                   NetworkFilter("keep", ["10.0.0.0/8"], name="elsewhere"), after])
    assert chain.check(msg("127.0.0.1")) == "reserved"
    assert chain.check(msg("8.8.8.8")) == "elsewhere"  # passed the first, not the second
    assert chain.check(msg("10.1.1.1")) == "reserved"
    assert chain.check(msg("1.2.3.4")) == "elsewhere"
    assert before.seen == ["127.0.0.1", "8.8.8.8", "10.1.1.1", "1.2.3.4"]
    assert after.seen == []


def test_chain_keeps_what_every_filter_keeps() -> None:
    after = Recorder()
    chain = Chain([NetworkFilter("keep", ["2001:db8::/32"]), after])
    assert chain.check(msg("2001:db8::1")) is None
    assert after.seen == ["2001:db8::1"]
    assert Chain([]).check(msg("2001:db8::1")) is None


def test_a_rejected_message_never_reaches_the_cache() -> None:
    cache = ThreatCache(clock=lambda: 0.0)
    chain = Chain([NetworkFilter("discard", ["BOGONS"]), cache])
    assert chain.check(msg("192.168.1.1")) == "filtered"
    assert cache.check("192.168.1.1") is None
    assert cache.stats().seen == 0
    assert chain.check(msg("8.8.8.8")) is None
    assert chain.check(msg("8.8.8.8")) == "duplicate"
    assert cache.stats().seen == 2


# --- properties ------------------------------------------------------------------------------

v4_networks = st.builds(
    lambda addr, prefix: str(IPNetwork(f"{IPAddress(addr, 4)}/{prefix}").cidr),
    st.integers(0, 2**32 - 1), st.integers(0, 32))
v6_networks = st.builds(
    lambda addr, prefix: str(IPNetwork(f"{IPAddress(addr, 6)}/{prefix}").cidr),
    st.integers(0, 2**128 - 1), st.integers(0, 128))


def reference_set(networks: list[str]) -> IPSet:
    """The same networks in key space, built by netaddr alone (IPv4 as ::ffff:a.b.c.d)."""
    nets = [IPNetwork(n) for n in networks]
    return IPSet(n.ipv6(ipv4_compatible=False) if n.version == 4 else n for n in nets)


@given(networks=st.lists(st.one_of(v4_networks, v6_networks), min_size=1, max_size=8),
       keys=st.lists(st.integers(0, 2**128 - 1), max_size=20),
       v4s=st.lists(st.integers(0, 2**32 - 1), max_size=20))
def test_accepts_matches_netaddr_membership(networks: list[str], keys: list[int],
                                            v4s: list[int]) -> None:
    ref = reference_set(networks)
    edges = [edge for n in ref.iter_ipranges() for edge in (n.first - 1, n.first, n.last,
                                                            n.last + 1)]
    candidates = keys + [0xFFFF << 32 | v for v in v4s] + [e for e in edges if 0 <= e < 2**128]
    keep = NetworkFilter("keep", networks)
    discard = NetworkFilter("discard", networks)
    for key in candidates:
        inside = IPAddress(key, 6) in ref
        assert keep.accepts(key) is inside
        assert discard.accepts(key) is not inside


RFC3330 = NetworkFilter("keep", ["RFC3330"])
BOGONS = NetworkFilter("keep", ["BOGONS"])


@given(st.integers(0, 2**32 - 1))
def test_bogons_contains_rfc3330(v4: int) -> None:
    key = 0xFFFF << 32 | v4
    assert BOGONS.accepts(key) or not RFC3330.accepts(key)

"""DNSBL responder: rbldnsd zone files, TTL, TXT escaping, mtimes (no rbldnsd needed)."""
from __future__ import annotations

import os
import stat

import pytest

from threatnet.response import DnsblResponder, ResponderError, Threat
from threatnet.response.dnsbl import txt_escape

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def t(ip, ttl=3600.0, comment="ssh brute force", reporter="alice"):
    return Threat.make(ip, comment, reporter, NOW + ttl)


@pytest.fixture
def dnsbl(tmp_path):
    return DnsblResponder(tmp_path / "tn.ip4", tmp_path / "tn.ip6", zone="bl.example.org")


def body(path):
    """The data lines of a zone file (no comments)."""
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def test_resync_writes_both_files(dnsbl, tmp_path):
    dnsbl.resync([t("203.0.113.7"), t("2001:db8::7", comment="spam", reporter="bob"),
                  t("198.51.100.1")], NOW)
    assert body(tmp_path / "tn.ip4") == [
        "$TTL 1800",
        "198.51.100.1 :127.0.0.2:ssh brute force (reported by alice, expires 2023-11-14T23:13:20Z)",
        "203.0.113.7 :127.0.0.2:ssh brute force (reported by alice, expires 2023-11-14T23:13:20Z)",
    ]
    assert body(tmp_path / "tn.ip6") == [
        "$TTL 1800",
        "2001:db8::7 :127.0.0.2:spam (reported by bob, expires 2023-11-14T23:13:20Z)",
    ]
    header = (tmp_path / "tn.ip4").read_text().splitlines()[0]
    assert header.startswith("# ThreatNet DNSBL bl.example.org (ip4set): 2 threat(s)")


def test_files_are_world_readable(dnsbl, tmp_path):
    dnsbl.resync([], NOW)
    for name in ("tn.ip4", "tn.ip6"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644


def test_update_adds_renews_and_removes(dnsbl, tmp_path):
    a, b = t("203.0.113.7"), t("203.0.113.8")
    dnsbl.resync([a, b], NOW)
    renewed = t("203.0.113.7", ttl=7200, comment="again")
    dnsbl.update([renewed], [b], NOW + 1)
    lines = body(tmp_path / "tn.ip4")
    assert lines[1:] == [
        "203.0.113.7 :127.0.0.2:again (reported by alice, expires 2023-11-15T00:13:20Z)"]


def test_ipv6_network_and_single_families(tmp_path):
    only4 = DnsblResponder(tmp_path / "four", None)
    only4.resync([t("2001:db8::/64"), t("192.0.2.1")], NOW)
    assert not (tmp_path / "six").exists()
    assert body(tmp_path / "four")[1].startswith("192.0.2.1 ")
    only6 = DnsblResponder(None, tmp_path / "six")
    only6.resync([t("2001:db8::/64"), t("192.0.2.1")], NOW)
    assert [line.split()[0] for line in body(tmp_path / "six")[1:]] == ["2001:db8::/64"]
    with pytest.raises(ValueError):
        DnsblResponder(None, None)


def test_untouched_file_is_not_rewritten(dnsbl, tmp_path):
    dnsbl.resync([t("203.0.113.7"), t("2001:db8::7")], NOW)
    before = os.stat(tmp_path / "tn.ip6").st_mtime
    dnsbl.update([t("203.0.113.8")], [], NOW + 1)
    assert os.stat(tmp_path / "tn.ip6").st_mtime == before
    assert len(body(tmp_path / "tn.ip4")) == 3


def test_mtime_strictly_increases_for_same_size_rewrites(dnsbl, tmp_path):
    path = tmp_path / "tn.ip4"
    mtimes = []
    for i in range(5):  # same size each time, all within one second
        dnsbl.update([t(f"203.0.113.{i}")], [t(f"203.0.113.{i - 1}")] if i else [], NOW)
        mtimes.append(int(os.stat(path).st_mtime))
    assert mtimes == sorted(set(mtimes))


def test_mtime_continues_from_an_existing_file(tmp_path):
    path = tmp_path / "tn.ip4"
    path.write_text("old")
    future = os.stat(path).st_mtime + 100
    os.utime(path, (future, future))
    DnsblResponder(path, None).resync([], NOW)
    assert os.stat(path).st_mtime >= future + 1


def test_ttl_is_at_most_half_the_nearest_expiry_and_capped(tmp_path):
    d = DnsblResponder(tmp_path / "z", None, ttl=300)
    d.resync([t("192.0.2.1", ttl=3600), t("192.0.2.2", ttl=100)], NOW)
    assert body(tmp_path / "z")[0] == "$TTL 50"
    assert d.due() == NOW + 100 - 50
    d.resync([t("192.0.2.1", ttl=3600)], NOW)
    assert body(tmp_path / "z")[0] == "$TTL 300"
    assert d.due() == NOW + 3600 - 300
    d.resync([], NOW)
    assert body(tmp_path / "z")[0] == "$TTL 300"
    assert d.due() is None


def test_refresh_halves_the_ttl_before_it_outlives_the_entry(tmp_path):
    d = DnsblResponder(tmp_path / "z", None, ttl=3600)
    d.resync([t("192.0.2.1", ttl=100)], NOW)
    now, ttls, writes = NOW, [], 0
    while d.due() is not None:
        now = d.due()
        mtime = os.stat(tmp_path / "z").st_mtime
        d.update([], [], now)
        writes += os.stat(tmp_path / "z").st_mtime != mtime
        ttl = int(body(tmp_path / "z")[0].split()[1])
        assert now + ttl <= NOW + 100  # no answer cached past the expiry
        ttls.append(ttl)
    assert ttls == [25, 12, 6, 3, 1, 1]
    assert writes == 5  # the last refresh found nothing to change


def test_expired_entries_are_dropped_on_write(dnsbl, tmp_path):
    dnsbl.resync([t("192.0.2.1", ttl=10), t("192.0.2.2", ttl=100)], NOW)
    dnsbl.update([], [], NOW + 11)
    assert [line.split()[0] for line in body(tmp_path / "tn.ip4")[1:]] == ["192.0.2.2"]


def test_soa_ns_and_a_value(tmp_path):
    d = DnsblResponder(tmp_path / "z", None, a_value="127.0.0.4",
                       soa="0 ns.example.org hostmaster.example.org 0 600 300 86400 60",
                       ns="0 ns.example.org")
    d.resync([t("192.0.2.1")], NOW)
    lines = body(tmp_path / "z")
    assert lines[:2] == ["$SOA 0 ns.example.org hostmaster.example.org 0 600 300 86400 60",
                         "$NS 0 ns.example.org"]
    assert lines[3].startswith("192.0.2.1 :127.0.0.4:")


@pytest.mark.parametrize("kw", [{"a_value": "2001:db8::1"}, {"a_value": "x"}, {"ttl": 0},
                                {"soa": "a\nb"}, {"txt": "{nope}"}, {"txt": "{"}])
def test_bad_config_is_refused(tmp_path, kw):
    with pytest.raises(ValueError):
        DnsblResponder(tmp_path / "z", None, **kw)


@pytest.mark.parametrize("raw, escaped", [
    ("costs $5", "costs $$5"),
    ("$1 $$", "$$1 $$$$"),
    ("=starts with equals", "starts with equals"),
    ("  == x", "x"),
    ("a\nb\rc\x00d", "a b c d"),
    ("\x0304red\x03 and \x02bold\x02", "red and bold"),
    ("ok: colons # and ; stay", "ok: colons # and ; stay"),
])
def test_txt_escape(raw, escaped):
    assert txt_escape(raw) == escaped


def test_txt_escape_limits_served_bytes_to_254():
    assert len(txt_escape("x" * 300)) == 254
    served = txt_escape("$" * 300).replace("$$", "$")
    assert len(served) == 254
    assert len(txt_escape("é" * 200).encode()) == 254  # whole characters only


def test_long_comment_is_cut_before_the_reporter_and_expiry(tmp_path):
    d = DnsblResponder(tmp_path / "z", None)
    d.resync([t("192.0.2.1", comment="word " * 100, reporter="carol\nevil")], NOW)
    txt = body(tmp_path / "z")[1].split(":", 2)[2]
    assert len(txt.encode()) <= 254
    assert txt.endswith("... (reported by carol evil, expires 2023-11-14T23:13:20Z)")


def test_hostile_comment_cannot_add_lines(dnsbl, tmp_path):
    dnsbl.resync([t("192.0.2.1", comment="x\n10.0.0.0/8 :127.0.0.2:all\n$TTL 999999")], NOW)
    lines = body(tmp_path / "tn.ip4")
    assert len(lines) == 2 and lines[0] == "$TTL 1800"


def test_custom_template(tmp_path):
    d = DnsblResponder(tmp_path / "z", None, zone="bl.example.org",
                       txt="{ip} listed by {reporter} on {zone}: {comment}")
    d.resync([t("192.0.2.1", comment="100% $bad")], NOW)
    assert body(tmp_path / "z")[1] == \
        "192.0.2.1 :127.0.0.2:192.0.2.1 listed by alice on bl.example.org: 100% $$bad"


def test_datasets_for_the_rbldnsd_command_line(dnsbl, tmp_path):
    assert dnsbl.datasets() == [f"bl.example.org:ip4set:{tmp_path / 'tn.ip4'}",
                                f"bl.example.org:ip6trie:{tmp_path / 'tn.ip6'}"]


def test_unwritable_directory_is_a_clear_error(tmp_path):
    d = DnsblResponder(tmp_path / "missing" / "z", None)
    with pytest.raises(ResponderError, match="cannot write .*missing/z"):
        d.resync([t("192.0.2.1")], NOW)


def test_10k_entries_render_quickly(dnsbl, tmp_path):
    import time
    threats = [t(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(10000)]
    start = time.perf_counter()
    dnsbl.resync(threats, NOW)
    assert time.perf_counter() - start < 1.0
    assert len(body(tmp_path / "tn.ip4")) == 10001

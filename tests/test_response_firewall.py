"""Firewall responder with a fake nft: batches, timeouts, resync, errors (no root needed)."""
from __future__ import annotations

import logging
import textwrap
import time
from pathlib import Path

import pytest

from threatnet.filter import NetworkFilter
from threatnet.response import FirewallResponder, ResponderError, Threat, ThreatResponse
from threatnet.response.firewall import nft_timeout

NOW = 1_700_000_000.0


def t(ip, ttl=3600.0):
    return Threat.make(ip, "scan", "alice", NOW + ttl)


class FakeNft:
    """A stand-in ``nft``: logs each batch it is given; fails while ``fail`` is set."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.path = tmp_path / "nft"
        self.path.write_text(textwrap.dedent(f"""\
            #!/bin/sh
            echo "$@" >> {tmp_path}/argv
            cat > {tmp_path}/batch.$$
            echo {tmp_path}/batch.$$ >> {tmp_path}/batches
            if [ -f {tmp_path}/fail ]; then cat {tmp_path}/fail >&2; exit 1; fi
            """))
        self.path.chmod(0o755)

    @property
    def batches(self):
        try:
            names = (self.dir / "batches").read_text().split()
        except FileNotFoundError:
            return []
        return [Path(n).read_text().splitlines() for n in names]

    def fail(self, stderr):
        (self.dir / "fail").write_text(stderr)

    def recover(self):
        (self.dir / "fail").unlink()


@pytest.fixture
def nft(tmp_path):
    return FakeNft(tmp_path)


def test_timeout_text():
    assert nft_timeout(3600) == "3600s0ms"
    assert nft_timeout(3599.5) == "3599s500ms"
    assert nft_timeout(0.25) == "250ms"
    assert nft_timeout(0.0001) == "1ms"  # never 0, which would mean "no timeout"
    assert nft_timeout(-5) == "1ms"
    assert nft_timeout(10 ** 9) == f"{49 * 86400}s0ms"


def test_new_threats_are_plain_adds_in_one_transaction(nft):
    fw = FirewallResponder(nft=[str(nft.path)])
    fw.update([t("203.0.113.7", 100), t("2001:db8::7", 200.5), t("2001:db8:1::/64", 50)],
              [t("203.0.113.9"), t("2001:db8:2::/64")], NOW)
    assert nft.batches == [[
        "add element inet threatnet tn_v4 { 203.0.113.9 timeout 1s }",
        "delete element inet threatnet tn_v4 { 203.0.113.9 }",
        "add element inet threatnet tn_v4 { 203.0.113.7 timeout 100s0ms }",
        "add element inet threatnet tn_v6 { 2001:db8::7 timeout 200s500ms }",
        "add element inet threatnet tn_v6net { 2001:db8:2:: timeout 1s }",
        "delete element inet threatnet tn_v6net { 2001:db8:2:: }",
        "add element inet threatnet tn_v6net { 2001:db8:1:: timeout 50s0ms }",
    ]]
    assert (nft.dir / "argv").read_text() == "-f -\n"


def test_renewing_a_present_element_is_an_upsert(nft):
    fw = FirewallResponder(nft=[str(nft.path)])
    fw.update([t("203.0.113.7", 100), t("203.0.113.8", 10), t("2001:db8:1::/64", 100)], [], NOW)
    fw.update([t("203.0.113.7", 300), t("2001:db8:1::/64", 300), t("203.0.113.8", 300)], [],
              NOW + 20)  # .8 has expired in the kernel meanwhile: a plain add again
    assert nft.batches[1] == [
        "add element inet threatnet tn_v4 { 203.0.113.7 timeout 1s }",
        "delete element inet threatnet tn_v4 { 203.0.113.7 }",
        "add element inet threatnet tn_v4 { 203.0.113.7 timeout 280s0ms, "
        "203.0.113.8 timeout 280s0ms }",
        "add element inet threatnet tn_v6net { 2001:db8:1:: timeout 1s }",
        "delete element inet threatnet tn_v6net { 2001:db8:1:: }",
        "add element inet threatnet tn_v6net { 2001:db8:1:: timeout 280s0ms }",
    ]


def test_after_resync_its_threats_count_as_present(nft):
    fw = FirewallResponder(nft=[str(nft.path)])
    fw.resync([t("192.0.2.1", 100)], NOW)
    fw.update([t("192.0.2.1", 200)], [], NOW)
    assert nft.batches[1][0] == "add element inet threatnet tn_v4 { 192.0.2.1 timeout 1s }"
    fw.update([], [t("192.0.2.1")], NOW)
    fw.update([t("192.0.2.1", 200)], [], NOW)
    assert nft.batches[3] == ["add element inet threatnet tn_v4 { 192.0.2.1 timeout 200s0ms }"]


def test_each_element_gets_its_own_remaining_time(nft):
    fw = FirewallResponder(nft=[str(nft.path)])
    fw.update([t("192.0.2.1", 10), t("192.0.2.2", 3000)], [], NOW + 5)
    assert nft.batches[0][-1] == \
        "add element inet threatnet tn_v4 { 192.0.2.1 timeout 5s0ms, 192.0.2.2 timeout 2995s0ms }"


def test_removals_only(nft):
    fw = FirewallResponder(nft=[str(nft.path)], table="tn", family="ip", set4="a", set6="b",
                           set6net="c")
    fw.update([], [t("192.0.2.1")], NOW)
    assert nft.batches == [["add element ip tn a { 192.0.2.1 timeout 1s }",
                            "delete element ip tn a { 192.0.2.1 }"]]


def test_empty_update_runs_nothing(nft):
    FirewallResponder(nft=[str(nft.path)]).update([], [], NOW)
    assert nft.batches == []


def test_resync_flushes_and_readds_in_one_transaction(nft):
    fw = FirewallResponder(nft=[str(nft.path)])
    fw.resync([t("192.0.2.1", 60), t("2001:db8::1", 30), t("192.0.2.9", -1),
               t("2001:db8:9::/64", 20)], NOW)
    assert nft.batches == [[
        "flush set inet threatnet tn_v4",
        "flush set inet threatnet tn_v6",
        "flush set inet threatnet tn_v6net",
        "add element inet threatnet tn_v4 { 192.0.2.1 timeout 60s0ms }",
        "add element inet threatnet tn_v6 { 2001:db8::1 timeout 30s0ms }",
        "add element inet threatnet tn_v6net { 2001:db8:9:: timeout 20s0ms }",
    ]]


def test_other_ipv6_prefixes_are_skipped_with_a_warning(nft, caplog):
    fw = FirewallResponder(nft=[str(nft.path)])
    with caplog.at_level(logging.WARNING):
        fw.update([t("2001:db8::/48"), t("192.0.2.1")], [], NOW)
    assert "2001:db8::/48 skipped" in caplog.text
    assert "2001:db8::" not in "\n".join(nft.batches[0])


def test_resync_loads_the_ruleset_first(nft, tmp_path):
    ruleset = tmp_path / "threatnet.nft"
    ruleset.write_text("table inet threatnet\ndelete table inet threatnet\n")
    fw = FirewallResponder(nft=[str(nft.path)], ruleset=ruleset)
    fw.resync([], NOW)
    assert nft.batches[0][:3] == ["table inet threatnet", "delete table inet threatnet",
                                  "flush set inet threatnet tn_v4"]


def test_resync_creates_missing_sets(nft, caplog):
    fw = FirewallResponder(nft=[str(nft.path)])
    nft.fail("/dev/stdin:1:1-30: Error: Could not process rule: No such file or directory\n")
    real_run = fw._run_nft

    def run_once_failing(lines):
        try:
            real_run(lines)
        finally:
            if (nft.dir / "fail").exists():
                nft.recover()

    fw._run_nft = run_once_failing
    with caplog.at_level(logging.WARNING):
        fw.resync([t("192.0.2.1", 60)], NOW)
    assert nft.batches[1][:4] == [
        "add table inet threatnet",
        "add set inet threatnet tn_v4 { type ipv4_addr; flags timeout; }",
        "add set inet threatnet tn_v6 { type ipv6_addr; flags timeout; }",
        "add set inet threatnet tn_v6net { type ipv6_addr; flags timeout; }"]
    assert nft.batches[1][4:] == nft.batches[0]
    assert "creating them" in caplog.text


@pytest.mark.parametrize("stderr, reason", [
    ("netlink: Error: cache initialization failed: Operation not permitted\n",
     "nft: permission denied (needs root or CAP_NET_ADMIN)"),
    ("Error: Could not process rule: No such file or directory\nadd element ...\n",
     "nft: table or set missing"),
    ("/dev/stdin:1:57-68: Error: value too large\n", "nft failed (exit status 1): /dev/stdin"),
])
def test_nft_errors_are_clear(nft, stderr, reason):
    nft.fail(stderr)
    with pytest.raises(ResponderError) as e:
        FirewallResponder(nft=[str(nft.path)]).update([t("192.0.2.1")], [], NOW)
    assert str(e.value).startswith(reason)
    assert "\n" not in str(e.value)


def test_missing_nft_binary(tmp_path):
    with pytest.raises(ResponderError, match="command not found .install nftables."):
        FirewallResponder(nft=[str(tmp_path / "no-nft")]).update([t("192.0.2.1")], [], NOW)


def test_hung_nft_times_out(tmp_path):
    slow = tmp_path / "nft"
    slow.write_text("#!/bin/sh\nexec sleep 5\n")
    slow.chmod(0o755)
    with pytest.raises(ResponderError, match="did not finish within 0.2 s"):
        FirewallResponder(nft=[str(slow)], timeout=0.2).update([t("192.0.2.1")], [], NOW)


@pytest.mark.parametrize("kw", [{"table": "x; flush ruleset"}, {"set4": "a b"}, {"set6": ""},
                                {"family": "arp"}, {"nft": []}])
def test_names_are_checked(kw):
    with pytest.raises(ValueError):
        FirewallResponder(**kw)


def test_large_batches_are_split_into_statements_of_one_transaction(nft):
    threats = [t(f"10.0.{i >> 8}.{i & 255}") for i in range(12000)]
    FirewallResponder(nft=[str(nft.path)]).resync(threats, NOW)
    (batch,) = nft.batches
    adds = [line for line in batch if line.startswith("add element")]
    assert len(adds) == 3
    assert sum(line.count("timeout") for line in adds) == 12000


def test_conntrack_runs_for_new_addresses(nft, tmp_path):
    ct = tmp_path / "conntrack"
    ct.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/ct\n"
                  "echo 'conntrack v1.4.7 (conntrack-tools): "
                  "0 flow entries have been deleted.' >&2\n"
                  "exit 1\n")
    ct.chmod(0o755)
    fw = FirewallResponder(nft=[str(nft.path)], conntrack=[str(ct)])
    fw.update([t("192.0.2.1"), t("2001:db8::1"), t("2001:db8:5::/64")], [t("192.0.2.2")], NOW)
    assert sorted((tmp_path / "ct").read_text().splitlines()) == [
        "-D -f ipv6 -s 2001:db8::1", "-D -s 192.0.2.1"]


def test_host_retries_a_failing_firewall_as_a_resync(nft):
    fw = FirewallResponder(nft=[str(nft.path)])
    nft.fail("Error: Could not process rule: Operation not permitted\n")
    host = ThreatResponse([fw], backoff=(0.05, 0.05))
    host.start()
    try:
        host.added(Threat.make("192.0.2.1", "x", "y", 4e9))
        deadline = time.monotonic() + 3
        while host.status()[0].failures < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "permission denied" in host.status()[0].last_error
        nft.recover()
        assert host.wait_idle(3)
    finally:
        host.stop()
    assert nft.batches[-1][0] == "flush set inet threatnet tn_v4"


def test_filter_keeps_only_customer_ranges(nft):
    fw = FirewallResponder(nft=[str(nft.path)],
                           filters=[NetworkFilter("keep", ["198.51.100.0/24"])])
    host = ThreatResponse([fw])
    host.start()
    try:
        host.added(Threat.make("198.51.100.9", "x", "y", 4e9))
        host.added(Threat.make("203.0.113.9", "x", "y", 4e9))
        assert host.wait_idle(3)
    finally:
        host.stop()
    text = "\n".join(line for batch in nft.batches for line in batch)
    assert "198.51.100.9" in text and "203.0.113.9" not in text

"""DNSBL responder against a real rbldnsd on loopback, queried with dnspython."""
from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from threatnet.response import DnsblResponder, Threat, ThreatResponse

pytest.importorskip("dns.query", reason="dnspython is not installed (pip install dnspython)")
import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402

ZONE = "bl.example.org"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rbldnsd:
    def __init__(self, directory: Path, datasets: list[str]):
        self.port = free_udp_port()
        self.log = directory / "rbldnsd.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                ["rbldnsd", "-n", "-b", f"127.0.0.1/{self.port}", "-w", str(directory),
                 "-c", "1", *datasets], stdout=log, stderr=subprocess.STDOUT)

    def query(self, name: str, rdtype: str):
        """(rcode text, [(ttl, [values])])."""
        msg = dns.message.make_query(name, rdtype)
        reply = dns.query.udp(msg, "127.0.0.1", port=self.port, timeout=1)
        answers = [(rrset.ttl, sorted(rr.to_text() for rr in rrset)) for rrset in reply.answer]
        return dns.rcode.to_text(reply.rcode()), answers

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def reverse(ip: str) -> str:
    name = ipaddress.ip_address(ip).reverse_pointer
    return name.rsplit(".in-addr.arpa", 1)[0].rsplit(".ip6.arpa", 1)[0] + "." + ZONE


def poll(check, timeout: float):
    """Call ``check`` until it returns a true value or ``timeout`` passes; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server():
    """One rbldnsd for the module, serving tn.ip4 / tn.ip6 in a world-readable directory."""
    if shutil.which("rbldnsd") is None:
        pytest.skip("rbldnsd is not installed (apt-get install rbldnsd)")
    # rbldnsd drops root for user rbldns: the directory must be traversable by it,
    # which pytest's 0700 tmp_path is not.
    directory = Path(tempfile.mkdtemp(prefix="threatnet-rbldnsd-"))
    directory.chmod(0o755)
    dnsbl = DnsblResponder(directory / "tn.ip4", directory / "tn.ip6", zone=ZONE)
    dnsbl.resync([], time.time())  # rbldnsd wants the files to exist
    rbldnsd = Rbldnsd(directory, dnsbl.datasets())
    try:
        if not poll(lambda: _answers(rbldnsd), 5):
            pytest.fail("rbldnsd did not answer: " + rbldnsd.log.read_text())
        yield rbldnsd
    finally:
        rbldnsd.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def world(server):
    """A host with a fresh DNSBL responder; its start empties the zone files."""
    directory = server.log.parent
    dnsbl = DnsblResponder(directory / "tn.ip4", directory / "tn.ip6", zone=ZONE, ttl=300)
    host = ThreatResponse([dnsbl])
    host.start()
    assert host.wait_idle(5)
    try:
        yield host, server
    finally:
        host.stop()


def _answers(server: Rbldnsd) -> bool:
    try:
        return server.query("2.0.0.127." + ZONE, "A")[0] == "NXDOMAIN"
    except (dns.exception.Timeout, OSError):
        return False


def test_threat_is_listed_within_2s_and_gone_after_expiry(world):
    host, server = world
    block = 3.0
    start = time.monotonic()
    host.added(Threat.make("203.0.113.7", "ssh brute force $1 \"q\"", "alice",
                           time.time() + block))
    name = reverse("203.0.113.7")
    listed = poll(lambda: server.query(name, "A")[0] == "NOERROR", 2.0)
    latency = time.monotonic() - start
    assert listed, f"not listed within 2 s: {server.query(name, 'A')}"
    print(f"DNSBL latency: {latency:.2f} s")
    rcode, answers = server.query(name, "A")
    (ttl, values), = answers
    assert values == ["127.0.0.2"] and 1 <= ttl <= block / 2
    rcode, answers = server.query(name, "TXT")
    (ttl, (txt,)), = answers
    assert txt.startswith('"ssh brute force $1 \\"q\\" (reported by alice, expires ')
    assert server.query(reverse("203.0.113.8"), "A")[0] == "NXDOMAIN"
    gone = poll(lambda: server.query(name, "A")[0] == "NXDOMAIN", block + 2.5)
    assert gone, "still listed after expiry"


def test_ipv6_and_network_listing(world):
    host, server = world
    expires = time.time() + 60
    host.added(Threat.make("2001:db8::7", "spam", "bob", expires))
    host.added(Threat.make("2001:db8:1:2::/64", "aggregated", "carol", expires))
    single = reverse("2001:db8::7")
    inside = reverse("2001:db8:1:2::abcd")
    assert poll(lambda: server.query(single, "A")[0] == "NOERROR"
                and server.query(inside, "A")[0] == "NOERROR", 2.0)
    txt = server.query(inside, "TXT")[1][0][1][0]
    assert txt.startswith('"aggregated (reported by carol')
    assert server.query(reverse("2001:db8:1:3::1"), "A")[0] == "NXDOMAIN"


def test_same_second_same_size_rewrite_is_seen(world):
    host, server = world
    host.responders[0].interval = 0  # rewrite at once, within the same second
    expires = int(time.time()) + 60  # same expiry text, so the same file size
    listed = "203.0.113.10"
    for new in ("203.0.113.11", "203.0.113.12"):  # a miss shows in ~half the swaps
        host.added(Threat.make(listed, "x", "y", expires))
        assert poll(lambda: server.query(reverse(listed), "A")[0] == "NOERROR", 2.0)
        size = os.stat(host.responders[0].v4.path).st_size
        host.expired(Threat.make(listed).key)  # swap: same size, likely the same second
        host.added(Threat.make(new, "x", "y", expires))
        assert host.wait_idle(2)
        assert os.stat(host.responders[0].v4.path).st_size == size
        swapped = poll(lambda new=new: server.query(reverse(new), "A")[0] == "NOERROR"
                       and server.query(reverse(listed), "A")[0] == "NXDOMAIN", 2.5)
        assert swapped, "rbldnsd missed a same-size rewrite"
        host.expired(Threat.make(new).key)


def test_burst_of_1000_threats(world):
    host, server = world
    expires = time.time() + 60
    start = time.monotonic()
    for i in range(1000):
        host.added(Threat.make(f"198.51.{100 + i // 256}.{i % 256}", "burst", "z", expires))
    last = reverse("198.51.103.231")
    assert poll(lambda: server.query(last, "A")[0] == "NOERROR", 3.0)
    print(f"1000-threat burst listed after {time.monotonic() - start:.2f} s")
    assert os.stat(Path(server.log).parent / "tn.ip4").st_size > 1000 * 40


def test_longest_text_is_served_whole(world):
    """rbldnsd serves at most 254 bytes of TXT: a text written at 255 lost its last
    byte there (docs/RESPONDERS.md)."""
    host, server = world
    host.added(Threat.make("203.0.113.20", "é" * 200 + "x", "alice", time.time() + 60))
    name = reverse("203.0.113.20")
    assert poll(lambda: server.query(name, "A")[0] == "NOERROR", 2.0)
    msg = dns.message.make_query(name, "TXT")
    reply = dns.query.udp(msg, "127.0.0.1", port=server.port, timeout=1)
    (data,) = reply.answer[0][0].strings
    text = data.decode("utf-8")  # a cut character would not decode
    assert len(data) <= 254 and text.startswith("é" * 100) and text.endswith("Z)")

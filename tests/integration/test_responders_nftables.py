"""Firewall responder against real nftables, inside network namespaces made by the test.

Two namespaces joined by a veth pair: ``srv`` runs a TCP echo server and the
shipped ruleset (conf/nftables/threatnet.nft), ``peer`` connects to it. The host's
own firewall is never touched: every nft command runs in ``srv``.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from threatnet.response import FirewallResponder, Threat, ThreatResponse

RULESET = Path(__file__).resolve().parents[2] / "conf" / "nftables" / "threatnet.nft"
SRV4, PEER4 = "10.231.0.1", "10.231.0.2"
SRV6, PEER6 = "fd00:231::1", "fd00:231::2"
PORT = 8231

ECHO_SERVER = f"""
import socket, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", {PORT})); s.listen(64)
print("ready", flush=True)
def echo(c):
    with c:
        while True:
            data = c.recv(1024)
            if not data:
                return
            c.sendall(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"""

# Reads commands on stdin, answers "ok" or "fail <reason>" per line:
#   try HOST       - a new connection, one echo round trip (0.3 s budget)
#   open HOST      - keep a connection open;  send - one round trip on it
PROBE = f"""
import socket, sys
kept = None
def roundtrip(c):
    c.settimeout(0.3); c.sendall(b"ping")
    if c.recv(4) != b"ping":
        raise OSError("bad echo")
for line in sys.stdin:
    cmd, *arg = line.split()
    try:
        if cmd == "try":
            with socket.create_connection((arg[0], {PORT}), timeout=0.3) as c:
                roundtrip(c)
        elif cmd == "open":
            kept = socket.create_connection((arg[0], {PORT}), timeout=0.3)
            roundtrip(kept)
        elif cmd == "send":
            roundtrip(kept)
        print("ok", flush=True)
    except OSError as e:
        print("fail", type(e).__name__, flush=True)
"""


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=20)


class Lab:
    """Namespaces srv and peer, a veth between them, an echo server and a probe."""

    def __init__(self, tag: str):
        self.srv, self.peer = f"tn{tag}s", f"tn{tag}p"
        self.procs: list[subprocess.Popen] = []
        run("ip", "netns", "add", self.srv)
        run("ip", "netns", "add", self.peer)
        run("ip", "link", "add", f"{self.srv}v", "netns", self.srv, "type", "veth",
            "peer", "name", f"{self.peer}v", "netns", self.peer)
        for ns, v4, v6 in ((self.srv, SRV4, SRV6), (self.peer, PEER4, PEER6)):
            self.ns(ns, "ip", "link", "set", "lo", "up")
            self.ns(ns, "ip", "addr", "add", f"{v4}/24", "dev", f"{ns}v")
            self.ns(ns, "ip", "-6", "addr", "add", f"{v6}/64", "dev", f"{ns}v", "nodad")
            self.ns(ns, "ip", "link", "set", f"{ns}v", "up")
        server = self.spawn(self.srv, ECHO_SERVER)
        assert server.stdout.readline().strip() == "ready"
        self.probe = self.spawn(self.peer, PROBE, stdin=subprocess.PIPE)
        self.nft = ["ip", "netns", "exec", self.srv, "nft"]

    def ns(self, ns: str, *argv: str) -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", ns, *argv)

    def spawn(self, ns: str, code: str, stdin=None) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                                stdin=stdin, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def ask(self, command: str) -> bool:
        self.probe.stdin.write(command + "\n")
        self.probe.stdin.flush()
        return self.probe.stdout.readline().startswith("ok")

    def connects(self, host: str) -> bool:
        return self.ask(f"try {host}")

    def elements(self, set_name: str) -> dict[str, int]:
        """Element -> timeout (ms) of a set in srv."""
        out = self.ns(self.srv, "nft", "-j", "list", "set", "inet", "threatnet", set_name).stdout
        found = {}
        for item in json.loads(out)["nftables"]:
            for elem in item.get("set", {}).get("elem", []):
                e = elem["elem"]
                value = e["val"]
                if isinstance(value, dict):  # a prefix
                    value = f"{value['prefix']['addr']}/{value['prefix']['len']}"
                found[value] = e.get("timeout")
        return found

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(5)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        for ns in (self.srv, self.peer):
            run("ip", "netns", "del", ns, check=False)


def poll(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


_COUNTER = itertools.count()


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces and nftables)")
    for binary in ("ip", "nft"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (apt-get install iproute2 nftables)")
    tag = f"{os.getpid() % 100000}x{next(_COUNTER)}"  # interface names: 15 bytes at most
    try:
        lab = Lab(tag)
    except subprocess.CalledProcessError as e:
        run("ip", "netns", "del", f"tn{tag}s", check=False)
        run("ip", "netns", "del", f"tn{tag}p", check=False)
        pytest.skip(f"no network namespace support: {' '.join(e.cmd)}: {e.stderr.strip()}")
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def host(lab):
    fw = FirewallResponder(nft=lab.nft, ruleset=RULESET)
    response = ThreatResponse([fw], backoff=(0.2, 1.0))
    response.start()
    response.resync([])  # loads the ruleset
    assert response.wait_idle(10), response.status()
    yield response
    response.stop()


@pytest.mark.parametrize("peer, server", [(PEER4, SRV4), (PEER6, SRV6)])
def test_blocked_peer_cannot_connect_until_expiry(lab, host, peer, server):
    assert lab.connects(server)
    block = 2.0
    start = time.monotonic()
    host.added(Threat.make(peer, "portscan", "alice", time.time() + block))
    assert poll(lambda: not lab.connects(server), 2.0), "peer still connects"
    print(f"blocked after {time.monotonic() - start:.2f} s")
    assert poll(lambda: lab.connects(server), block + 2.0), "peer still blocked after expiry"
    assert time.monotonic() - start >= block - 0.5


def test_ipv6_network_is_blocked(lab, host):
    host.added(Threat.make("fd00:231::/64", "aggregated", "bob", time.time() + 30))
    assert poll(lambda: not lab.connects(SRV6), 2.0)
    assert lab.connects(SRV4)
    assert lab.elements("tn_v6net").keys() == {"fd00:231::"}
    assert not lab.elements("tn_v6")


def test_established_connection_is_cut(lab, host):
    assert lab.ask(f"open {SRV4}")
    host.added(Threat.make(PEER4, "x", "y", time.time() + 30))
    assert poll(lambda: not lab.ask("send"), 2.0)


def test_every_element_has_its_own_timeout(lab, host):
    now = time.time()
    host.resync([Threat.make("192.0.2.1", expires_at=now + 100),
                 Threat.make("192.0.2.2", expires_at=now + 3000),
                 Threat.make("2001:db8::1", expires_at=now + 500)])
    assert host.wait_idle(5)
    v4 = lab.elements("tn_v4")
    assert 99 <= v4["192.0.2.1"] <= 100 and 2999 <= v4["192.0.2.2"] <= 3000
    assert 499 <= lab.elements("tn_v6")["2001:db8::1"] <= 500


def test_renewal_extends_the_timeout(lab, host):
    now = time.time()
    host.added(Threat.make("192.0.2.1", expires_at=now + 5))
    assert host.wait_idle(5)
    host.added(Threat.make("192.0.2.1", expires_at=now + 600))
    assert host.wait_idle(5)
    assert lab.elements("tn_v4")["192.0.2.1"] >= 590


def test_resync_drops_stale_kernel_entries(lab, host):
    lab.ns(lab.srv, "nft", "add", "element", "inet", "threatnet", "tn_v4",
           f"{{ {PEER4} timeout 1h }}")
    assert not lab.connects(SRV4)
    host.resync([Threat.make("192.0.2.9", expires_at=time.time() + 60)])
    assert host.wait_idle(5)
    assert lab.connects(SRV4)
    assert lab.elements("tn_v4").keys() == {"192.0.2.9"}


def test_removal_of_an_element_already_gone_does_not_abort_the_batch(lab, host):
    now = time.time()
    host.added(Threat.make("192.0.2.1", expires_at=now + 60))
    assert host.wait_idle(5)
    lab.ns(lab.srv, "nft", "flush", "set", "inet", "threatnet", "tn_v4")  # gone behind our back
    host.expired(Threat.make("192.0.2.1").key)
    host.added(Threat.make(PEER4, expires_at=now + 60))
    assert host.wait_idle(5)
    assert host.status()[0].failures == 0
    assert lab.elements("tn_v4").keys() == {PEER4}


def test_missing_table_is_recreated_by_the_retry(lab):
    fw = FirewallResponder(nft=lab.nft)  # no ruleset: the sets are made on demand
    response = ThreatResponse([fw], backoff=(0.1, 0.5))
    response.start()
    try:
        response.added(Threat.make("192.0.2.1", expires_at=time.time() + 60))
        assert response.wait_idle(5), response.status()
        assert lab.elements("tn_v4").keys() == {"192.0.2.1"}
    finally:
        response.stop()

"""The proposal's bridge example on real servers: "filter out any messages that reference
hosts already listed on the university DNSBL server".

A real rbldnsd on a loopback high port serves the zone bl.test, listing one IPv4 and one
IPv6 address. One bridge bot on ngIRCd joins three channels and runs two bridges out of
#...x, each asking a DNSBL (dropListed):

    #...x --uni--> #...y    dropListed bl.test@<rbldnsd>: listed addresses stay out
    #...x --down-> #...z    dropListed bl.test@<a port nobody answers>: all cross

An op client (first in every channel) voices the agent and the bot and watches; the
agent posts in #...x. Block period 5 s, so the bot is synced 7 s after it started.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from harness import CACHE, OWNER, identify
from test_bridge_networks import wait_joined, wait_synced
from test_responders_dnsbl import Rbldnsd, free_udp_port, poll
from threatnet.address import parse_ip
from threatnet.dnsbl import Answer, DnsblError, dns_resolver, query_name

ZONE = "bl.test"
LISTED = ("11.6.6.6", "2a00:1450:4001::6")
UNLISTED = ("11.6.6.7", "2a00:1450:4001::7")
P = "supybot.plugins.ThreatNetCache."
BLOCK = 5
# The zone's negative answers are cached for the SOA minimum: 20 s.
IP4SET = f"$SOA 30 ns.{ZONE}. admin.{ZONE}. 1 60 60 600 20\n:127.0.0.2:listed\n{LISTED[0]}\n"
IP6TRIE = f"$SOA 30 ns.{ZONE}. admin.{ZONE}. 1 60 60 600 20\n:127.0.0.2:listed\n{LISTED[1]}\n"


@pytest.fixture(scope="module")
def rbldnsd():
    """rbldnsd serving bl.test from ip4set and ip6trie files; yields (server, dead
    port): a UDP port nothing listens on."""
    if shutil.which("rbldnsd") is None:
        pytest.skip("rbldnsd is not installed (apt-get install rbldnsd)")
    # rbldnsd drops root for user rbldns: the directory must be world-traversable.
    directory = Path(tempfile.mkdtemp(prefix="threatnet-bridge-dnsbl-"))
    directory.chmod(0o755)
    for name, text in (("bl.ip4", IP4SET), ("bl.ip6", IP6TRIE)):
        (directory / name).write_text(text)
        (directory / name).chmod(0o644)
    server = Rbldnsd(directory, [f"{ZONE}:ip4set:{directory / 'bl.ip4'}",
                                 f"{ZONE}:ip6trie:{directory / 'bl.ip6'}"])
    resolve = dns_resolver(("127.0.0.1", server.port))

    def answers() -> bool:
        try:
            return resolve(query_name(parse_ip(LISTED[0]), ZONE), 0.5).addresses != ()
        except DnsblError:
            return False
    try:
        if not poll(answers, 5):
            pytest.fail("rbldnsd did not answer: " + server.log.read_text())
        yield server, free_udp_port()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def said(client, channel: str) -> list[str]:
    """The texts said in ``channel`` since the client's mark, sorted."""
    with client._cond:
        seen = client.lines[client.cursor:]
    return sorted(l.text for l in seen if l.command == "PRIVMSG" and l.params[0] == channel)


def test_resolver_reads_rbldnsd(rbldnsd):
    """threatnet.dnsbl's resolver against the real server: IPv4 reversed octets, IPv6
    reversed nibbles, NXDOMAIN with the SOA's negative TTL, and no answer at all."""
    server, dead = rbldnsd
    resolve = dns_resolver(("127.0.0.1", server.port))
    for ip in LISTED:
        answer = resolve(query_name(parse_ip(ip), ZONE), 2.0)
        assert answer.addresses == ("127.0.0.2",) and answer.ttl > 0, ip
    for ip in UNLISTED:
        assert resolve(query_name(parse_ip(ip), ZONE), 2.0) == Answer((), 20.0), ip
    with pytest.raises(DnsblError) as caught:
        dns_resolver(("127.0.0.1", dead))(query_name(parse_ip(LISTED[0]), ZONE), 0.5)
    assert caught.value.reason in ("timeout", "error"), caught.value


def test_bridge_drops_what_the_dnsbl_lists(rbldnsd, ngircd, lab_factory):
    server, dead = rbldnsd
    lab = lab_factory(ngircd)
    x, y, z = (lab.channel() + suffix for suffix in "xyz")
    op, agent = lab.connect(lab.client(lab.unique("op")), lab.client(lab.unique("agent")))
    for channel in (x, y, z):
        op.join(channel)  # first in: opped by the server
    agent.join(x)
    bot = lab.bot(lab.unique("bridge"), x, owner=OWNER, settings={
        **CACHE, f"{P}blockPeriod": BLOCK, f"{P}pollInterval": 0.1,
        "supybot.networks.threatnet.channels": f"{x} {y} {z}",
        f"{P}bridges": "uni down",
        f"{P}bridge.uni.a": f"threatnet {x}", f"{P}bridge.uni.b": f"threatnet {y}",
        f"{P}bridge.uni.direction": "a->b",
        f"{P}bridge.uni.aToB.dropListed": f"{ZONE}@127.0.0.1:{server.port}",
        f"{P}bridge.down.a": f"threatnet {x}", f"{P}bridge.down.b": f"threatnet {z}",
        f"{P}bridge.down.direction": "a->b",
        f"{P}bridge.down.aToB.dropListed": f"{ZONE}@127.0.0.1:{dead}"})
    bot.start()
    for channel in (y, z):
        wait_joined(bot, channel, "threatnet")
    for channel, nicks in ((x, (bot.nick, agent.nick)), (y, (bot.nick,)), (z, (bot.nick,))):
        for nick in nicks:
            op.send(f"MODE {channel} +v {nick}")
            op.wait_for(lambda l, c=channel, n=nick: l.command == "MODE"
                        and l.params[0] == c and l.params[-1] == n)
    identify(op, bot)
    for channel in (x, y, z):
        wait_synced(op, bot.nick, channel)

    op.mark()
    for ip in LISTED + UNLISTED:
        agent.privmsg(x, f"{ip} ssh brute force")
    # Every relay to z waits out its lookup's deadline (2 s), then crosses unchecked.
    assert poll(lambda: len(said(op, z)) == 4, 6), said(op, z)
    time.sleep(0.3)  # nothing more comes
    assert said(op, y) == sorted(f"{ip} ssh brute force via threatnet" for ip in UNLISTED)
    assert said(op, z) == sorted(f"{ip} ssh brute force via threatnet"
                                 for ip in LISTED + UNLISTED)

    op.mark()
    op.privmsg(bot.nick, "tn bridge status")
    status = [op.wait_for(lambda l: l.nick == bot.nick and l.text.startswith(start)).text
              for start in ("uni ", "down ", f"dnsbl {ZONE}@127.0.0.1:{server.port}:",
                            f"dnsbl {ZONE}@127.0.0.1:{dead}:")]
    assert status[0] == (f"uni (threatnet {x} -> threatnet {y}): relayed a->b 2; dropped "
                         f"listed 2; queue threatnet {y} 0/1000")
    assert status[1] == (f"down (threatnet {x} -> threatnet {z}): relayed a->b 4; dropped "
                         f"none; queue threatnet {z} 0/1000")
    assert status[2].endswith(": listed 2, not listed 2, failed 0; waiting 0, cached 4")
    assert ": listed 0, not listed 0, failed 4 (" in status[3], status[3]
    assert "passed unchecked); waiting 0, cached 4; last error: " in status[3], status[3]
    assert bot.errors() == [], bot.errors()

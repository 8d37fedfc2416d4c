"""The Network Bridge on real servers: three separate ngIRCd networks (not linked),
"north", "south" and "east", one channel each, and two bridge bots, each a single
supybot process on several networks:

    north #tnx --ns--> south #tny --se--> east #tnz --en--> north #tnx
                (bridge1)          (bridge1)          (bridge2)

a cycle across two agents. A raw client op in each channel (the first one in) voices
the agents and the bridge bots; a listener bot sits in #tny. Block period 5 s, so
every agent's quiet period is over 7 s after it started; each test uses its own
addresses and is done within a block period.
"""
from __future__ import annotations

import re
import time

import pytest

from harness import CACHE, OWNER, Lab, identify
from lab.bots import network_settings, start_bots
from lab.process import StackError, require_binary
from lab.servers import NgIRCd

BLOCK = 5
X, Y, Z = "#tnx", "#tny", "#tnz"
P = "supybot.plugins.ThreatNetCache."


def bridge(name: str, a: str, b: str, **more: str) -> dict:
    settings = {f"{P}bridge.{name}.a": a, f"{P}bridge.{name}.b": b,
                f"{P}bridge.{name}.direction": "a->b"}
    settings.update({f"{P}bridge.{name}.{k}": v for k, v in more.items()})
    return settings


def wait_synced(client, bot: str, channel: str, timeout: float = BLOCK + 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        text = client.ask(bot, f"tn status {channel}", bot).text
        if text.endswith("synced"):
            return
        assert "quiet period" in text, text
        assert time.monotonic() < deadline, text
        time.sleep(0.5)


def wait_joined(bot, channel: str, network: str, timeout: float = 30.0) -> None:
    """Until the bot's log says it joined `channel` on `network` (at any time since it
    started: the networks connect in any order)."""
    pattern = re.compile(rf"Join to {re.escape(channel)} on {network} synced")
    deadline = time.monotonic() + timeout
    while not pattern.search(bot.read_log()):
        assert bot.alive(), f"{bot.nick} exited: {bot.log_path}"
        assert time.monotonic() < deadline, f"{bot.nick} never joined {channel} on {network}"
        time.sleep(0.05)


class World:
    """Servers, the op client of each channel (also what the tests watch), agents, bots."""

    def __init__(self, stack_dir):
        self.servers = {name: NgIRCd(stack_dir / f"bridge-{name}", name=f"{name}.test").start()
                        for name in ("north", "south", "east")}
        self.lab = Lab(self.servers["north"], stack_dir / "bots" / "bridge-module", "br")
        self.ops, self.agents = {}, {}
        self.bots = []

    def client(self, network: str, nick: str):
        c = self.servers[network].client(nick)
        self.lab.clients.append(c)
        return c

    def bot(self, nick: str, networks: dict, **kw):
        """A bot on several networks: name -> channel, its own (first) network first."""
        first = next(iter(networks))
        addresses = {n: (self.servers[n].address, [c]) for n, c in networks.items()}
        bot = self.lab.bot(nick, networks[first], network=first, **kw)
        bot.server = self.servers[first].address
        bot.settings = {**network_settings(addresses), **bot.settings}
        self.bots.append((bot, networks))
        return bot

    def close(self):
        self.lab.close()
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="module")
def world(stack_dir):
    try:
        require_binary("ngircd")
    except StackError as e:
        pytest.skip(str(e))
    w = World(stack_dir)
    try:
        channels = {"north": X, "south": Y, "east": Z}
        for network, channel in channels.items():
            op = w.ops[network] = w.client(network, f"op{network}")
            agent = w.agents[network] = w.client(network, f"agent{network}")
            w.lab.connect(op, agent)
            op.join(channel)  # first in: opped by the server
            agent.join(channel)
        common = {**CACHE, f"{P}blockPeriod": BLOCK, f"{P}pollInterval": 0.1}
        bridge1 = w.bot("bridge1", {"north": X, "south": Y, "east": Z}, owner=OWNER, settings={
            **common, f"{P}bridges": "ns se",
            **bridge("ns", f"north {X}", f"south {Y}", **{"aToB.discard": "BOGONS 11.9.0.0/16"}),
            **bridge("se", f"south {Y}", f"east {Z}")})
        bridge2 = w.bot("bridge2", {"east": Z, "north": X}, owner=OWNER, settings={
            **common, f"{P}bridges": "en", **bridge("en", f"east {Z}", f"north {X}")})
        listener = w.bot("listenS", {"south": Y}, settings=common)
        start_bots([bridge1, bridge2, listener])
        for bot, networks in w.bots:
            for network, channel in list(networks.items())[1:]:
                wait_joined(bot, channel, network)
        for network, channel in channels.items():  # the op voices every agent and bot
            op = w.ops[network]
            for nick in [w.agents[network].nick] + [b.nick for b, nets in w.bots
                                                    if network in nets]:
                op.send(f"MODE {channel} +v {nick}")
                op.wait_for(lambda l: l.command == "MODE" and l.params[-1] == nick)
        identify(w.ops["north"], bridge1)
        for bot, networks in w.bots:
            for network, channel in networks.items():
                wait_synced(w.ops[network], bot.nick, channel)
        yield w
    finally:
        w.close()


def lines(client, ip: str, wait: float) -> list:
    """Every channel PRIVMSG about `ip` the client sees within `wait` s (from its mark)."""
    time.sleep(wait)
    with client._cond:
        seen = client.lines[client.cursor:]
    return [l for l in seen if l.command == "PRIVMSG" and l.params[0].startswith("#")
            and l.text.split(" ")[0] == ip]


def mark_all(w: World) -> None:
    for op in w.ops.values():
        op.mark()


def test_threat_reaches_a_listener_on_another_network(world):
    w = world
    mark_all(w)
    w.agents["north"].privmsg(X, "11.1.1.1 ssh brute force")
    relay = w.ops["south"].wait_for(lambda l: l.command == "PRIVMSG" and l.params[0] == Y,
                                    timeout=5)
    assert (relay.nick, relay.text) == ("bridge1", "11.1.1.1 ssh brute force via north")
    reply = w.ops["south"].ask(Y, "!tn check 11.1.1.1", "listenS")
    assert reply.text.startswith(f"opsouth: Current threat in {Y}: 11.1.1.1, reported by "
                                 'bridge1 0 s ago: "ssh brute force via north"; expires in ')


def test_filtered_threat_is_not_relayed(world):
    w = world
    mark_all(w)
    w.agents["north"].privmsg(X, "11.9.0.1 from a discarded range")
    w.agents["north"].privmsg(X, "11.1.2.3 kept")
    assert [l.text for l in lines(w.ops["south"], "11.1.2.3", 0.5)] == ["11.1.2.3 kept via north"]
    assert lines(w.ops["south"], "11.9.0.1", 0.0) == []
    op = w.ops["north"]
    op.mark()
    op.privmsg("bridge1", "tn bridge status")
    ns, se = (op.wait_for(lambda l: l.nick == "bridge1" and l.text.startswith(name)).text
              for name in ("ns ", "se "))
    assert ns.startswith(f"ns (north {X} -> south {Y}): relayed a->b ")
    assert "filtered 1" in ns and ns.endswith(f"queue south {Y} 0/1000"), ns
    assert se.startswith(f"se (south {Y} -> east {Z}): relayed a->b "), se


def test_duplicate_within_block_period_is_not_relayed(world):
    w = world
    mark_all(w)
    w.agents["north"].privmsg(X, "11.2.2.2 first report")
    w.ops["south"].wait_for(lambda l: l.command == "PRIVMSG" and l.text.startswith("11.2.2.2"))
    w.ops["north"].privmsg(X, "11.2.2.2 seen again by another agent")
    w.agents["north"].privmsg(X, "11.2.2.3 next")
    w.ops["south"].wait_for(lambda l: l.command == "PRIVMSG" and l.text.startswith("11.2.2.3"))
    assert [l.text for l in lines(w.ops["south"], "11.2.2.2", 0.3)] == []  # after the first


@pytest.mark.parametrize("origin", ["north", "east"])
def test_a_cycle_of_bridges_does_not_loop(world, origin):
    """Posted in one channel of the cycle, a threat reaches each other channel once
    (from whichever bot holds the bridge into it) and never comes back."""
    w = world
    ip = {"north": "11.3.3.1", "east": "11.3.3.2"}[origin]
    mark_all(w)
    w.agents[origin].privmsg({"north": X, "east": Z}[origin], f"{ip} cycle test")
    seen = {network: [(l.nick, l.text) for l in lines(op, ip, 1.5 if network == "north"
                                                      else 0.0)]
            for network, op in w.ops.items()}
    if origin == "north":  # bridge1 relays x -> y, and y -> z as it would on hearing y
        assert seen == {"north": [("agentnorth", f"{ip} cycle test")],
                        "south": [("bridge1", f"{ip} cycle test via north")],
                        "east": [("bridge1", f"{ip} cycle test via north")]}
    else:  # bridge2 relays z -> x; bridge1 hears it on x, relays x -> y only
        assert seen == {"east": [("agenteast", f"{ip} cycle test")],
                        "north": [("bridge2", f"{ip} cycle test via east")],
                        "south": [("bridge1", f"{ip} cycle test via east")]}
    for bot, _ in w.bots:
        assert bot.errors() == [], bot.errors()

"""One IRC network of three linked ngIRCd servers (servers 2 and 3 link to server 1):
agents and listener bots spread across them, the channel bot (ThreatNetGuard) on
server 1. Every listener caches every threat wherever it was posted, and the guard
enforces the security model for users of every server: it voices whitelisted agents
on servers 2 and 3, and kicks a non-whitelisted speaker on server 3.
"""
from __future__ import annotations

import pytest

from harness import AGENT_IP, CACHE, GUARD, OWNER, STRANGER_IP, Lab, answers, write_whitelist
from lab.bots import Bot, start_bots
from lab.process import StackError, require_binary
from lab.servers import ngircd_network

CHANNEL = "#tnlinked"


def voiced(client, nick: str):
    return client.wait_for(lambda l: l.command == "MODE" and l.params[1:] == ["+v", nick])


@pytest.fixture(scope="module")
def linked(stack_dir):
    try:
        require_binary("ngircd")
    except StackError as e:
        pytest.skip(str(e))
    servers = ngircd_network(stack_dir / "linked", 3)
    lab = Lab(servers[0], stack_dir / "bots" / "linked-module", "ln")
    try:
        guard = lab.bot("guardl", CHANNEL, plugins=["ThreatNetCache", "ThreatNetGuard"],
                        owner=OWNER, settings={**CACHE, **GUARD})
        write_whitelist(guard, {CHANNEL: [AGENT_IP]})
        guard.start()  # first in the channel, on server 1: opped
        listeners = [Bot(lab.root, f"listen{n}", servers[n - 1].address, CHANNEL,
                         plugins=["ThreatNetCache"], settings=CACHE) for n in (1, 2, 3)]
        lab.bots += listeners
        start_bots(listeners)
        agents = [servers[n - 1].client(f"agent{n}", source=AGENT_IP) for n in (1, 2, 3)]
        asker = servers[2].client("asker", source=STRANGER_IP)  # asking is allowed to anyone
        lab.clients += [*agents, asker]
        lab.connect(*agents, asker)
        asker.join(CHANNEL)
        for agent in agents:
            agent.join(CHANNEL)
            voiced(agent, agent.nick)
        yield servers, lab, guard, listeners, agents, asker
    finally:
        lab.close()
        for server in servers:
            server.stop()


def test_guard_on_server_1_voices_whitelisted_agents_on_servers_2_and_3(linked):
    servers, lab, guard, listeners, agents, asker = linked
    for n, server in ((2, servers[1]), (3, servers[2])):
        agent = server.client(lab.unique(f"late{n}"), source=AGENT_IP)
        lab.clients.append(agent)
        agent.connect()
        agent.join(CHANNEL)
        mode = voiced(agent, agent.nick)
        assert mode.nick == guard.nick


def test_every_listener_caches_every_threat(linked):
    servers, lab, guard, listeners, agents, asker = linked
    threats = {agent.nick: f"11.7.7.{n}" for n, agent in enumerate(agents, 1)}
    for agent in agents:
        agent.privmsg(CHANNEL, f"{threats[agent.nick]} seen on {agent.nick}")
    bots = [guard.nick] + [b.nick for b in listeners]
    waiting = set(threats.values())
    while waiting:  # every line where the asker is (server 3), in any order; then ask
        line = asker.wait_for(lambda l: l.command == "PRIVMSG"
                              and l.text.split(" ")[0] in waiting)
        waiting.discard(line.text.split(" ")[0])
    for agent in agents:
        ip = threats[agent.nick]
        asker.mark()
        asker.privmsg(CHANNEL, f"!tn check {ip}")
        for nick, text in answers(asker, bots).items():
            assert text.startswith(f"asker: Current threat in {CHANNEL}: {ip}, reported by "
                                   f"{agent.nick} "), (nick, text)


def test_non_whitelisted_speaker_on_server_3_is_kicked_and_not_trusted(linked):
    servers, lab, guard, listeners, agents, asker = linked
    stranger = servers[2].client(lab.unique("talker"), source=STRANGER_IP)
    lab.clients.append(stranger)
    stranger.connect()
    stranger.join(CHANNEL)
    stranger.privmsg(CHANNEL, "11.8.8.8 trust me")
    kick = stranger.wait_for(command="KICK")
    assert (kick.nick, kick.params[1]) == (guard.nick, stranger.nick)
    assert kick.text.startswith("only whitelisted (voiced) agents may post here; ")
    asker.mark()
    asker.privmsg(CHANNEL, "!tn check 11.8.8.8")
    for nick, text in answers(asker, [b.nick for b in listeners]).items():
        assert text == f"asker: Not a current threat in {CHANNEL}: 11.8.8.8", (nick, text)

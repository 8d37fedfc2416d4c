"""Threats travelling between real agents (ThreatNetCache bots) on ngIRCd.

The guard keeps the topic at block=6, so an agent's quiet period (block period + 2 s)
is over 8 s after it joined and threats stay current for 6 s: every check below
happens well within that. Providers connect from the whitelisted AGENT_IP and report
from a `plain` log feed; listeners connect from 127.0.0.1 and never speak.
"""
from __future__ import annotations

import time

import pytest

from harness import (AGENT_IP, CACHE, GUARD, OWNER, Lab, answers, identify,
                     write_whitelist)
from lab.bots import start_bots

BLOCK = 6
CHANNEL = "#tnprop"


def wait_synced(client, bot, timeout: float = BLOCK + 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        text = client.ask(bot.nick, f"tn status {CHANNEL}", bot.nick).text
        if text.endswith("synced"):
            return
        assert "quiet period" in text, text
        assert time.monotonic() < deadline, text
        time.sleep(0.5)


@pytest.fixture(scope="module")
def net(ngircd, stack_dir):
    lab = Lab(ngircd, stack_dir / "bots" / "propagation-module", "pm")
    guard = lab.bot("guardp", CHANNEL, plugins=["ThreatNetCache", "ThreatNetGuard"],
                    owner=OWNER, settings={**CACHE, **GUARD,
                                           "supybot.plugins.ThreatNetGuard.topic.block": BLOCK})
    write_whitelist(guard, {CHANNEL: [AGENT_IP]})
    guard.start()  # first in the channel: opped by the server
    feeds = {}
    providers = []
    for name in ("provA", "provB"):
        feed = stack_dir / f"{name}.log"
        feed.write_text("")
        feeds[name] = feed
        providers.append(lab.bot(name, CHANNEL, plugins=["ThreatNetCache"], owner=OWNER,
                                 vhost=AGENT_IP, settings={
                                     **CACHE, "supybot.plugins.ThreatNetCache.feeds":
                                     f"plain:{feed}"}))
    listeners = [lab.bot(f"listen{i}", CHANNEL, plugins=["ThreatNetCache"], settings=CACHE)
                 for i in range(3)]
    start_bots(providers + listeners)
    (asker,) = lab.connect(lab.client("asker"))
    asker.join(CHANNEL)
    for bot in providers:
        identify(asker, bot)
    for bot in providers:
        wait_synced(asker, bot)
    yield lab, guard, providers, listeners, feeds, asker
    lab.close()


def posted(client, nick, ip, timeout=5.0, required=True):
    return client.wait_for(lambda l: l.command == "PRIVMSG" and l.nick == nick
                           and l.params[0] == CHANNEL and l.text.split(" ")[0] == ip,
                           timeout=timeout, required=required)


def test_provider_threat_reaches_every_listener_cache(net):
    lab, guard, (prov_a, prov_b), listeners, feeds, asker = net
    asker.mark()
    with open(feeds["provA"], "a") as f:
        f.write("11.4.4.4 sshd brute force\n")
    line = posted(asker, "provA", "11.4.4.4")
    assert line.text == "11.4.4.4 sshd brute force"
    bots = [guard, prov_a, prov_b, *listeners]
    asker.mark()
    asker.privmsg(CHANNEL, "!tn check 11.4.4.4")
    replies = answers(asker, [b.nick for b in bots])
    for nick, text in replies.items():  # all in the channel; the guard kicks none of them
        assert text.startswith(f"asker: Current threat in {CHANNEL}: 11.4.4.4, reported by "
                               "provA 0 s ago: \"sshd brute force\"; expires in "), (nick, text)
    assert asker.wait_for(command="KICK", timeout=1.0, required=False) is None


def test_duplicate_is_not_reposted(net):
    lab, guard, (prov_a, prov_b), listeners, feeds, asker = net
    asker.mark()
    with open(feeds["provA"], "a") as f:
        f.write("11.5.5.5 smtp auth attack\n")
    posted(asker, "provA", "11.5.5.5")
    # The other provider sees the same attacker, and the first one sees it again.
    with open(feeds["provB"], "a") as f:
        f.write("11.5.5.5 smtp auth attack\n")
    with open(feeds["provA"], "a") as f:
        f.write("11.5.5.5 smtp auth attack again\n")
    assert posted(asker, "provB", "11.5.5.5", timeout=2.5, required=False) is None
    assert posted(asker, "provA", "11.5.5.5", timeout=0.1, required=False) is None
    for bot in (prov_a, prov_b):
        text = asker.ask(bot.nick, f"tn feeds {CHANNEL}", bot.nick).text
        assert "refused: duplicate 1" in text, text
    reply = asker.ask(prov_b.nick, f"tn report {CHANNEL} 11.5.5.5 by hand", prov_b.nick)
    assert "11.5.5.5 is already current in #tnprop, reported by provA" in reply.text


def test_quiet_period_holds_a_new_agent_back(net):
    lab, guard, providers, listeners, feeds, asker = net
    newcomer = lab.bot("newcomer", CHANNEL, plugins=["ThreatNetCache"], owner=OWNER,
                       vhost=AGENT_IP, settings=CACHE)
    newcomer.start()
    identify(asker, newcomer)
    asker.mark()
    reply = asker.ask(newcomer.nick, f"tn report {CHANNEL} 11.6.6.6 too early", newcomer.nick)
    assert f"{CHANNEL} is in its quiet period: " in reply.text, reply.text
    assert posted(asker, "newcomer", "11.6.6.6", timeout=1.0, required=False) is None

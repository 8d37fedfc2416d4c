"""Minimisation of harm on a real server (ngIRCd): the quorum with three agents, and a
withdrawal seen by two listeners and by a client that does not know the form.

The agents are raw clients from three whitelisted loopback addresses (three hosts: the
quorum counts hosts where there are no services accounts); the listeners are the
channel bot (both plugins, as `make run` starts it) and one more ThreatNetCache agent.
"""
from __future__ import annotations

import re

import pytest

from harness import CACHE, GUARD, OWNER, Lab, answers, write_whitelist
from lab.bots import start_bots

AGENTS = ("127.0.0.2", "127.0.0.4", "127.0.0.5")
# repeatGrace 0: a repeat is punished at once (the default forgives races for 10 s)
GUARD_SETTINGS = {**CACHE, **GUARD, "supybot.plugins.ThreatNetGuard.ban.kicks": 0,
                  "supybot.plugins.ThreatNetGuard.kick.repeatGrace": 0}


def start(lab: Lab, channel: str, **guard):
    """The channel bot and a listener agent in ``channel``; the AGENTS whitelisted."""
    guard_bot = lab.bot(lab.unique("guard"), channel, plugins=["ThreatNetCache", "ThreatNetGuard"],
                        owner=OWNER, settings={**GUARD_SETTINGS, **guard})
    write_whitelist(guard_bot, {channel: list(AGENTS)})
    guard_bot.start()
    listener = lab.bot(lab.unique("listener"), channel, settings=dict(CACHE))
    start_bots([listener])
    return guard_bot, listener


def agents(lab: Lab, channel: str, count: int):
    clients = lab.connect(*(lab.client(lab.unique(f"agent{n}"), source=AGENTS[n])
                            for n in range(count)))
    for c in clients:
        c.join(channel)
        c.wait_for(lambda l, nick=c.nick: l.command == "MODE" and l.params[1:] == ["+v", nick])
    return clients


def checks(client, channel: str, bots, ip: str) -> list[str]:
    """Each bot's answer to one `!tn check` (every bot answers it), without the "asker: "
    it starts with. One question for all: an answer to an earlier one, arriving late,
    is never taken for the answer to a later one."""
    client.mark()
    client.privmsg(channel, f"!tn check {ip}")
    got = answers(client, [bot.nick for bot in bots])
    return [got[bot.nick].partition(": ")[2] for bot in bots]


def said(client, sender, text: str) -> None:
    """Wait until ``client`` sees ``sender`` say ``text``: the server has passed it to
    every member, so the bots read it before anything ``client`` sends next."""
    client.wait_for(lambda l: l.command == "PRIVMSG" and l.nick == sender.nick
                    and l.text == text)


def test_quorum_of_three_reporters(ngircd, lab_factory):
    lab = lab_factory(ngircd)
    channel = lab.channel()
    guard, listener = start(lab, channel, **{"supybot.plugins.ThreatNetGuard.topic.quorum": 3})
    a, b, c = agents(lab, channel, 3)
    a.privmsg(channel, "45.1.0.1 ssh brute force")
    for text in checks(a, channel, (guard, listener), "45.1.0.1"):
        assert re.search(r"1 of 3 reports \(not acted on yet\)", text), text
    b.privmsg(channel, "45.1.0.1 seen here too")  # a corroboration, not a repeat
    c.privmsg(channel, "45.1.0.1 and here")
    said(a, b, "45.1.0.1 seen here too")
    said(a, c, "45.1.0.1 and here")
    for text in checks(a, channel, (guard, listener), "45.1.0.1"):
        assert "3 of 3 reports (acted on)" in text, text
    assert a.wait_for(command="KICK", timeout=1.0, required=False) is None
    a.privmsg(channel, "45.1.0.1 again")  # a true repeat is still punished
    kick = a.wait_for(command="KICK")
    assert kick.params[1] == a.nick and "still current" in kick.text


def test_withdrawal_by_the_reporter_reaches_both_listeners(ngircd, lab_factory):
    lab = lab_factory(ngircd)
    channel = lab.channel()
    guard, listener = start(lab, channel)
    reporter, other, old = agents(lab, channel, 3)  # old: an agent that knows no withdrawals
    reporter.privmsg(channel, "45.2.0.1 ssh brute force")
    for text in checks(reporter, channel, (guard, listener), "45.2.0.1"):
        assert text.startswith("Current threat"), text
    other.privmsg(channel, "withdraw 45.2.0.1 not mine to withdraw")
    said(reporter, other, "withdraw 45.2.0.1 not mine to withdraw")
    for text in checks(reporter, channel, (guard, listener), "45.2.0.1"):
        assert text.startswith("Current threat"), text
    old.mark()
    reporter.privmsg(channel, "withdraw 45.2.0.1 false positive")
    seen = old.wait_for(lambda l: l.command == "PRIVMSG" and l.text.startswith("withdraw"))
    assert seen.text == "withdraw 45.2.0.1 false positive"  # relayed as said, for old agents
    for text in checks(reporter, channel, (guard, listener), "45.2.0.1"):
        assert text.startswith("Not a current threat"), text
    for c in (reporter, other, old):  # the Guard kicked nobody for a withdrawal
        assert c.wait_for(command="KICK", timeout=0.5, required=False) is None
    reporter.privmsg(channel, "45.2.0.1 it was real after all")  # no repeat any more
    assert reporter.wait_for(command="KICK", timeout=1.0, required=False) is None
    assert all(text.startswith("Current threat")
               for text in checks(reporter, channel, (guard, listener), "45.2.0.1"))

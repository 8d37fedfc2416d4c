"""The channel bot on InspIRCd + Atheme: agents are known by services account.

The bot logs in by SASL; the channel is registered to its account, so ChanServ ops it
on join (the way `make run` sets it up).
"""
from __future__ import annotations

import pytest

from harness import CACHE, GUARD, OWNER, Lab, write_whitelist


def is_mode(line, change, nick):
    return line.command == "MODE" and line.params[1:] == [change, nick]


@pytest.fixture(scope="module")
def guarded(inspircd, stack_dir):
    lab = Lab(inspircd, stack_dir / "bots" / "accounts-module", "am")
    channel = "#tnaccounts"
    accounts = {"guardbot": "guard-pass-1", "agent1": "agent-pass-1",
                "agent2": "agent-pass-2", "nobody1": "nobody-pass-1"}
    inspircd.register_accounts(accounts, {channel: "guardbot"})
    bot = lab.bot("guardbot", channel, plugins=["ThreatNetCache", "ThreatNetGuard"],
                  sasl=("guardbot", accounts["guardbot"]), owner=OWNER,
                  settings={**CACHE, **GUARD})
    write_whitelist(bot, {channel: ["account:agent1", "account:Agent2"]})
    watcher = lab.client("watcher1", caps=("account-tag", "extended-join", "account-notify"))
    lab.connect(watcher)
    watcher.join(channel)
    bot.start()
    watcher.wait_for(lambda l: is_mode(l, "+o", bot.nick))  # ChanServ: founder's auto-op
    yield lab, bot, channel, accounts
    lab.close()


def test_sasl_agent_with_whitelisted_account_is_voiced_and_devoiced_on_logout(guarded):
    lab, bot, channel, accounts = guarded
    agent = lab.client("agent1", sasl=("agent1", accounts["agent1"]))
    stranger = lab.client("nobody1", sasl=("nobody1", accounts["nobody1"]))
    lab.connect(agent, stranger)
    agent.join(channel)
    stranger.join(channel)
    agent.wait_for(lambda l: is_mode(l, "+v", "agent1"))
    agent.send("PRIVMSG NickServ :LOGOUT")
    devoice = agent.wait_for(lambda l: is_mode(l, "-v", "agent1"))
    assert devoice.nick == bot.nick
    assert not [l for l in stranger.lines if l.command == "MODE" and "nobody1" in l.params]


def test_agent_identifying_after_join_is_voiced(guarded):
    lab, bot, channel, accounts = guarded
    (agent,) = lab.connect(lab.client("agent2"))  # account name is whitelisted as Agent2
    agent.join(channel)
    assert agent.wait_for(lambda l: l.command == "MODE", timeout=1.0, required=False) is None
    agent.send(f"PRIVMSG NickServ :IDENTIFY {accounts['agent2']}")
    agent.wait_for(lambda l: is_mode(l, "+v", "agent2"))

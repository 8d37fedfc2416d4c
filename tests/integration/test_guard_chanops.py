"""The channel bot among real people on InspIRCd + Atheme, set up as `make run` does: the
channel is registered to the Guard's account (ChanServ ops it), agents log in to
whitelisted accounts, and a raw client plays the human channel operator, who has
ChanServ access (ops on join).

What the server answers matters here: InspIRCd refuses a second topic change within one
second (`437 Retry topic change later`), so the Guard's immediate revert of a chanop's
topic is refused and must be retried; and a ban keeps an agent out (`474`) until
someone lets it back in.
"""
from __future__ import annotations

import re
import time

from harness import CACHE, GUARD, OWNER, Lab, identify, write_whitelist
from lab.bots import Bot, start_bots
from lab.config import password
from lab.ircclient import Client
from lab.servers import grant_access

P, G = "supybot.plugins.ThreatNetCache.", "supybot.plugins.ThreatNetGuard."
CHANOP_FLAGS = "+AOiortv"  # ChanServ: op on join, topic, invite, kick/ban, voice
HOLD = 5  # the agents' topicHold: a topic counts once it stood this long


def is_mode(line, change, nick):
    return line.command == "MODE" and line.params[1:] == [change, nick]


class Channel:
    """A registered channel with its Guard, agents (Limnoria, ThreatNetCache) and chanop."""

    def __init__(self, lab: Lab, *, guard: dict = {}, agent: dict = {}, agents: int = 1):
        server = lab.server
        self.lab, self.name = lab, lab.channel()
        names = [lab.unique("guard"), lab.unique("chanop")] + [lab.unique("agent")
                                                                for _ in range(agents)]
        self.accounts = {name: password() for name in names}
        guard_nick, chanop_nick, *agent_nicks = names
        server.register_accounts(self.accounts, {self.name: guard_nick})
        grant_access(server.address, (guard_nick, self.accounts[guard_nick]), self.name,
                     {chanop_nick: CHANOP_FLAGS})
        self.guard = lab.bot(guard_nick, self.name, plugins=["ThreatNetCache", "ThreatNetGuard"],
                             sasl=(guard_nick, self.accounts[guard_nick]), owner=OWNER,
                             settings={**CACHE, **GUARD, **guard})
        write_whitelist(self.guard, {self.name: [f"account:{n}" for n in agent_nicks]})
        self.chanop = lab.client(chanop_nick, sasl=(chanop_nick, self.accounts[chanop_nick]),
                                 caps=("account-tag", "extended-join"))
        lab.connect(self.chanop)
        self.guard.start()
        self.agents = [lab.bot(n, self.name, plugins=["ThreatNetCache"],
                               sasl=(n, self.accounts[n]), owner=OWNER,
                               settings={**CACHE, **agent}) for n in agent_nicks]
        start_bots(self.agents)
        self.chanop.join(self.name)
        self.wait_names({self.chanop.nick: "@", self.guard.nick: "@",  # ChanServ ops both
                         **{bot.nick: "+" for bot in self.agents}})

    def wait_names(self, wanted: dict, timeout: float = 10.0) -> None:
        """Until NAMES shows each nick with its prefix ("@" op, "+" voice)."""
        deadline = time.monotonic() + timeout
        while True:
            self.chanop.mark()
            self.chanop.send(f"NAMES {self.name}")
            names = set(self.chanop.wait_for(command="353").text.split())
            if all(prefix + nick in names for nick, prefix in wanted.items()):
                return
            assert time.monotonic() < deadline, (names, wanted)
            time.sleep(0.2)

    def topic(self) -> str:
        """The topic as the server has it now."""
        c = self.chanop
        c.mark()
        c.send(f"TOPIC {self.name}")
        line = c.wait_for(lambda l: l.command in ("331", "332"))
        return line.text if line.command == "332" else ""

    def status(self, bot: Bot) -> str:
        """The agent's `tn status`, asked in private."""
        return self.chanop.ask(bot.nick, f"tn status {self.name}", bot.nick).text


def next_second() -> None:
    """Sleep to just after the next whole second: a topic change now and the Guard's
    revert then fall in the same second, which InspIRCd refuses (437)."""
    time.sleep(1.02 - time.time() % 1)


def wait_status(ch: Channel, bot: Bot, part: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = ch.status(bot)
        if part in status or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def test_a_chanops_topic_is_reverted_despite_437_and_never_counts(inspircd, lab_factory):
    ch = Channel(lab_factory(inspircd), guard={f"{G}topic.block": 1200},
                 agent={f"{P}topicHold": HOLD})
    kept = ch.topic()
    assert kept.endswith("block=1200")
    (agent,) = ch.agents
    assert "block 1200 s" in wait_status(ch, agent, "block 1200 s", HOLD + 5)
    for rogue in ("threatnet://evil.example/x block=5", "no threatnet topic here"):
        ch.guard.mark_log()
        next_second()
        ch.chanop.mark()
        ch.chanop.send(f"TOPIC {ch.name} :{rogue}")
        ch.chanop.wait_for(lambda l: l.command == "TOPIC" and l.text == rogue)
        restored = ch.chanop.wait_for(lambda l: l.command == "TOPIC" and l.text == kept,
                                      timeout=10)
        assert restored.nick == ch.guard.nick
        # the first revert, in the chanop's second, was refused, and retried
        ch.guard.wait_log(r"topic in \S+ on \S+ refused: 437 Retry topic change later")
        assert ch.topic() == kept
    time.sleep(HOLD + 1)
    status = ch.status(agent)
    assert "block 1200 s" in status and "new topic" not in status, status

    # The admin changes it for real: the agents follow once it held.
    identify(ch.chanop, ch.guard)
    reply = ch.chanop.ask(ch.guard.nick, f"tn topic {ch.name} --block 1800", ch.guard.nick)
    assert reply.text.endswith("block=1800"), reply.text
    assert "block 1800 s" in wait_status(ch, agent, "block 1800 s", HOLD + 5)
    assert not ch.guard.errors()


def test_a_topic_too_long_for_the_server_is_refused_with_a_reason(inspircd, lab_factory):
    ch = Channel(lab_factory(inspircd), agents=0)
    identify(ch.chanop, ch.guard)
    flags = " ".join(f"flag{i:03}" for i in range(40))  # ~360 bytes: TOPICLEN is 307
    reply = ch.chanop.ask(ch.guard.nick, f'tn topic {ch.name} --flags "{flags}"', ch.guard.nick)
    assert "TOPICLEN" in reply.text and "307" in reply.text, reply.text
    # Set behind the command's back (the registry), it is logged and retried, not cut.
    ch.guard.mark_log()
    ch.chanop.ask(ch.guard.nick, f"config channel {ch.name} plugins.ThreatNetGuard.topic.flags "
                  f"{flags}", ch.guard.nick)
    ch.guard.wait_log(r"topic in \S+ on \S+ refused: the topic is \d+ bytes and the server "
                      r"keeps 307 \(TOPICLEN\)", timeout=15)
    ch.guard.wait_log(r"topic in \S+ on \S+ did not hold \(the topic is \d+ bytes", timeout=15)
    assert "flag039" not in ch.topic()
    ch.chanop.ask(ch.guard.nick, f"config channel {ch.name} plugins.ThreatNetGuard.topic.flags "
                  f"tolerant", ch.guard.nick)
    ch.chanop.wait_for(lambda l: l.command == "TOPIC" and l.text.endswith("tolerant, block=3600"),
                       timeout=15)


def test_a_ban_list_the_server_refuses_is_retried(inspircd, lab_factory):
    """A full ban list (478) is logged and the ban retried until it holds."""
    ch = Channel(lab_factory(inspircd), agents=0,
                 guard={f"{G}ban.kicks": 1, f"{G}ban.duration": 3600})
    c = ch.chanop
    for first in range(0, 100, 20):  # InspIRCd keeps 100 bans per channel
        c.send(f"MODE {ch.name} +{'b' * 20} "
               + " ".join(f"*!*@filler{n}.example" for n in range(first, first + 20)))
    c.wait_for(lambda l: l.command == "MODE" and "*!*@filler99.example" in l.params)
    (stranger,) = ch.lab.connect(ch.lab.client(ch.lab.unique("mallory"), source="127.0.0.3"))
    stranger.join(ch.name)
    ch.guard.mark_log()
    stranger.privmsg(ch.name, "hello, buy my stuff")
    kick = c.wait_for(lambda l: l.command == "KICK" and l.params[1] == stranger.nick)
    assert "banned for 3600 s" in kick.text
    ch.guard.wait_log(r"\+b \*!\*@127\.0\.0\.3 in \S+ on \S+ refused: 478 Channel ban list "
                      r"is full")
    c.send(f"MODE {ch.name} -b *!*@filler0.example")  # room for one
    ban = c.wait_for(lambda l: is_mode(l, "+b", "*!*@127.0.0.3"), timeout=10)
    assert ban.nick == ch.guard.nick


def test_a_chanops_questions_are_answered_without_kicks(inspircd, lab_factory):
    ch = Channel(lab_factory(inspircd), guard={f"{G}ban.kicks": 3})
    (agent,) = ch.agents
    c = ch.chanop
    start = len(c.lines)
    for _ in range(3):
        c.mark()
        c.privmsg(ch.name, "!tn status")
        c.wait_for(lambda l: l.command == "PRIVMSG" and l.nick == agent.nick
                   and l.text.startswith(f"{c.nick}: {ch.name}: online"))
    time.sleep(1.5)
    assert [l.raw for l in c.lines[start:] if l.command == "KICK"
            or l.command == "MODE" and "+b" in l.params[1:2]] == []


def ban_agent(ch: Channel, bot: Bot) -> None:
    """Have the Guard ban ``bot``: each question is answered, two answers within the flood
    window are a flood, and the second flood kick (ban.kicks 2) comes with a ban."""
    c = ch.chanop
    for kick in range(2):
        c.mark()
        for _ in range(2):
            c.privmsg(ch.name, "!tn status")
        c.wait_for(lambda l: l.command == "KICK" and l.params[1] == bot.nick)
        if kick == 0:  # Limnoria's Channel plugin rejoins after a kick; the Guard voices it
            c.wait_for(lambda l: is_mode(l, "+v", bot.nick))
    bot.wait_log(r"Not in \S+ on \S+ \(474 ")


def test_an_agent_banned_by_the_guard_is_back_when_the_ban_is_lifted(inspircd, lab_factory):
    ch = Channel(lab_factory(inspircd), guard={
        f"{G}flood.lines": 1, f"{G}flood.seconds": 30, f"{G}ban.kicks": 2,
        f"{G}ban.duration": 3})
    (agent,) = ch.agents
    ban_agent(ch, agent)
    ch.chanop.wait_for(lambda l: l.command == "MODE" and l.params[1] == "-b"
                       and l.nick == ch.guard.nick, timeout=15)
    ch.chanop.wait_for(lambda l: l.command == "JOIN" and l.nick == agent.nick, timeout=5)
    ch.guard.wait_log(rf"invited {re.escape(agent.nick)} back")


def test_an_agent_banned_by_the_guard_is_back_when_an_operator_lifts_it(inspircd,
                                                                        lab_factory):
    ch = Channel(lab_factory(inspircd), guard={
        f"{G}flood.lines": 1, f"{G}flood.seconds": 30, f"{G}ban.kicks": 2,
        f"{G}ban.duration": 3600})
    (agent,) = ch.agents
    ban_agent(ch, agent)
    ch.chanop.send(f"MODE {ch.name} -b R:{agent.nick}")
    ch.chanop.wait_for(lambda l: l.command == "JOIN" and l.nick == agent.nick, timeout=5)
    ch.guard.wait_log(rf"invited {re.escape(agent.nick)} back")


def test_the_operator_account_of_make_run_is_opped_and_may_talk(inspircd, lab_factory):
    from scripts.threatnet_run import operator_account
    lab = lab_factory(inspircd)
    ch = Channel(lab, agents=0)
    guard = ch.guard.nick
    name, secret = operator_account(inspircd, ch.name, (guard, ch.accounts[guard]),
                                    password(), name=lab.unique("operator"))
    human: Client = lab.client(lab.unique("human"))
    lab.connect(human)
    human.privmsg("NickServ", f"IDENTIFY {name} {secret}")  # as `make run` prints it
    human.wait_for(lambda l: l.nick == "NickServ" and "identified" in l.text.lower())
    human.join(ch.name)
    human.wait_for(lambda l: is_mode(l, "+o", human.nick))
    human.privmsg(ch.name, "hello everyone, I run this channel")
    human.privmsg(ch.name, "nothing here is a threat line")
    assert human.wait_for(command="KICK", timeout=2, required=False) is None

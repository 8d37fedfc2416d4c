"""The channel bot (ThreatNetGuard) on ngIRCd: no accounts, agents are known by IP.

One guarded channel is shared by the module's tests (the bot created it, so the server
opped it); tests that restart the bot or change ownership use their own.
"""
from __future__ import annotations

import pytest

from harness import (AGENT_IP, CACHE, GUARD, OWNER, STRANGER_IP, Lab, answers, identify,
                     voice_change, write_whitelist)
from lab.bots import start_bots

TOPIC = "threatnet://threatnet.invalid/datn2004/ip-comment block=3600"


def is_mode(line, change, nick):
    return line.command == "MODE" and line.params[1:] == [change, nick]


@pytest.fixture(scope="module")
def guarded(ngircd, stack_dir):
    """A guard bot (both plugins, as `make run` starts it) op in its own channel, with
    AGENT_IP whitelisted; ban.kicks 0 so the tests' kicks never add up to a host ban."""
    lab = Lab(ngircd, stack_dir / "bots" / "guard-module", "gm")
    channel = "#tnguard"
    bot = lab.bot("guard", channel, plugins=["ThreatNetCache", "ThreatNetGuard"],
                  owner=OWNER, settings={**CACHE, **GUARD,
                                         "supybot.plugins.ThreatNetGuard.ban.kicks": 0})
    write_whitelist(bot, {channel: [AGENT_IP]})
    bot.start()
    yield lab, bot, channel
    lab.close()


def test_agent_from_whitelisted_ip_is_voiced_others_are_not(guarded, lab_factory):
    _, bot, channel = guarded
    lab = lab_factory(guarded[0].server)
    agent = lab.client(lab.unique("agent"), source=AGENT_IP)
    other = lab.client(lab.unique("other"), source=STRANGER_IP)
    lab.connect(agent, other)
    agent.join(channel)
    agent.wait_for(lambda l: is_mode(l, "+v", agent.nick))
    other.join(channel)
    assert other.wait_for(lambda l: l.command == "MODE" and other.nick in l.params,
                          timeout=1.5, required=False) is None


def test_non_whitelisted_speaker_is_kicked(guarded, lab_factory):
    _, bot, channel = guarded
    lab = lab_factory(guarded[0].server)
    (stranger,) = lab.connect(lab.client(lab.unique("talker"), source=STRANGER_IP))
    stranger.join(channel)
    stranger.privmsg(channel, "11.1.1.1 trust me")
    kick = stranger.wait_for(command="KICK")
    assert kick.nick == bot.nick and kick.params[1] == stranger.nick
    assert kick.text.startswith("only whitelisted (voiced) agents may post here; ")


def test_anyone_may_ask_the_bot_in_the_channel(guarded, lab_factory):
    _, bot, channel = guarded
    lab = lab_factory(guarded[0].server)
    (stranger,) = lab.connect(lab.client(lab.unique("asker"), source=STRANGER_IP))
    stranger.join(channel)
    reply = stranger.ask(channel, "!tn check 11.1.1.2", bot.nick)
    assert reply.text.endswith(f"Not a current threat in {channel}: 11.1.1.2")
    assert stranger.wait_for(command="KICK", timeout=1.0, required=False) is None


def test_voiced_agent_sending_malformed_line_is_kicked_with_reason(guarded, lab_factory):
    _, bot, channel = guarded
    lab = lab_factory(guarded[0].server)
    (agent,) = lab.connect(lab.client(lab.unique("sloppy"), source=AGENT_IP))
    agent.join(channel)
    agent.wait_for(lambda l: is_mode(l, "+v", agent.nick))
    agent.privmsg(channel, "11.2.3.4 well formed")
    agent.privmsg(channel, "123.123.123.456 spam host")
    kick = agent.wait_for(command="KICK")
    assert kick.params[1] == agent.nick
    assert kick.text == "malformed threat line: octet 456 > 255"


def test_topic_is_set_and_restored(guarded, lab_factory, ngircd):
    _, bot, channel = guarded
    lab = lab_factory(ngircd)
    (oper,) = lab.connect(lab.client(lab.unique("oper")))
    oper.join(channel)
    topic = next(l for l in oper.lines if l.command == "332")
    assert topic.text == TOPIC
    oper.send(f"MODE {channel}")
    assert "nt" in oper.wait_for(command="324").params[2]
    # An IRC operator makes itself channel op and changes the topic.
    oper.send(f"OPER {ngircd.oper[0]} {ngircd.oper[1]}")
    oper.wait_for(command="381")
    oper.send(f"MODE {channel} +o {oper.nick}")
    oper.wait_for(lambda l: is_mode(l, "+o", oper.nick))
    oper.send(f"TOPIC {channel} :my own topic")
    oper.wait_for(lambda l: l.command == "TOPIC" and l.nick == oper.nick)
    restored = oper.wait_for(lambda l: l.command == "TOPIC" and l.nick == bot.nick)
    assert restored.text == TOPIC


def test_owner_whitelist_changes_persist_across_restart(ngircd, lab_factory):
    lab = lab_factory(ngircd)
    channel = lab.channel()
    agent_ip = "127.0.0.4"
    bot = lab.bot(lab.unique("keeper"), channel, plugins=["ThreatNetGuard"], owner=OWNER,
                  settings=GUARD)
    bot.start()
    owner, agent = lab.connect(lab.client(lab.unique("boss")),
                               lab.client(lab.unique("newagent"), source=agent_ip))
    identify(owner, bot)
    reply = owner.ask(bot.nick, f"tn whitelist add {channel} {agent_ip}", bot.nick)
    assert reply.text == f"The operation succeeded.  {agent_ip} added to {channel}."
    agent.join(channel)
    agent.wait_for(lambda l: is_mode(l, "+v", agent.nick))
    agent.close()  # an empty channel, so the restarted bot is opped again on join

    bot.restart()
    (agent,) = lab.connect(lab.client(lab.unique("newagent"), source=agent_ip))
    agent.join(channel)
    agent.wait_for(lambda l: is_mode(l, "+v", agent.nick))
    identify(owner, bot)  # a restart forgets who was identified
    assert owner.ask(bot.nick, f"tn whitelist list {channel}", bot.nick).text == agent_ip


def test_non_admin_cannot_change_the_whitelist(guarded, lab_factory):
    _, bot, channel = guarded
    lab = lab_factory(guarded[0].server)
    (mallory,) = lab.connect(lab.client(lab.unique("mallory"), source=AGENT_IP))
    for command in (f"tn whitelist add {channel} 127.0.0.9",
                    f"tn whitelist remove {channel} {AGENT_IP}"):
        reply = mallory.ask(bot.nick, command, bot.nick)
        assert "admin" in reply.text and "succeeded" not in reply.text, reply.text
    (owner,) = lab.connect(lab.client(lab.unique("boss")))
    identify(owner, bot)
    assert owner.ask(bot.nick, f"tn whitelist list {channel}", bot.nick).text == AGENT_IP


def test_agents_answering_in_the_channel_are_not_kicked(ngircd, lab_factory):
    """Every agent answers `!tn ...` in the channel with a line that is no threat; the
    guard lets such answers through (commands.replyWindow), voiced or not."""
    lab = lab_factory(ngircd)
    channel = lab.channel()
    guard = lab.bot(lab.unique("guard"), channel, plugins=["ThreatNetCache", "ThreatNetGuard"],
                    settings={**CACHE, **GUARD})
    write_whitelist(guard, {channel: [AGENT_IP]})
    guard.start()
    voiced = lab.bot(lab.unique("agent"), channel, plugins=["ThreatNetCache"], vhost=AGENT_IP,
                     settings=CACHE)
    unvoiced = lab.bot(lab.unique("listener"), channel, plugins=["ThreatNetCache"],
                       vhost=STRANGER_IP, settings=CACHE)
    (asker,) = lab.connect(lab.client(lab.unique("asker")))
    asker.join(channel)
    start_bots([voiced, unvoiced])
    asker.wait_for(lambda l: is_mode(l, "+v", voiced.nick))
    asker.mark()
    asker.privmsg(channel, "!tn check 11.7.7.7")
    replies = answers(asker, [guard.nick, voiced.nick, unvoiced.nick])
    assert set(replies.values()) == {
        f"{asker.nick}: Not a current threat in {channel}: 11.7.7.7"}
    assert asker.wait_for(command="KICK", timeout=1.5, required=False) is None


def test_anyone_may_ask_any_agent_and_its_answers_pass_without_the_askers_nick(guarded,
                                                                               lab_factory):
    """Another implementation's command and answer: the original Perl bot is asked
    `ammobot: status` and answers without the asker's nick (a raw client plays it)."""
    _, bot, channel = guarded
    lab = lab_factory(guarded[0].server)
    ammobot, agent, newcomer = lab.connect(
        lab.client(lab.unique("ammobot"), source=AGENT_IP),
        lab.client(lab.unique("agent"), source=AGENT_IP),
        lab.client(lab.unique("newcomer"), source=STRANGER_IP))
    for c in (newcomer, ammobot, agent):
        c.join(channel)
    for voiced in (ammobot, agent):
        voiced.wait_for(lambda l: voice_change(l, "+", voiced.nick))
    for asker in (newcomer, agent):  # unvoiced and voiced
        asker.privmsg(channel, f"{ammobot.nick}: status")
        ammobot.wait_for(lambda l: l.command == "PRIVMSG" and l.nick == asker.nick)
        ammobot.privmsg(channel, "Online 74 seconds. 6 events at 0.1/s, 2 in the cache")
        ammobot.privmsg(channel, "Threat cache: 2 current, block period 3600 s")
        newcomer.wait_for(lambda l: l.command == "PRIVMSG" and l.text.startswith("Threat cache"))
    assert newcomer.wait_for(command="KICK", timeout=1.5, required=False) is None
    # Tight: chat is no question, and a question lets only the agent it addresses answer.
    newcomer.privmsg(channel, f"{newcomer.nick}: note to self")
    kick = newcomer.wait_for(lambda l: l.command == "KICK" and l.params[1] == newcomer.nick)
    assert "!tn help" in kick.text, kick.text
    agent.privmsg(channel, "and another thing nobody asked me")
    kick = agent.wait_for(lambda l: l.command == "KICK" and l.params[1] == agent.nick)
    assert kick.text == "malformed threat line: not an IP address"


def test_help_lists_the_commands_and_one_channel_needs_no_name(guarded, lab_factory):
    _, bot, channel = guarded
    lab = lab_factory(guarded[0].server)
    newcomer, owner = lab.connect(lab.client(lab.unique("newbie"), source=STRANGER_IP),
                                  lab.client(lab.unique("boss")))
    for text in ("help tn", "tn", "tn help"):
        reply = owner.ask(bot.nick, text, bot.nick).text
        for command in ("tn status", "tn check", "tn topic", "tn whitelist add"):
            assert command in reply, (text, reply)
    reply = owner.ask(bot.nick, "help tn whitelist", bot.nick).text
    assert "tn whitelist add [<channel>] <ip|cidr|account:NAME>" in reply and "reload" in reply, reply
    # In private, without a channel: the one channel the bot serves.
    assert owner.ask(bot.nick, "tn status", bot.nick).text.startswith(f"{channel}: online")
    identify(owner, bot)
    assert owner.ask(bot.nick, "tn whitelist list", bot.nick).text == AGENT_IP
    # A newcomer's first words in the channel are answered, not kicked.
    newcomer.join(channel)
    for text in ("!tn", "!tn help"):
        reply = newcomer.ask(channel, text, bot.nick).text
        assert reply.startswith(f"{newcomer.nick}: ThreatNet commands: "), reply
    assert newcomer.wait_for(command="KICK", timeout=1.0, required=False) is None


def test_a_channel_administrator_and_the_operator_views(guarded, lab_factory):
    """A Limnoria user the owner gives `#channel,threatnet` administers that channel's
    whitelist and reads `tn guard status` and `tn overview`; a registered user without it
    does not (Limnoria's channel capabilities are allowed by default: this one is not)."""
    _, bot, channel = guarded
    lab = lab_factory(guarded[0].server)
    owner, chanadmin, plain, agent = lab.connect(
        lab.client(lab.unique("boss")), lab.client(lab.unique("chanadm")),
        lab.client(lab.unique("plain")), lab.client(lab.unique("agent"), source=AGENT_IP))
    agent.join(channel)
    agent.wait_for(lambda l: is_mode(l, "+v", agent.nick))
    for user in (chanadmin, plain):
        for verb in ("register", "identify"):
            reply = user.ask(bot.nick, f"user {verb} {user.nick} pw-{user.nick}", bot.nick)
            assert reply.text.startswith("The operation succeeded"), reply.text
    identify(owner, bot)
    reply = owner.ask(bot.nick, f"admin capability add {chanadmin.nick} {channel},threatnet",
                      bot.nick)
    assert reply.text.startswith("The operation succeeded"), reply.text

    status = chanadmin.ask(bot.nick, f"tn guard status {channel}", bot.nick).text
    assert status.startswith(f"{channel}: op; voiced "), status
    assert f"{agent.nick} (IP {AGENT_IP} in {AGENT_IP})" in status, status
    overview = chanadmin.ask(bot.nick, "tn overview", bot.nick).text
    assert overview.startswith(f"{channel} on ") and "Guard: op" in overview, overview
    for command in (f"tn whitelist add {channel} 127.0.0.9",
                    f"tn whitelist remove {channel} 127.0.0.9"):
        assert "succeeded" in chanadmin.ask(bot.nick, command, bot.nick).text
        reply = plain.ask(bot.nick, command, bot.nick).text
        assert f"{channel},threatnet capability" in reply, reply
    reply = plain.ask(bot.nick, f"tn guard status {channel}", bot.nick).text
    assert f"{channel},threatnet capability" in reply, reply

"""Moderation: who gets voice, the verdict on each channel line (kick reasons, tolerant
warnings, the cache)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from threatnet.address import parse_ip
from threatnet.conversation import SILENT, Talk
from threatnet.moderation import (KICKS_KEPT, PASS, Member, Moderator, Ruling, Rules,
                                  Sanction, Verdict, Voicing, reason_kind)
from threatnet.whitelist import parse_whitelist

WHITELIST = parse_whitelist("""\
channels:
  "#tn":
    - 192.0.2.0/24
    - account:[Bot]
""")
AGENT = Member("a1", "192.0.2.5", parse_ip("192.0.2.5"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def judge(mod: Moderator, line: str, rules: Rules = Rules(), *, trusted: bool = True,
          command: bool = False, sender: str = "host:a") -> Verdict:
    return mod.judge(line, sender, rules, trusted=trusted,
                     talk=Talk(command=True) if command else SILENT, nick=sender)


def test_valid_threat_passes_and_is_cached() -> None:
    mod = Moderator(Clock())
    assert judge(mod, "8.8.8.8 spam") == PASS
    assert mod.cache.check("8.8.8.8") is not None


def test_untrusted_sender_is_kicked_but_may_use_commands() -> None:
    mod = Moderator(Clock())
    assert judge(mod, "8.8.8.8", trusted=False).action == "kick"
    assert judge(mod, "tn status", trusted=False, command=True) == PASS
    rules = Rules(commands_from_anyone=False)
    assert judge(mod, "tn status", rules, trusted=False, command=True).action == "kick"
    assert judge(mod, "tn status", rules, command=True) == PASS
    assert mod.cache.check("8.8.8.8") is None  # an untrusted line never reaches the cache


def test_malformed_line_is_kicked_with_the_parse_error() -> None:
    mod = Moderator(Clock())
    assert judge(mod, "123.123.123.456 x") == Verdict("kick", "malformed threat line: octet 456 > 255")
    assert judge(mod, "\x01ACTION waves\x01").action == "kick"


def test_tolerant_warns_first_then_kicks_within_the_window() -> None:
    clock = Clock()
    mod = Moderator(clock)
    rules = Rules(tolerant=True, tolerant_window=60)
    assert judge(mod, "hello", rules).action == "warn"
    clock.now += 61
    assert judge(mod, "hello", rules).action == "warn"  # the window passed: warned again
    clock.now += 30
    assert judge(mod, "hello", rules).action == "kick"
    assert judge(mod, "hello", rules).action == "warn"  # a kick wipes the warning


def test_flood() -> None:
    clock = Clock()
    mod = Moderator(clock)
    rules = Rules(flood_lines=3, flood_seconds=10)
    for i in range(3):
        assert judge(mod, f"8.8.8.{i}", rules) == PASS
    assert judge(mod, "8.8.8.9", rules) == Verdict("kick", "flood: more than 3 lines in 10 s")
    assert judge(mod, "8.8.4.4", rules, sender="host:b") == PASS  # per sender
    clock.now += 11
    assert judge(mod, "9.9.9.9", rules) == PASS


def test_flood_counts_commands_too() -> None:
    mod = Moderator(Clock())
    rules = Rules(flood_lines=2)
    judge(mod, "tn status", rules, trusted=False, command=True)
    judge(mod, "tn status", rules, trusted=False, command=True)
    assert judge(mod, "tn status", rules, trusted=False, command=True).action == "kick"


def test_bogons() -> None:
    mod = Moderator(Clock())
    assert judge(mod, "10.1.2.3") == Verdict("kick", "bogon address 10.1.2.3")
    assert judge(mod, "2001:db8::1").action == "kick"
    assert judge(mod, "10.1.2.3", Rules(kick_bogons=False)) == PASS


def test_repeat_of_a_current_threat() -> None:
    clock = Clock()
    mod = Moderator(clock)
    rules = Rules(block=100, repeat_grace=5)
    assert judge(mod, "8.8.8.8", rules) == PASS
    clock.now += 2
    assert judge(mod, "8.8.8.8", rules, sender="host:b") == PASS  # a race, not poisoning
    clock.now += 10
    assert judge(mod, "8.8.8.8", rules) == Verdict(
        "kick", "8.8.8.8 is still current (88 s left): check your cache")
    assert judge(mod, "8.8.8.8", rules._replace(kick_repeats=False)) == PASS
    clock.now += 100
    assert judge(mod, "8.8.8.8", rules) == PASS  # expired: new again


def test_block_follows_the_topic() -> None:
    clock = Clock()
    mod = Moderator(clock)
    judge(mod, "8.8.8.8", Rules(block=3600))
    clock.now += 100
    assert judge(mod, "8.8.8.8", Rules(block=60)) == PASS
    assert mod.cache.timeout == 60


def test_prune_releases_memory() -> None:
    clock = Clock()
    mod = Moderator(clock)
    rules = Rules(flood_lines=5, block=10)
    for i in range(50):
        mod.judge(f"8.8.{i}.1", f"host:{i}", rules, trusted=True)
    clock.now += 20
    mod.prune(rules)
    assert len(mod.cache) == 0 and len(mod._lines) == 0


@pytest.mark.parametrize("member, expected", [
    (AGENT, Voicing(True, "+v")),
    (AGENT._replace(voiced=True), Voicing(True)),
    (Member("eve", "cloak.example"), Voicing(False)),
    (Member("eve", "cloak.example", voiced=True), Voicing(False, "-v")),
    (Member("bob", "cloak.example", account="{bot}"), Voicing(True, "+v")),  # rfc1459
    (Member("bob", "cloak.example", account="*"), Voicing(False)),  # "not logged in"
    (Member("a1", "cloak.example", parse_ip("192.0.2.5")), Voicing(True, "+v")),  # WHOX IP
    (Member("op", "cloak.example", voiced=True, opped=True), Voicing(False)),  # left alone
    (AGENT._replace(opped=True), Voicing(True)),
])
def test_voice_follows_the_whitelist_and_leaves_ops_alone(member: Member,
                                                          expected: Voicing) -> None:
    assert Moderator(Clock(), channel="#TN").voice(member, WHITELIST) == expected


def test_voice_compares_accounts_by_the_servers_casemapping() -> None:
    mod = Moderator(Clock(), channel="#tn")
    bob = Member("bob", "cloak.example", account="{bot}")
    assert mod.voice(bob, WHITELIST, "rfc1459") == Voicing(True, "+v")
    assert mod.voice(bob, WHITELIST, "ascii") == Voicing(False)
    assert mod.voice(bob._replace(account="[BOT]"), WHITELIST, "ascii") == Voicing(True, "+v")


def test_voice_in_another_channel_is_nobodys() -> None:
    assert Moderator(Clock(), channel="#other").voice(AGENT, WHITELIST) == Voicing(False)
    assert Moderator(Clock()).voice(AGENT, WHITELIST) == Voicing(False)


UNVOICED = "only whitelisted (voiced) agents may post here"
EVE = Member("eve", "cloak.example")


def test_the_third_kick_within_the_window_bans_the_host_for_a_while() -> None:
    clock = Clock()
    mod = Moderator(clock, channel="#tn")
    rules = Rules(ban_kicks=3, ban_window=60, ban_duration=600)
    assert mod.sanction(UNVOICED, EVE, rules, WHITELIST) \
        == Sanction(UNVOICED, "host:cloak.example")
    clock.now += 59
    assert mod.sanction(UNVOICED, EVE._replace(nick="eve2"), rules, WHITELIST) \
        == Sanction(UNVOICED, "host:cloak.example")  # a new nick: the same offender
    assert mod.sanction(UNVOICED, EVE, rules, WHITELIST) == Sanction(
        f"{UNVOICED} (banned for 600 s)", "host:cloak.example", "*!*@cloak.example", 600)
    assert mod.bans.items() == [("*!*@cloak.example", 1659.0)]
    assert mod.sanction(UNVOICED, EVE, rules, WHITELIST).ban is None  # the count starts over


def test_kicks_outside_the_window_or_with_bans_off_do_not_add_up() -> None:
    clock = Clock()
    mod = Moderator(clock, channel="#tn")
    rules = Rules(ban_kicks=2, ban_window=60)
    mod.sanction(UNVOICED, EVE, rules, WHITELIST)
    clock.now += 60
    assert mod.sanction(UNVOICED, EVE, rules, WHITELIST).ban is None
    never = rules._replace(ban_kicks=0)
    assert [mod.sanction(UNVOICED, EVE, never, WHITELIST).ban for _ in range(5)] == [None] * 5
    assert len(mod.bans) == 0
    clock.now += 60
    mod.prune(rules)
    assert len(mod._kicks) == 0  # prune forgets kicks outside the window


def test_a_logged_in_offender_is_banned_by_account_extban() -> None:
    mod = Moderator(Clock(), channel="#tn")
    rules = Rules(ban_kicks=2)
    mallory = Member("m", "host1.example", account="Mallory")
    mod.sanction("flood", mallory, rules, WHITELIST, casemapping="ascii", extban=",RU")
    assert mod.sanction("flood", mallory._replace(host="host2.example"), rules, WHITELIST,
                        casemapping="ascii", extban=",RU") \
        == Sanction("flood (banned for 3600 s)", "account:mallory", "R:Mallory", 3600)
    mod.sanction("flood", mallory, rules, WHITELIST)
    assert mod.sanction("flood", mallory, rules, WHITELIST).ban == "*!*@host1.example"  # no EXTBAN


def test_no_host_ban_while_a_whitelisted_agent_shares_the_host() -> None:
    """NAT, a shared shell: a host ban would lock the agent out with the offender."""
    mod = Moderator(Clock(), channel="#tn")
    rules = Rules(ban_kicks=1)
    stranger = Member("s", "192.0.2.9")
    agent = Member("agent", "192.0.2.9", account="[bot]", voiced=True)
    assert mod.sanction(UNVOICED, stranger, rules, WHITELIST, members=[stranger, agent]) \
        == Sanction(f"{UNVOICED} (not banned: a whitelisted agent shares this host)",
                    "host:192.0.2.9")
    assert len(mod.bans) == 0
    # the sender itself, a stranger, an agent elsewhere: none of them protects the host
    others = [stranger._replace(key=parse_ip("192.0.2.9")), Member("x", "192.0.2.9"),
              agent._replace(host="192.0.2.10")]
    assert mod.sanction(UNVOICED, stranger, rules, WHITELIST, members=others).ban \
        == "*!*@192.0.2.9"
    # an account ban does not touch the agent: it is set
    assert mod.sanction(UNVOICED, stranger._replace(account="eve"), rules, WHITELIST,
                        members=[agent], extban=",RU").ban == "R:eve"


def test_police_a_line_passes_warns_or_kicks_with_its_sanction() -> None:
    mod = Moderator(Clock(), channel="#tn")
    rules = Rules(tolerant=True, ban_kicks=2)
    agent = AGENT._replace(account="acct")
    assert mod.police("8.8.8.8 ssh", agent, rules, WHITELIST, trusted=True) \
        == Ruling(PASS)
    entry = mod.cache.check("8.8.8.8")
    assert entry is not None and (entry.nick, entry.account) == ("a1", "acct")
    assert mod.police("hello", agent, rules, WHITELIST, trusted=True) \
        == Ruling(Verdict("warn", "malformed threat line: not an IP address"))
    assert mod.police("8.8.4.4", EVE, rules, WHITELIST, trusted=False) \
        == Ruling(Verdict("kick", UNVOICED), Sanction(UNVOICED, "host:cloak.example"))
    assert mod.police("8.8.4.4", EVE, rules, WHITELIST, trusted=False) \
        == Ruling(Verdict("kick", UNVOICED), Sanction(f"{UNVOICED} (banned for 3600 s)",
                                                      "host:cloak.example",
                                                      "*!*@cloak.example", 3600))


def test_police_counts_offences_against_the_account_as_the_server_folds_it() -> None:
    mod = Moderator(Clock(), channel="#tn")
    rules = Rules(flood_lines=1)
    first, second = Member("x", "h1.example", account="[X]"), Member("y", "h2", account="{x}")
    assert mod.police("8.8.8.8", first, rules, WHITELIST, trusted=True,
                      casemapping="rfc1459") == Ruling(PASS)
    assert mod.police("8.8.4.4", second, rules, WHITELIST, trusted=True,
                      casemapping="rfc1459").sanction \
        == Sanction("flood: more than 1 lines in 10 s", "account:{x}")


def test_police_reads_the_members_only_to_weigh_a_host_ban() -> None:
    read: list[str] = []

    def members() -> Iterator[Member]:
        read.append("members")
        yield Member("agent", "cloak.example", account="[bot]")

    mod = Moderator(Clock(), channel="#tn")
    rules = Rules(ban_kicks=2)
    for _ in range(2):
        assert mod.police("8.8.8.8", EVE, rules, WHITELIST, trusted=True,
                          members=members()).sanction is None
        assert read == []
    mod.police("x", EVE, rules, WHITELIST, trusted=False, members=members())
    assert read == []  # the first kick
    ruling = mod.police("x", EVE, rules, WHITELIST, trusted=False,
                        members=members())
    assert read == ["members"]
    assert ruling.sanction == Sanction(
        f"{UNVOICED} (not banned: a whitelisted agent shares this host)", "host:cloak.example")


# -- minimisation of harm

def test_quorum_lets_each_distinct_reporter_say_it_once() -> None:
    clock = Clock()
    mod = Moderator(clock)
    rules = Rules(quorum=3)
    assert judge(mod, "8.8.8.8 a", rules, sender="account:one") == PASS
    clock.now += 60
    assert judge(mod, "8.8.8.8 b", rules, sender="account:two") == PASS  # corroboration
    assert judge(mod, "8.8.8.8 c", rules, sender="account:one").action == "kick"  # repeat
    assert judge(mod, "8.8.8.8 d", rules, sender="host:three") == PASS
    assert judge(mod, "8.8.8.8 e", rules, sender="account:four").action == "kick"  # 3 is enough
    assert judge(mod, "8.8.4.4 a", Rules(), sender="account:one") == PASS
    clock.now += 60
    assert judge(mod, "8.8.4.4 b", Rules(), sender="account:two").action == "kick"  # quorum 1


def test_withdrawal_is_conversation_and_lets_its_reporter_say_it_again() -> None:
    clock = Clock()
    mod = Moderator(clock)
    assert judge(mod, "8.8.8.8 oops", sender="account:one") == PASS
    clock.now += 60
    assert judge(mod, "withdraw 8.8.8.8 not mine", sender="account:two") == PASS
    assert judge(mod, "8.8.8.8 again", sender="account:one").action == "kick"  # still current
    assert judge(mod, "withdraw 8.8.8.8 false positive", sender="account:one") == PASS
    assert judge(mod, "8.8.8.8 really", sender="account:one") == PASS
    assert judge(mod, "withdraw 8.8.8 typo", sender="account:one").reason.startswith(
        "malformed threat line")
    assert judge(mod, "withdraw 8.8.8.8", trusted=False).action == "kick"


def test_a_whitelisted_agents_address_is_poisoning() -> None:
    mod = Moderator(Clock(), channel="#tn")
    whitelist = parse_whitelist("channels:\n  '#tn':\n    - 45.0.0.0/24\n")
    verdict = mod.judge("45.0.0.7 owned", "host:a", Rules(), trusted=True,
                        whitelist=whitelist)
    assert verdict == Verdict("kick", "45.0.0.7 is a whitelisted agent's address")
    assert mod.judge("45.0.0.7 owned", "host:a", Rules(kick_bogons=False), trusted=True,
                     whitelist=whitelist) == PASS


# -- questions and answers (conversation.py): from anyone, for any agent, kept tight

TO_AGENT = Talk(to="ammobot", to_voiced=True)


def test_anyone_may_ask_an_agent_which_answers_without_the_askers_nick() -> None:
    mod = Moderator(Clock())
    assert mod.judge("ammobot: status", "host:n", Rules(), trusted=False, talk=TO_AGENT,
                     nick="newbie") == PASS
    assert mod.judge("ammobot: status", "host:a", Rules(), trusted=True, talk=TO_AGENT,
                     nick="agent2") == PASS  # a voiced asker: no malformed line
    assert mod.judge("Online 74 seconds. 6 events at 0.1/s", "host:b", Rules(),
                     trusted=True, nick="ammobot") == PASS
    # Another voiced agent's chat is no answer.
    assert mod.judge("me too", "host:a", Rules(), trusted=True, nick="agent2").reason == \
        "malformed threat line: not an IP address"


def test_chat_is_no_question() -> None:
    mod = Moderator(Clock())
    rules = Rules(hint="; ask !tn help")
    kicked = Verdict("kick", "only whitelisted (voiced) agents may post here; ask !tn help")
    assert mod.judge("bob: hi", "host:n", rules, trusted=False,
                     talk=Talk(to="bob", to_voiced=False), nick="newbie") == kicked
    assert mod.judge("@tn topic", "host:m", rules, trusted=False, talk=Talk(command=True),
                     nick="mallory") == PASS
    # A question lets its asker say nothing more, to anyone.
    assert mod.judge("mallory: spam", "host:m", rules, trusted=False,
                     talk=Talk(to="mallory"), nick="mallory") == kicked
    assert mod.judge("buy pills", "host:m", rules, trusted=False, nick="mallory") == kicked
    assert mod.judge("bob: hi", "host:o", Rules(commands_from_anyone=False), trusted=False,
                     talk=TO_AGENT, nick="other").action == "kick"


def test_an_unvoiced_member_asks_a_few_questions_at_most() -> None:
    clock = Clock()
    mod = Moderator(clock)
    rules = Rules(questions=2, question_window=60)
    for _ in range(2):
        assert judge(mod, "!tn status", rules, trusted=False, command=True) == PASS
    assert judge(mod, "!tn status", rules, trusted=False, command=True) == \
        Verdict("kick", "more than 2 questions in 60 s")
    clock.now += 61
    assert judge(mod, "!tn status", rules, trusted=False, command=True) == PASS
    for _ in range(3):  # a voiced agent is bound by the flood limit only
        assert judge(mod, "!tn status", rules, command=True, sender="host:agent") == PASS


def test_an_answer_that_is_a_threat_line_is_judged_as_one() -> None:
    clock = Clock()
    mod = Moderator(clock)
    rules = Rules(repeat_grace=0)
    mod.judge("ammobot: check", "host:n", rules, trusted=False, talk=TO_AGENT, nick="newbie")
    assert mod.judge("45.0.0.1 seen here", "host:b", rules, trusted=True,
                     nick="ammobot") == PASS
    assert mod.cache.check("45.0.0.1") is not None  # listeners took it: so does the Guard
    assert mod.judge("45.0.0.1 seen here", "host:b", rules, trusted=True,
                     nick="ammobot").reason.startswith("45.0.0.1 is still current")
    mod.judge("!tn check", "host:n", rules, trusted=False, talk=Talk(command=True),
              nick="newbie")
    assert mod.judge("newbie: 45.0.0.2", "host:l", rules, trusted=False,
                     nick="listener") == PASS  # an answer, no threat line
    assert mod.judge("45.0.0.2 answer", "host:l", rules, trusted=False,
                     nick="listener").action == "kick"  # a threat line, from the unvoiced


def test_an_operators_question_opens_answers_for_anyone_it_addresses() -> None:
    mod = Moderator(Clock())
    mod.op_said("chanop", Talk(to="newbie", to_voiced=False), Rules())
    assert mod.judge("I run an agent at home", "host:n", Rules(), trusted=False,
                     nick="newbie") == PASS
    mod.op_said("chanop", Talk(command=True), Rules())
    assert mod.judge("hello", "host:a", Rules(), trusted=True, nick="agent") == PASS


def test_a_banned_agent_is_invited_back_when_its_ban_is_lifted() -> None:
    mod = Moderator(Clock(), channel="#tn")
    rules = Rules(ban_kicks=1)
    agent = AGENT._replace(account="[Bot]")
    assert mod.sanction("flood", agent, rules, WHITELIST, extban=",RU") == \
        Sanction("flood (banned for 3600 s)", "account:{bot}", "R:[Bot]", 3600, True)
    assert not mod.sanction("flood", EVE, rules, WHITELIST).agent
    assert mod.lifted("R:[Bot]") == "a1" and "R:[Bot]" not in mod.bans
    assert mod.lifted("*!*@cloak.example") is None and len(mod.bans) == 0


def test_police_keeps_the_latest_kicks_and_counts_them_by_kind() -> None:
    clock = Clock()
    mod = Moderator(clock, channel="#tn")
    eve = Member("eve", "cloak.example")
    rules = Rules(hint="; ask the bots", ban_kicks=2, ban_duration=600)
    for n in range(KICKS_KEPT + 1):
        clock.now += 1
        mod.police("spam", eve._replace(nick=f"eve{n}"), rules, WHITELIST, trusted=False)
    mod.police("1.2.3", AGENT, Rules(tolerant=True), WHITELIST, trusted=True)  # a warning
    assert len(mod.kicks) == KICKS_KEPT
    last = mod.kicks[-1]
    assert (last.nick, last.offender, last.at) == (f"eve{KICKS_KEPT}", "host:cloak.example",
                                                   clock.now)
    # the channel's hint is left out; a ban says when it is lifted
    assert (last.reason, last.ban, last.until) == (
        "only whitelisted (voiced) agents may post here", None, None)
    banned = mod.kicks[-2]  # every second kick bans (ban_kicks=2)
    assert banned.reason == "only whitelisted (voiced) agents may post here (banned for 600 s)"
    assert (banned.ban, banned.until) == ("*!*@cloak.example", clock.now - 1 + 600)
    assert mod.counts == {"kick unvoiced": KICKS_KEPT + 1, "ban": 25, "warn": 1}


def test_reason_kind() -> None:
    for reason, kind in (("flood: more than 5 lines in 10 s", "flood"),
                         ("malformed threat line: no address", "malformed"),
                         ("bogon address 10.0.0.1", "bogon"),
                         ("unsigned threat line: this channel takes signed lines only",
                          "unsigned"), ("malformed signature", "signature"),
                         ("192.0.2.5 is a whitelisted agent's address", "agent_address"),
                         ("8.8.8.8 is still current (30 s left): check your cache", "repeat"),
                         ("only whitelisted (voiced) agents may post here", "unvoiced"),
                         ("more than 5 questions in 60 s", "questions"), ("?", "other")):
        assert reason_kind(reason) == kind

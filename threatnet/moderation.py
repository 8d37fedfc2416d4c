"""Moderation: what a channel bot does with its members and their lines (the proposal's
Security Model).

Only whitelisted agents speak for a ThreatNet channel: ``Moderator.voice`` says whether
a ``Member`` qualifies and which voice change, if any, brings it in line. A voiced agent
can still poison the channel, "active and continuous" as the proposal puts it:
malformed lines, floods, bogon addresses or a whitelisted agent's own address, or
threats repeated while still current (it ignored its Threat Cache). Under a quorum
(topic ``quorum=N``) each distinct reporter, up to N, may say a current threat once: a
corroboration, not a repeat. A withdrawal (``withdraw IP reason``) from a voiced agent
is conversation, not a malformed line, and so are questions and their answers
(conversation.py), from anyone, within limits: an unvoiced member asks at most
``questions`` in ``question_window`` seconds, and a line that parses as a threat is
always judged as one. ``Moderator`` judges each line against those rules and keeps its
own Threat Cache of the channel, fed by the lines it lets through. A kick is a
``Sanction``: repeat offenders are banned for a while, by account where the server
can, never by a host that a whitelisted agent in the channel shares; a banned agent is
invited back when its ban is lifted.
"""
from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal, NamedTuple

from threatnet.cache import DEFAULT_TIMEOUT, ThreatCache
from threatnet.conversation import SILENT, Conversation, Talk
from threatnet.filter import NetworkFilter
from threatnet.language import ThreatError, parse_message, parse_withdrawal
from threatnet.names import RFC1459
from threatnet.offenders import Strikes, TempBans, ban_mask, offender
from threatnet.signature import KeyRing, verify

if TYPE_CHECKING:
    from threatnet.whitelist import Whitelist

_BOGONS = NetworkFilter("discard", ["BOGONS"], name="bogon")
_NO_KEYS = KeyRing()  # the form of a signature is checked, not whose it is
_FOREVER = float("inf")
KICKS_KEPT = 50  # recent kicks a Moderator remembers for the operator (tn guard status)
# What a kick was for, as metrics label it: the reason's opening words -> kind. Every
# kick reason the Moderator gives starts with one of them (or names an address first).
_KINDS = (("flood:", "flood"), ("malformed threat line", "malformed"),
          ("bogon address", "bogon"), ("unsigned threat line", "unsigned"),
          ("malformed signature", "signature"), ("only whitelisted", "unvoiced"),
          ("more than", "questions"))
_ADDRESS_KINDS = (("is a whitelisted agent's address", "agent_address"),
                  ("is still current", "repeat"))


def reason_kind(reason: str) -> str:
    """The kind of a kick ``reason`` (flood, malformed, bogon, unsigned, signature,
    unvoiced, questions, agent_address, repeat; "other" for any other)."""
    for start, kind in _KINDS:
        if reason.startswith(start):
            return kind
    for words, kind in _ADDRESS_KINDS:
        if words in reason:
            return kind
    return "other"


class Rules(NamedTuple):
    """One channel's settings as its lines are judged by them (the channel bot rebuilds
    them when the topic or the config changes)."""

    block: float = DEFAULT_TIMEOUT  # the channel's block period, from its topic
    tolerant: bool = False  # topic flag: warn before kicking for a malformed line
    tolerant_window: float = 600.0  # a second malformed line within this is kicked
    flood_lines: int = 0  # more than this many lines ...
    flood_seconds: float = 10.0  # ... in this many seconds is a flood; 0 lines: no limit
    commands_from_anyone: bool = True  # unvoiced members may ask and answer (conversation.py)
    reply_window: float = 10.0  # seconds after a question in which answers pass; 0: none
    answer_lines: int = 3  # lines each answerer may answer one question with
    questions: int = 5  # questions an unvoiced member may ask ...
    question_window: float = 60.0  # ... in this many seconds; more is a kick
    hint: str = ""  # added to the reason an unvoiced speaker is kicked for: how to ask
    kick_bogons: bool = True
    kick_repeats: bool = True
    repeat_grace: float = 10.0  # a repeat this soon is a race between honest agents
    require_signature: bool = False  # kick threat lines without a well-formed sig= word
    quorum: int = 1  # distinct reporters each threat may have (topic quorum=)
    ban_kicks: int = 3  # this many kicks of one offender ...
    ban_window: float = 3600.0  # ... within this many seconds bring a ban; 0 kicks: never
    ban_duration: int = 3600  # seconds a ban lasts


class Verdict(NamedTuple):
    action: Literal["pass", "warn", "kick"]
    reason: str = ""


PASS = Verdict("pass")

VoiceChange = Literal["+v", "-v"]


class Member(NamedTuple):
    """A channel member as the channel bot sees it.

    ``key`` is the IP key the whitelist is matched against (a WHOX reply's real IP,
    else the host when it is an IP literal; None when unknown), ``account`` the
    services account (None when not logged in). ``opped`` is op or halfop: the bot
    leaves those alone.
    """

    nick: str
    host: str = ""
    key: int | None = None
    account: str | None = None
    voiced: bool = False
    opped: bool = False


class Sanction(NamedTuple):
    """A kick: its ``reason``, ``offender`` (the offenders.offender() identity it counts
    against) and the ban to set before it, ``ban`` (a mask; None: kick only) for
    ``seconds``."""

    reason: str
    offender: str
    ban: str | None = None
    seconds: int = 0
    agent: bool = False  # the offender qualifies for voice: invite it back once unbanned


class Kick(NamedTuple):
    """A kick as the operator reads it later: when, whom, why, and the ban it set
    (``until``: when that ban is to be lifted)."""

    at: float
    nick: str
    offender: str
    reason: str
    ban: str | None = None
    until: float | None = None


class Ruling(NamedTuple):
    """What the bot does about one channel line: the ``verdict``, and a kick's ``sanction``."""

    verdict: Verdict
    sanction: Sanction | None = None


_PASSED = Ruling(PASS)


class Voicing(NamedTuple):
    """Whether a member qualifies for voice, and the change that brings it in line
    (None: its voice is right, or it is an op)."""

    qualifies: bool
    change: VoiceChange | None = None


class Moderator:
    """One channel's Security Model: who gets voice, the verdict on each line, and kicks
    that escalate to temporary bans. ``judge``'s ``sender`` is an offenders.offender()
    identity."""

    def __init__(self, clock: Callable[[], float] = time.time, *, channel: str = "") -> None:
        self.channel = channel  # whose whitelist entries its members qualify by
        self._clock = clock
        self.cache = ThreatCache(clock=clock)
        # The cache's host column holds the first sender (judge's identity: an account or a
        # host); under a quorum, key -> every sender of a current threat.
        self._reporters: dict[int, set[str]] = {}
        self._listed: tuple[Whitelist | None, Callable[[int], bool]] = (None, bool)
        self._lines = Strikes(clock)
        self._warned = Strikes(clock)
        self._kicks = Strikes(clock)
        self._questions = Strikes(clock)
        self.conversation = Conversation(clock)
        self.bans = TempBans(clock)  # the bans it set, to be lifted in time
        self._invites: dict[str, str] = {}  # ban mask -> the banned agent's nick
        self.kicks: deque[Kick] = deque(maxlen=KICKS_KEPT)  # the latest, oldest first
        self.counts: Counter[str] = Counter()  # "kick <kind>", "ban", "warn": since start

    def voice(self, member: Member, whitelist: Whitelist,
              casemapping: str | None = RFC1459) -> Voicing:
        """Whether ``member`` qualifies (its IP key or account is in the channel's
        whitelist, accounts compared by the server's ``casemapping``) and ``+v``/``-v``
        when its voice says otherwise; ops are left alone."""
        qualifies = self._qualifies(member, whitelist, casemapping)
        if member.opped or qualifies == member.voiced:
            return Voicing(qualifies)
        return Voicing(qualifies, "+v" if qualifies else "-v")

    def _qualifies(self, member: Member, whitelist: Whitelist, casemapping: str | None) -> bool:
        return whitelist.qualifies(self.channel, member.key, member.account, casemapping)

    def judge(self, line: str, sender: str, rules: Rules, *, trusted: bool,
              talk: Talk = SILENT, nick: str = "", account: str | None = None,
              whitelist: Whitelist | None = None, casemapping: str | None = RFC1459,
              ) -> Verdict:
        """The verdict on ``line`` from a sender who is ``trusted`` (whitelisted) or not.

        ``talk``: whom the line speaks to (a command to the bots, a member it addresses);
        with ``nick``, what makes it a question or an answer (conversation.py) rather
        than a threat line. A threat of an address ``whitelist`` vouches for (an
        agent's own) is poisoning, like a bogon.
        """
        return self._judge(line, sender, rules, trusted, talk, nick, account, whitelist,
                           casemapping)

    def _judge(self, line: str, sender: str, rules: Rules, trusted: bool, talk: Talk,
               nick: str, account: str | None, whitelist: Whitelist | None,
               casemapping: str | None) -> Verdict:
        # judge's body, called positionally from police: it runs for every channel line
        if rules.flood_lines > 0 and self._lines.hit(sender, rules.flood_lines + 1,
                                                     rules.flood_seconds):
            self._lines.forget(sender)
            return Verdict("kick", f"flood: more than {rules.flood_lines} lines "
                                   f"in {rules.flood_seconds:g} s")
        if not trusted:
            return self._untrusted(line, sender, rules, talk, nick, casemapping)
        try:
            msg = parse_message(line)
        except ThreatError as e:
            try:
                withdrawn = parse_withdrawal(line)
            except ThreatError as bad:
                withdrawn, e = None, bad
            if withdrawn is not None:
                self._withdrawn(withdrawn.key, sender)
                return PASS
            if self._answers(nick, line, rules, True, casemapping) \
                    or self._asks(nick, talk, rules, casemapping):
                return PASS
            reason = f"malformed threat line: {e}"
            if rules.tolerant and not self._warned.hit(sender, 2, rules.tolerant_window):
                return Verdict("warn", reason)
            self._warned.forget(sender)
            return Verdict("kick", reason)
        if rules.kick_bogons and not _BOGONS.accepts(msg.key):
            return Verdict("kick", f"bogon address {msg.ip}")
        if rules.require_signature:
            form = verify(msg, _NO_KEYS, 0.0, _FOREVER, _FOREVER)
            if form == "unsigned":
                return Verdict("kick", "unsigned threat line: this channel takes signed "
                                       "lines only")
            if form == "bad signature":
                return Verdict("kick", "malformed signature")
        if self.cache.timeout != rules.block:
            self.cache.timeout = rules.block
        key = msg.key
        if rules.kick_bogons and whitelist is not None and self._whitelisted(whitelist)(key):
            return Verdict("kick", f"{msg.ip} is a whitelisted agent's address")
        current = self.cache.check(key)
        if current is None:
            self.cache.keep(msg, nick, account, sender)  # host: who said it, as judged
            return PASS
        reporters = self._reporters.setdefault(key, {current.host}) if rules.quorum > 1 \
            else None
        if reporters is not None and sender not in reporters and len(reporters) < rules.quorum:
            reporters.add(sender)  # a corroboration
        elif rules.kick_repeats and self._clock() - current.first_seen >= rules.repeat_grace:
            return Verdict("kick", f"{msg.ip} is still current "
                                   f"({current.expires_in:.0f} s left): check your cache")
        return PASS

    def _whitelisted(self, whitelist: Whitelist) -> Callable[[int], bool]:
        """Whether an address is in one of the channel's whitelisted networks (the test
        is made once per whitelist: it runs on every threat line)."""
        if self._listed[0] is not whitelist:
            self._listed = (whitelist, whitelist.address_test(self.channel))
        return self._listed[1]

    def _untrusted(self, line: str, sender: str, rules: Rules, talk: Talk, nick: str,
                   casemapping: str | None) -> Verdict:
        """A line from a member who is not whitelisted: a question or an answer while
        ``commands_from_anyone``, never a threat line, at most ``rules.questions``
        questions in ``rules.question_window`` seconds."""
        refused = Verdict("kick", f"only whitelisted (voiced) agents may post here{rules.hint}")
        if not rules.commands_from_anyone or _threat(line):
            return refused
        if self._answers(nick, line, rules, False, casemapping):
            return PASS
        if not (talk.command or talk.to_voiced):
            return refused
        if self._questions.hit(sender, rules.questions + 1, rules.question_window):
            self._questions.forget(sender)
            return Verdict("kick", f"more than {rules.questions} questions in "
                                   f"{rules.question_window:g} s")
        return PASS if self._asks(nick, talk, rules, casemapping) else refused

    def _answers(self, nick: str, line: str, rules: Rules, voiced: bool,
                 casemapping: str | None) -> bool:
        return self.conversation.answer(nick, line, voiced=voiced, lines=rules.answer_lines,
                                        casemapping=casemapping)

    def _asks(self, nick: str, talk: Talk, rules: Rules, casemapping: str | None, *,
              opped: bool = False) -> bool:
        """Whether the line is a question, opened if so: a command to the bots, or a line
        addressing a voiced agent (an op's may address any member)."""
        if not (talk.command or talk.to_voiced or opped and talk.to is not None):
            return False
        return self.conversation.ask(nick, talk, rules.reply_window, casemapping)

    def op_said(self, nick: str, talk: Talk, rules: Rules,
                casemapping: str | None = RFC1459) -> None:
        """A channel operator's line (never judged): a question it asks is open all the same."""
        self._asks(nick, talk, rules, casemapping, opped=True)

    def _withdrawn(self, key: int, sender: str) -> None:
        """A reporter took a threat back: saying it again is no repeat."""
        entry = self.cache.check(key)
        if entry is not None and (entry.host == sender or sender in self._reporters.get(key, ())):
            self.cache.remove(key)
            self._reporters.pop(key, None)

    def police(self, line: str, sender: Member, rules: Rules, whitelist: Whitelist, *,
               trusted: bool, talk: Talk = SILENT, members: Iterable[Member] = (),
               casemapping: str | None = RFC1459, extban: str | None = None) -> Ruling:
        """The verdict on ``line`` from ``sender`` (``judge``: offences count against its
        account, else its host) and, for a kick, the ``sanction``: ``members`` are the
        channel's, read only when a host ban is weighed."""
        verdict = self._judge(line, offender(sender.host, sender.account, casemapping), rules,
                              trusted, talk, sender.nick, sender.account, whitelist,
                              casemapping)
        if verdict is PASS:
            return _PASSED
        if verdict.action != "kick":
            self.counts[verdict.action] += 1
            return Ruling(verdict)
        sanction = self.sanction(verdict.reason, sender, rules, whitelist, members=members,
                                 casemapping=casemapping, extban=extban)
        now = self._clock()
        self.counts["kick " + reason_kind(verdict.reason)] += 1
        if sanction.ban is not None:
            self.counts["ban"] += 1
        reason = sanction.reason.replace(rules.hint, "") if rules.hint else sanction.reason
        self.kicks.append(Kick(now, sender.nick, sanction.offender, reason, sanction.ban,
                               now + sanction.seconds if sanction.ban else None))
        return Ruling(verdict, sanction)

    def sanction(self, reason: str, sender: Member, rules: Rules, whitelist: Whitelist, *,
                 members: Iterable[Member] = (), casemapping: str | None = RFC1459,
                 extban: str | None = None) -> Sanction:
        """The kick of ``sender`` for ``reason``, and a ban for ``rules.ban_duration`` when
        it is the offender's ``rules.ban_kicks``-th kick within ``rules.ban_window``.

        The ban is an account extban where the server has one (ISUPPORT ``extban``) and
        the offender is logged in, else ``*!*@host``; no host ban while another of the
        channel's ``members`` who qualifies for voice uses that host (NAT, a shared
        shell): it would lock the agent out with the offender.
        """
        who = offender(sender.host, sender.account, casemapping)
        if not (rules.ban_kicks and self._kicks.hit(who, rules.ban_kicks, rules.ban_window)):
            return Sanction(reason, who)
        self._kicks.forget(who)
        mask = ban_mask(sender.host, sender.account, extban)
        if mask.startswith("*!*@") and any(
                m.nick != sender.nick and m.host == sender.host
                and self._qualifies(m, whitelist, casemapping) for m in members):
            return Sanction(f"{reason} (not banned: a whitelisted agent shares this host)", who)
        self.bans.add(mask, rules.ban_duration)
        agent = self._qualifies(sender, whitelist, casemapping)
        if agent:
            self._invites[mask] = sender.nick
        return Sanction(f"{reason} (banned for {rules.ban_duration} s)", who, mask,
                        rules.ban_duration, agent)

    def lifted(self, mask: str) -> str | None:
        """A ban it set was lifted (by the bot or by anyone else): forget it. Returns the
        nick of the agent it banned, to invite back (None: not an agent, or not known
        since a restart)."""
        self.bans.discard(mask)
        return self._invites.pop(mask, None)

    def prune(self, rules: Rules) -> None:
        """Release memory held for senders and threats that no longer matter."""
        self._lines.prune(rules.flood_seconds)
        self._warned.prune(rules.tolerant_window)
        self._kicks.prune(rules.ban_window)
        self._questions.prune(rules.question_window)
        self.conversation.prune()
        for mask in [m for m in self._invites if m not in self.bans]:
            del self._invites[mask]
        for entry in self.cache.expire():
            if self.cache.check(entry.key) is None:
                self._reporters.pop(entry.key, None)


def _threat(line: str) -> bool:
    """Whether ``line`` parses as a threat line (listeners trusting its sender take it)."""
    try:
        parse_message(line)
    except ThreatError:
        return False
    return True

"""Operator views: `tn guard status` (voiced agents and why, kicks and bans with reasons
and time left, the whitelist file's state) and `tn overview` (every channel at a glance)."""
import re

import supybot.ircmsgs as ircmsgs
from guard_helpers import BothTestCase
from supybot.test import timeFastForward

from lab.limnoria import WHITELIST


class GuardStatusTestCase(BothTestCase):
    def test_voiced_agents_and_why(self):
        self.join("a1", "192.0.2.5")
        self.irc.state.capabilities_ack.add("extended-join")
        self.join("bob", "cloak.example", account="bob")
        self.join("eve", "elsewhere.example")
        self.out()
        voiced = self.reply("tn guard status").split(" | ")[0]
        self.assertIn("#test: op; voiced 2: a1 (IP 192.0.2.5 in 192.0.2.0/24), bob (account bob)",
                      voiced)
        self.assertNotIn("eve", voiced)

    def test_kicks_and_bans_with_reasons_and_time_left(self):
        for nick in ("eve", "eve2", "eve3"):
            self.offend(nick, "cloak.example")
        timeFastForward(100)
        _, kicks, bans, _ = self.reply("tn guard status").split(" | ")
        self.assertIn("kicks (ban 1, kick unvoiced 3), latest: eve3 100 s ago: only "
                      "whitelisted (voiced) agents may post here (banned for 3600 s); eve2 100 "
                      "s ago: only whitelisted (voiced) agents may post here; eve 100 s ago",
                      kicks)
        self.assertRegex(bans, r"bans held: \*!\*@cloak\.example \(3500 s left\)")

    def test_the_whitelist_file_state(self):
        status = self.reply("tn guard status").split(" | ")[-1]
        self.assertRegex(status, r"whitelist /\S+/ThreatNetGuard\.whitelist\.yaml: loaded, "
                                 r"modified \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, 3 entries here, "
                                 r"3 in all")
        self.write_whitelist(WHITELIST + "    - 300.1.2.3\n")
        self.guard._load_whitelist()
        status = self.reply("tn guard status").split(" | ")[-1]
        self.assertIn("ERROR, the last good one in use:", status)
        self.assertRegex(status, r"ThreatNetGuard\.whitelist\.yaml:6: '300\.1\.2\.3'")
        self.assertIn("3 entries here", status)

    def reply(self, command, frm=None):
        """Each reply line, joined by " | "."""
        return " | ".join(re.sub(r"^test: ", "", r) for r in self.command(command, frm=frm))


class OverviewTestCase(BothTestCase):
    def test_one_reply_per_channel_with_everything(self):
        self.join("a1", "192.0.2.5")
        self.out()
        self.say("a1", "192.0.2.5", "45.0.0.1 scan")
        [line] = self.command("tn overview")
        self.assertRegex(line, r"#test on test: quiet period \(\d+ s left\), seen 1 \(kept 1, "
                               r"discarded 0\), cache 1, block 3600 s, quorum 1, reported 0, "
                               r"outbox 0; 0 feeds; responders: none; bridge: none; Guard: op, "
                               r"1 voiced, 0 kicks, 0 bans held, whitelist ok, 3 entries here")

    def test_in_private_every_channel_one_may_administer(self):
        self.irc.feedMsg(ircmsgs.privmsg(self.irc.nick, "tn overview", prefix=self.prefix))
        replies = [m.args[1] for m in self.out() if m.command in ("PRIVMSG", "NOTICE")]
        self.assertEqual(len(replies), 1)
        self.assertTrue(replies[0].startswith("#test on test: "), replies)
        stranger = self.user("stranger")
        self.irc.feedMsg(ircmsgs.privmsg(self.irc.nick, "tn overview", prefix=stranger))
        [reply] = [m.args[1] for m in self.out() if m.command in ("PRIVMSG", "NOTICE")]
        self.assertIn("no channel of mine that you may administer", reply)


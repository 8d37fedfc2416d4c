"""Limnoria's conventions, with both plugins loaded: `[<channel>]` first and optional when
the bot serves one channel, the per-channel `#channel,threatnet` capability (the global
admin one still works), every command's help saying what it needs, and `plugin help`
naming every command."""
import re

from guard_helpers import BothTestCase


class ConventionsTestCase(BothTestCase):
    def test_channel_comes_first_in_every_command(self):
        helps = dict(self.helps())
        self.assertIn("tn bridge status", helps)
        self.assertIn("tn overview", helps)
        self.assertIn("tn guard status", helps)
        for name, text in helps.items():
            syntax = re.match(r"test: \((.*?)\) -- ", text).group(1)
            if "<channel>" in syntax:
                self.assertTrue(syntax.startswith(f"{name} [<channel>]"), syntax)

    def test_the_channel_named_first_or_left_out(self):
        self.join("a1", "192.0.2.5")
        self.out()
        self.say("a1", "192.0.2.5", "45.0.0.1 scan")
        for command in ("tn check #test 45.0.0.1", "tn check 45.0.0.1"):
            [reply] = self.command(command)
            self.assertIn("Current threat in #test: 45.0.0.1", reply)
        [reply] = self.command("tn whitelist add #test 198.51.100.7")
        self.assertIn("198.51.100.7 added to #test", reply)
        [reply] = self.command("tn whitelist remove 198.51.100.7")
        self.assertIn("198.51.100.7 removed from #test", reply)
        [reply] = self.command("tn topic #test --quorum 2")
        self.assertTrue(reply.endswith("quorum=2"), reply)

    def test_every_command_says_what_it_needs(self):
        for name, text in self.helps():
            self.assertRegex(text, r"Anyone may|capability", name)

    def test_plugin_help_names_every_command(self):
        [listed] = self.command("list ThreatNetCache")
        commands = [c.strip() for c in re.split(r", (?:and )?| and ", listed.split(": ", 1)[1])
                    if c.strip() not in ("tn", "tn help")]
        self.assertIn("tn bridge status", commands)
        about = self.reply("plugin help ThreatNetCache")
        for command in commands:
            self.assertIn(command, about)
        about = self.reply("plugin help ThreatNetGuard")
        for command in ("tn topic", "tn whitelist add", "tn whitelist reload",
                        "tn guard status"):
            self.assertIn(command, about)


class CapabilityTestCase(BothTestCase):
    """#test,threatnet administers #test; admin everything; #test,op alone is no grant."""

    ADMINISTER = ("tn whitelist add 198.51.100.7", "tn whitelist remove 198.51.100.7",
                  "tn whitelist list", "tn feeds", "tn responders", "tn report 45.1.1.1 x",
                  "tn topic --quorum 1", "tn guard status", "tn overview")

    def refused(self, frm, command, channel="#test"):
        reply = self.reply(command, frm)
        return f"{channel},threatnet capability" in reply

    def test_the_channel_capability_administers_the_channel(self):
        chanadmin = self.user("chanadmin", "#test,threatnet")
        for command in self.ADMINISTER:
            self.assertFalse(self.refused(chanadmin, command), command)
        # not another channel's, nor the global whitelist file
        self.assertTrue(self.refused(chanadmin, "tn whitelist add #other 198.51.100.7", "#other"))
        self.assertIn("admin capability", self.reply("tn whitelist reload", chanadmin))

    def test_the_global_admin_still_works(self):
        admin = self.user("boss", "admin")
        for command in (*self.ADMINISTER, "tn whitelist add #other 198.51.100.7"):
            self.assertFalse(self.refused(admin, command), command)

    def test_others_are_refused(self):
        for prefix in (self.user("chanop", "#test,op"), self.user("elsewhere", "#other,threatnet"),
                       "stranger!u@__no_testcap__.example"):
            for command in self.ADMINISTER:
                self.assertTrue(self.refused(prefix, command), (prefix, command))
            # anyone may ask
            self.assertIn("Not a current threat", self.reply("tn check 45.0.0.1", prefix))
            self.assertIn("threatnet://", self.reply("tn topic", prefix))

"""Whitelist administration: commands, capability, YAML persistence, bad files."""
import os

import supybot.schedule as schedule
from guard_helpers import WHITELIST, GuardTestCase
from supybot.test import timeFastForward

from threatnet.whitelist import WhitelistStore

NO_CAP = "someone!u@__no_testcap__"


class WhitelistTestCase(GuardTestCase):
    def setUp(self):
        super().setUp()
        self.join("a1", "192.0.2.5")
        self.join("c1", "198.51.100.7")
        self.lines()

    def stored(self, channel="#test"):
        return WhitelistStore(self.whitelist_path).load().entries(channel)

    def test_add_voices_at_once_and_persists(self):
        replies = self.command("tn whitelist add 198.51.100.0/24")
        self.assertEqual(replies, ["test: The operation succeeded.  198.51.100.0/24 added to #test."])
        self.assertTrue(self.chan.isVoice("c1"))
        self.assertIn("198.51.100.0/24", self.stored())
        with open(self.whitelist_path) as f:
            self.assertIn("  - 198.51.100.0/24", f.read())

    def test_add_canonicalises(self):
        self.command("tn whitelist add #test account:Carol")
        self.command("tn whitelist add ::ffff:198.51.100.7")
        self.assertEqual(self.stored()[-2:], ["account:carol", "198.51.100.7"])

    def test_add_to_another_channel(self):
        self.command("tn whitelist add #other 198.51.100.7")
        self.assertEqual(self.stored("#other"), ["198.51.100.7"])
        self.assertFalse(self.chan.isVoice("c1"))

    def test_remove_devoices_at_once(self):
        [reply] = self.command("tn whitelist remove 192.0.2.0/24")
        self.assertIn("removed", reply)
        self.assertFalse(self.chan.isVoice("a1"))
        self.assertNotIn("192.0.2.0/24", self.stored())

    def test_validation_errors(self):
        for entry, reason in [("10.1", "expected 4 octets"), ("192.0.2.1/24", "host bits set"),
                              ("0.0.0.0/0", "matches every address"), ("bob", "not an IP"),
                              ("account:", "empty account name")]:
            [reply] = self.command(f"tn whitelist add {entry}")
            self.assertIn("Error", reply)
            self.assertIn(reason, reply)
        [reply] = self.command("tn whitelist add 192.0.2.0/24")
        self.assertIn("already in #test", reply)
        [reply] = self.command("tn whitelist remove 203.0.113.0/24")
        self.assertIn("not in #test", reply)

    def test_list(self):
        self.assertEqual(self.command("tn whitelist list"),
                         ["test: 192.0.2.0/24, 2001:db8::/48, account:bob"])
        self.assertEqual(self.command("tn whitelist list #empty"),
                         ["test: nobody is whitelisted in #empty"])

    def test_commands_need_admin(self):
        for command in ("add #test 198.51.100.0/24", "remove #test 192.0.2.0/24",
                        "list #test", "reload"):
            [reply] = self.command(f"tn whitelist {command}", frm=NO_CAP)
            self.assertIn("admin", reply, command)
        self.assertFalse(self.chan.isVoice("c1"))
        self.assertTrue(self.chan.isVoice("a1"))
        self.assertIn("192.0.2.0/24", self.stored())

    def test_reload(self):
        self.write_whitelist('channels:\n  "#test":\n    - 198.51.100.7\n')
        self.assertEqual(self.command("tn whitelist reload"), ["test: The operation succeeded."])
        self.assertTrue(self.chan.isVoice("c1"))
        self.assertFalse(self.chan.isVoice("a1"))

    def test_bad_yaml_keeps_the_last_good_whitelist(self):
        self.write_whitelist('channels:\n  "#test":\n    - 192.0.2.0/24\n    - 10.1\n')
        [reply] = self.command("tn whitelist reload")
        self.assertIn("whitelist.yaml:4: '10.1': expected 4 octets, got 2", reply)
        self.assertTrue(self.chan.isVoice("a1"))
        [reply] = self.command("tn whitelist list")
        self.assertIn("192.0.2.0/24", reply)
        self.assertIn("whitelist file invalid", reply)
        [reply] = self.command("tn whitelist add 198.51.100.7")  # never edits a broken file
        self.assertIn("Error", reply)
        self.write_whitelist(WHITELIST)
        self.command("tn whitelist reload")
        self.assertNotIn("invalid", self.command("tn whitelist list")[0])

    def test_file_edits_are_picked_up(self):
        self.write_whitelist('channels:\n  "#test":\n    - 198.51.100.7\n')
        timeFastForward(6)
        schedule.run()
        self.assertEqual(self.lines(), ["MODE #test -v+v a1 c1"])


class BadFileAtStartTestCase(GuardTestCase):
    opped = False

    def test_trust_nobody(self):
        self.write_whitelist("channels: [oops\n")
        self.guard._whitelist = type(self.guard._whitelist)()  # as at start: nothing loaded yet
        self.assertIn("invalid YAML", self.guard._load_whitelist())
        self.join("a1", "192.0.2.5")
        self.feed(":op!u@h MODE #test +v a1")
        sent = self.op_bot()
        self.assertEqual(sent[2:], ["MODE #test -v a1"])

    def test_missing_file_is_empty(self):
        os.unlink(self.whitelist_path)
        self.assertIsNone(self.guard._load_whitelist())
        self.join("a1", "192.0.2.5")
        self.assertEqual(self.op_bot()[2:], [])

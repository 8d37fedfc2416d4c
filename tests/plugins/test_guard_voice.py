"""Voice: who qualifies (IP, services account) and every event that re-evaluates it."""
import time

import supybot.conf as conf

from guard_helpers import WHITELIST, GuardTestCase


class VoiceTestCase(GuardTestCase):
    def test_join_from_whitelisted_ip(self):
        self.join("a1", "192.0.2.5")
        self.assertEqual(self.lines(), ["MODE #test +v a1"])
        self.assertTrue(self.chan.isVoice("a1"))

    def test_join_from_whitelisted_ipv6(self):
        self.join("a6", "2001:db8::7")
        self.assertEqual(self.lines(), ["MODE #test +v a6"])

    def test_no_voice_for_a_hostname_or_a_nick(self):
        self.join("bob", "bob.example.org")  # a whitelisted account's name as nick, not logged in
        self.join("a2", "192.0.2.5.evil.example")
        self.join("a3", "198.51.100.1")
        self.assertEqual(self.lines(), [])

    def test_extended_join_with_account(self):
        self.irc.state.capabilities_ack.add("extended-join")
        self.join("agent", "cloak.example", account="Bob")  # accounts match case-insensitively
        self.join("eve", "cloak.example", account="eve")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])

    def test_account_folds_as_services_do(self):
        # account:[Bot] is the account {bot} under the server's rfc1459 casemapping, as
        # the listener's trustedAccounts already had it; the Guard used str.casefold.
        self.write_whitelist(WHITELIST + "    - account:[Bot]\n")
        self.assertIsNone(self.guard._load_whitelist())
        self.irc.state.capabilities_ack.add("extended-join")
        self.join("agent", "cloak.example", account="{bot}")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])

    def test_account_tag_without_account_tag_acked_is_not_trusted(self):
        # A client-sent tag that a bouncer or lax server passes on: Limnoria's IrcState
        # records it, the Guard must not (seen: @account=bob was voiced).
        self.join("agent", "cloak.example")
        self.say("agent", "cloak.example", "8.8.8.8 ssh", tags="@account=bob ")
        self.assertNotIn("MODE #test +v agent", self.lines())
        self.feed(":irc.test MODE #test +m")
        self.feed(":agent!u@cloak.example MODE agent +i")  # any non-line clears the memo
        self.assertEqual(self.lines(), [])

    def test_an_ip_shaped_host_is_no_ip_unless_the_server_shows_real_ips(self):
        # A vhost or CHGHOST "192.0.2.44" is not the whitelisted 192.0.2.44 (seen:
        # voiced with whoxJoins off, or when WHOX showed 255.255.255.255).
        with conf.supybot.plugins.ThreatNetGuard.realHosts.context(False):
            self.guard._settings.clear()
            self.join("vhost", "192.0.2.44")
            self.assertEqual(self.lines(), [])
            self.feed(":irc.test 354 test 1 u 192.0.2.44 192.0.2.44 vhost H 0 :real")
            self.assertEqual(self.lines(), ["MODE #test +v vhost"])  # WHOX: the real IP

    def test_account_tag_on_a_line(self):
        self.irc.state.capabilities_ack.add("account-tag")
        self.join("agent", "cloak.example")
        self.assertEqual(self.lines(), [])
        self.say("agent", "cloak.example", "8.8.8.8 ssh brute force", tags="@account=bob ")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])  # spoke before its voice: no kick

    def test_account_login_and_logout(self):
        self.join("agent", "cloak.example")
        self.assertEqual(self.lines(), [])
        self.feed(":agent!u@cloak.example ACCOUNT bob")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])
        self.feed(":agent!u@cloak.example ACCOUNT *")
        self.assertEqual(self.lines(), ["MODE #test -v agent"])

    def test_chghost(self):
        self.join("agent", "cloak.example")
        self.feed(":agent!u@cloak.example CHGHOST u 192.0.2.9")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])
        self.feed(":agent!u@192.0.2.9 CHGHOST u cloak.example")
        self.assertEqual(self.lines(), ["MODE #test -v agent"])

    def test_whox_reply_with_the_real_ip(self):
        self.join("agent", "cloak.example")
        self.feed(":irc.test 354 test 1 u 255.255.255.255 cloak.example agent H 0 :real")
        self.assertEqual(self.lines(), [])  # what non-opers see: no IP at all
        self.feed(":irc.test 354 test 1 u 192.0.2.33 cloak.example agent H 0 :real")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])

    def test_whox_ip_beats_an_ip_shaped_host(self):
        self.join("spoof", "192.0.2.44")  # e.g. a vhost that looks like a whitelisted IP
        self.assertEqual(self.lines(), ["MODE #test +v spoof"])
        self.feed(":irc.test 354 test 1 u 203.0.113.9 192.0.2.44 spoof H 0 :real")
        self.assertEqual(self.lines(), ["MODE #test -v spoof"])

    def test_whox_account(self):
        self.join("agent", "cloak.example")
        self.feed(":irc.test 354 test 1 u 255.255.255.255 cloak.example agent H bob :real")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])
        self.feed(":irc.test 354 test 2 u 192.0.2.1 cloak.example other H bob :real")  # not ours
        self.assertEqual(self.lines(), [])

    def test_whox_on_join_when_enabled(self):
        with self.config_value("whoxJoins", True):
            self.join("agent", "cloak.example")
            self.join("a1", "192.0.2.5")  # an IP already: no query
            self.assertEqual(self.lines(), ["MODE #test +v a1", "WHO agent %tuhnairf,1"])

    def test_nick_change_keeps_voice_and_whox_ip(self):
        self.join("agent", "cloak.example")
        self.feed(":irc.test 354 test 1 u 192.0.2.33 cloak.example agent H 0 :real")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])
        self.feed(":agent!u@cloak.example NICK agent2")
        self.assertEqual(self.lines(), [])
        self.assertTrue(self.chan.isVoice("agent2"))
        self.assertNotIn("agent", self.guard._net(self.irc).ips)

    def test_nick_change_does_not_inherit_a_whox_ip(self):
        self.join("agent", "cloak.example")
        self.feed(":irc.test 354 test 1 u 192.0.2.33 cloak.example agent H 0 :real")
        self.assertEqual(self.lines(), ["MODE #test +v agent"])
        self.feed(":agent!u@cloak.example QUIT :bye")
        self.join("other", "cloak.example")
        self.feed(":other!u@cloak.example NICK agent")  # the nick is free again
        self.assertEqual(self.lines(), [])
        self.assertFalse(self.chan.isVoice("agent"))

    def test_someone_else_voicing_or_devoicing(self):
        self.join("a1", "192.0.2.5")
        self.join("eve", "cloak.example")
        self.lines()
        self.feed(":op!u@h MODE #test +v-v eve a1")  # voice is the whitelist's to give
        self.assertEqual(self.lines(), ["MODE #test -v+v eve a1"])

    def test_ops_are_left_alone(self):
        self.join("op", "cloak.example")
        self.feed(":irc.test MODE #test +ov op op")
        self.assertEqual(self.lines(), [])
        self.feed(":irc.test MODE #test -o op")  # no longer an op: voice follows the whitelist
        self.assertEqual(self.lines(), ["MODE #test -v op"])

    def test_only_enabled_channels(self):
        with self.config_value("enable", False):
            self.join("a1", "192.0.2.5")
            self.assertEqual(self.lines(), [])


class BatchingTestCase(GuardTestCase):
    def test_batches_by_isupport_modes(self):
        for i in range(10):
            self.join(f"a{i}", f"192.0.2.{i + 1}")
        self.assertEqual(self.lines(), ["MODE #test +vvvv a0 a1 a2 a3", "MODE #test +vvvv a4 a5 a6 a7",
                                        "MODE #test +vv a8 a9"])

    def test_mixed_voice_and_devoice_in_one_line(self):
        self.join("a1", "192.0.2.5")
        self.join("b", "cloak.example")
        self.lines()
        self.feed(":op!u@h MODE #test +v b")
        self.feed(":b!u@cloak.example NICK b2")  # state: b2 voiced, a -v is pending for b
        self.join("a2", "192.0.2.6")
        self.assertEqual(self.lines(), ["MODE #test -v+v b2 a2"])

    def test_500_joins(self):
        self.feed(":irc.test 005 test MODES=20 :are supported by this server")
        start = time.perf_counter()
        for i in range(500):
            self.join(f"agent{i}", f"192.0.2.{i % 250 + 1}")
        sent = self.out()
        elapsed = time.perf_counter() - start
        self.assertEqual(len(sent), 25)
        self.assertEqual(len(self.chan.voices), 500)
        print(f"500 joins fed and voiced in {elapsed:.3f} s, {len(sent)} MODE lines")
        self.assertLess(elapsed, 2)

    def test_no_modes_value_means_no_count_limit(self):
        self.feed(":irc.test 005 test MODES :are supported by this server")
        for i in range(30):
            self.join(f"a{i}", f"192.0.2.{i + 1}")
        sent = self.lines()
        self.assertEqual(len(sent), 1)
        self.assertTrue(sent[0].startswith("MODE #test +" + "v" * 30))


class OpTestCase(GuardTestCase):
    opped = False

    def test_gaining_op_voices_everyone_who_qualifies(self):
        for i in range(6):
            self.join(f"a{i}", f"192.0.2.{i + 1}")
        self.join("eve", "cloak.example")
        self.feed(":op!u@h MODE #test +v eve")
        self.assertEqual(self.lines(), [])  # not op: nothing
        sent = self.op_bot()
        self.assertEqual(sent[2:], ["MODE #test +vvvv a0 a1 a2 a3", "MODE #test +vv-v a4 a5 eve"])

    def test_bot_joining_opped(self):
        self.feed(":irc.test 332 test #test :old topic")
        self.feed(":irc.test 353 test = #test :test a1 +eve")
        self.feed(":irc.test 366 test #test :End of /NAMES list.")
        self.assertEqual(self.lines(), [], "not op yet")
        self.feed(":irc.test 353 test = #test :@test a1 +eve")
        self.irc.state.nicksToHostmasks["a1"] = "a1!u@192.0.2.1"
        self.feed(":irc.test 366 test #test :End of /NAMES list.")
        sent = self.lines()
        self.assertEqual(sent[0], "MODE #test +nt")
        self.assertTrue(sent[1].startswith("TOPIC #test threatnet://"))
        self.assertEqual(sent[2:], ["MODE #test +v-v a1 eve"])

    def test_losing_op(self):
        self.op_bot()
        self.feed(":op!u@h MODE #test -o test")
        self.join("a1", "192.0.2.5")
        self.join("eve", "cloak.example")
        self.say("eve", "cloak.example", "spam")
        self.feed(":op!u@h TOPIC #test :whatever")
        self.assertEqual(self.lines(), [])

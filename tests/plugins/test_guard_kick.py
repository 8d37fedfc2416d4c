"""Kick: unvoiced senders, malformed lines (tolerant mode), floods, bogons, repeats; kickbans."""
import contextlib

import supybot.conf as conf
import supybot.schedule as schedule
from guard_helpers import GUARD, GuardTestCase
from supybot.test import timeFastForward

UNVOICED = ("only whitelisted (voiced) agents may post here; others may ask the bots "
            "(@tn help lists the commands) or a voiced agent (nick: question)")


class KickTestCase(GuardTestCase):
    def setUp(self):
        super().setUp()
        self.join("a1", "192.0.2.5")
        self.join("a2", "192.0.2.6")
        self.join("eve", "cloak.example")
        self.assertEqual(self.lines(), ["MODE #test +vv a1 a2"])

    def test_unvoiced_sender(self):
        for command in ("PRIVMSG", "NOTICE"):
            self.join("eve", "cloak.example")
            self.say("eve", "cloak.example", "8.8.8.8", command=command)
            self.assertEqual(self.lines(), [f"KICK #test eve {UNVOICED}"])

    def test_ctcp_action(self):
        self.say("eve", "cloak.example", "\x01ACTION waves\x01")
        self.assertEqual(self.lines(), [f"KICK #test eve {UNVOICED}"])
        self.say("a1", "192.0.2.5", "\x01ACTION waves\x01")
        self.assertEqual(self.lines(),
                         ["KICK #test a1 malformed threat line: control or formatting character"])

    def test_commands_are_allowed_from_anyone(self):
        self.say("eve", "cloak.example", "@tn topic")
        sent = self.out()
        self.assertEqual([m.command for m in sent], ["PRIVMSG"])
        self.say("eve", "cloak.example", "@no such command")
        self.assertIn(f"KICK #test eve {UNVOICED}", self.lines())

    def test_commands_only_from_voiced_when_configured(self):
        with self.config_value("commands.fromAnyone", False):
            self.say("eve", "cloak.example", "@tn topic")
            self.assertEqual(self.lines()[0], f"KICK #test eve {UNVOICED}")
            self.say("a1", "192.0.2.5", "@tn topic")
            self.assertEqual([m.command for m in self.out()], ["PRIVMSG"])

    def test_every_way_to_address_the_bot_is_a_command(self):
        """The cheap pre-test before Limnoria's ``addressed`` misses none of its forms."""
        reply = conf.supybot.reply.whenAddressedBy
        for n, (line, setting, value) in enumerate([
                ("test: tn topic", None, None),
                ("TEST, tn topic", None, None),
                ("tn topic, test", reply.nick.atEnd, True),
                ("bot: tn topic", reply.nicks, ["bot"]),
                ("~~tn topic", reply.strings, ["~~"]),
                ("tn topic", conf.supybot.reply.whenNotAddressed, True)]):
            with (setting.context(value) if setting else contextlib.nullcontext()):
                self.guard._settings.clear()  # the plugin caches them for a second
                self.say("eve", f"cloak{n}.example", line)  # 5 questions a minute each
                self.assertEqual([m.command for m in self.out()], ["PRIVMSG"], line)
        self.guard._settings.clear()
        self.say("eve", "cloak.example", "tn topic, test")  # atEnd is off again
        self.assertEqual(self.lines(), [f"KICK #test eve {UNVOICED}"])

    def test_a_change_of_status_applies_to_the_next_line(self):
        """Senders are memoised per line; any other message forgets them."""
        self.say("a1", "192.0.2.5", "8.8.8.8")
        self.feed(":a1!u@192.0.2.5 CHGHOST u cloak.example")
        self.say("a1", "cloak.example", "8.8.4.4")  # no longer whitelisted: the line counts
        self.assertIn(f"KICK #test a1 {UNVOICED}", self.lines())
        self.say("a2", "192.0.2.6", "8.8.8.8")
        self.write_whitelist("channels: {}\n")
        self.assertIsNone(self.guard._load_whitelist())
        self.lines()  # the devoices
        self.say("a2", "192.0.2.6", "9.9.9.9")
        self.assertEqual(self.lines(), [f"KICK #test a2 {UNVOICED}"])

    def test_an_account_tag_change_applies_to_its_own_line(self):
        """With account-tag and no account-notify, the line itself says who is logged in."""
        self.irc.state.capabilities_ack.add("account-tag")
        self.join("bobby", "cloak.example")
        self.say("bobby", "cloak.example", "8.8.8.8", tags="@account=bob ")  # whitelisted
        self.assertEqual(self.lines(), ["MODE #test +v bobby"])
        self.say("bobby", "cloak.example", "8.8.4.4", tags="@account=mallory ")
        self.assertIn(f"KICK #test bobby {UNVOICED}", self.lines())

    def test_ops_are_not_kicked(self):
        self.feed(":irc.test MODE #test +o eve")
        self.say("eve", "cloak.example", "hello everyone")
        self.assertEqual(self.lines(), [])

    def test_valid_threat_from_voiced(self):
        self.say("a1", "192.0.2.5", "8.8.8.8 ssh brute force")
        self.say("a2", "192.0.2.6", "2606:4700::1111")
        self.assertEqual(self.lines(), [])

    def test_malformed_line(self):
        self.say("a1", "192.0.2.5", "123.123.123.456 spam")
        self.assertEqual(self.lines(), ["KICK #test a1 malformed threat line: octet 456 > 255"])
        self.say("a2", "192.0.2.6", "hello")
        self.assertEqual(self.lines(), ["KICK #test a2 malformed threat line: not an IP address"])

    def test_flood(self):
        with self.config_value("flood.lines", 3):
            for i in range(3):
                self.say("a1", "192.0.2.5", f"8.8.8.{i}")
            self.assertEqual(self.lines(), [])
            self.say("a1", "192.0.2.5", "8.8.8.9")
            self.assertEqual(self.lines(), ["KICK #test a1 flood: more than 3 lines in 10 s"])

    def test_bogon(self):
        self.say("a1", "192.0.2.5", "10.1.2.3 scanner")
        self.assertEqual(self.lines(), ["KICK #test a1 bogon address 10.1.2.3"])
        with self.config_value("kick.bogons", False):
            self.say("a2", "192.0.2.6", "10.1.2.3 scanner")
            self.assertEqual(self.lines(), [])

    def test_repeat_of_a_current_threat(self):
        self.say("a1", "192.0.2.5", "8.8.8.8")
        self.say("a2", "192.0.2.6", "8.8.8.8")  # within the grace: two honest agents raced
        self.assertEqual(self.lines(), [])
        timeFastForward(60)
        self.say("a2", "192.0.2.6", "8.8.8.8 again")
        sent = self.lines()
        self.assertEqual(len(sent), 1)
        self.assertRegex(sent[0], r"^KICK #test a2 8\.8\.8\.8 is still current \(35\d\d s left\): "
                                  r"check your cache$")

    def test_repeat_after_the_block_period_is_fine(self):
        self.say("a1", "192.0.2.5", "8.8.8.8")
        timeFastForward(3601)
        self.say("a2", "192.0.2.6", "8.8.8.8")
        self.assertEqual(self.lines(), [])


class TolerantTestCase(GuardTestCase):
    config = dict(GuardTestCase.config, **{GUARD + "topic.flags": ["tolerant"]})

    def test_warn_first_then_kick(self):
        self.assertIn("tolerant", self.chan.topic)
        self.join("a1", "192.0.2.5")
        self.lines()
        self.say("a1", "192.0.2.5", "hello")
        self.assertEqual(self.lines(), [
            "NOTICE a1 #test: malformed threat line: not an IP address. "
            "Another one within 600 s gets you kicked."])
        self.say("a1", "192.0.2.5", "hello again")
        self.assertEqual(self.lines(), ["KICK #test a1 malformed threat line: not an IP address"])

    def test_the_window_passes(self):
        self.join("a1", "192.0.2.5")
        self.lines()
        self.say("a1", "192.0.2.5", "hello")
        timeFastForward(601)
        self.say("a1", "192.0.2.5", "hello")
        self.assertEqual([m.command for m in self.out()], ["NOTICE", "NOTICE"])

    def test_unvoiced_is_not_tolerated(self):
        self.join("eve", "cloak.example")
        self.say("eve", "cloak.example", "hello")
        self.assertEqual(self.lines(), [f"KICK #test eve {UNVOICED}"])


class BanTestCase(GuardTestCase):
    def test_kickban_by_host_and_its_expiry(self):
        self.assertEqual(self.offend("eve", "cloak.example"), [f"KICK #test eve {UNVOICED}"])
        self.assertEqual(self.offend("eve2", "cloak.example"), [f"KICK #test eve2 {UNVOICED}"])
        self.assertEqual(self.offend("eve3", "cloak.example"), [
            "MODE #test +b *!*@cloak.example",
            f"KICK #test eve3 {UNVOICED} (banned for 3600 s)"])
        self.assertIn("*!*@cloak.example", self.chan.bans)
        timeFastForward(3000)
        schedule.run()
        self.assertEqual(self.lines(), [])
        timeFastForward(700)
        self.assertEqual(self.lines(), ["MODE #test -b *!*@cloak.example"])
        self.assertNotIn("*!*@cloak.example", self.chan.bans)

    def test_bans_are_lifted_after_a_restart(self):
        for _ in range(3):
            self.offend("eve", "cloak.example")
        with open(self.guard._bans_path()) as f:
            self.assertIn("*!*@cloak.example", f.read())
        self.restart_guard()
        timeFastForward(3601)
        self.assertEqual(self.lines(), ["MODE #test -b *!*@cloak.example"])
        self.restart_guard()  # lifted is lifted: nothing comes back
        timeFastForward(3601)
        self.assertEqual(self.lines(), [])

    def test_a_bad_bans_file_is_reported_and_ignored(self):
        for text, reason in (("{", "not JSON"), ('{"version": 1, "bans": [["x"]]}', "bad entry"),
                             ('{"version": 9, "bans": []}', "not a version 1 bans file")):
            with open(self.guard._bans_path(), "w") as f:
                f.write(text)
            with self.assertLogs("supybot", "ERROR") as logged:
                self.restart_guard()
            self.assertIn(reason, "\n".join(logged.output))
            self.assertIn("lift them by hand", "\n".join(logged.output))
        for _ in range(3):  # and the next ban is saved over it
            self.offend("eve", "cloak.example")
        self.restart_guard()
        timeFastForward(3601)
        self.assertEqual(self.lines(), ["MODE #test -b *!*@cloak.example"])

    def test_kickban_by_account_extban(self):
        self.irc.state.capabilities_ack.add("account-tag")
        for i in range(2):
            self.offend(f"m{i}", f"host{i}.example", tags="@account=mallory ")
        self.assertEqual(self.offend("m9", "elsewhere.example", tags="@account=mallory "), [
            "MODE #test +b R:mallory", f"KICK #test m9 {UNVOICED} (banned for 3600 s)"])

    def test_kicks_outside_the_window_do_not_add_up(self):
        self.offend("eve", "cloak.example")
        self.offend("eve", "cloak.example")
        timeFastForward(3601)
        self.assertEqual(self.offend("eve", "cloak.example"), [f"KICK #test eve {UNVOICED}"])

    def test_a_ban_removed_meanwhile_is_not_lifted_again(self):
        for _ in range(3):
            self.offend("eve", "cloak.example")
        self.feed(":op!u@h MODE #test -b *!*@cloak.example")
        timeFastForward(3601)
        self.assertEqual(self.lines(), [])

    def test_ban_waits_for_op(self):
        for _ in range(3):
            self.offend("eve", "cloak.example")
        self.feed(":op!u@h MODE #test -o test")
        timeFastForward(3601)
        self.assertEqual(self.lines(), [])
        self.feed(":op!u@h MODE #test +o test")
        self.assertEqual(self.lines()[-1], "MODE #test -b *!*@cloak.example")


class BanUpkeepTestCase(GuardTestCase):
    """A ban the server refuses is retried; a lifted ban lets the agent it kept out back in."""

    def ban_agent(self):
        for _ in range(3):  # a whitelisted agent that keeps sending malformed lines
            lines = self.offend("a1", "192.0.2.5")
        self.assertIn("MODE #test +b *!*@192.0.2.5", lines)
        self.assertIn("KICK #test a1 malformed threat line: not an IP address (banned for "
                      "3600 s)", lines)

    def test_a_ban_list_full_is_logged_and_retried(self):
        for _ in range(3):
            self.offend("eve", "cloak.example")
        self.chan.bans.discard("*!*@cloak.example")  # the server refused it:
        with self.assertLogs("supybot", "WARNING") as logged:
            self.feed(":irc.test 478 test #test *!*@cloak.example b :Channel ban list is full")
        self.assertIn("+b *!*@cloak.example in #test on test refused: 478 Channel ban list is "
                      "full; retrying in 1 s", "\n".join(logged.output))
        timeFastForward(1.1)
        self.assertEqual(self.lines(), ["MODE #test +b *!*@cloak.example"])
        timeFastForward(3)
        self.assertEqual(self.lines(), [])  # it held

    def test_an_operator_lifting_an_agents_ban_invites_it_back(self):
        self.ban_agent()
        self.feed(":op!u@h MODE #test -b *!*@192.0.2.5")
        self.assertEqual(self.lines(), ["INVITE a1 #test"])
        timeFastForward(3601)
        self.assertEqual(self.lines(), [])  # nothing left to lift

    def test_the_guard_lifting_an_agents_ban_invites_it_back(self):
        self.ban_agent()
        timeFastForward(3601)
        self.assertEqual(self.lines(), ["MODE #test -b *!*@192.0.2.5"])
        self.feed(":test!u@h MODE #test -b *!*@192.0.2.5")  # the server's echo
        self.assertEqual(self.lines(), ["INVITE a1 #test"])

    def test_strangers_are_not_invited(self):
        for _ in range(3):
            self.offend("eve", "cloak.example")
        self.feed(":op!u@h MODE #test -b *!*@cloak.example")
        self.assertEqual(self.lines(), [])

    def test_bans_wait_for_the_ban_list_after_a_join(self):
        for _ in range(3):
            self.offend("eve", "cloak.example")
        self.feed(":test!u@h JOIN #test")  # as after a reconnect: no ban list yet
        self.feed(":irc.test MODE #test +o test")
        self.lines()  # Limnoria's queries on joining, the topic and modes on op
        timeFastForward(3601)
        self.assertNotIn("MODE #test -b *!*@cloak.example", self.lines())
        self.feed(":irc.test 367 test #test *!*@cloak.example op 1700000000")
        self.feed(":irc.test 368 test #test :End of channel ban list")
        self.assertEqual(self.lines(), ["MODE #test -b *!*@cloak.example"])


class QuestionTestCase(GuardTestCase):
    """Anyone may ask any agent; the one asked answers, with or without the asker's nick."""

    def setUp(self):
        super().setUp()
        self.join("ammobot", "192.0.2.5")  # the original Perl bot, whitelisted
        self.join("agent", "192.0.2.6")
        self.join("newbie", "newbie.example")
        self.lines()

    def test_another_implementations_question_and_answer(self):
        self.say("newbie", "newbie.example", "ammobot: status")
        self.say("agent", "192.0.2.6", "ammobot, status")
        self.say("ammobot", "192.0.2.5", "Online 74 seconds. 6 events at 0.1/s")
        self.assertEqual(self.lines(), [])
        self.say("agent", "192.0.2.6", "me too")  # not the one asked
        self.assertEqual(self.lines(), ["KICK #test agent malformed threat line: not an IP "
                                        "address"])

    def test_a_chanops_question_is_answered_by_the_agents(self):
        self.join("chanop", "chanop.example")
        self.feed(":irc.test MODE #test +o chanop")
        self.feed(":chanop!u@h PRIVMSG #test :@tn topic")
        self.out()
        self.say("agent", "192.0.2.6", "chanop: #test: online 5 s, seen 0")
        self.say("ammobot", "192.0.2.5", "Online 74 seconds. 6 events at 0.1/s")
        self.feed(":chanop!u@h PRIVMSG #test :newbie: which agent is yours?")
        self.say("newbie", "newbie.example", "none yet, just looking")
        self.assertEqual(self.lines(), [])

    def test_chat_is_no_question(self):
        self.say("newbie", "newbie.example", "@tn topic")
        self.out()
        self.say("newbie", "newbie.example", "newbie: spam")
        self.assertEqual(self.lines(), [f"KICK #test newbie {UNVOICED}"])
        self.join("newbie", "newbie.example")
        self.say("newbie", "newbie.example", "agent: are you a bot?")
        self.say("newbie", "newbie.example", "buy cheap pills")
        self.assertEqual(self.lines(), [f"KICK #test newbie {UNVOICED}"])


class AnswerTestCase(GuardTestCase):
    """Other agents' bots answer `!tn ...` in the channel as "asker: ..."."""

    def setUp(self):
        super().setUp()
        self.join("agent", "192.0.2.5")
        self.join("listener", "cloak.example")  # an unvoiced agent
        self.join("asker", "asker.example")
        self.lines()

    def test_answers_to_a_command_are_not_kicked(self):
        self.say("asker", "asker.example", "@tn topic")
        self.out()
        self.say("agent", "192.0.2.5", "asker: Not a current threat in #test: 11.7.7.7")
        self.say("listener", "cloak.example", "asker, 3 threats current")
        self.assertEqual(self.lines(), [])

    def test_only_within_the_window(self):
        self.say("asker", "asker.example", "@tn topic")
        self.out()
        timeFastForward(11)
        self.say("agent", "192.0.2.5", "asker: late answer")
        self.assertEqual(self.lines(), ["KICK #test agent malformed threat line: not an IP address"])

    def test_nobody_asked(self):
        self.say("listener", "cloak.example", "asker: buy cheap pills")
        self.say("agent", "192.0.2.5", "nobody: hello")
        self.assertEqual([line.split()[2] for line in self.lines()], ["listener", "agent"])

    def test_a_kicked_command_asks_nothing(self):
        with self.config_value("commands.fromAnyone", False):
            self.say("asker", "asker.example", "@tn topic")
            self.out()
            self.say("agent", "192.0.2.5", "asker: answer")
            self.assertEqual(self.lines()[-1],
                             "KICK #test agent malformed threat line: not an IP address")

    def test_disabled(self):
        with self.config_value("commands.replyWindow", 0):
            self.say("asker", "asker.example", "@tn topic")
            self.out()
            timeFastForward(0.5)
            self.say("agent", "192.0.2.5", "asker: answer")
            self.assertEqual(self.lines(),
                             ["KICK #test agent malformed threat line: not an IP address"])

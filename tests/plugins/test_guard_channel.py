"""Channel upkeep: the topic (set, restored, shown, changed by command) and kept modes."""
import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
import supybot.registry as registry
import supybot.schedule as schedule
from guard_helpers import GUARD, GuardTestCase, reset_topic
from supybot.test import timeFastForward

TOPIC = "threatnet://threatnet.invalid/datn2004/ip-comment block=3600"
NO_CAP = "someone!u@__no_testcap__"


class TopicCase(GuardTestCase):
    """Topic values set by a command outlive the test: reset them."""

    def tearDown(self):
        reset_topic()
        super().tearDown()


class TopicTestCase(TopicCase):
    def test_topic_set_on_op(self):
        self.assertEqual(self.chan.topic, TOPIC)

    def test_restored_after_a_change(self):
        self.join("eve", "cloak.example")
        self.feed(":eve!u@cloak.example TOPIC #test :free spam")
        self.assertEqual(self.lines(), [f"TOPIC #test {TOPIC}"])

    def test_ops_may_change_it_when_allowed(self):
        self.feed(":irc.test MODE #test +o op")
        self.feed(":op!u@h TOPIC #test :threatnet://example.org/x block=600")
        self.assertEqual(self.lines(), [f"TOPIC #test {TOPIC}"])
        with self.config_value("topic.opsMayChange", True):
            self.feed(":op!u@h TOPIC #test :threatnet://example.org/x block=600, tolerant")
            self.assertEqual(self.lines(), [])
            rules = self.guard._rules(self.irc, "#test")
            self.assertEqual((rules.block, rules.tolerant), (600, True))  # the topic is read

    def test_not_kept_when_disabled(self):
        with self.config_value("topic.keep", False):
            self.feed(":op!u@h TOPIC #test :anything")
            self.assertEqual(self.lines(), [])

    def test_show(self):
        self.assertEqual(self.command("tn topic"), [f"test: {TOPIC}"])
        self.feed(":irc.test TOPIC #test :other")
        self.lines()
        self.irc.state.channels["#test"].topic = "other"  # as if the restore had not arrived yet
        self.assertEqual(self.command("tn topic #test"), [
            f"test: other (configured: {TOPIC}; not held yet: no answer from the server, "
            f"attempt 1, next in 1 s)"])

    def test_admin_changes_it(self):
        replies = self.command('tn topic --block 1800 --flags "tolerant open"')
        wanted = "threatnet://threatnet.invalid/datn2004/ip-comment open, tolerant, block=1800"
        self.assertEqual(replies, [f"test: {wanted}"])
        self.assertEqual(self.chan.topic, wanted)
        self.command("tn topic --uri threatnet://example.org/tn")
        self.assertEqual(self.chan.topic, "threatnet://example.org/tn open, tolerant, block=1800")

    def test_bad_values(self):
        for opts in ("--block 0", "--block 99999999", "--uri http://x/y", "--uri threatnet://x",
                     '--flags "a=b"'):
            [reply] = self.command(f"tn topic {opts}")
            self.assertIn("Error", reply)
        self.assertEqual(self.chan.topic, TOPIC)

    def test_change_needs_admin(self):
        [reply] = self.command("tn topic #test --block 60", frm=NO_CAP)
        self.assertIn("admin", reply)
        self.assertEqual(self.chan.topic, TOPIC)
        [reply] = self.command("tn topic #test", frm=NO_CAP)  # anyone may look
        self.assertEqual(reply, f"someone: {TOPIC}")

    def test_topic_follows_the_config(self):
        value = conf.supybot.plugins.ThreatNetGuard.topic.block
        for specific in (value.get("#test"), value.get(":test").get("#test")):  # as Config does
            specific.setValue(900)
        timeFastForward(6)
        schedule.run()
        self.assertEqual(self.lines(), ["TOPIC #test threatnet://threatnet.invalid/datn2004/"
                                        "ip-comment block=900"])


class ModesTestCase(GuardTestCase):
    config = dict(GuardTestCase.config, **{GUARD + "modes": "mnt"})
    opped = False

    def test_set_on_op_and_restored(self):
        self.feed(":irc.test MODE #test +o test")
        self.assertEqual(self.lines()[0], "MODE #test +mnt")
        self.feed(":op!u@h MODE #test -m+s-t")
        self.assertEqual(self.lines(), ["MODE #test +mt"])
        self.feed(":op!u@h MODE #test -ip")  # not ours to keep
        self.assertEqual(self.lines(), [])

    def test_none_kept(self):
        with self.config_value("modes", ""):
            self.feed(":irc.test MODE #test +o test")
            self.assertNotIn("MODE", " ".join(self.lines()))
            self.feed(":op!u@h MODE #test -nt")
            self.assertEqual(self.lines(), [])

    def test_only_flag_letters(self):
        for bad in ("+m", "n t", "l5"):
            with self.assertRaises(registry.InvalidRegistryValue):
                conf.supybot.plugins.ThreatNetGuard.modes.set(bad)


class QuorumTopicTestCase(TopicCase):
    def test_topic_quorum_is_advertised_and_a_bad_one_refused(self):
        self.assertEqual(self.command("tn topic --quorum 3"), [f"test: {TOPIC}, quorum=3"])
        for bad in ("17", "0", "many"):
            [reply] = self.command(f"tn topic --quorum {bad}")
            self.assertIn(f"Error: --quorum {bad}", reply)
        self.assertEqual(self.chan.topic, f"{TOPIC}, quorum=3")


class RefusedTestCase(TopicCase):
    """Real servers refuse: InspIRCd answers a topic change in the same second as the last
    one with 437, a lost op gets 482. The bot sends again after 1, 2, 4, ... s until the
    channel shows what it keeps, and says why it is still trying. (In test mode what the
    bot sends is applied to the channel at once: the tests undo it where the server
    would have refused it.)"""

    ROGUE = "threatnet://evil.example/x block=5"

    def setUp(self):
        super().setUp()
        self.irc.afterConnect = True  # else Limnoria takes a 437 for its own nick's
        timeFastForward(1.1)  # what the bot set on op has held
        self.lines()

    def rogue_topic(self):
        self.feed(":irc.test MODE #test +o op")
        self.feed(f":op!u@h TOPIC #test :{self.ROGUE}")
        self.assertEqual(self.lines(), [f"TOPIC #test {TOPIC}"])
        self.chan.topic = self.ROGUE  # what the server kept

    def test_a_refused_topic_is_sent_again_until_it_holds(self):
        self.rogue_topic()
        with self.assertLogs("supybot", "WARNING") as logged:
            self.feed(":irc.test 437 test #test :Retry topic change later")
        self.assertIn("topic in #test on test refused: 437 Retry topic change later; "
                      "retrying in 1 s (attempt 1)", logged.output[0])
        self.assertEqual(self.lines(), [])
        timeFastForward(1.1)
        self.assertEqual(self.lines(), [f"TOPIC #test {TOPIC}"])
        self.chan.topic = self.ROGUE  # refused again: the next try 2 s later
        timeFastForward(1.1)
        self.assertEqual(self.lines(), [])
        timeFastForward(1)
        self.assertEqual(self.lines(), [f"TOPIC #test {TOPIC}"])
        timeFastForward(10)  # it held
        self.assertEqual(self.lines(), [])
        self.assertEqual(self.guard._channel(self.irc, "#test").retries.keys(), [])

    def test_the_guard_never_goes_by_a_topic_it_reverts(self):
        self.rogue_topic()
        self.assertEqual(self.guard._rules(self.irc, "#test").block, 3600)

    def test_a_change_by_someone_else_is_reverted_at_once_whatever_the_backoff(self):
        self.rogue_topic()
        timeFastForward(1.1)
        self.lines()
        self.chan.topic = self.ROGUE  # now waiting 2 s
        self.feed(":op!u@h TOPIC #test :another one")
        self.assertEqual(self.lines(), [f"TOPIC #test {TOPIC}"])

    def test_a_topic_too_long_for_the_server_is_not_cut_but_refused_with_the_reason(self):
        self.feed(":irc.test 005 test TOPICLEN=40 :are supported by this server")
        self.feed(":irc.test MODE #test +o op")
        with self.assertLogs("supybot", "WARNING") as logged:
            self.feed(":op!u@h TOPIC #test :other")
        reason = "the topic is 60 bytes and the server keeps 40 (TOPICLEN)"
        self.assertIn(reason, logged.output[0])
        self.assertEqual(self.lines(), [])
        self.assertIn(f"not held yet: {reason}", self.command("tn topic")[0])
        [reply] = self.command("tn topic --block 60")
        self.assertIn(f"Error: the topic is 58 bytes and the server keeps 40", reply)
        self.assertEqual(conf.supybot.plugins.ThreatNetGuard.topic.block.get("#test")(), 3600)
        timeFastForward(1.1)
        with self.assertLogs("supybot", "INFO") as logged:
            self.assertEqual(self.lines(), [])  # tried again, logged again
        self.assertIn("did not hold (the topic is 60 bytes", "\n".join(logged.output))

    def test_kept_modes_are_retried_too(self):
        self.feed(":op!u@h MODE #test -t")
        self.assertEqual(self.lines(), ["MODE #test +t"])
        del self.chan.modes["t"]
        self.feed(":irc.test 482 test #test :You must be a channel operator")
        timeFastForward(1.1)
        self.assertEqual(self.lines(), ["MODE #test +t"])
        timeFastForward(3)
        self.assertEqual(self.lines(), [])

    def test_a_refusal_for_nothing_pending_is_logged(self):
        with self.assertLogs("supybot", "WARNING") as logged:
            self.feed(":irc.test 482 test #test :You must be a channel operator")
        self.assertIn("the server refused a command in #test on test: 482",
                      "\n".join(logged.output))


class HelpTestCase(GuardTestCase):
    """`help tn` and `tn help` list the commands; in private, the one channel is the default."""

    def private(self, text, frm=None):
        self.irc.feedMsg(ircmsgs.privmsg(self.irc.nick, text, prefix=frm or self.prefix))
        return [m.args[1] for m in self.out() if m.command in ("PRIVMSG", "NOTICE")]

    def test_help_lists_the_subcommands(self):
        for text in ("help tn", "tn", "tn help"):
            [reply] = self.private(text)
            self.assertIn("ThreatNet commands: tn guard status, tn topic, tn whitelist add, "
                          "tn whitelist list, "
                          "tn whitelist reload, tn whitelist remove.", reply)
        [reply] = self.private("help tn whitelist")
        self.assertIn("tn whitelist add [<channel>] <ip|cidr|account:NAME>", reply)
        [reply] = self.private("tn whitelist")
        self.assertTrue(reply.startswith("tn whitelist add [<channel>] <ip|cidr|account:NAME>"),
                        reply)

    def test_a_newcomer_asking_for_help_in_the_channel_is_answered(self):
        self.join("newbie", "newbie.example")
        for text in ("@tn", "@tn help"):
            self.say("newbie", "newbie.example", text)
            [reply] = self.lines()
            self.assertTrue(reply.startswith("PRIVMSG #test newbie: ThreatNet commands:"), reply)

    def test_without_a_channel_the_one_guarded(self):
        self.assertEqual(self.private("tn whitelist list"),
                         ["192.0.2.0/24, 2001:db8::/48, account:bob"])
        self.assertEqual(self.private("tn topic"), [TOPIC])
        self.irc.feedMsg(ircmsgs.join("#two", prefix=self.prefix))
        with conf.supybot.plugins.ThreatNetGuard.enable.get("#two").context(True):
            [reply] = self.private("tn topic")
            self.assertIn("name the channel: ThreatNetGuard serves #test, #two", reply)

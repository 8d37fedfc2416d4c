"""ThreatNetCache as an Event Listener: trust rules, filters, dedupe, topic, expiry, status."""
import logging
import time

import supybot.conf as conf
import supybot.ircdb as ircdb
import supybot.ircmsgs as ircmsgs
from hypothesis import given, settings, strategies as st
from supybot.drivers import parseMsg
from supybot.utils.str import decode_raw_line

from cache_helpers import CacheTestCase, setting
from threatnet.language import ThreatError, parse_message
from threatnet_irc.addressing import may_address


def address_forms(ip):
    """Valid ways to write one address: canonical, exploded, upper case, IPv4-mapped."""
    if ip.version == 4:
        return [str(ip), f"::ffff:{ip}"]
    return [ip.compressed, ip.exploded, ip.compressed.upper()]


class TrustTestCase(CacheTestCase):
    def testVoicedSenderIsKept(self):
        self.hear("45.0.0.1 ssh brute force")
        self.assertStatus("seen 1", "kept 1,", "cache 1,")
        self.assertResponse("tn check 45.0.0.1",
                            'Current threat in #test: 45.0.0.1, reported by alice 0 s ago: '
                            '"ssh brute force"; expires in 3600 s')

    def testOppedAndHalfoppedSendersAreKept(self):
        self.join("oscar", "+o")
        self.join("hal", "+h")
        self.hear("45.0.0.1", nick="oscar")
        self.hear("45.0.0.2", nick="hal")
        self.assertStatus("kept 2,", "untrusted 0")

    def testUnvoicedSenderIsUntrusted(self):
        self.hear("45.0.0.1 trust me", nick="mallory")
        self.hear("45.0.0.2", nick="stranger")  # not even in the channel
        self.assertStatus("seen 2", "kept 0,", "untrusted 2", "cache 0,")
        self.assertResponse("tn check 45.0.0.1", "Not a current threat in #test: 45.0.0.1")

    def testDevoicedSenderIsUntrusted(self):
        self.server("MODE", self.channel, "-v", "alice")
        self.hear("45.0.0.1", nick="alice")
        self.assertStatus("untrusted 1")

    def testLimnoriaIgnoresDoNotSilenceAnAgent(self):
        """An agent Limnoria ignores (command flood, defaultIgnore) is still heard."""
        ircdb.ignores.add("alice!*@*")
        try:
            with conf.supybot.defaultIgnore.context(True):
                self.hear("45.0.0.1", nick="alice")
                self.hear("45.0.0.2", nick="mallory")
        finally:
            ircdb.ignores.remove("alice!*@*")
        self.assertStatus("kept 1,", "untrusted 1")

    def testStatusChangesApplyToTheNextLine(self):
        """The hot path memoises senders; any other message invalidates that."""
        self.hear("45.0.0.1", nick="alice")
        self.server("MODE", self.channel, "-v", "alice")
        self.hear("45.0.0.2", nick="alice")
        self.irc.feedMsg(ircmsgs.IrcMsg(prefix="alice!alice@198.51.100.9", command="NICK",
                                        args=("alice_",)))
        self.irc.feedMsg(ircmsgs.IrcMsg(prefix="mallory!mallory@198.51.100.9", command="NICK",
                                        args=("alice",)))
        self.server("MODE", self.channel, "+v", "alice_")
        self.hear("45.0.0.3", nick="alice")  # mallory, now called alice
        self.hear("45.0.0.4", nick="alice_")
        self.assertStatus("kept 2,", "untrusted 2")
        self.assertRegexp("tn check 45.0.0.4", "reported by alice_")

    def testAccountChangeAppliesToTheNextLine(self):
        with setting("trustedAccounts").context(["bob"]):
            self.tick()
            self.join("bob")
            self.irc.feedMsg(ircmsgs.IrcMsg(prefix="bob!bob@198.51.100.9", command="ACCOUNT",
                                            args=("bob",)))
            self.hear("45.0.0.1", nick="bob")
            self.irc.feedMsg(ircmsgs.IrcMsg(prefix="bob!bob@198.51.100.9", command="ACCOUNT",
                                            args=("*",)))
            self.hear("45.0.0.2", nick="bob")
        self.assertStatus("kept 1,", "untrusted 1")

    def testAccountTagIsAuthoritative(self):
        self.irc.state.capabilities_ack.add("account-tag")
        with setting("trustedAccounts").context(["bob"]):
            self.tick()
            self.hear("45.0.0.1", nick="bob", tags={"account": "bob"})
            self.hear("45.0.0.2", nick="bob")  # no tag: logged out now
        self.assertStatus("kept 1,", "untrusted 1")

    def testTrustAll(self):
        with setting("trust").context("all"):
            self.tick()
            self.hear("45.0.0.1", nick="mallory")
        self.assertStatus("kept 1,")

    def testTrustedAccountViaAccountTag(self):
        self.irc.state.capabilities_ack.add("account-tag")
        with setting("trustedAccounts").context(["Bob"]):
            self.tick()
            self.hear("45.0.0.1", nick="bob", tags={"account": "bob"})
            self.hear("45.0.0.2", nick="eve", tags={"account": "eve"})
        self.assertStatus("kept 1,", "untrusted 1")
        self.assertRegexp("tn check 45.0.0.1", r"reported by bob \(account bob\)")

    def testTrustedAccountViaExtendedJoin(self):
        self.irc.state.capabilities_ack.add("extended-join")
        self.irc.feedMsg(ircmsgs.IrcMsg(prefix="carol!c@198.51.100.7", command="JOIN",
                                        args=(self.channel, "carol", "Carol")))
        with setting("trustedAccounts").context(["carol"]):
            self.tick()
            self.hear("45.0.0.1", nick="carol")
        self.assertStatus("kept 1,")

    def testAccountTagIsIgnoredUnlessTheServerAckedAccountTag(self):
        # A client-sent tag a bouncer or lax server passes on; Limnoria's IrcState
        # records it anyway, so the listener must not read accounts from there.
        with setting("trustedAccounts").context(["ammobot"]):
            self.tick()
            self.hear("45.0.0.1 spoofed", nick="mallory", tags={"account": "ammobot"})
            self.hear("45.0.0.2 spoofed", nick="mallory")  # the tag is in IrcState now
        self.assertStatus("kept 0,", "untrusted 2")

    def testAccountsModeIgnoresVoice(self):
        self.irc.state.capabilities_ack.add("account-tag")
        with setting("trust").context("accounts"), setting("trustedAccounts").context(["bob"]):
            self.tick()
            self.hear("45.0.0.1", nick="alice")
            self.hear("45.0.0.2", nick="bob", tags={"account": "bob"})
        self.assertStatus("kept 1,", "untrusted 1")

    def testAccountsModeWithoutAccountsTrustsNobody(self):
        with setting("trust").context("accounts"):
            self.tick()
            self.hear("45.0.0.1", nick="alice")
        self.assertStatus("kept 0,", "untrusted 1")


class FilterTestCase(CacheTestCase):
    def testBogonsAreFiltered(self):
        for ip in ("10.1.2.3", "192.168.0.1", "127.0.0.1", "2001:db8::1", "fe80::1"):
            self.hear(f"{ip} nope")
        self.assertStatus("seen 5", "kept 0,", "filtered 5", "cache 0,")

    def testDiscardIsConfigurable(self):
        with setting("discard").context(["45.0.0.0/16"]):
            self.tick()
            self.hear("45.0.9.9")
            self.hear("10.0.0.1")
        self.assertStatus("kept 1,", "filtered 1")

    def testDuplicateIsCountedNotKept(self):
        self.hear("45.0.0.1 first")
        self.join("bob", "+v")
        self.hear("45.0.0.1 second", nick="bob")
        self.assertStatus("seen 2", "kept 1,", "discarded 1 (duplicate 1,")
        self.assertRegexp("tn check 45.0.0.1", 'alice.*"first"')

    def testIpv6(self):
        self.hear("2a00:1450:4001::1 web scan")
        self.assertRegexp("tn check 2A00:1450:4001:0::1",
                          r"Current threat in #test: 2a00:1450:4001::1, reported by alice")

    def testCheckRejectsBadAddresses(self):
        self.assertError("tn check 45.0.0.256")
        self.assertRegexp("tn check 010.0.0.1", "not a valid IP address: leading zero")
        self.assertRegexp("tn check 10.1", "not a valid IP address")
        self.assertRegexp("tn check 45.0.0.0/24", "CIDR not allowed")

    def testNotAThreatNetChannel(self):
        with setting("enable").context(False):
            self.tick()
            self.hear("45.0.0.1")
            self.assertRegexp("tn status", "#test is not a ThreatNet channel")
            self.assertRegexp("tn check 45.0.0.1", "not a ThreatNet channel")
        self.tick()
        self.assertStatus("seen 0")


class TopicTestCase(CacheTestCase):
    def testConfigBlockPeriodWithoutTopic(self):
        self.assertStatus("block 3600 s", "quiet period: 3602 s left")
        with setting("blockPeriod").context(900):
            self.tick()
            self.assertStatus("block 900 s")

    def testTopicChangeSetsBlockPeriodLive(self):
        self.hear("45.0.0.1")
        self.server("TOPIC", self.channel, "threatnet://example.net/threatnet block=600, open")
        self.assertStatus("block 600 s")
        self.assertRegexp("tn check 45.0.0.1", "expires in 600 s")
        self.tick(601)
        self.assertResponse("tn check 45.0.0.1", "Not a current threat in #test: 45.0.0.1")

    def testTopicWithoutBlockUsesProtocolDefault(self):
        with setting("blockPeriod").context(900):
            self.tick()
            self.server("TOPIC", self.channel, "threatnet://example.net/threatnet open")
            self.assertStatus("block 3600 s")

    def testInvalidTopicFallsBackToConfig(self):
        self.server("TOPIC", self.channel, "threatnet://example.net/t block=60")
        self.assertStatus("block 60 s")
        for topic in ("welcome to #test", "threatnet://example.net/t block=0",
                      "http://example.net/t block=60", ""):
            self.server("TOPIC", self.channel, topic)
            self.assertStatus("block 3600 s")

    def testTopicOnJoin(self):
        self.irc.feedMsg(ircmsgs.join("#other", prefix=self.prefix))
        self.server("332", self.nick, "#other", "threatnet://example.net/t block=120")
        self.server("366", self.nick, "#other", "End of /NAMES list.")
        self.sent()  # the bot's MODE and WHO queries on join
        self.assertRegexp("tn status #other", "block 120 s, reported 0, quiet period: 122 s left")


class TopicHoldTestCase(CacheTestCase):
    """A new topic counts once it held topicHold seconds: the channel bot reverts a topic
    nobody may set within a second or so, and such a topic never counts."""

    config = {**CacheTestCase.config, "supybot.plugins.ThreatNetCache.topicHold": 30}
    KEPT = "threatnet://example.net/t block=1200"

    def setUp(self):
        super().setUp()
        self.server("TOPIC", self.channel, self.KEPT)
        self.tick(31)
        self.assertStatus("block 1200 s")

    def testARevertedTopicNeverCounts(self):
        self.server("TOPIC", self.channel, "threatnet://evil.example/x block=5")
        self.assertStatus("block 1200 s", "a new topic counts in 30 s")
        self.tick(2)
        self.server("TOPIC", self.channel, self.KEPT)  # the channel bot reverted it
        self.tick(60)
        status = self.status()
        self.assertIn("block 1200 s", status)
        self.assertNotIn("new topic", status)

    def testATopicThatHeldCounts(self):
        self.server("TOPIC", self.channel, "no threatnet topic")
        self.tick(29)
        self.assertStatus("block 1200 s", "a new topic counts in 1 s")
        self.tick(1.5)
        self.assertStatus("block 3600 s")  # the setting: not a ThreatNet topic

    def testOnJoinTheTopicCountsFromWhenItWasSet(self):
        for channel, age in (("#old", 3600), ("#new", 10)):
            self.irc.feedMsg(ircmsgs.join(channel, prefix=self.prefix))
            self.server("332", self.nick, channel, "threatnet://example.net/t block=120")
            # whole seconds, and the test takes a while: 19-21 s left of the 30 s hold
            self.server("333", self.nick, channel, "guard!g@h", str(int(time.time() - age)))
            self.server("366", self.nick, channel, "End of /NAMES list.")
        self.sent()
        self.assertRegexp("tn status #old", "block 120 s")
        self.assertRegexp("tn status #new", "block 3600 s.*a new topic counts in (19|20|21) s")


class RejoinTestCase(CacheTestCase):
    """Out of its channel (kicked, then banned), the agent joins again with backoff, and at
    once when invited: the channel bot invites an agent back when it lifts its ban."""

    def setUp(self):
        super().setUp()
        conf.supybot.networks.test.channels.setValue([self.channel])  # where it is to be
        self.server("KICK", self.channel, self.nick, "flood")
        self.sent()

    def tearDown(self):
        conf.supybot.networks.test.channels.setValue([])
        super().tearDown()

    def joins(self):
        return [m.args[0] for m in self.sent() if m.command == "JOIN"]

    def testJoinsAgainWithBackoffUntilIn(self):
        self.tick(9)
        self.assertEqual(self.joins(), [])
        self.tick(1.5)
        self.assertEqual(self.joins(), [self.channel])
        with self.assertLogs("supybot", "WARNING") as logged:
            self.server("474", self.nick, self.channel, "Cannot join channel (you're banned)")
        self.assertIn("Not in #test on test (474 Cannot join channel (you're banned)): joining "
                      "again in 10 s, or when invited", "\n".join(logged.output))
        self.tick(10.5)
        self.assertEqual(self.joins(), [self.channel])
        self.server("474", self.nick, self.channel, "Cannot join channel (you're banned)")
        self.tick(11)
        self.assertEqual(self.joins(), [])  # then 20 s, 40 s, ... up to 300 s
        self.tick(10)
        self.assertEqual(self.joins(), [self.channel])
        self.irc.feedMsg(ircmsgs.join(self.channel, prefix=self.prefix))
        self.server("366", self.nick, self.channel, "End of /NAMES list.")
        self.sent()
        self.tick(300)
        self.assertEqual(self.joins(), [])

    def testJoinsWhenInvited(self):
        self.irc.feedMsg(ircmsgs.IrcMsg(prefix="guard!g@h", command="INVITE",
                                        args=(self.nick, self.channel)))
        self.assertEqual(self.joins(), [self.channel])
        self.irc.feedMsg(ircmsgs.IrcMsg(prefix="guard!g@h", command="INVITE",
                                        args=(self.nick, "#elsewhere")))
        self.assertEqual(self.joins(), [])  # not one it listens to


class ExpiryTestCase(CacheTestCase):
    def testQuietPeriodThenSynced(self):
        self.assertStatus("quiet period: 3602 s left")
        self.tick(1000)
        self.assertStatus("quiet period: 2602 s left")
        self.synced()

    def testLookupsAreLazyAndExpiryRunsFromTimer(self):
        self.hear("45.0.0.1")
        self.tick(1800)
        self.hear("45.0.0.2")
        self.tick(1800)
        # 45.0.0.1 is past its block period: gone for lookups before expiry ran.
        self.assertResponse("tn check 45.0.0.1", "Not a current threat in #test: 45.0.0.1")
        self.assertRegexp("tn check 45.0.0.2", "expires in 1800 s")
        self.assertStatus("cache 1,", "expired 1,")
        self.hear("45.0.0.1 again")  # current no more: kept anew
        self.assertStatus("kept 3,", "duplicate 0")

    def testStatusRate(self):
        for i in range(4):
            self.hear(f"45.0.0.{i + 1}")
        self.tick(2)
        self.assertRegexp("tn status", r"online \d s, seen 4 \(\d\.\d\d/s\)")


class HotPathTestCase(CacheTestCase):
    def testLinesThatCannotAddressTheBotAreTaggedSo(self):
        """A threat line is tagged as no command, as Limnoria's addressed() would, so
        Owner skips its costly test; anything that might address the bot is left to it."""
        def line(text):
            msg = ircmsgs.privmsg(self.channel, text, prefix="alice!a@h.example")
            self.irc._tagMsg(msg)  # msg.channel, as feedMsg sets it before the inFilters
            return msg, may_address(self.irc, msg, {})

        for text in ("45.0.0.1 scan", "2001:db8::1", " 45.0.0.2", "hello test"):
            msg, may = line(text)
            self.assertEqual((may, msg.tagged("addressed")), (False, ""), text)
        for text in ("@tn feeds", "test: tn feeds", "TEST, tn feeds", "test is a nice bot",
                     "tests: no"):
            msg, may = line(text)
            self.assertEqual((may, msg.tagged("addressed")), (True, None), text)
        with conf.supybot.reply.whenNotAddressed.context(True):
            self.assertEqual(line("45.0.0.1 scan")[1], True)
        for command in ("@tn status", "test: tn status"):  # through the plugin's inFilter
            self.irc.feedMsg(ircmsgs.privmsg(self.channel, command, prefix="alice!a@h.example"))
            reply = self.irc.takeMsg()
            self.assertTrue(reply is not None and "online" in reply.args[1], command)
        msg = ircmsgs.privmsg(self.channel, "45.0.0.3 scan", prefix="alice!a@h.example")
        self.irc.feedMsg(msg)
        self.assertEqual(msg.tagged("addressed"), "")

    @settings(max_examples=100, deadline=None)
    @given(ip=st.ip_addresses(), form=st.integers(0, 2), lead=st.sampled_from(["", " ", "\t "]),
           comment=st.text(st.characters(blacklist_characters="\r\n\x00"), max_size=20))
    def testEveryParsableLineReachesTheChain(self, ip, form, lead, comment):
        """The cheap chatter exit never drops a line parse_message accepts."""
        forms = address_forms(ip)
        line = f"{lead}{forms[form % len(forms)]} {comment}"
        try:
            parse_message(line)
        except ThreatError:
            return
        heard = self.cb.channel("test", "#test").listener.heard  # status is too slow here
        seen = sum(heard.values())
        self.hear(line, nick="mallory")  # untrusted lines are counted as seen too
        self.assertEqual(sum(heard.values()), seen + 1)


class BadInputTestCase(CacheTestCase):
    """Nothing a channel can send raises out of a hook or gets an answer."""

    def setUp(self):
        super().setUp()
        self.errors = []
        self.formatter = logging.Formatter()
        handler = logging.Handler(logging.ERROR)
        handler.emit = self.errors.append
        logging.getLogger("supybot").addHandler(handler)
        self.addCleanup(logging.getLogger("supybot").removeHandler, handler)

    def testHostileLines(self):
        with setting("trust").context("all"):
            self.tick()
            for line in ["hello there", "45.0.0.256 bad", "45.0.0 short", "010.1.1.1 zero",
                         "0x2d.0.0.1 hex", "45.0.0.1/24 cidr", "fe80::1%eth0 zone",
                         "\x0245.0.0.1\x02 bold", "\x01ACTION 45.0.0.1\x01",
                         "\x01VERSION\x01", "４５.0.0.1 fullwidth", ":::: colons",
                         "a" * 5000, "45.0.0.9 " + "x" * 5000,
                         "abc", "dead:beef", "\u202e45.0.0.1", " ", "\t45.0.0.10\ttab"]:
                self.hear(line, nick="mallory")
            raw = [b":mallory!m@h PRIVMSG #test :45.0.0.11 caf\xe9 \xff\xfe",
                   b"@account=;+x=\\:y :mallory!m@h PRIVMSG #test :45.0.0.12",
                   b":mallory!m@h PRIVMSG #test",
                   b":mallory!m@h PRIVMSG @#test :45.0.0.13 statusmsg",
                   b":irc.example.net PRIVMSG #test :45.0.0.15 from a server",
                   b":mallory!m@h TOPIC #test",
                   b":irc.example.net 332 test #test",
                   b":irc.example.net 366 test",
                   b":mallory!m@h KICK #test",
                   b":mallory!m@h PART #nowhere"]
            for line in raw:
                self.irc.feedMsg(parseMsg(decode_raw_line(line)))
                self.assertIsNone(self.irc.takeMsg())
        # Limnoria's own plugins choke on some of these; ours must not.
        ours = [text for text in map(self.formatter.format, self.errors)
                if "ThreatNetCache" in text]
        self.assertEqual(ours, [])
        status = self.status()
        # Kept: the tab-separated, non-UTF-8, tagged, statusmsg and server lines.
        self.assertIn("kept 5,", status)
        self.assertRegexp("tn check 45.0.0.11", "caf\ufffd")


class DiscoveryTestCase(CacheTestCase):
    """`tn`, `tn help` and `help tn` list the commands; in private, a bot that listens to
    one channel needs no channel named."""

    def private(self, text):
        self.irc.feedMsg(ircmsgs.privmsg(self.nick, text, prefix=self.prefix))
        return [m.args[1] for m in self.sent() if m.command in ("PRIVMSG", "NOTICE")]

    def testHelpListsTheCommands(self):
        for text in ("help tn", "tn", "tn help"):
            [reply] = self.private(text)
            self.assertTrue(reply.startswith(
                "ThreatNet commands: tn bridge status, tn check, tn feeds, tn forget, tn list, "
                "tn overview, tn report, tn responders, tn status, tn withdraw. help tn "
                "<command>"), reply)

    def testTheOneChannelIsTheDefault(self):
        [reply] = self.private("tn status")
        self.assertTrue(reply.startswith("#test: online"), reply)
        self.irc.feedMsg(ircmsgs.join("#two", prefix=self.prefix))
        self.server("366", self.nick, "#two", "End of /NAMES list.")
        [reply] = self.private("tn status")
        self.assertIn("name the channel: ThreatNetCache serves #test, #two", reply)
        [reply] = self.private("tn status #two")
        self.assertTrue(reply.startswith("#two: online"), reply)

"""ThreatNetCache as a Threat Provider: `tn report`, its refusals, and the paced outbox."""
import supybot.ircmsgs as ircmsgs

from cache_helpers import CacheTestCase, setting

NOCAP = "boss!b@__no_testcap__"


class ReportTestCase(CacheTestCase):
    def setUp(self):
        super().setUp()
        self.synced()

    def testReportPostsCanonicalLineAndRecordsIt(self):
        self.feedMsg("@tn report 2A00:1450:0:0::9 ssh brute force")
        line, reply = self.sent()
        self.assertEqual((line.args[0], line.args[1]), ("#test", "2a00:1450::9 ssh brute force"))
        self.assertEqual(reply.args[1], "test: Reported to #test: 2a00:1450::9 ssh brute force")
        self.assertRegexp("tn check 2a00:1450::9", "reported by test 0 s ago")
        self.assertStatus("reported 1,", "cache 1,", "seen 0")

    def testReportWithoutComment(self):
        self.assertEqual(self.say("tn report 45.0.0.9"),
                         ["45.0.0.9", "test: Reported to #test: 45.0.0.9"])

    def testReportFromPrivateMessageNamesTheChannel(self):
        self.irc.feedMsg(ircmsgs.privmsg(
            "test", "tn report #test 45.0.0.9 seen in private", prefix=self.prefix))
        texts = [m.args[1] for m in self.sent()]
        self.assertEqual(texts, ["45.0.0.9 seen in private",
                                 "Reported to #test: 45.0.0.9 seen in private"])

    def testReportNeedsAdmin(self):
        sent = self.say("tn report 45.0.0.9", frm=NOCAP)
        self.assertEqual(len(sent), 1)
        self.assertIn("You don't have the #test,threatnet capability", sent[0])
        self.assertResponse("tn check 45.0.0.9", "Not a current threat in #test: 45.0.0.9")

    def testRefusedDuringQuietPeriod(self):
        self.server("TOPIC", self.channel, "threatnet://example.net/t block=7200")
        self.assertEqual(self.say("tn report 45.0.0.9"),
                         ["test: Error: #test is in its quiet period: 3599 s left"])

    def testRefusedWhenCurrent(self):
        self.hear("45.0.0.9 heard first")
        self.assertEqual(self.say("tn report 45.0.0.9 me too"),
                         ['test: Error: 45.0.0.9 is already current in #test, reported by '
                          'alice 0 s ago: "heard first"; expires in 3600 s'])

    def testRefusedForBogons(self):
        for ip in ("10.0.0.1", "192.0.2.1", "2001:db8::1", "::1"):
            self.assertEqual(self.say(f"tn report {ip}"),
                             [f"test: Error: {ip} is in a discarded network (BOGONS)"])

    def testRefusedForOwnNetworks(self):
        with setting("ownNetworks").context(["45.0.0.0/24", "2a00:1450::/32"]):
            self.tick()
            self.assertEqual(self.say("tn report 45.0.0.9"),
                             ["test: Error: 45.0.0.9 is in ownNetworks, never reported"])
            self.assertEqual(self.say("tn report 45.0.1.9")[0], "45.0.1.9")

    def testRefusedInModeratedChannelUnlessVoiced(self):
        self.server("MODE", self.channel, "+m")
        self.assertEqual(self.say("tn report 45.0.0.9"),
                         ["test: Error: #test is moderated (+m) and I am not voiced or opped "
                          "there"])
        self.server("MODE", self.channel, "+v", self.nick)
        self.assertEqual(self.say("tn report 45.0.0.9")[0], "45.0.0.9")

    def testInvalidAddress(self):
        self.assertEqual(self.say("tn report 45.0.0.0/8 net"),
                         ["test: Error: '45.0.0.0/8' is not a valid IP address: "
                          "CIDR not allowed"])

    def testNotAThreatNetChannel(self):
        with setting("enable").context(False):
            self.tick()
            self.assertRegexp("tn report 45.0.0.9", "not a ThreatNet channel")


class OutboxTestCase(CacheTestCase):
    config = {"supybot.plugins.ThreatNetCache.enable": True,
              "supybot.plugins.ThreatNetCache.outbox.burst": 2,
              "supybot.plugins.ThreatNetCache.outbox.rate": 1.0,
              "supybot.plugins.ThreatNetCache.outbox.size": 3}

    def setUp(self):
        super().setUp()
        self.synced()

    def testBurstThenPacedWithDropOldest(self):
        self.assertEqual(self.say("tn report 45.0.0.1")[0], "45.0.0.1")
        self.assertEqual(self.say("tn report 45.0.0.2")[0], "45.0.0.2")
        for n, waiting in ((3, 1), (4, 2), (5, 3), (6, 3)):
            self.assertEqual(self.say(f"tn report 45.0.0.{n}"),
                             [f"test: Queued for #test ({waiting} waiting): 45.0.0.{n}"])
        self.assertEqual(self.say("tn report 45.0.0.4"),
                         ["test: Error: 45.0.0.4 is already queued for #test"])
        self.assertResponse("tn check 45.0.0.4",
                            "Not a current threat in #test: 45.0.0.4 (queued for report)")
        self.tick()
        self.assertEqual([m.args[1] for m in self.sent()], ["45.0.0.4"])
        self.assertRegexp("tn feeds", r"outbox: waiting 2, sent 3, dropped 1")
        # The dropped report is no longer pending: it may be reported again.
        self.assertRegexp("tn report 45.0.0.3", r"Queued for #test \(3 waiting\)")

    def testQueuedThreatHeardFromAnotherAgentIsNotSent(self):
        self.say("tn report 45.0.0.1")
        self.say("tn report 45.0.0.2")
        self.say("tn report 45.0.0.3")
        self.hear("45.0.0.3 faster")
        self.tick()
        self.assertEqual(self.sent(), [])
        self.assertRegexp("tn check 45.0.0.3", "reported by alice")
        self.assertRegexp("tn feeds", r"refused: duplicate 1;")

    def testQueueDropsOnPart(self):
        self.say("tn report 45.0.0.1")
        self.say("tn report 45.0.0.2")
        self.say("tn report 45.0.0.3")
        self.irc.feedMsg(ircmsgs.part(self.channel, prefix=self.prefix))
        self.tick()
        self.assertEqual(self.sent(), [])

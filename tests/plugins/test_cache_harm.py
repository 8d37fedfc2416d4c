"""ThreatNetCache and the minimisation of harm: protected networks, the bound on current
threats, the quorum, and taking threats back (tn list, tn forget, withdrawals)."""
from cache_helpers import CacheTestCase, ResponderTestCase, setting


class ProtectTestCase(ResponderTestCase):
    def testProtectedNetworksAreNeverCachedNorResponded(self):
        # seen: with ownNetworks=45.0.0.0/24 a voiced agent's 45.0.0.9 was cached and
        # handed to the responders; ownNetworks only stops this agent's own reports
        fake = self.fake()
        with setting("protect").context(["45.0.0.0/24"]):
            self.tick()
            self.hear("45.0.0.9 our own server")
            self.assertStatus("kept 0,", "protected 1")
        self.idle()
        self.assertEqual(fake.added, [])

    def testLoopbackIsProtectedByDefault(self):
        with setting("discard").context([]):
            self.tick()
            self.hear("127.0.0.1 localhost")
            self.hear("::1 localhost")
        self.assertStatus("kept 0,", "protected 2")

    def testDiscardChangeTakesCurrentThreatsBackAtOnce(self):
        # seen: after `config channel #threatnet ...discard BOGONS 45.155.205.240/32`,
        # tn check still said current and rbldnsd still answered for it
        fake = self.fake()
        self.hear("45.155.205.240 scan")
        self.idle()
        with setting("discard").context(["BOGONS", "45.155.205.240/32"]):
            self.tick()
            self.assertRegexp("tn check 45.155.205.240", "Not a current threat")
        self.idle()
        self.assertEqual([t.ip for t in fake.removed], ["45.155.205.240"])


class BadSettingsTestCase(CacheTestCase):
    def testAProtectEntryMustBeANetwork(self):
        self.assertRegexp("config plugins.ThreatNetCache.protect 10.0.0.0/33",
                          "bad network '10.0.0.0/33'")
        self.assertRegexp("config plugins.ThreatNetCache.protect server",
                          "unknown network keyword 'server'")
        self.assertRegexp("config plugins.ThreatNetCache.quorum 17", "Error")
        self.assertRegexp("config plugins.ThreatNetCache.maxThreats 0", "Error")


class BoundTestCase(CacheTestCase):
    def testAFullCacheRefusesNewThreats(self):
        with setting("maxThreats").context(2):
            self.tick()
            for n in range(1, 5):
                self.hear(f"45.0.0.{n} flood")
        self.assertStatus("cache 2,", "full 2")
        self.assertRegexp("tn check 45.0.0.1", "Current threat")


class QuorumTestCase(ResponderTestCase):
    def setUp(self):
        super().setUp()
        self.join("bob", "+v")
        self.server("332", self.nick, self.channel, "threatnet://x.example/y quorum=2")

    def testActedOnOnceTwoReportersSaidIt(self):
        self.irc.state.capabilities_ack.add("account-tag")
        fake = self.fake()
        self.hear("45.0.0.1 ssh", tags={"account": "alice"})
        self.idle()
        self.assertEqual(fake.added, [])
        self.assertRegexp("tn check 45.0.0.1", r"1 of 2 reports \(not acted on yet\)")
        self.assertRegexp("tn list", r"45\.0\.0\.1 \(alice, \d+ s ago, 1 of 2\)")
        self.hear("45.0.0.1 ssh too", nick="bob")
        self.idle()
        self.assertEqual([t.ip for t in fake.added], ["45.0.0.1"])
        self.assertRegexp("tn check 45.0.0.1", r"2 of 2 reports \(acted on\)")
        self.assertStatus("corroborated 1")

    def testTheSettingOverridesTheTopic(self):
        fake = self.fake()
        with setting("quorum").context(1):
            self.tick()
            self.hear("45.0.0.1 ssh")
            self.idle()
        self.assertEqual([t.ip for t in fake.added], ["45.0.0.1"])

    def testABadQuorumWordIsNoThreatNetTopic(self):
        self.server("332", self.nick, self.channel, "threatnet://x.example/y quorum=many")
        self.hear("45.0.0.1 ssh")
        self.assertNotRegexp("tn check 45.0.0.1", "of 2 reports")


class UndoTestCase(ResponderTestCase):
    def testListNewestFirstAndBounded(self):
        for n in range(1, 13):
            self.hear(f"45.0.0.{n} scan")
            self.tick(1)
        self.assertRegexp("tn list", r"^#test: 12 current: 45\.0\.0\.12 \(alice, 1 s ago\), "
                                     r"45\.0\.0\.11 .*, and 2 more$")

    def testForgetTakesItOutOfTheResponders(self):
        fake = self.fake()
        self.hear("45.0.0.1 scan")
        self.idle()
        # __no_testcap__: not the owner
        self.assertIn("You don't have the #test,threatnet capability",
                      self.say("tn forget 45.0.0.1", frm="boss!b@__no_testcap__")[0])
        self.assertRegexp("tn forget 45.0.0.1", "Forgotten in #test: 45.0.0.1, reported by "
                                                "alice")
        self.idle()
        self.assertEqual([t.ip for t in fake.removed], ["45.0.0.1"])
        self.assertRegexp("tn check 45.0.0.1", "Not a current threat")
        self.assertError("tn forget 45.0.0.1")

    def testWithdrawalByTheReporterOnly(self):
        fake = self.fake()
        self.hear("45.0.0.1 scan")
        self.join("carol", "+v")
        self.hear("withdraw 45.0.0.1 not yours", nick="carol")
        self.assertRegexp("tn check 45.0.0.1", "Current threat")
        self.hear("withdraw 45.0.0.1 false positive")  # alice, from the same host
        self.assertRegexp("tn check 45.0.0.1", "Not a current threat")
        self.assertStatus("withdrawals 1 (refused 1)")
        self.idle()
        self.assertEqual([t.ip for t in fake.removed], ["45.0.0.1"])

    def testWithdrawCommandPostsTheLine(self):
        self.synced()
        self.say("tn report 45.0.0.9 mine")
        self.assertEqual(self.say("tn withdraw 45.0.0.9 false positive"),
                         ["withdraw 45.0.0.9 false positive",
                          "test: Withdrawn in #test: withdraw 45.0.0.9 false positive"])
        self.assertRegexp("tn check 45.0.0.9", "Not a current threat")
        self.assertError("tn withdraw 45.0.0.9")  # not current any more

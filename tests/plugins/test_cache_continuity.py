"""ThreatNetCache continuity: nothing a feed reads is lost while the agent may not
report (kicked, parted, disconnected, in its quiet period, restarted), and a rejoin
within restartGrace keeps the cache and the synced state."""
import json
import os
import shutil
import tempfile

import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
from prometheus_client.parser import text_string_to_metric_families
from supybot.test import timeFastForward

from cache_helpers import CacheTestCase, setting


class ContinuityTestCase(CacheTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="threatnet-continuity-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.log = os.path.join(self.dir, "log")
        open(self.log, "w").close()
        context = setting("feeds").context([f"plain:{self.log}"])
        context.__enter__()
        self.addCleanup(context.__exit__, None, None, None)
        self.tick()

    def append(self, *lines):
        with open(self.log, "a") as f:
            f.write("".join(line + "\n" for line in lines))

    def posted(self):
        self.tick()
        return [m.args[1] for m in self.sent() if m.command == "PRIVMSG"]

    def rejoin(self):
        self.irc.feedMsg(ircmsgs.join(self.channel, prefix=self.prefix))
        self.server("366", self.nick, self.channel, "End of /NAMES list.")
        self.sent()

    def state(self):
        path = conf.supybot.directories.data.dirize("ThreatNetCache/test/feeds/%23test.json")
        with open(path) as f:
            return json.load(f)

    def testKickedAgentHoldsItsFindsAndReportsThemOnceBack(self):
        self.synced()
        self.hear("45.0.0.1 heard before the kick")
        self.irc.feedMsg(ircmsgs.kick(self.channel, self.nick, prefix="op!o@h"))
        self.append("45.7.0.1 while kicked", "45.0.0.1 current already")
        self.assertEqual(self.posted(), [])
        self.tick(5)
        self.rejoin()
        self.assertStatus("cache 1,", "synced")  # back within restartGrace
        self.assertEqual(self.posted(), ["45.7.0.1 while kicked"])
        self.assertEqual(self.posted(), [])
        self.assertRegexp("tn feeds", r"lines read 2, .*refused: duplicate 1; .*held: "
                                      r"waiting 0, released 1, current 1,")

    def testPartLongerThanTheGraceHoldsUntilTheQuietPeriodEnds(self):
        self.synced()
        self.irc.feedMsg(ircmsgs.part(self.channel, prefix=self.prefix))
        self.append("45.7.0.2 while parted")
        self.tick(120)
        self.rejoin()
        self.assertStatus("quiet period: 3602 s left")
        self.assertEqual(self.posted(), [])
        self.assertRegexp("tn feeds", r"held: waiting 1 \(quiet 1\)")
        self.tick(3602)
        self.assertEqual(self.posted(), ["45.7.0.2 while parted"])

    def testReportsReleasedWhileDisconnectedWaitForTheRejoin(self):
        self.synced()
        self.append("45.7.0.3 found just before the link dropped")
        self.cb._poll_feeds(self.cb.channel("test", "#test").provider, False)  # queued
        self.irc.reset()  # the driver reconnects: the channel state is gone
        self.assertEqual(self.posted(), [])
        self.rejoin()
        self.assertEqual(self.posted(), ["45.7.0.3 found just before the link dropped"])

    def testRestartGoesOnWhereTheFeedWas(self):
        self.synced()
        self.append("45.7.0.4 before")
        self.assertEqual(self.posted(), ["45.7.0.4 before"])
        self.assertNotError("unload ThreatNetCache")
        self.append("45.7.0.5 while the bot was down")
        timeFastForward(30)
        self.assertNotError("load ThreatNetCache")
        self.assertStatus("synced")
        self.assertEqual(self.posted(), ["45.7.0.5 while the bot was down"])

    def testHeldFindsSurviveARestart(self):
        self.append("45.7.0.6 in the quiet period")
        self.assertEqual(self.posted(), [])
        self.assertNotError("unload ThreatNetCache")
        self.assertEqual(self.state()["held"][0][:2], ["45.7.0.6", "in the quiet period"])
        self.assertNotError("load ThreatNetCache")
        self.tick(3602)
        self.assertEqual(self.posted(), ["45.7.0.6 in the quiet period"])

    def testAFeedStartsAtTheEndAfterMoreThanABlockPeriod(self):
        self.synced()
        self.assertNotError("unload ThreatNetCache")
        self.append("45.7.0.7 long ago")
        timeFastForward(3601)
        self.assertNotError("load ThreatNetCache")
        self.tick(3603)
        self.assertEqual(self.posted(), [])
        self.append("45.7.0.8 new")
        self.assertEqual(self.posted(), ["45.7.0.8 new"])

    def testADisabledChannelClosesItsFeeds(self):
        self.irc.feedMsg(ircmsgs.part(self.channel, prefix=self.prefix))
        self.tick()
        self.assertEqual(list(self.cb._away), [("test", "#test")])
        with setting("enable").context(False):
            self.tick()
            self.assertEqual(self.cb._away, {})

    def testHeldFindsAreInTheMetrics(self):
        from ThreatNetCache import metrics
        self.append("45.7.0.9 in the quiet period")
        self.tick()
        body, _ = metrics.render(self.cb.status(), {}, 0, 0, None)
        samples = {(s.name, s.labels.get("reason") or s.labels.get("outcome")): s.value
                   for family in text_string_to_metric_families(body.decode())
                   for s in family.samples}
        self.assertEqual(samples["threatnet_reports_held", "quiet"], 1)
        self.assertEqual(samples["threatnet_reports_held_outcomes_total", "held"], 1)
        self.assertEqual(samples["threatnet_reports_held_outcomes_total", "released"], 0)

    def testABannedAgentTriesToJoinAgainAndReportsOnceIn(self):
        configured = conf.supybot.networks.get("test").channels.context({self.channel})
        configured.__enter__()
        self.addCleanup(configured.__exit__, None, None, None)
        self.server("474", self.nick, "#elsewhere", "Cannot join channel (+b)")  # not ours
        self.synced()
        self.irc.feedMsg(ircmsgs.kick(self.channel, self.nick, prefix="op!o@h"))
        self.sent()
        self.server("474", self.nick, self.channel, "Cannot join channel (+b)")
        self.append("45.7.1.1 while banned")
        self.tick(5)  # the first try comes 10 s after the refusal (the plugin's backoff)
        self.assertEqual(self.sent(), [])
        self.tick(6)
        self.assertEqual([m.command for m in self.sent()], ["JOIN"])
        self.rejoin()
        self.assertStatus("synced")  # away 11 s: within restartGrace, its cache still vouches
        self.tick(1)
        self.tick(60)
        self.assertEqual([(m.command, m.args[-1]) for m in self.sent()],
                         [("PRIVMSG", "45.7.1.1 while banned")])  # once; and no JOIN any more

"""ThreatNetCache persistence: snapshots on die, part, disconnect and timer; the
quiet period after a gap longer than restartGrace."""
import json

import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
from supybot.test import timeFastForward

from cache_helpers import CacheTestCase, setting


class SnapshotTestCase(CacheTestCase):
    def path(self):
        return conf.supybot.directories.data.dirize("ThreatNetCache/test/%23test.json")

    def testReloadKeepsCacheAndSync(self):
        self.synced()
        self.hear("45.0.0.1 over the reload")
        self.assertNotError("reload ThreatNetCache")
        self.assertStatus("cache 1,", "synced")
        self.assertRegexp("tn check 45.0.0.1", '"over the reload"')

    def testGapLongerThanGraceRestartsQuietPeriod(self):
        self.synced()
        self.hear("45.0.0.1")
        self.assertNotError("unload ThreatNetCache")
        timeFastForward(61)
        self.assertNotError("load ThreatNetCache")
        self.assertStatus("cache 1,", "quiet period: 3602 s left")

    def testGraceZeroAlwaysRestartsQuietPeriod(self):
        self.synced()
        with setting("restartGrace").context(0):
            self.assertNotError("reload ThreatNetCache")
            self.assertStatus("quiet period: 3602 s left")

    def testQuietPeriodIsNotShortenedByRestart(self):
        self.tick(1000)
        self.assertNotError("reload ThreatNetCache")
        self.assertStatus("quiet period: 2602 s left")

    def testExpiredEntriesAreDroppedOnRestore(self):
        self.hear("45.0.0.1")
        self.tick(1800)
        self.hear("45.0.0.2")
        self.assertNotError("unload ThreatNetCache")
        timeFastForward(1801)
        self.assertNotError("load ThreatNetCache")
        self.assertStatus("cache 1,")
        self.assertResponse("tn check 45.0.0.1", "Not a current threat in #test: 45.0.0.1")

    def testPeriodicSnapshot(self):
        self.hear("45.0.0.1 saved")
        self.tick(301)
        with open(self.path()) as f:
            entries = json.load(f)["entries"]
        self.assertEqual([e[0] for e in entries], ["45.0.0.1"])

    def testCorruptSnapshotIsIgnored(self):
        self.hear("45.0.0.1")
        self.assertNotError("unload ThreatNetCache")
        with open(self.path(), "w") as f:
            f.write("{not json")
        self.assertNotError("load ThreatNetCache")
        self.assertStatus("cache 0,", "quiet period")

    def testPartSavesAndRejoinRestores(self):
        self.synced()
        self.hear("45.0.0.1")
        self.irc.feedMsg(ircmsgs.part(self.channel, prefix=self.prefix))
        self.assertRegexp("tn status #test", "not a ThreatNet channel")
        self.irc.feedMsg(ircmsgs.join(self.channel, prefix=self.prefix))
        self.server("366", self.nick, self.channel, "End of /NAMES list.")
        self.sent()
        self.assertStatus("cache 1,", "synced")

    def testKickThenLongAbsenceRestartsQuietPeriod(self):
        self.synced()
        self.irc.feedMsg(ircmsgs.kick(self.channel, self.nick, prefix="op!o@h"))
        self.tick(120)
        self.irc.feedMsg(ircmsgs.join(self.channel, prefix=self.prefix))
        self.server("366", self.nick, self.channel, "End of /NAMES list.")
        self.sent()
        self.assertStatus("quiet period: 3602 s left")

    def testQuickReconnectRestoresState(self):
        self.synced()
        self.hear("45.0.0.1")
        self.irc.reset()  # what the driver does on reconnect: the channel state is gone
        self.sent()
        self.assertRegexp("tn status #test", "not a ThreatNet channel")
        with open(self.path()) as f:
            self.assertEqual(len(json.load(f)["entries"]), 1)
        self.tick(30)
        self.irc.feedMsg(ircmsgs.join(self.channel, prefix=self.prefix))
        self.server("366", self.nick, self.channel, "End of /NAMES list.")
        self.sent()
        self.assertStatus("cache 1,", "synced")

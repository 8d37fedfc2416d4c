"""ThreatNetCache feeds: each extractor wired to a real file, polled from the timer,
reporting an address once its failures reach the feed's threshold, every report going
through the `tn report` rules."""
import os
import shutil
import tempfile

from supybot.drivers.Socket import SocketDriver

import threatnet.watch
from cache_helpers import CacheTestCase, setting


class FeedTestCase(CacheTestCase):
    config = {"supybot.plugins.ThreatNetCache.enable": True,
              "supybot.plugins.ThreatNetCache.outbox.burst": 50}

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="threatnet-feed-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.log = os.path.join(self.dir, "log")

    def feed(self, extractor, create=True):
        """Configure one feed on self.log (created first unless told not to);
        ``extractor`` may carry options: ``sshd(maxretry=2)``."""
        if create:
            open(self.log, "w").close()
        context = setting("feeds").context([f"{extractor}:{self.log}"])
        context.__enter__()
        self.addCleanup(context.__exit__, None, None, None)
        self.tick()

    def append(self, *lines, path=None):
        with open(path or self.log, "a") as f:
            f.write("".join(line + "\n" for line in lines))

    def posted(self):
        """Poll once; the threat lines the bot posted to #test."""
        self.tick()
        sent = self.sent()
        self.assertTrue(all(m.command == "PRIVMSG" and m.args[0] == "#test" for m in sent))
        return [m.args[1] for m in sent]


class ExtractorTestCase(FeedTestCase):
    def setUp(self):
        super().setUp()
        self.synced()

    def sshd(self, ip, pid, user="alice"):
        return (f"Nov 22 03:04:05 gw sshd[{pid}]: Failed password for {user} from {ip} "
                f"port {40000 + pid} ssh2")

    def testOneMistypedPasswordIsNoThreat(self):
        self.feed("sshd")
        self.append(self.sshd("45.1.2.3", 1))
        self.assertEqual(self.posted(), [])
        self.assertRegexp("tn feeds", r"sshd:/\S+/log \(threshold 5 in 600 s; lines read 1, "
                                      r"found 1, ignored 0, rejected 0, threats 0, "
                                      r"below threshold 1, evicted 0\); reported 0")

    def testSshd(self):
        self.feed("sshd")
        self.append(
            *(self.sshd("45.1.2.3", pid) for pid in range(1, 4)),
            "Nov 22 03:04:06 gw sshd[4]: Invalid user admin from 45.1.2.3 port 52114",
            "Nov 22 03:04:06 gw sshd[4]: Failed password for invalid user admin from "
            "45.1.2.3 port 52114 ssh2",  # the attempt the line before counted
            "Nov 22 03:04:07 gw sshd[4122]: Accepted publickey for ops from 45.1.2.5 port 40000 "
            "ssh2: ED25519 SHA256:abc",
            *(f"Nov 22 03:04:09 gw sshd[{pid}]: Invalid user test from 10.0.0.7 port 1234"
              for pid in range(10, 15)),
            *(f"2026-11-22T03:04:10.123456+00:00 gw sshd-session[{pid}]: Invalid user oracle "
              f"from 2a01:4f8::7 port 2222" for pid in range(20, 24)),
            self.sshd("45.1.2.3", 5))
        self.assertEqual(self.posted(), ["45.1.2.3 sshd: 4 failed passwords, 1 invalid user "
                                         "in 600 s"])
        self.assertRegexp("tn feeds", r"\(threshold 5 in 600 s; lines read 16, found 15, "
                                      r"ignored 1, rejected 0, threats 2, below threshold 1, "
                                      r"evicted 0\); reported 1, refused: filtered 1; outbox: "
                                      r"waiting 0, sent 1, dropped 0")
        self.assertRegexp("tn check 45.1.2.3", "reported by test 0 s ago")

    def testNoUsernameIsEverPosted(self):
        self.feed("sshd(maxretry=1)")
        self.append(self.sshd("45.1.2.3", 1, user="alice"),
                    "Nov 22 03:04:05 gw sshd[2]: User bob from 45.1.2.4 not allowed because "
                    "listed in DenyUsers")
        self.assertEqual(self.posted(), ["45.1.2.3 sshd: failed password",
                                         "45.1.2.4 sshd: disallowed user"])

    def testFeedWithItsOwnThreshold(self):
        self.feed("sshd(maxretry=2,findtime=1m)")
        self.append(self.sshd("45.1.2.3", 1))
        self.assertEqual(self.posted(), [])
        self.tick(61)  # the first failure leaves the window
        self.append(self.sshd("45.1.2.3", 2))
        self.assertEqual(self.posted(), [])
        self.append(self.sshd("45.1.2.3", 3))
        self.assertEqual(self.posted(), ["45.1.2.3 sshd: 2 failed passwords in 60 s"])
        self.assertRegexp("tn feeds", r"sshd\(maxretry=2,findtime=1m\):/\S+/log "
                                      r"\(threshold 2 in 60 s;")

    def testPostfix(self):
        self.feed("postfix")
        self.append(*(
            f"Nov 22 03:05:0{n} mx postfix/smtpd[777]: warning: unknown[45.2.0.1]: SASL LOGIN "
            f"authentication failed: authentication failure, sasl_username=u{n}@example.org"
            for n in range(5)))
        self.append(
            "Nov 22 03:05:02 mx postfix/smtpd[777]: NOQUEUE: reject: RCPT from unknown[45.2.0.2]: "
            "554 5.7.1 Service unavailable; Client host [45.2.0.2] blocked using "
            "zen.spamhaus.org; https://www.spamhaus.org/query/ip/45.2.0.2; "
            "from=<a@b.example> to=<c@d.example> proto=ESMTP helo=<x>",
            "Nov 22 03:05:03 mx postfix/smtpd[777]: connect from unknown[45.2.0.3]")
        self.assertEqual(self.posted(), ["45.2.0.1 postfix: 5 sasl login auth failures in 600 s"])
        self.assertRegexp("tn feeds", "threats 1, below threshold 1,")

    def testFail2ban(self):
        self.feed("fail2ban")
        self.append(
            "45.3.0.1 fail2ban sshd",
            "2026-11-22 03:06:01,123 fail2ban.actions        [991]: NOTICE  [postfix] Ban 45.3.0.2",
            "2026-11-22 03:06:02,123 fail2ban.actions        [991]: NOTICE  [sshd] Restore Ban "
            "45.3.0.3")
        self.assertEqual(self.posted(), ["45.3.0.1 fail2ban sshd", "45.3.0.2 fail2ban postfix"])

    def testPlain(self):
        self.feed("plain")
        self.append("45.4.0.1 port scan", "# a comment", "", "not an address",
                    "45.4.0.256 bad octet", "2a01:4f8::9")
        self.assertEqual(self.posted(), ["45.4.0.1 port scan", "2a01:4f8::9"])

    def testOwnNetworksAreNeverReported(self):
        with setting("ownNetworks").context(["45.4.0.0/16"]):
            self.feed("plain")
            self.append("45.4.0.1 our own scanner", "45.5.0.1 theirs")
            self.assertEqual(self.posted(), ["45.5.0.1 theirs"])
        self.assertRegexp("tn feeds", r"refused: own network 1;")

    def testStartsAtEndOfExistingFile(self):
        self.append("45.4.0.1 old news")
        self.feed("plain", create=False)
        self.append("45.4.0.2 new")
        self.assertEqual(self.posted(), ["45.4.0.2 new"])

    def testRotation(self):
        self.feed("plain")
        self.append("45.4.0.1 before")
        self.assertEqual(self.posted(), ["45.4.0.1 before"])
        os.rename(self.log, self.log + ".1")
        self.append("45.4.0.2 late write to the old file", path=self.log + ".1")
        self.append("45.4.0.3 new file")
        self.assertEqual(self.posted(), ["45.4.0.2 late write to the old file",
                                         "45.4.0.3 new file"])
        self.append("45.4.0.4 still following")
        self.assertEqual(self.posted(), ["45.4.0.4 still following"])

    def testMissingFileIsReportedThenReadFromStart(self):
        self.feed("plain", create=False)
        self.assertRegexp("tn feeds", "error: No such file or directory")
        self.append("45.4.0.1 appeared")
        self.assertEqual(self.posted(), ["45.4.0.1 appeared"])
        self.assertNotRegexp("tn feeds", "error")

    def testRemovedFeedIsClosed(self):
        self.feed("plain")
        self.assertRegexp("tn feeds", r"feeds: plain:")
        setting("feeds").setValue([])
        self.tick()
        self.assertRegexp("tn feeds", "feeds: none;")

    def testBurstIsPaced(self):
        with setting("outbox.burst").context(5):
            self.feed("plain")
            self.append(*(f"45.6.0.{n} scan" for n in range(1, 21)))
            self.assertEqual(len(self.posted()), 5)  # the burst; the rest waits
            self.assertRegexp("tn feeds", "outbox: waiting 15, sent 5, dropped 0")
            self.assertEqual(self.posted(), ["45.6.0.6 scan"])  # 1 a second


class EventDrivenTestCase(FeedTestCase):
    """No timer runs here (no tick): only the driver loop's select, which returns
    when a feed's directory changes or the outbox's own timer is due."""

    def setUp(self):
        super().setUp()
        self.synced()

    def loop(self):
        """One turn of Limnoria's driver loop (its select); what the bot sent."""
        SocketDriver._select()
        return [m.args[1] for m in self.sent()]

    def testLineIsPostedWhenWrittenWithoutAPoll(self):
        self.feed("plain")
        self.append("45.7.0.1 written")
        self.assertEqual(self.loop(), ["45.7.0.1 written"])
        self.append("45.7.0.2 and another")
        self.assertEqual(self.loop(), ["45.7.0.2 and another"])

    def testRotationWithoutAPoll(self):
        self.feed("plain")
        os.rename(self.log, self.log + ".1")
        self.append("45.7.0.3 late write to the old file", path=self.log + ".1")
        self.assertEqual(self.loop(), ["45.7.0.3 late write to the old file"])
        self.append("45.7.0.4 new file")
        self.assertEqual(self.loop(), ["45.7.0.4 new file"])

    def testOutboxReleasesOnItsOwnTimer(self):
        with setting("outbox.burst").context(2), setting("outbox.rate").context(20.0):
            self.feed("plain")
            self.append(*(f"45.7.1.{n} scan" for n in range(1, 5)))
            self.assertEqual(len(self.loop()), 2)  # the burst
            sent = []
            for _ in range(50):  # the rest as its timer says, 1 per 50 ms (a select each)
                sent += self.loop()
                if len(sent) >= 2:
                    break
            self.assertEqual(sent, ["45.7.1.3 scan", "45.7.1.4 scan"])

    def testWithoutInotifyFeedsArePolled(self):
        original = threatnet.watch.INotify
        threatnet.watch.INotify = None
        self.addCleanup(setattr, threatnet.watch, "INotify", original)
        # a fresh plugin instance, as on a machine without inotify
        self.assertNotError("reload ThreatNetCache")
        self.feed("plain")
        self.append("45.7.0.5 polled")
        self.assertEqual(self.posted(), ["45.7.0.5 polled"])


class QuietFeedTestCase(FeedTestCase):
    def testQuietPeriodHoldsFeedThreatsUntilSynced(self):
        self.feed("plain")
        self.append("45.4.0.1 too early", "45.4.0.2 reported meanwhile")
        self.assertEqual(self.posted(), [])
        self.assertRegexp("tn feeds", "reported 0, refused: none; .*; held: waiting 2 "
                                      r"\(quiet 2\), released 0, current 0,")
        self.tick(3000)
        self.hear("45.4.0.2 from another agent")
        self.tick(602)  # the quiet period ends: the next poll submits them
        self.assertEqual(self.posted(), ["45.4.0.1 too early"])
        self.assertEqual(self.posted(), [])  # once
        self.assertRegexp("tn feeds", "reported 1, refused: duplicate 1; .*; held: waiting 0, "
                                      "released 1, current 1, expired 0, overflow 0")

    def testFeedsNeedAdmin(self):
        self.assertRegexp("tn feeds", "admin", frm="boss!b@__no_testcap__")

    def testBadSettingsAreRejected(self):
        self.assertRegexp("config plugins.ThreatNetCache.feeds nope:/var/log/x",
                          "bad feed 'nope:/var/log/x': unknown extractor 'nope'")
        self.assertRegexp("config plugins.ThreatNetCache.feeds sshd:var/log/auth.log",
                          "extractor:/absolute/path")
        self.assertRegexp("config plugins.ThreatNetCache.feeds sshd(maxretry=0):/var/log/a",
                          r"bad feed 'sshd\(maxretry=0\):/var/log/a': maxretry must be a "
                          r"whole number from 1 to 100, not '0'")
        self.assertRegexp("config plugins.ThreatNetCache.feeds sshd(bantime=1h):/var/log/a",
                          "unknown option 'bantime=1h'")
        self.assertRegexp("config plugins.ThreatNetCache.feeds sshd(findtime=forever):/v/a",
                          "findtime must be 1 s to 1 day")
        self.assertNotError("config plugins.ThreatNetCache.feeds "
                            "sshd(maxretry=3,findtime=10m):/var/log/auth.log plain:/var/log/t")
        self.assertRegexp("config plugins.ThreatNetCache.feeds",
                          r"Global: sshd\(maxretry=3,findtime=10m\):/var/log/auth.log "
                          r"plain:/var/log/t;")
        setting("feeds").setValue([])
        self.assertRegexp("config plugins.ThreatNetCache.discard 10.0.0.1/8",
                          "did you mean 10.0.0.0/8")
        self.assertRegexp("config plugins.ThreatNetCache.trust everyone", "Valid values")

"""ThreatNetCache feeds: each extractor wired to a real file, polled from the timer,
every find going through the `tn report` rules."""
import os
import shutil
import tempfile

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
        """Configure one feed on self.log (created first unless told not to)."""
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

    def testSshd(self):
        self.feed("sshd")
        self.append(
            "Nov 22 03:04:05 gw sshd[4121]: Failed password for root from 45.1.2.3 port 52113 ssh2",
            "Nov 22 03:04:06 gw sshd[4121]: Failed password for invalid user admin from "
            "45.1.2.4 port 52114 ssh2",
            "Nov 22 03:04:07 gw sshd[4122]: Accepted publickey for ops from 45.1.2.5 port 40000 "
            "ssh2: ED25519 SHA256:abc",
            "Nov 22 03:04:08 gw sshd[4123]: Failed password for root from 45.1.2.3 port 52115 ssh2",
            "Nov 22 03:04:09 gw sshd[4124]: Invalid user test from 10.0.0.7 port 1234",
            "2026-11-22T03:04:10.123456+00:00 gw sshd-session[4125]: Invalid user oracle from "
            "2a01:4f8::7 port 2222")
        self.assertEqual(self.posted(), ["45.1.2.3 sshd: failed password for root",
                                         "45.1.2.4 sshd: failed password for invalid user admin",
                                         "2a01:4f8::7 sshd: invalid user oracle"])
        self.assertRegexp("tn feeds", r"sshd:/\S+/log \(lines_read 6, threats 5, ignored 1, "
                                      r"rejected 0\); reported 3, refused: duplicate 1, "
                                      r"filtered 1; outbox: waiting 0, sent 3, dropped 0")
        self.assertRegexp("tn check 45.1.2.3", "reported by test 0 s ago")

    def testPostfix(self):
        self.feed("postfix")
        self.append(
            "Nov 22 03:05:01 mx postfix/smtpd[777]: warning: unknown[45.2.0.1]: SASL LOGIN "
            "authentication failed: UGFzc3dvcmQ6",
            "Nov 22 03:05:02 mx postfix/smtpd[777]: NOQUEUE: reject: RCPT from unknown[45.2.0.2]: "
            "554 5.7.1 Service unavailable; Client host [45.2.0.2] blocked using "
            "zen.spamhaus.org; https://www.spamhaus.org/query/ip/45.2.0.2; "
            "from=<a@b.example> to=<c@d.example> proto=ESMTP helo=<x>",
            "Nov 22 03:05:03 mx postfix/smtpd[777]: connect from unknown[45.2.0.3]")
        self.assertEqual(self.posted(), ["45.2.0.1 postfix: sasl login auth failed",
                                         "45.2.0.2 postfix: listed on zen.spamhaus.org"])

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


class QuietFeedTestCase(FeedTestCase):
    def testQuietPeriodRefusesFeedThreats(self):
        self.feed("plain")
        self.append("45.4.0.1 too early")
        self.assertEqual(self.posted(), [])
        self.assertRegexp("tn feeds", "reported 0, refused: quiet 1;")

    def testFeedsNeedAdmin(self):
        self.assertRegexp("tn feeds", "admin", frm="boss!b@__no_testcap__")

    def testBadSettingsAreRejected(self):
        self.assertRegexp("config plugins.ThreatNetCache.feeds nope:/var/log/x",
                          "bad feed 'nope:/var/log/x'")
        self.assertRegexp("config plugins.ThreatNetCache.feeds sshd:var/log/auth.log",
                          "extractor:/absolute/path")
        self.assertRegexp("config plugins.ThreatNetCache.discard 10.0.0.1/8",
                          "did you mean 10.0.0.0/8")
        self.assertRegexp("config plugins.ThreatNetCache.trust everyone", "Valid values")

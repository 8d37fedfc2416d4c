"""ThreatNetCache wiring of Threat Responses: what responders hear of the cache (added,
expired, resync on a block change or a restore), settings from the registry, failing
responders shown by `tn responders`, and hooks that never wait for a responder."""
import os
import tempfile
import threading
import time
from pathlib import Path

import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
import supybot.registry as registry

from cache_helpers import KEY, CacheTestCase, Fake, ResponderTestCase, setting
from threatnet.address import parse_ip
from threatnet.language import parse_message
from threatnet.response import Responder, ResponderError

class WiringTestCase(ResponderTestCase):
    def testHeardThreatIsAddedWithItsExpiry(self):
        fake = self.fake()
        self.hear("45.0.0.9 ssh brute force")
        self.idle()
        (threat,) = fake.added
        self.assertEqual((threat.key, threat.ip, threat.comment, threat.reporter, threat.prefix),
                         (parse_ip("45.0.0.9"), "45.0.0.9", "ssh brute force", "alice", 128))
        self.assertAlmostEqual(threat.expires_at, time.time() + 3600, delta=2)
        self.assertEqual(fake.resyncs, [[]])  # the start: an empty cache

    def testDiscardedLinesAreNotAdded(self):
        fake = self.fake()
        self.hear("45.0.0.9 first")
        self.hear("45.0.0.9 duplicate")
        self.hear("45.0.0.10 untrusted", nick="mallory")
        self.hear("10.0.0.1 bogon")
        self.idle()
        self.assertEqual([t.ip for t in fake.added], ["45.0.0.9"])

    def testOwnReportIsAdded(self):
        self.synced()
        fake = self.fake()
        self.assertEqual(self.say("tn report 45.0.0.9 mine")[0], "45.0.0.9 mine")
        self.idle()
        self.assertEqual([(t.ip, t.reporter) for t in fake.added], [("45.0.0.9", "test")])

    def testEveryPathIntoTheCacheReachesResponders(self):
        """A bridge relay (or any other path) keeping a threat in the channel cache."""
        fake = self.fake()
        self.assertTrue(self.cb.channel(*KEY).listener.keep(parse_message("45.0.0.9 relayed"),
                                                            "test", None))
        self.idle()
        self.assertEqual([(t.ip, t.comment) for t in fake.added], [("45.0.0.9", "relayed")])

    def testExpiryIsPassedOn(self):
        fake = self.fake()
        self.hear("45.0.0.9")
        self.idle()  # else the host folds both: an add already expired is never applied
        self.tick(3601)
        self.idle()
        self.assertEqual([t.ip for t in fake.removed], ["45.0.0.9"])

    def testStartsWithTheCacheAsItIs(self):
        self.hear("45.0.0.9 before")
        fake = self.fake()
        self.idle()
        self.assertEqual([[t.ip for t in r] for r in fake.resyncs], [["45.0.0.9"]])

    def testBlockPeriodChangeResyncsWithNewExpiry(self):
        fake = self.fake()
        self.hear("45.0.0.9")
        self.server("TOPIC", self.channel, "threatnet://example.net/t block=7200")
        self.idle()
        (threat,) = fake.resyncs[-1]
        self.assertAlmostEqual(threat.expires_at, time.time() + 7200, delta=2)
        self.server("TOPIC", self.channel, "threatnet://example.net/t block=7200 +x")
        self.idle()
        self.assertEqual(len(fake.resyncs), 2, "same block period: no resync")

    def testRejoinResyncsWithTheRestoredCache(self):
        fake = self.fake()
        self.hear("45.0.0.9 kept over a part")
        me = f"{self.nick}!user@host.example"
        self.irc.feedMsg(ircmsgs.part(self.channel, prefix=me))
        self.assertNotIn(KEY, self.cb._channels)
        self.irc.feedMsg(ircmsgs.join(self.channel, prefix=me))
        self.server("366", self.nick, self.channel, "End of /NAMES list.")
        self.assertIn(KEY, self.cb._channels)
        self.idle()
        self.assertEqual([t.ip for t in fake.resyncs[-1]], ["45.0.0.9"])

    def testHooksNeverWaitForAResponder(self):
        gate = threading.Event()
        fake = self.fake(block=gate)
        started = time.monotonic()
        for n in range(50):
            self.hear(f"45.0.1.{n}")
        self.assertLess(time.monotonic() - started, 2)
        self.assertRegexp("tn responders", r"fake: 0 threats|fake: \d+ threats.*applying")
        gate.set()
        self.idle()
        self.assertEqual(len(fake.added), 50)

    def testFailingResponderIsShownAndRetried(self):
        self.fake(fail="nft: permission denied (needs root or CAP_NET_ADMIN)")
        responses = self.cb._responses[KEY]
        deadline = time.monotonic() + 5
        while not responses.status()[0].failures and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertRegexp("tn responders", r"fake: 0 threats, 0 applies, \d+ errors, FAILING "
                                           r"\(\d+ attempt\(s\), retry in \d+ s\): nft: "
                                           r"permission denied")
        self.hear("45.0.0.9")  # still listening
        self.assertStatus("cache 1,")

    def testStopClosesTheResponders(self):
        fake = self.fake()
        self.cb._responses[KEY].stop()
        self.assertTrue(fake.closed)

    def testNoResponders(self):
        self.assertResponse("tn responders", "#test: no responders (see "
                                             "plugins.ThreatNetCache.responders)")

    def testRespondersNeedAdmin(self):
        sent = self.say("tn responders", frm="boss!b@__no_testcap__")
        self.assertIn("You don't have the #test,threatnet capability", sent[0])


class RegistryTestCase(CacheTestCase):
    """Responders built from plugins.ThreatNetCache.responders.* (a real DNSBL writing
    zone files; the command and firewall responders only as far as their settings)."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="threatnet-responders-")

    def zone(self, name="v4"):
        return os.path.join(self.dir, name)

    def wait_listed(self, path, text, present=True):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    if (text in f.read()) == present:
                        return
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        self.fail(f"{text!r} {'not ' if present else ''}in {path}")

    def testDnsblListsHeardThreats(self):
        with setting("responders.dnsbl.ip4file").context(self.zone()), \
                setting("responders.dnsbl.zone").context("bl.example.net"):
            self.tick()
            self.hear("45.0.0.9 ssh")
            self.wait_listed(self.zone(), "45.0.0.9 :127.0.0.2:ssh (reported by alice")
            self.assertTrue(self.cb._responses[KEY].host.wait_idle(5))
            self.assertRegexp("tn responders", r"^#test: dnsbl: 1 threats, \d+ applies, "
                                               r"0 errors, ok$")

    def testKeepNetworksLimitAResponder(self):
        """The proposal's ISP: act only on threats inside our own customer ranges."""
        with setting("responders.dnsbl.ip4file").context(self.zone()), \
                setting("responders.dnsbl.keep").context(["45.0.0.0/24"]):
            self.tick()
            self.hear("46.0.0.1 outside")
            self.hear("45.0.0.9 inside")
            self.wait_listed(self.zone(), "45.0.0.9")
            self.wait_listed(self.zone(), "46.0.0.1", present=False)
            self.assertStatus("cache 2,")

    def testChangedSettingsMoveTheResponder(self):
        self.hear("45.0.0.9")
        with setting("responders.dnsbl.ip4file").context(self.zone("a")):
            self.tick()
            self.wait_listed(self.zone("a"), "45.0.0.9")
            with setting("responders.dnsbl.ip4file").context(self.zone("b")):
                self.tick()
                self.wait_listed(self.zone("b"), "45.0.0.9")
        self.tick()
        self.assertResponse("tn responders", "#test: no responders (see "
                                             "plugins.ThreatNetCache.responders)")

    def testUnusableSettingsAreReported(self):
        with setting("responders.firewall.enable").context(True), \
                setting("responders.firewall.table").context("no-such name"):
            self.tick()
            self.assertResponse("tn responders", "#test: firewall: NOT STARTED: nftables "
                                                 "table name 'no-such name' is not a plain "
                                                 "identifier")

    def testMissingProgramFailsWithAClearError(self):
        with setting("responders.command.argv").context("/nonexistent/block-ip --"):
            self.tick()
            self.hear("45.0.0.9")
            responses = self.cb._responses[KEY]
            deadline = time.monotonic() + 5
            while not responses.status()[0].failures and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertRegexp("tn responders", "command: .* FAILING .*: /nonexistent/block-ip: "
                                               "command not found")

    def testBadSettingsAreRejected(self):
        self.assertError("config plugins.ThreatNetCache.responders.dnsbl.ip4file relative/v4")
        self.assertError("config plugins.ThreatNetCache.responders.command.argv 'unclosed")
        self.assertError("config plugins.ThreatNetCache.responders.firewall.keep 10.0.0.1/8")


class DocumentedExampleTestCase(CacheTestCase):
    def testExampleSettingsAreValid(self):
        """The responder and HTTP lines of conf/ThreatNetCache.conf set as written."""
        path = Path(__file__).resolve().parents[2] / "conf" / "ThreatNetCache.conf"
        prefixes = ("supybot.plugins.ThreatNetCache.responders.",
                    "supybot.plugins.ThreatNetCache.http.")
        lines = [line for line in path.read_text().splitlines() if line.startswith(prefixes)]
        self.assertEqual(len(lines), 31)
        restore = []
        try:
            for line in lines:
                key, _, value = line.partition(":")
                node = conf.supybot
                for part in registry.split(key)[1:]:
                    node = node.get(part)
                restore.append((node, node()))
                node.set(value.strip())
        finally:
            for node, value in reversed(restore):
                node.setValue(value)

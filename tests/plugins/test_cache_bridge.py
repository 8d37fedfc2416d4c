"""ThreatNetCache's Network Bridge wiring on two test networks: "test" (#test, the
CacheTestCase channel) and "south" (#south, a second Irc). Relays, source-side trust,
per-direction filters, duplicates and echoes, quiet periods, own reports, pacing,
snapshots, settings validation and `tn bridge status`. The bridge rules themselves
are tested in tests/test_bridge.py."""
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
import supybot.registry as registry
import supybot.schedule as schedule
from supybot.test import getTestIrc

from cache_helpers import CacheTestCase, setting
from threatnet.address import parse_ip
from threatnet.dnsbl import DEFAULT_TIMEOUT, Answer, query_name
from threatnet.language import parse_message
from threatnet.signature import Signer, generate_key, public_line, write_private_key

SOUTH = "#south"
BRIDGE = "supybot.plugins.ThreatNetCache.bridge.nb."
STATUS = ("nb (test #test <-> south #south): relayed a->b {ab}, b->a {ba}; dropped {dropped}; "
          "queue south #south 0/1000, test #test 0/1000")


def bridge_config(**extra):
    return {"supybot.plugins.ThreatNetCache.enable": True,
            "supybot.plugins.ThreatNetCache.bridges": ["nb"],
            BRIDGE + "a": "test #test", BRIDGE + "b": "south #South",
            BRIDGE + "direction": "both", **extra}


class BridgeTestCase(CacheTestCase):
    """The bot is in #test on "test" (alice voiced) and #south on "south" (bob voiced);
    bridge nb joins them both ways, and both sides are synced."""

    config = bridge_config()

    def setUp(self):
        super().setUp()
        conf.registerNetwork("south")  # what supybot.networks does for a configured one
        self.south = getTestIrc("south")
        self.south.feedMsg(ircmsgs.join(SOUTH, prefix=self.prefix))
        self.south.feedMsg(ircmsgs.IrcMsg(prefix="irc.south.net", command="366",
                                          args=(self.nick, SOUTH, "End of /NAMES list.")))
        self.south_join("bob", "+v")
        self.south_join("eve")
        self.south_sent()  # the bot's MODE and WHO on joining
        self.sync()

    def sync(self):
        """Past every quiet period: the channels' and the bridge's own caches."""
        self.tick()
        self.tick(3603)

    def south_join(self, nick, mode=None):
        self.south.feedMsg(ircmsgs.join(SOUTH, prefix=f"{nick}!{nick}@203.0.113.7"))
        if mode:
            self.south.feedMsg(ircmsgs.IrcMsg(prefix="irc.south.net", command="MODE",
                                              args=(SOUTH, mode, nick)))

    def south_hear(self, line, nick="bob"):
        self.south.feedMsg(ircmsgs.privmsg(SOUTH, line, prefix=f"{nick}!{nick}@203.0.113.7"))

    def sent(self):
        schedule.run()  # relays go out once the bot has read every network (bridging.py)
        return super().sent()

    def south_sent(self):
        schedule.run()
        out = []
        while (msg := self.south.takeMsg()) is not None:
            out.append(msg)
        return out

    def relayed_south(self):
        return [m.args[1] for m in self.south_sent() if m.command == "PRIVMSG"
                and m.args[0] == SOUTH]

    def relayed_here(self):
        return [m.args[1] for m in self.sent() if m.command == "PRIVMSG"
                and m.args[0] == self.channel]

    def south_ask(self, command):
        """A command on the south network; the bot's reply text."""
        self.south.feedMsg(ircmsgs.privmsg(SOUTH, "@" + command, prefix=self.prefix))
        return [m.args[1] for m in self.south_sent()]

    def bridge_status(self):
        return self.say("tn bridge status")

    def assertBridgeStatus(self, ab=0, ba=0, dropped="none"):
        self.assertEqual(self.bridge_status(),
                         ["test: " + STATUS.format(ab=ab, ba=ba, dropped=dropped)])


class RelayTestCase(BridgeTestCase):
    def testVoicedThreatCrossesWithViaTag(self):
        self.hear("45.0.0.1 ssh brute force")
        self.assertEqual(self.relayed_south(), ["45.0.0.1 ssh brute force via test"])
        self.assertEqual(self.south_ask("tn check 45.0.0.1"),
                         ['test: Current threat in #south: 45.0.0.1, reported by test 0 s ago: '
                          '"ssh brute force via test"; expires in 3600 s'])
        self.assertBridgeStatus(ab=1)

    def testOtherWay(self):
        self.south_hear("2a00:1450::9 smtp")
        self.assertEqual(self.relayed_here(), ["2a00:1450::9 smtp via south"])
        self.assertRegexp("tn check 2a00:1450::9", "reported by test 0 s ago")
        self.assertBridgeStatus(ba=1)

    def testUntrustedSenderIsNotRelayed(self):
        self.hear("45.0.0.1 trust me", nick="mallory")
        self.south_hear("45.0.0.2", nick="eve")
        self.assertEqual(self.relayed_south(), [])
        self.assertEqual(self.relayed_here(), [])
        self.assertBridgeStatus(dropped="untrusted 2")

    def testDuplicateWithinBlockPeriodIsNotRelayed(self):
        self.hear("45.0.0.1 first")
        self.assertEqual(self.relayed_south(), ["45.0.0.1 first via test"])
        self.tick(1800)
        self.hear("45.0.0.1 again", nick="mallory")  # untrusted does not matter: current
        self.join("carol", "+v")
        self.hear("45.0.0.1 seen by carol too", nick="carol")
        self.assertEqual(self.relayed_south(), [])
        self.assertBridgeStatus(ab=1, dropped="duplicate 2")
        self.tick(1801)  # the block period is over on both sides
        self.hear("45.0.0.1 back", nick="carol")
        self.assertEqual(self.relayed_south(), ["45.0.0.1 back via test"])

    def testSameThreatReadOnBothSidesInOneRoundCrossesNeither(self):
        """Limnoria reads every ready socket before it runs the schedule: a threat that
        came in on both networks at once (the original here, another bridge's relay
        there) is current on both sides, so nothing is relayed back."""
        self.south_hear("45.0.0.7 relayed by another bridge")
        self.hear("45.0.0.7 the original")
        self.assertEqual((self.relayed_here(), self.relayed_south()), ([], []))
        self.assertBridgeStatus(dropped="duplicate 2")

    def testEchoDoesNotComeBack(self):
        """Another bridge agent copies our relay into #south (or the server echoes it):
        it is not relayed back to #test."""
        self.hear("45.0.0.1 ssh")
        self.relayed_south()
        self.south_hear("45.0.0.1 ssh via test")
        self.assertEqual(self.relayed_here(), [])
        self.assertBridgeStatus(ab=1, dropped="echo 1")

    def testRelayedThreatRepeatedOnTargetIsNotSentBack(self):
        self.south_hear("45.0.0.1 south saw it first")
        self.assertEqual(self.relayed_here(), ["45.0.0.1 south saw it first via south"])
        self.hear("45.0.0.1 ssh")
        self.assertEqual(self.relayed_south(), [])
        self.assertBridgeStatus(ba=1, dropped="echo 1")

    def testBogonsAreNotRelayed(self):
        self.hear("45.0.0.1")
        self.hear("10.1.2.3 internal")  # the channel's own discard filters it too
        self.assertEqual(self.relayed_south(), ["45.0.0.1 via test"])
        self.assertBridgeStatus(ab=1, dropped="filtered 1")

    def testOwnReportIsRelayedWhenTrusted(self):
        self.server("MODE", self.channel, "+v", self.nick)
        self.assertEqual(self.say("tn report 45.0.0.9 seen here")[0], "45.0.0.9 seen here")
        self.assertEqual(self.relayed_south(), ["45.0.0.9 seen here via test"])

    def testOwnReportIsNotRelayedWhenUntrusted(self):
        self.assertEqual(self.say("tn report 45.0.0.9 seen here")[0], "45.0.0.9 seen here")
        self.assertEqual(self.relayed_south(), [])
        self.assertBridgeStatus(dropped="untrusted 1")

    def testNoBridgeWhenBotIsNotInTheChannel(self):
        self.south.feedMsg(ircmsgs.part(SOUTH, prefix=self.prefix))
        self.hear("45.0.0.1")
        self.assertEqual(self.relayed_south(), [])
        self.assertEqual(self.bridge_status(),
                         ["test: " + STATUS.format(ab=0, ba=0, dropped="quiet 1")
                          + "; not listening to south #south"])

    def testStatusNeedsAdmin(self):
        self.assertRegexp("tn bridge status", "admin", frm="boss!b@__no_testcap__")


class QuietTestCase(BridgeTestCase):
    def sync(self):
        self.tick()

    def testNothingCrossesDuringTheQuietPeriod(self):
        self.hear("45.0.0.1")
        self.assertEqual(self.relayed_south(), [])
        self.assertBridgeStatus(dropped="quiet 1")
        self.tick(3603)
        self.hear("45.0.0.2")
        self.assertEqual(self.relayed_south(), ["45.0.0.2 via test"])


class OneWayTestCase(BridgeTestCase):
    config = bridge_config(**{BRIDGE + "direction": "a->b"})

    def testOnlyAToB(self):
        self.south_hear("45.0.0.2 from the south")
        self.assertEqual(self.relayed_here(), [])
        self.hear("45.0.0.1")
        self.assertEqual(self.relayed_south(), ["45.0.0.1 via test"])
        self.assertEqual(self.bridge_status(),
                         ["test: nb (test #test -> south #south): relayed a->b 1; dropped none; "
                          "queue south #south 0/1000"])

    def testThreatAlreadyCurrentOnTargetIsNotRelayed(self):
        self.south_hear("45.0.0.1 south saw it first")
        self.hear("45.0.0.1 ssh")
        self.assertEqual(self.relayed_south(), [])
        self.assertRegexp("tn bridge status", "dropped duplicate 1;")


class FilterTestCase(BridgeTestCase):
    config = bridge_config(**{BRIDGE + "aToB.keep": ["45.0.0.0/8"],
                              BRIDGE + "aToB.discard": ["45.9.0.0/16"]})

    def testKeepAndDiscard(self):
        for ip in ("45.0.0.1", "46.0.0.1", "45.9.0.1"):
            self.hear(ip)
        self.assertEqual(self.relayed_south(), ["45.0.0.1 via test"])
        self.assertBridgeStatus(ab=1, dropped="filtered 1, not kept 1")


class FakeDns:
    """A resolver for the bridges' DNSBL lookups: ``listed`` addresses answer 127.0.0.2,
    others NXDOMAIN, ``answers`` something else; with ``hold`` set (an Event) every
    query waits for it."""

    def __init__(self):
        self.listed = {"46.0.0.1", "2a00:1450::1"}
        self.answers = {}
        self.asked = []
        self.hold = None

    def resolver(self, server):
        self.server = server
        return self.resolve

    def resolve(self, name, timeout):
        self.asked.append(name)
        if self.hold is not None:
            self.hold.wait(10)
        for ip in self.listed:
            if name == query_name(parse_ip(ip), ZONE):
                return Answer(("127.0.0.2",), 300.0)
        return self.answers.get(name, Answer((), 300.0))


ZONE = "bl.example.net"


class DnsblTestCase(BridgeTestCase):
    """b->a asks the DNSBL bl.example.net (a fake resolver) and drops what it lists."""

    config = bridge_config(**{BRIDGE + "bToA.dropListed": ZONE})

    def setUp(self):
        super().setUp()
        self.dns = FakeDns()
        self.cb.bridging.resolver = self.dns.resolver
        self.cb.bridging.configure(force=True)

    def answered(self):
        """The lookups have answered and the bot has looked at the answers."""
        for lookup in self.cb.bridging.lookups:
            self.assertTrue(lookup.wait_idle(5))
        self.tick(0.2)

    def hold(self):
        """Every DNS query waits, until the test ends."""
        self.dns.hold = threading.Event()
        self.addCleanup(self.dns.hold.set)

    def dnsbl_status(self):
        return self.bridge_status()[1]

    def testListedIsDroppedOthersCross(self):
        self.south_hear("46.0.0.1 listed")
        self.south_hear("46.0.0.2 not listed")
        self.south_hear("2a00:1450::1 listed too")
        self.answered()
        self.assertEqual(self.relayed_here(), ["46.0.0.2 not listed via south"])
        self.assertEqual(self.dns.asked, [query_name(parse_ip(ip), ZONE) for ip in
                                          ("46.0.0.1", "46.0.0.2", "2a00:1450::1")])
        self.assertIsNone(self.dns.server)  # the system's resolvers
        self.assertBridgeStatusLines(ba=1, dropped="listed 2",
                                     dnsbl="listed 2, not listed 1, failed 0; waiting 0, "
                                           "cached 3")

    def assertBridgeStatusLines(self, ab=0, ba=0, dropped="none", dnsbl=""):
        self.assertEqual(self.bridge_status(),
                         ["test: " + STATUS.format(ab=ab, ba=ba, dropped=dropped),
                          f"test: dnsbl {ZONE}: {dnsbl}"])

    def testOnlyTheDirectionThatAsksIsFiltered(self):
        self.hear("46.0.0.1 from #test")
        self.assertEqual(self.relayed_south(), ["46.0.0.1 from #test via test"])
        self.assertEqual(self.dns.asked, [])

    def testRelayWaitsForTheAnswer(self):
        self.hold()
        self.south_hear("46.0.0.2 not listed")
        self.tick(0.5)
        self.assertEqual(self.relayed_here(), [])
        self.assertEqual(self.bridge_status(), [
            "test: nb (test #test <-> south #south): relayed a->b 0, b->a 0; dropped none; "
            "queue south #south 0/1000, test #test 0/1000 (+1 in lookup)",
            f"test: dnsbl {ZONE}: listed 0, not listed 0, failed 0; waiting 1, cached 0"])
        self.dns.hold.set()
        self.answered()
        self.assertEqual(self.relayed_here(), ["46.0.0.2 not listed via south"])

    def testNoAnswerInTimePassesUnchecked(self):
        """A DNSBL that does not answer must not stop the sharing: after the lookup's
        deadline the relay goes, and the failure is counted."""
        self.hold()
        self.south_hear("46.0.0.1 listed, but the DNSBL is down")
        self.tick(DEFAULT_TIMEOUT + 0.1)
        self.assertEqual(self.relayed_here(), ["46.0.0.1 listed, but the DNSBL is down via south"])
        name = query_name(parse_ip("46.0.0.1"), ZONE)
        self.assertBridgeStatusLines(
            ba=1, dnsbl=f"listed 0, not listed 0, failed 1 (timeout 1: passed unchecked); "
                        f"waiting 0, cached 1; last error: {name}: no answer within 2 s")

    def testBadAnswerIsNeverAListing(self):
        name = query_name(parse_ip("46.0.0.3"), ZONE)
        self.dns.answers[name] = Answer(("198.51.100.80",), 300.0)  # a hijacking resolver
        self.south_hear("46.0.0.3 ssh")
        self.answered()
        self.assertEqual(self.relayed_here(), ["46.0.0.3 ssh via south"])
        self.assertBridgeStatusLines(
            ba=1, dnsbl=f"listed 0, not listed 0, failed 1 (bad answer 1: passed unchecked); "
                        f"waiting 0, cached 1; last error: {name}: answered 198.51.100.80, "
                        "outside 127.0.0.0/8 (a resolver that rewrites NXDOMAIN?)")

    def testServerSettingAndChangesAreLive(self):
        lookup = self.cb.bridging.lookups[0]
        self.set_value(BRIDGE + "aToB.dropListed", ZONE)  # the same DNSBL: one lookup
        self.tick()
        self.assertEqual(self.cb.bridging.lookups, [lookup])
        self.set_value(BRIDGE + "bToA.dropListed", ZONE + "@127.0.0.1:5353")
        self.set_value(BRIDGE + "aToB.dropListed", "")
        self.tick()
        self.assertEqual(self.dns.server, ("127.0.0.1", 5353))
        self.assertEqual(self.bridge_status()[1],
                         f"test: dnsbl {ZONE}@127.0.0.1:5353: listed 0, not listed 0, "
                         "failed 0; waiting 0, cached 0")
        self.set_value(BRIDGE + "bToA.dropListed", "")
        self.tick()
        self.assertEqual(self.cb.bridging.lookups, [])
        self.south_hear("46.0.0.1 no longer looked up")
        self.assertEqual(self.relayed_here(), ["46.0.0.1 no longer looked up via south"])

    def set_value(self, name, value):
        """Set a registry value; tearDown restores it (with those of ``config``)."""
        group = conf.supybot
        for part in registry.split(name)[1:]:
            group = group.get(part)
        self.originals.setdefault(group, group())
        group.set(value)


class TrustTestCase(BridgeTestCase):
    config = bridge_config(**{BRIDGE + "trustB": "accounts bobacct"})

    def testSourceSideTrustRule(self):
        self.south.state.capabilities_ack.add("account-tag")  # the server vouches for tags
        self.south_hear("45.0.0.1 voiced but no account")
        self.south.feedMsg(ircmsgs.IrcMsg(prefix="eve!eve@203.0.113.7", command="PRIVMSG",
                                          args=(SOUTH, "45.0.0.2 by account"),
                                          server_tags={"account": "BobAcct"}))
        self.assertEqual(self.relayed_here(), ["45.0.0.2 by account via south"])

    def testChannelTrustIsTheDefault(self):
        with setting("trust").context("all"):
            self.tick()
            self.hear("45.0.0.1 from anyone", nick="mallory")
        self.assertEqual(self.relayed_south(), ["45.0.0.1 from anyone via test"])


class PacingTestCase(BridgeTestCase):
    config = bridge_config(**{"supybot.plugins.ThreatNetCache.outbox.burst": 2,
                              "supybot.plugins.ThreatNetCache.outbox.rate": 1.0})

    def testTargetQueueIsPacedAndDrainedByThePollTimer(self):
        for n in range(1, 5):
            self.hear(f"45.0.0.{n}")
        self.assertEqual(self.relayed_south(), ["45.0.0.1 via test", "45.0.0.2 via test"])
        self.assertRegexp("tn bridge status", r"queue south #south 2/1000")
        self.tick()
        self.assertEqual(self.relayed_south(), ["45.0.0.3 via test"])
        self.tick()
        self.assertEqual(self.relayed_south(), ["45.0.0.4 via test"])

    def testQueuedRelayAnotherAgentPostsFirstIsNotSent(self):
        for n in range(1, 4):
            self.hear(f"45.0.0.{n}")
        self.relayed_south()
        self.south_hear("45.0.0.3 via test", nick="bob")  # a second bridge agent was faster
        self.tick()
        self.assertEqual(self.relayed_south(), [])
        # Twice: the copy heard on #south is current in #test already, and the queued
        # relay is current in #south by the time its turn comes.
        self.assertBridgeStatus(ab=2, dropped="duplicate 2")


class SnapshotTestCase(BridgeTestCase):
    def testBridgeCachesSurviveAReload(self):
        self.hear("45.0.0.1")
        self.assertEqual(len(self.relayed_south()), 1)
        path = conf.supybot.directories.data.dirize(
            "ThreatNetCache/bridge/south/%23south.json")
        self.assertNotError("reload ThreatNetCache")
        with open(path) as f:
            self.assertIn('"45.0.0.1"', f.read())
        self.tick()  # the poll timer configures the bridges again
        self.join("carol", "+v")
        self.hear("45.0.0.1 again", nick="carol")
        self.assertEqual(self.relayed_south(), [])
        self.assertRegexp("tn bridge status", "dropped duplicate 1")
        self.hear("45.0.0.2")  # synced: restored within restartGrace
        self.assertEqual(self.relayed_south(), ["45.0.0.2 via test"])


class SettingsTestCase(BridgeTestCase):
    def set(self, name, value):
        group = conf.supybot.plugins.ThreatNetCache
        for part in registry.split(name):
            group = group.get(part)
        original = group()
        self.addCleanup(group.setValue, original)
        group.set(value)

    def assertInvalid(self, name, value, message):
        with self.assertRaises(registry.InvalidRegistryValue) as caught:
            self.set(name, value)
        self.assertEqual(str(caught.exception), message)

    def testValuesAreValidated(self):
        self.assertInvalid("bridge.nb.a", "test", "'test': write a side as <network> "
                           "<#channel>, e.g. \"libera #threatnet\"")
        self.assertInvalid("bridge.nb.a", "test test", "'test test': 'test' is not a channel "
                           "name")
        self.assertInvalid("bridge.nb.trustA", "accounts", "trust mode 'accounts' needs at "
                           "least one account")
        self.assertInvalid("bridge.nb.trustA", "friends", "'friends': a trust rule starts "
                           "with one of voiced, accounts, all (or is empty: the channel's own "
                           "rule)")
        self.assertInvalid("bridge.nb.aToB.discard", "10.0.0.1/8",
                           "bad network '10.0.0.1/8': host bits set: did you mean 10.0.0.0/8?")
        self.assertInvalid("bridges", "nb 9lives", "bad bridge name '9lives': a letter, then "
                           "up to 31 letters, digits, - or _")
        self.assertInvalid("bridge.nb.direction", "sideways",
                           "Valid values include 'a->b', 'b->a', and 'both', not 'sideways'.")
        self.assertInvalid("bridge.nb.bToA.dropListed", "True",
                           "dropListed now names the DNSBL zone to ask, e.g. bl.example.net "
                           "(or bl.example.net@127.0.0.1:5353 for a server of its own); empty "
                           "for none")
        self.assertInvalid("bridge.nb.bToA.dropListed", "127.0.0.1:5353",
                           "'127.0.0.1:5353': '127.0.0.1:5353' is an address, not a zone; "
                           "e.g. bl.example.net, and zone@address to name the server")
        self.assertInvalid("bridge.nb.bToA.dropListed", "bl.example.net@ns.example.net",
                           "'bl.example.net@ns.example.net': the server must be an IP "
                           "address, not 'ns.example.net' (the system's resolvers: no @)")

    def testDropListedIsCanonicalAndFalseIsOff(self):
        """A zone is stored as it is asked; False, the old boolean's default, is off."""
        self.set("bridge.nb.bToA.dropListed", " BL.Example.NET.@[::1]:5353 ")
        self.assertEqual(setting("bridge.nb.bToA.dropListed")(), "bl.example.net@[::1]:5353")
        self.set("bridge.nb.bToA.dropListed", "False")
        self.assertEqual(setting("bridge.nb.bToA.dropListed")(), "")

    def testBridgeMissingASideIsReported(self):
        self.set("bridges", "nb half")
        self.set("bridge.half.a", "south #elsewhere")
        self.tick()
        self.assertEqual(self.bridge_status()[1],
                         "test: half: not running: plugins.ThreatNetCache.bridge.half.b not set")

    def testConflictingTrustRulesAreReported(self):
        self.set("bridges", "nb other")
        self.set("bridge.other.a", "test #test")
        self.set("bridge.other.b", "south #third")
        self.set("bridge.other.trustA", "all")
        self.tick()
        self.assertEqual(self.bridge_status()[1],
                         "test: other: not running: test #test is trusted by Trust('all', "
                         "accounts=[]) here but by the channel's own rule in bridge nb")
        self.hear("45.0.0.1")  # nb still runs
        self.assertEqual(self.relayed_south(), ["45.0.0.1 via test"])

    def testNoBridges(self):
        self.set("bridges", "")
        self.tick()
        self.assertEqual(self.bridge_status(),
                         ["test: No bridges (see plugins.ThreatNetCache.bridges)."])
        self.hear("45.0.0.1")
        self.assertEqual(self.relayed_south(), [])

    def testDocumentedExampleIsValid(self):
        """The bridge example in conf/ThreatNetCache.conf sets and runs as written."""
        path = Path(__file__).resolve().parents[2] / "conf" / "ThreatNetCache.conf"
        prefix = "supybot.plugins.ThreatNetCache."
        lines = [line for line in path.read_text().splitlines()
                 if line.startswith(prefix + "bridge")]
        self.assertEqual(len(lines), 12)
        for line in lines:
            key, _, value = line.partition(":")
            self.set(key[len(prefix):], value.strip())
        self.tick()
        self.assertEqual(self.bridge_status(), [
            "test: customers (libera #threatnet <-> corpnet #threats): relayed a->b 0, b->a 0; "
            "dropped none; queue corpnet #threats 0/1000, libera #threatnet 0/1000; not "
            "listening to libera #threatnet and corpnet #threats",
            "test: dnsbl bl.corpnet.example@10.0.0.53: listed 0, not listed 0, failed 0; "
            "waiting 0, cached 0"])


class SignedSideTestCase(BridgeTestCase):
    """#test trusts only lines signed by a key in its ring (trust "signed"): the bridge
    relays exactly those, unchanged (no via tag: the signature stays valid)."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="threatnet-bridge-sig-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.signer = Signer(generate_key(), "prov1")
        keyring = os.path.join(self.dir, "keyring")
        with open(keyring, "w") as f:
            f.write(public_line("prov1", self.signer.public_key) + "\n")
        for name, value in (("signatures.keyring", keyring), ("trust", "signed")):
            context = setting(name).context(value)
            context.__enter__()
            self.addCleanup(context.__exit__, None, None, None)
        self.tick()

    def testOnlyValidlySignedLinesCrossUnchanged(self):
        line = self.signer.sign(parse_message("45.0.0.1 ssh"), time.time())
        self.hear(line, nick="mallory")  # not voiced: the signature is the trust
        self.hear("45.0.0.2 unsigned")  # voiced, unsigned
        self.assertEqual(self.relayed_south(), [line])
        self.assertBridgeStatus(ab=1, dropped="unsigned 1")

    def testOwnSignedReportCrossesSigned(self):
        key = os.path.join(self.dir, "prov1.key")
        write_private_key(key, "prov1", self.signer.private_key)
        with setting("signatures.key").context(key):
            self.tick()
            sent = self.say("tn report 45.0.0.9 seen here")
        self.assertTrue(sent[0].startswith("45.0.0.9 seen here sig=prov1."), sent)
        self.assertEqual(self.relayed_south(), [sent[0]])

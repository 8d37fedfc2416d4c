"""ThreatNetCache with signed threat lines: signatures.require / keyring / key, trust
mode "signed", counters by reason, signed reports, and `tn check` on signed lines."""
import os
import shutil
import tempfile
import time

from cache_helpers import CacheTestCase, setting
from threatnet.language import parse_message
from threatnet.signature import KeyRing, Signer, generate_key, public_line, verify, \
    write_private_key

IP = "45.0.0.1"


def signer(key_id):
    return Signer(generate_key(), key_id)


class SignatureTestCase(CacheTestCase):
    """#test requires signatures; the key ring holds the key "prov1" (and "prov2" when a
    test writes it); "rogue" is a key nobody trusts."""

    require = True

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="threatnet-sig-")
        self.prov1, self.prov2, self.rogue = signer("prov1"), signer("prov2"), signer("rogue")
        self.keyring = os.path.join(self.dir, "keyring")
        self.write_keyring(self.prov1)
        self.contexts = [setting("signatures.keyring").context(self.keyring)]
        if self.require:
            self.contexts.append(setting("signatures.require").context(True))
        for c in self.contexts:
            c.__enter__()
        self.tick()
        self.synced()

    def tearDown(self):
        for c in reversed(self.contexts):
            c.__exit__(None, None, None)
        shutil.rmtree(self.dir)
        super().tearDown()

    def write_keyring(self, *signers):
        text = "# trusted providers\n" + "".join(
            public_line(s.key_id, s.public_key, f"{s.key_id} at example.net") + "\n"
            for s in signers)
        with open(self.keyring, "w") as f:
            f.write(text)
        os.utime(self.keyring, ns=(time.time_ns(), time.time_ns() + len(signers)))

    def signed(self, line, by=None, ago=0):
        return (by or self.prov1).sign(parse_message(line), time.time() - ago)

    def counters(self):
        status = self.status()
        return status[status.index("discarded"):status.index("), cache") + 1]


class RequireTestCase(SignatureTestCase):
    def testValidlySignedLineIsKept(self):
        self.hear(self.signed(f"{IP} ssh brute force"))
        self.assertStatus("seen 1", "kept 1,", "cache 1,")

    def testRejectionsAreCountedByReason(self):
        tampered = self.signed("45.0.0.3 ssh brute force").replace("ssh", "ftp")
        self.hear("45.0.0.2 unsigned")
        self.hear(tampered)
        self.hear(self.signed("45.0.0.4", by=self.rogue))
        self.hear(self.signed("45.0.0.5", ago=3601))
        self.hear(self.signed("45.0.0.6", ago=-121))
        self.hear("45.0.0.7 sig=prov1.notatoken")
        self.assertEqual(self.counters(),
                         "discarded 6 (duplicate 0, filtered 0, untrusted 0, unsigned 1, "
                         "bad signature 2, unknown key 1, expired signature 1, "
                         "future signature 1)")
        self.assertStatus("kept 0,", "cache 0,")

    def testSignatureComesAfterTrust(self):
        self.hear(self.signed(IP), nick="mallory")  # signed, but not voiced
        self.assertStatus("kept 0,", "untrusted 1, unsigned 0")

    def testReplayAfterTheBlockPeriodOfTheTopicIsExpired(self):
        self.server("TOPIC", self.channel, "threatnet://example.net/t block=600")
        self.hear(self.signed("45.0.0.2", ago=599))
        self.hear(self.signed("45.0.0.3", ago=601))
        self.assertStatus("kept 1,", "expired signature 1")

    def testKeyRingIsReadAgainWhenItChanges(self):
        self.hear(self.signed("45.0.0.2", by=self.prov2))
        self.write_keyring(self.prov1, self.prov2)
        self.tick()
        self.hear(self.signed("45.0.0.3", by=self.prov2))
        self.assertStatus("kept 1,", "unknown key 1,")

    def testBadKeyRingTrustsNoKey(self):
        with open(self.keyring, "w") as f:
            f.write("prov1 not-a-key\n")
        with self.assertLogs("supybot", "WARNING") as logged:
            self.tick()
        self.assertIn("keyring:1: public key must be 43 characters", logged.output[0])
        self.hear(self.signed(IP))
        self.assertStatus("kept 0,", "unknown key 1,")

    def testNoKeyRingTrustsNoKey(self):
        with setting("signatures.keyring").context(""):
            self.tick()
            self.hear(self.signed(IP))
        self.assertStatus("kept 0,", "unknown key 1,")

    def testCheckShowsTheSignedCommentAndKey(self):
        self.hear(self.signed(f"{IP} ssh brute force"))
        self.assertResponse(f"tn check {IP}",
                            f'Current threat in #test: {IP}, reported by alice, signed by key '
                            f'prov1, 0 s ago: "ssh brute force"; expires in 3600 s')

    def testTurningRequireOffTakesTheCheckOut(self):
        self.hear("45.0.0.2 unsigned")
        with setting("signatures.require").context(False):
            self.tick()
            self.hear("45.0.0.3 unsigned")
            status = self.status()
        self.assertIn("kept 1,", status)
        self.assertNotIn("unsigned", status)


class TrustSignedTestCase(SignatureTestCase):
    """Trust mode "signed": no IRC-level trust, signatures.require implied."""

    require = False

    def setUp(self):
        super().setUp()
        self.trust = setting("trust").context("signed")
        self.trust.__enter__()
        self.tick()

    def tearDown(self):
        self.trust.__exit__(None, None, None)
        super().tearDown()

    def testUnvoicedSignedSenderIsKept(self):
        self.hear(self.signed(IP), nick="mallory")
        self.hear(self.signed("45.0.0.2"), nick="stranger")  # not even in the channel
        self.assertStatus("kept 2,", "untrusted 0, unsigned 0")

    def testVoicedUnsignedSenderIsNot(self):
        self.hear("45.0.0.2 trust me, I am voiced")
        self.assertStatus("kept 0,", "untrusted 0, unsigned 1,")

    def testLeavingTrustSignedRestoresVoiceTrust(self):
        with setting("trust").context("voiced"):
            self.tick()
            self.hear("45.0.0.2 unsigned")
            self.hear(self.signed("45.0.0.3"), nick="mallory")
        self.assertStatus("kept 1,", "untrusted 1)")


class SignedReportTestCase(SignatureTestCase):
    """signatures.key: this agent signs its own reports."""

    require = False

    def setUp(self):
        super().setUp()
        self.own = generate_key()
        self.keyfile = os.path.join(self.dir, "own.key")
        write_private_key(self.keyfile, "me", self.own)
        self.key = setting("signatures.key").context(self.keyfile)
        self.key.__enter__()
        self.tick()

    def tearDown(self):
        self.key.__exit__(None, None, None)
        super().tearDown()

    def testReportIsPostedSigned(self):
        line, reply = self.say_msgs("tn report 45.0.0.9 ssh brute force")
        self.assertEqual(line.args[0], "#test")
        self.assertRegex(line.args[1], r"^45\.0\.0\.9 ssh brute force sig=me\.\d+\.[\w-]{86}$")
        ring = KeyRing.parse(public_line("me", self.own.public_key()))
        self.assertEqual(verify(parse_message(line.args[1]), ring, time.time(), 60).comment,
                         "ssh brute force")
        self.assertEqual(reply.args[1], "test: Reported to #test: 45.0.0.9 ssh brute force "
                                        "(signed with key me)")

    def testKeyOthersMayReadIsRefused(self):
        os.chmod(self.keyfile, 0o644)
        os.utime(self.keyfile, ns=(1, 1))
        with self.assertLogs("supybot", "ERROR"):
            self.tick()
        self.assertEqual(self.say("tn report 45.0.0.9"),
                         [f"test: Error: cannot sign reports to #test, so none are sent: "
                          f"{self.keyfile}: open to others (mode 0644): chmod 600 it"])

    def testCheckOfOwnSignedReport(self):
        self.say("tn report 45.0.0.9 ssh")
        self.assertRegexp("tn check 45.0.0.9", r'reported by test 0 s ago: "ssh"')

    def say_msgs(self, command):
        self.feedMsg("@" + command)
        return self.sent()

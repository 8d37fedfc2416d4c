"""The Guard in a channel whose listeners require signed lines (kick.unsigned)."""
import time

from guard_helpers import GuardTestCase
from threatnet.language import parse_message
from threatnet.signature import Signer, generate_key


class UnsignedKickTestCase(GuardTestCase):
    def setUp(self):
        super().setUp()
        self.join("a1", "192.0.2.5")
        self.assertEqual(self.lines(), ["MODE #test +v a1"])
        self.signer = Signer(generate_key(), "prov1")

    def test_unsigned_lines_pass_by_default(self):
        self.say("a1", "192.0.2.5", "8.8.8.8 ssh brute force")
        self.assertEqual(self.lines(), [])

    def test_unsigned_and_malformed_signatures_are_kicked(self):
        with self.config_value("kick.unsigned", True):
            self.say("a1", "192.0.2.5", "8.8.8.8 ssh brute force")
            self.assertEqual(self.lines(), ["KICK #test a1 unsigned threat line: this channel "
                                            "takes signed lines only"])
            self.join("a1", "192.0.2.5")
            self.lines()
            self.say("a1", "192.0.2.5", "8.8.4.4 ssh sig=prov1.123.short")
            self.assertEqual(self.lines(), ["KICK #test a1 malformed signature"])

    def test_signed_lines_pass_whoever_signed(self):
        """The Guard checks the form only; listeners check the key."""
        with self.config_value("kick.unsigned", True):
            line = self.signer.sign(parse_message("8.8.8.8 ssh brute force"), time.time())
            self.say("a1", "192.0.2.5", line)
            self.assertEqual(self.lines(), [])

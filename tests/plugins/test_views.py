"""Operator views: `tn guard status` (voiced agents and why, kicks and bans with reasons
and time left, the whitelist file's state) and `tn overview` (every channel at a glance)."""
import re

import supybot.ircmsgs as ircmsgs
from guard_helpers import BothTestCase
from supybot.test import timeFastForward

from lab.limnoria import WHITELIST


class GuardStatusTestCase(BothTestCase):
    def test_voiced_agents_and_why(self):
        self.join("a1", "192.0.2.5")
        self.irc.state.capabilities_ack.add("extended-join")
        self.join("bob", "cloak.example", account="bob")
        self.join("eve", "elsewhere.example")
        self.out()
        voiced = self.reply("tn guard status").split(" | ")[0]
        self.assertIn("#test: op; voiced 2: a1 (IP 192.0.2.5 in 192.0.2.0/24), bob (account bob)",
                      voiced)
        self.assertNotIn("eve", voiced)

    def test_kicks_and_bans_with_reasons_and_time_left(self):
        for nick in ("eve", "eve2", "eve3"):
            self.offend(nick, "cloak.example")
        timeFastForward(100)
        _, kicks, bans, _ = self.reply("tn guard status").split(" | ")
        self.assertIn("kicks (ban 1, kick unvoiced 3), latest: eve3 100 s ago: only "
                      "whitelisted (voiced) agents may post here (banned for 3600 s); eve2 100 "
                      "s ago: only whitelisted (voiced) agents may post here; eve 100 s ago",
                      kicks)
        self.assertRegex(bans, r"bans held: \*!\*@cloak\.example \(3500 s left\)")

    def test_the_whitelist_file_state(self):
        status = self.reply("tn guard status").split(" | ")[-1]
        self.assertRegex(status, r"whitelist /\S+/ThreatNetGuard\.whitelist\.yaml: loaded, "
                                 r"modified \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, 3 entries here, "
                                 r"3 in all")
        self.write_whitelist(WHITELIST + "    - 300.1.2.3\n")
        self.guard._load_whitelist()
        status = self.reply("tn guard status").split(" | ")[-1]
        self.assertIn("ERROR, the last good one in use:", status)
        self.assertRegex(status, r"ThreatNetGuard\.whitelist\.yaml:6: '300\.1\.2\.3'")
        self.assertIn("3 entries here", status)

    def test_the_group_lists_its_commands(self):
        self.assertEqual(self.reply("tn guard"),
                         "tn guard status [<channel>] (#channel,threatnet capability, or admin)")

    def reply(self, command, frm=None):
        """Each reply line, joined by " | "."""
        return " | ".join(re.sub(r"^test: ", "", r) for r in self.command(command, frm=frm))


class OverviewTestCase(BothTestCase):
    def test_one_reply_per_channel_with_everything(self):
        self.join("a1", "192.0.2.5")
        self.out()
        self.say("a1", "192.0.2.5", "45.0.0.1 scan")
        [line] = self.command("tn overview")
        self.assertRegex(line, r"#test on test: quiet period \(\d+ s left\), seen 1 \(kept 1, "
                               r"discarded 0\), cache 1, block 3600 s, quorum 1, reported 0, "
                               r"outbox 0; 0 feeds; responders: none; bridge: none; Guard: op, "
                               r"1 voiced, 0 kicks, 0 bans held, whitelist ok, 3 entries here")

    def test_in_private_every_channel_one_may_administer(self):
        self.irc.feedMsg(ircmsgs.privmsg(self.irc.nick, "tn overview", prefix=self.prefix))
        replies = [m.args[1] for m in self.out() if m.command in ("PRIVMSG", "NOTICE")]
        self.assertEqual(len(replies), 1)
        self.assertTrue(replies[0].startswith("#test on test: "), replies)
        stranger = self.user("stranger")
        self.irc.feedMsg(ircmsgs.privmsg(self.irc.nick, "tn overview", prefix=stranger))
        [reply] = [m.args[1] for m in self.out() if m.command in ("PRIVMSG", "NOTICE")]
        self.assertIn("no channel of mine that you may administer", reply)



class MetricsTestCase(BothTestCase):
    """GET /threatnet/metrics with the Guard on the same bot: its numbers, build info,
    process metrics, and the report -> cached latency histogram."""

    def samples(self):
        from types import SimpleNamespace

        from prometheus_client.parser import text_string_to_metric_families

        from plugins.ThreatNetCache.http import ThreatNetHttp
        status, body, _ = ThreatNetHttp(self.cb)._metrics(SimpleNamespace(headers={}), {})
        self.assertEqual(status, 200)
        found = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                found[s.name, tuple(sorted(s.labels.items()))] = s.value
        return found

    def setUp(self):
        super().setUp()
        self.cb = self.irc.getCallback("ThreatNetCache")

    def test_guard_metrics(self):
        self.join("a1", "192.0.2.5")
        for nick in ("eve", "eve2", "eve3"):
            self.offend(nick, "cloak.example")
        self.feed(":irc.test 437 test #test :Retry topic change later")
        self.write_whitelist("channels: [")
        self.guard._load_whitelist()
        chan = (("channel", "#test"), ("network", "test"))
        s = self.samples()
        self.assertEqual(s["threatnet_guard_opped", chan], 1)
        self.assertEqual(s["threatnet_guard_voiced", chan], 1)
        self.assertEqual(s["threatnet_guard_voice_changes_total", (("change", "+v"),) + chan], 1)
        self.assertEqual(s["threatnet_guard_kicks_total", (("channel", "#test"), (
            "network", "test"), ("reason", "unvoiced"))], 3)
        self.assertEqual(s["threatnet_guard_bans_total", chan], 1)
        self.assertEqual(s["threatnet_guard_bans_held", chan], 1)
        self.assertEqual(s["threatnet_guard_refusals_total", (("channel", "#test"), (
            "network", "test"), ("numeric", "437"))], 1)
        self.assertEqual(s["threatnet_guard_whitelist_entries", chan], 3)
        self.assertEqual(s["threatnet_guard_whitelist_ok", ()], 0)
        self.assertEqual(s["threatnet_guard_whitelist_reload_errors_total", ()], 1)

    def test_build_info_process_and_latency(self):
        import time
        self.join("a1", "192.0.2.5")
        self.out()
        at = time.time() - 0.3  # once: both parts of the tag from the same instant
        sent = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
        self.say("a1", "192.0.2.5", "45.0.0.1 scan", tags=f"@time={sent}.{int(at % 1 * 1000):03d}Z ")
        self.say("a1", "192.0.2.5", "45.0.0.2 scan")  # no server-time: read just now
        s = self.samples()
        [(labels, one)] = [(k[1], v) for k in s.items() for k, v in [k]
                           if k[0] == "threatnet_build_info"]
        self.assertEqual(one, 1)
        self.assertEqual([name for name, _ in labels], ["limnoria", "python", "version"])
        self.assertIn(("process_cpu_seconds_total", ()), s)
        self.assertIn(("process_resident_memory_bytes", ()), s)
        chan = (("channel", "#test"), ("network", "test"))
        name = "threatnet_report_to_cache_seconds"
        self.assertEqual(s[name + "_count", chan], 2)
        self.assertGreaterEqual(s[name + "_sum", chan], 0.3)  # the tagged one's 0.3 s at least
        self.assertEqual(s[name + "_bucket", (("channel", "#test"), ("le", "0.25"), (
            "network", "test"))], 1)
        self.assertEqual(s[name + "_bucket", (("channel", "#test"), ("le", "0.5"), (
            "network", "test"))], 2)
        self.assertNotIn("threatnet_lines_seen_total", {n for n, _ in s})

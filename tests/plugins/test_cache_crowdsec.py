"""ThreatNetCache as a CrowdSec LAPI for bouncers: tn bouncer add|list|remove (keys in
private, hashed in a 0600 file), the stream and lookup endpoints, 403 for bad keys and
400 for bad parameters."""
import gzip
import json
import os
import re
import stat

import supybot.conf as conf

from test_cache_http import HttpTestCase

NOCAP = "boss!b@__no_testcap__"


class BouncerTestCase(HttpTestCase):
    def setUp(self):
        super().setUp()
        for b in self.cb.bouncer_keys.all():
            self.cb.bouncer_keys.remove(b.name)

    def add(self, name="fw", channel=""):
        """tn bouncer add in the channel: the public reply and the private notice's key."""
        self.feedMsg(f"@tn bouncer add {channel} {name}".replace("  ", " "))
        sent = self.sent()
        notice = [m for m in sent if m.command == "NOTICE"]
        public = [m.args[1] for m in sent if m.args[0] == self.channel]
        self.assertEqual(len(notice), 1, sent)
        self.assertEqual(notice[0].args[0], self.nick)  # to the caller, not the channel
        key = re.search(r"api_key: ([0-9a-f]{64})$", notice[0].args[1]).group(1)
        self.assertIn("/threatnet/crowdsec/", notice[0].args[1])
        return key, public

    def assertCommandError(self, command):  # noqa: N802 (unittest style)
        """PluginTestCase's assertError (HttpTestCase's is about HTTP answers)."""
        sent = self.say(command)
        self.assertTrue(sent and sent[0].startswith(f"{self.nick}: Error:"), sent)

    def stream(self, key, query=""):
        return self.get(f"/crowdsec/v1/decisions/stream{query}", headers={"X-Api-Key": key})

    def testAddListRemove(self):
        key, public = self.add()
        self.assertEqual(public, [f"{self.nick}: Bouncer fw added for #test; its api_key is in a private "
                                  "notice to you."])
        self.assertNotIn(key, " ".join(public))
        path = conf.supybot.directories.data.dirize("ThreatNetCache/bouncers.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            text = f.read()
        self.assertNotIn(key, text)  # only its hash
        self.assertEqual(json.loads(text)["bouncers"][0]["channel"], "#test")
        self.assertRegexp("tn bouncer list", r"fw \(#test on test; no pull yet\)")
        self.assertCommandError("tn bouncer add fw")  # taken
        self.assertCommandError("tn bouncer add bad/name")
        self.assertEqual(self.stream(key, "?startup=true").status, 200)
        self.assertRegexp("tn bouncer list", r"fw \(#test on test; 1 pulls, last 0 s ago "
                                             r"from 127\.0\.0\.1\)")
        self.assertResponse("tn bouncer remove fw", "Bouncer fw removed.")
        self.assertEqual(self.stream(key).status, 403)
        self.assertCommandError("tn bouncer remove fw")
        self.assertResponse("tn bouncer list", "No CrowdSec bouncers (tn bouncer add).")

    def testNeedsAdmin(self):
        for command in ("tn bouncer add fw", "tn bouncer list", "tn bouncer remove fw"):
            sent = self.say(command, frm=NOCAP)
            self.assertTrue(sent and "capability" in sent[0], sent)
        self.assertEqual(self.cb.bouncer_keys.all(), [])

    def testAddNamesAChannelFirst(self):
        self.assertCommandError("tn bouncer add #nowhere fw")
        key, _ = self.add("fw2", "#test")
        self.assertEqual(self.cb.bouncer_keys.find(key).channel, "#test")

    def testStream(self):
        key, _ = self.add()
        self.synced()
        self.hear("45.0.0.9 ssh brute force")
        self.idle()
        first = self.stream(key, "?startup=true")
        self.assertEqual(first.status, 200)
        data = first.json()
        self.assertEqual(data["deleted"], [])
        (d,) = data["new"]
        self.assertEqual({k: d[k] for k in ("origin", "scope", "type", "value", "scenario")},
                         {"origin": "threatnet", "scope": "Ip", "type": "ban",
                          "value": "45.0.0.9", "scenario": "threatnet test #test: ssh brute "
                                                           "force"})
        self.assertRegex(d["duration"], r"^(59m[0-9.]+s|1h0m0s)$")
        self.assertEqual(self.stream(key).json(), {"new": [], "deleted": []})
        self.assertResponse("tn forget 45.0.0.9", "Forgotten in #test: 45.0.0.9, reported by "
                            "alice 0 s ago: \"ssh brute force\"; expires in 3600 s")
        self.idle()
        gone = self.stream(key).json()
        self.assertEqual([g["value"] for g in gone["deleted"]], ["45.0.0.9"])
        self.assertEqual(gone["deleted"][0]["duration"], "0s")
        self.assertEqual(self.stream(key).json(), {"new": [], "deleted": []})

    def testLookup(self):
        key, _ = self.add()
        self.synced()
        self.hear("45.0.0.9 ssh brute force")
        self.idle()

        def ask(query, k=key):
            return self.get(f"/crowdsec/v1/decisions?{query}", headers={"X-Api-Key": k})
        none = ask("ip=45.0.0.8")
        self.assertEqual((none.status, none.body), (200, b"null"))
        (d,) = ask("ip=45.0.0.9").json()
        self.assertEqual(d["value"], "45.0.0.9")
        self.assertEqual(ask("ip=45.0.0.9&type=captcha").body, b"null")
        self.assertEqual(len(ask("ip=45.0.0.9&banned=true").json()), 1)  # Traefik's
        at_root = self.request("GET", "/v1/decisions?ip=45.0.0.9", headers={"X-Api-Key": key})
        self.assertEqual(at_root.json()[0]["value"], "45.0.0.9")
        self.assertEqual(ask("ip=45.0.0.9", k="x" * 64).status, 403)

    def testBadKeysAnd403(self):
        key, _ = self.add()
        for headers in ({}, {"X-Api-Key": ""}, {"X-Api-Key": key[:-1]},
                        {"X-Api-Key": key + "0"}):
            answer = self.get("/crowdsec/v1/decisions/stream", headers=headers)
            self.assertEqual(answer.status, 403, headers)
            self.assertEqual(answer.json()["message"], "access forbidden")
        self.assertEqual(self.stream(key.upper()).status, 403)

    def testBadParameters400(self):
        key, _ = self.add()
        for query in ("?startup=maybe", "?startup=true&startup=false", "?scopes=", "?%ff=1"):
            self.assertError(self.stream(key, query), 400, "")
        for query in ("ip=999.1.1.1", "ip=45.0.0.1&range=45.0.0.0/24", "range=1.2.3.4/40",
                      "contains=perhaps", "ip=" + "1" * 2000):
            answer = self.get(f"/crowdsec/v1/decisions?{query}", headers={"X-Api-Key": key})
            self.assertEqual(answer.status, 400, query)

    def testBadParameterNeedsAKeyFirst(self):
        self.assertEqual(self.get("/crowdsec/v1/decisions/stream?startup=maybe").status, 403)

    def testRoutes(self):
        key, _ = self.add()
        self.assertError(self.get("/crowdsec/v1/alerts", headers={"X-Api-Key": key}), 404,
                         "api_url")
        answer = self.request("POST", "/threatnet/crowdsec/v1/decisions/stream", b"",
                              {"X-Api-Key": key})
        self.assertEqual(answer.status, 405)
        head = self.request("HEAD", "/threatnet/crowdsec/v1/decisions/stream",
                            headers={"X-Api-Key": key})
        self.assertEqual((head.status, head.body), (200, b""))
        # a path without the trailing slash works (the firewall bouncer adds its own)
        self.assertEqual(self.get("/crowdsec//v1/decisions/stream",
                                  headers={"X-Api-Key": key}).status, 200)

    def testOtherClientsRefused(self):
        key, _ = self.add()
        answer = self.get("/crowdsec/v1/decisions/stream", headers={"X-Api-Key": key},
                          client="192.0.2.1")
        self.assertEqual(answer.status, 403)

    def testOversizedRequestsAsEverywhere(self):
        key, _ = self.add()
        answer = self.get("/crowdsec/v1/decisions/stream", headers={"X-Api-Key": "k" * 20000})
        self.assertEqual(answer.status, 431)
        answer = self.get("/crowdsec/v1/decisions?ip=" + "1" * 9000, headers={"X-Api-Key": key})
        self.assertEqual(answer.status, 414)

    def testCorruptKeyFileLetsNobodyIn(self):
        key, _ = self.add()
        path = self.cb.bouncer_keys.path
        with open(path, "w") as f:
            f.write("{not json")
        self.cb.bouncer_keys.load()
        try:
            self.assertEqual(self.stream(key).status, 403)
            self.assertRegexp("tn bouncer list", "cannot read")
            self.assertCommandError("tn bouncer add fw3")  # the file is not overwritten
            with open(path) as f:
                self.assertEqual(f.read(), "{not json")
        finally:
            os.remove(path)
            self.cb.bouncer_keys.load()

    def testLargeAnswersGzippedForClientsThatTakeIt(self):
        key, _ = self.add()
        self.synced()
        for n in range(120):
            self.hear(f"45.1.0.{n} ssh brute force from a long list of bots")
        self.idle()
        plain = self.stream(key, "?startup=true")
        self.assertNotIn("Content-Encoding", plain.headers)
        self.assertEqual(len(plain.json()["new"]), 120)
        for accept in ("gzip", "deflate, gzip;q=0.5", "GZIP"):
            packed = self.get("/crowdsec/v1/decisions/stream?startup=true",
                              headers={"X-Api-Key": key, "Accept-Encoding": accept})
            self.assertEqual(packed.headers["Content-Encoding"], "gzip", accept)
            self.assertEqual(len(json.loads(gzip.decompress(packed.body))["new"]), 120)
        refused = self.get("/crowdsec/v1/decisions/stream?startup=true",
                           headers={"X-Api-Key": key, "Accept-Encoding": "gzip;q=0"})
        self.assertNotIn("Content-Encoding", refused.headers)
        small = self.get("/crowdsec/v1/decisions/stream",
                         headers={"X-Api-Key": key, "Accept-Encoding": "gzip"})
        self.assertEqual(small.json(), {"new": [], "deleted": []})  # small: as it is

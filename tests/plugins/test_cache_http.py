"""ThreatNetCache's HTTP API (/threatnet/ on its own server): check, threats, the
events long-poll, metrics, report with its token, client addresses, bad requests;
and, on the real socket server, a waiting long-poll that holds up no other request."""
import http.client
import io
import json
import socket
import threading
import time
import urllib.request
from urllib.error import HTTPError
from urllib.parse import urlencode

import supybot.schedule as schedule
from prometheus_client.parser import text_string_to_metric_families

from cache_helpers import CacheTestCase, setting

TOKEN = "s3cret-token"
KEY = ("test", "#test")


class _Answer:
    """An answer's bytes, for http.client.HTTPResponse to parse."""

    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


class Response:
    def __init__(self, method, data):
        answer = http.client.HTTPResponse(_Answer(data), method=method)
        answer.begin()
        self.status = answer.status
        self.headers = answer.msg
        self.body = answer.read()

    def json(self):
        assert self.headers["Content-Type"] == "application/json", self.headers
        return json.loads(self.body)


class HttpTestCase(CacheTestCase):
    config = dict(CacheTestCase.config, **{
        "supybot.plugins.ThreatNetCache.http.enable": True,
        "supybot.plugins.ThreatNetCache.http.port": 0,
        "supybot.plugins.ThreatNetCache.http.token": TOKEN})

    def setUp(self):
        super().setUp()
        self.cb._sync_http()  # PluginTestCase sets `config` after loading the plugin
        self.cb._sync()

    def request(self, method, path, body=None, headers=None, client="127.0.0.1"):
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            headers["Content-Length"] = str(len(body))
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = f"{method} {path} HTTP/1.0\r\n{head}\r\n".encode() + (body or b"")
        return Response(method, self.serve(raw, client))

    def serve(self, raw, client="127.0.0.1"):
        """The server's handling of one connection from ``client`` that sends ``raw``,
        run here, on the main loop (as if accepted); the bytes it answered."""
        ours, theirs = socket.socketpair()
        with ours, theirs:
            for s in (ours, theirs):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            ours.sendall(raw)
            ours.shutdown(socket.SHUT_WR)
            server = self.irc.getCallback("ThreatNetCache")._http.server  # after reloads too
            server.finish_request(theirs, (client, 40000))
            theirs.shutdown(socket.SHUT_WR)
            ours.settimeout(5)
            chunks = []
            while chunk := ours.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def get(self, path, **kw):
        return self.request("GET", "/threatnet" + path, **kw)

    def report(self, fields, token=TOKEN, as_json=False):
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        if as_json:
            headers["Content-Type"] = "application/json"
            body = json.dumps(fields).encode()
        else:
            body = urlencode(fields).encode()
        return self.request("POST", "/threatnet/report", body, headers)

    def idle(self):
        self.assertTrue(self.cb._responses[KEY].host.wait_idle(5))

    @staticmethod
    def background(fn, *args, **kw):
        """Run ``fn`` on a thread of its own: (the thread, a dict whose "answer" is
        what it returned or raised)."""
        result = {}

        def run():
            try:
                result["answer"] = fn(*args, **kw)
            except Exception as e:  # the test asserts on it
                result["answer"] = e
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, result

    def pump(self, thread, timeout=5):
        """Run the main loop (schedule) until ``thread`` is done."""
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            schedule.run()
            thread.join(0.005)
        self.assertFalse(thread.is_alive())

    def assertError(self, response, status, text):  # noqa: N802 (unittest style)
        self.assertEqual(response.status, status, response.body)
        self.assertIn(text, response.json()["error"])


class ReadTestCase(HttpTestCase):
    def testCheck(self):
        self.assertEqual(self.get("/check?ip=45.0.0.9").json(),
                         {"ip": "45.0.0.9", "current": False, "threats": []})
        self.hear("45.0.0.9 ssh brute force")
        answer = self.get("/check?ip=45.0.0.9")
        self.assertEqual(answer.status, 200)
        (threat,) = answer.json()["threats"]
        self.assertEqual({k: threat[k] for k in ("network", "channel", "ip", "comment",
                                                 "reporter", "account")},
                         {"network": "test", "channel": "#test", "ip": "45.0.0.9",
                          "comment": "ssh brute force", "reporter": "alice", "account": None})
        self.assertAlmostEqual(threat["expires_at"] - threat["first_seen"], 3600, places=2)
        self.assertEqual(self.get("/check?ip=45.0.0.9&channel=%23other").json()["threats"], [])

    def testCheckCanonicalisesIPv6(self):
        self.hear("2a00:1450::9 v6")
        self.assertTrue(self.get("/check?ip=2A00:1450:0:0::9").json()["current"])

    def testCheckBadRequests(self):
        self.assertError(self.get("/check"), 400, "ip is missing")
        self.assertError(self.get("/check?ip=10.1"), 400, "'10.1' is not a valid IP address")
        self.assertError(self.get("/check?ip=1.2.3.4&ip=5.6.7.8"), 400, "more than once")

    def testThreatsAndEvents(self):
        first = self.get("/threats").json()
        self.assertEqual((first["count"], first["threats"]), (0, []))
        self.hear("45.0.0.9 one")
        self.hear("45.0.0.10 two")
        self.idle()
        answer = self.get("/threats").json()
        self.assertEqual([t["ip"] for t in answer["threats"]], ["45.0.0.9", "45.0.0.10"])
        self.assertEqual(answer["stream"], first["stream"])

        events = self.get(f"/events?stream={first['stream']}&since={first['next']}").json()
        self.assertFalse(events["resync"])
        self.assertEqual([(e["event"], e["ip"], e["comment"], e["reporter"])
                          for e in events["events"]],
                         [("added", "45.0.0.9", "one", "alice"),
                          ("added", "45.0.0.10", "two", "alice")])
        later = self.get(f"/events?since={events['next']}").json()
        self.assertEqual(later["events"], [])
        self.tick(3601)
        self.idle()
        gone = self.get(f"/events?since={events['next']}").json()
        self.assertEqual([(e["event"], e["ip"]) for e in gone["events"]],
                         [("expired", "45.0.0.9"), ("expired", "45.0.0.10")])
        self.assertEqual(self.get("/threats").json()["count"], 0)

    def testEventsFilterAndCursor(self):
        self.assertEqual(self.get("/events").json()["events"], [])  # no since: from now
        start = self.get("/events").json()["next"]
        self.hear("45.0.0.9")
        self.idle()
        self.assertEqual(len(self.get(f"/events?since={start}&channel=%23test").json()
                             ["events"]), 1)
        self.assertEqual(self.get(f"/events?since={start}&channel=%23other").json()["events"],
                         [])

    def testEventsResync(self):
        self.assertTrue(self.get("/events?stream=0123&since=1").json()["resync"])
        self.assertTrue(self.get("/events?since=999999").json()["resync"])

    def testEventsBadRequests(self):
        self.assertError(self.get("/events?since=-1"), 400, "since must be a change number")
        self.assertError(self.get("/events?since=1&timeout=600"), 400,
                         "timeout must be a number from 0 to 60")
        self.assertError(self.get("/events?since=1&timeout=nan"), 400, "timeout must be")

    def testBlockChangeMovesExpiry(self):
        self.hear("45.0.0.9")
        self.idle()
        start = self.get("/events").json()["next"]
        self.server("TOPIC", self.channel, "threatnet://example.net/t block=7200")
        self.idle()
        (event,) = self.get(f"/events?since={start}").json()["events"]
        self.assertEqual(event["event"], "added")
        self.assertAlmostEqual(event["expires_at"], time.time() + 7200, delta=2)

    def testMetrics(self):
        self.hear("45.0.0.9")
        self.hear("45.0.0.9")
        self.hear("45.0.0.10", nick="mallory")
        self.idle()
        answer = self.get("/metrics")
        self.assertEqual(answer.status, 200)
        self.assertTrue(answer.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        samples = {}
        for family in text_string_to_metric_families(answer.body.decode()):
            for s in family.samples:
                samples[s.name, tuple(sorted(s.labels.items()))] = s.value
        chan = (("channel", "#test"), ("network", "test"))

        def value(name, **labels):
            return samples[name, tuple(sorted(chan + tuple(labels.items())))]
        self.assertNotIn("threatnet_lines_seen_total", {name for name, _ in samples})
        self.assertEqual(value("threatnet_lines_kept_total"), 1)
        self.assertEqual(value("threatnet_lines_discarded_total", reason="duplicate"), 1)
        self.assertEqual(value("threatnet_lines_discarded_total", reason="untrusted"), 1)
        self.assertEqual(value("threatnet_lines_discarded_total", reason="protected"), 0)
        self.assertEqual(value("threatnet_cache_threats"), 1)
        self.assertEqual(value("threatnet_block_period_seconds"), 3600)
        self.assertEqual(value("threatnet_synced"), 0)
        self.assertEqual(value("threatnet_responder_up", responder="http"), 1)
        self.assertEqual(value("threatnet_responder_threats", responder="http"), 1)
        self.assertEqual(value("threatnet_responder_errors_total", responder="http"), 0)
        self.assertEqual(value("threatnet_responder_lag_seconds", responder="http"), 0)
        self.assertEqual(samples["threatnet_http_changes_total", ()], 1)
        openmetrics = self.get("/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
        self.assertTrue(openmetrics.headers["Content-Type"].startswith(
            "application/openmetrics-text"))
        self.assertTrue(openmetrics.body.endswith(b"# EOF\n"))

    def testIndexAndUnknownPaths(self):
        self.assertIn("GET /threatnet/metrics", self.get("/").json()["endpoints"])
        self.assertIn("GET /threatnet/metrics",
                      self.request("GET", "/threatnet").json()["endpoints"])
        self.assertError(self.get("/nope"), 404, "no such endpoint: /nope")

    def testWrongMethod(self):
        answer = self.request("POST", "/threatnet/check", b"ip=45.0.0.9")
        self.assertError(answer, 405, "/check takes GET")
        self.assertEqual(answer.headers["Allow"], "GET")
        self.assertError(self.get("/report"), 405, "/report takes POST")

    def testHead(self):
        answer = self.request("HEAD", "/threatnet/check?ip=45.0.0.9")
        self.assertEqual((answer.status, answer.body), (200, b""))
        self.assertGreater(int(answer.headers["Content-Length"]), 0)

    def testOnlyAllowedClients(self):
        self.assertError(self.get("/check?ip=45.0.0.9", client="192.0.2.7"), 403,
                         "client address not allowed")
        self.assertEqual(self.get("/threats", client="::1").status, 200)
        self.assertEqual(self.get("/threats", client="::ffff:127.0.0.1").status, 200)
        with setting("http.clients").context(["192.0.2.0/24"]):
            self.assertEqual(self.get("/threats", client="192.0.2.7").status, 200)
            self.assertEqual(self.get("/threats").status, 403)

    def testDisabledUnhooks(self):
        port = self.cb._http.server.port
        with setting("http.enable").context(False):
            self.tick()
            self.assertIsNone(self.cb._http)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            self.assertRegexp("tn responders", "no responders")
        self.tick()
        self.assertEqual(self.get("/threats").status, 200)


class ReportTestCase(HttpTestCase):
    def setUp(self):
        super().setUp()
        self.synced()

    def testReportForm(self):
        answer = self.report({"ip": "2A00:1450:0:0::9", "comment": "fail2ban sshd"})
        self.assertEqual(answer.status, 200, answer.body)
        self.assertEqual(answer.json(), {"status": "reported", "network": "test",
                                         "channel": "#test",
                                         "line": "2a00:1450::9 fail2ban sshd"})
        (line,) = self.sent()
        self.assertEqual((line.command, *line.args), ("PRIVMSG", "#test",
                                                       "2a00:1450::9 fail2ban sshd"))
        self.assertRegexp("tn check 2a00:1450::9", "reported by test 0 s ago")

    def testReportJson(self):
        answer = self.report({"ip": "45.0.0.9", "channel": "#test", "network": "test"},
                             as_json=True)
        self.assertEqual((answer.status, answer.json()["line"]), (200, "45.0.0.9"))
        self.assertEqual([m.args[1] for m in self.sent()], ["45.0.0.9"])

    def testReportQueuedWhenTheOutboxIsBusy(self):
        with setting("outbox.burst").context(1):
            self.assertNotError("reload ThreatNetCache")
            self.assertEqual(self.report({"ip": "45.0.0.9"}).status, 200)
            answer = self.report({"ip": "45.0.0.10"})
            self.assertEqual((answer.status, answer.json()["status"]), (202, "queued"))
            self.sent()

    def testSameRulesAsTheCommand(self):
        self.hear("45.0.0.9 heard first")
        answer = self.report({"ip": "45.0.0.9"})
        self.assertError(answer, 409, "45.0.0.9 is already current in #test, reported by "
                                      "alice 0 s ago")
        self.assertEqual(answer.json()["refused"], "duplicate")
        self.assertError(self.report({"ip": "10.0.0.1"}), 409,
                         "10.0.0.1 is in a discarded network (BOGONS)")
        with setting("ownNetworks").context(["45.0.0.0/24"]):
            self.tick()
            self.assertError(self.report({"ip": "45.0.0.10"}), 409,
                             "45.0.0.10 is in ownNetworks, never reported")
        self.server("TOPIC", self.channel, "threatnet://example.net/t block=7200")
        self.assertError(self.report({"ip": "45.0.0.11"}), 409, "quiet period")
        self.assertEqual(self.sent(), [])

    def testBadReports(self):
        self.assertError(self.report({"comment": "no ip"}), 400, "ip is missing")
        self.assertError(self.report({"ip": "45.0.0.0/8"}), 400, "not a valid IP address: "
                                                                 "CIDR not allowed")
        self.assertError(self.report({"ip": "45.0.0.9", "channel": "#other"}), 404,
                         "no such ThreatNet channel")
        self.assertError(self.report(["not", "an", "object"], as_json=True), 400,
                         "bad request body")
        answer = self.request("POST", "/threatnet/report", b"ip=45.0.0.9",
                              {"Authorization": f"Bearer {TOKEN}",
                               "Content-Type": "text/plain"})
        self.assertError(answer, 415, "application/x-www-form-urlencoded")
        self.assertEqual(self.sent(), [])

    def testAuthentication(self):
        for token in (None, "", "wrong", TOKEN + "x", TOKEN[:-1]):
            answer = self.report({"ip": "45.0.0.9"}, token=token)
            self.assertError(answer, 401, "Bearer token is required")
            self.assertEqual(answer.headers["WWW-Authenticate"], 'Bearer realm="threatnet"')
        answer = self.request("POST", "/threatnet/report", b"ip=45.0.0.9",
                              {"Authorization": f"Basic {TOKEN}"})
        self.assertEqual(answer.status, 401)
        self.assertEqual(self.sent(), [])

    def testNoTokenDisablesReports(self):
        with setting("http.token").context(""):
            self.assertError(self.report({"ip": "45.0.0.9"}, token=""), 403,
                             "reporting is disabled")
        self.assertEqual(self.sent(), [])

    def testTokenIsPrivate(self):
        self.assertTrue(setting("http.token")._private)


class RealServerTestCase(HttpTestCase):
    """The real socket HTTP server (as the bot runs it): a waiting long-poll holds up
    no other request, and check / report are answered from the main loop."""

    def setUp(self):
        super().setUp()
        self.server_ = self.cb._http.server
        self.base = f"http://127.0.0.1:{self.server_.port}/threatnet"

    def fetch(self, path, data=None, headers=None, timeout=10):
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read())
        except HTTPError as e:
            return e.code, json.loads(e.read())

    def in_thread(self, *args, **kw):
        return self.background(self.fetch, *args, **kw)

    def testParkedLongPollHoldsUpNothing(self):
        start = self.fetch("/threats")[1]
        poll, result = self.in_thread(f"/events?stream={start['stream']}&since="
                                      f"{start['next']}&timeout=30")
        deadline = time.monotonic() + 5
        while not len(self.cb._http.waiters) and time.monotonic() < deadline:
            time.sleep(0.005)
        self.assertEqual(len(self.cb._http.waiters), 1)
        self.assertEqual(self.fetch("/threats")[1]["count"], 0)
        self.assertTrue(poll.is_alive())  # answered while the long-poll still waits
        self.hear("45.0.0.9 seen")
        poll.join(5)
        status, answer = result["answer"]
        self.assertEqual(status, 200)
        self.assertEqual([(e["event"], e["ip"]) for e in answer["events"]],
                         [("added", "45.0.0.9")])
        self.assertEqual(len(self.cb._http.waiters), 0)

    def testLongPollTimesOut(self):
        next_ = self.fetch("/events")[1]["next"]
        began = time.monotonic()
        status, answer = self.fetch(f"/events?since={next_}&timeout=0.3")
        self.assertGreaterEqual(time.monotonic() - began, 0.3)
        self.assertEqual((status, answer["events"], answer["next"]), (200, [], next_))

    def testCheckAndReportRunOnTheMainLoop(self):
        self.synced()
        self.hear("45.0.0.9")
        thread, result = self.in_thread("/check?ip=45.0.0.9")
        self.pump(thread)
        self.assertTrue(result["answer"][1]["current"])
        thread, result = self.in_thread("/report", data=b"ip=45.0.0.10&comment=real",
                                        headers={"Authorization": f"Bearer {TOKEN}"})
        self.pump(thread)
        self.assertEqual(result["answer"], (200, {
            "status": "reported", "network": "test", "channel": "#test",
            "line": "45.0.0.10 real"}))
        self.assertEqual([m.args[1] for m in self.sent()], ["45.0.0.10 real"])

    def call_in_thread(self, timeout):
        """MainLoop.call from another thread, the main loop not running meanwhile."""
        result = {}

        def run():
            try:
                result["r"] = self.cb._http.main.call(lambda: "ran", timeout=timeout)
            except Exception as e:
                result["r"] = e
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, result

    def testMainLoopTimeout(self):
        thread, result = self.call_in_thread(0.2)
        thread.join(5)
        self.assertIn("did not answer in time", str(result["r"]))
        schedule.run()  # the abandoned call runs as a no-op

    def testCloseReleasesWaitingRequests(self):
        """die() must not wait for requests that wait for the (dying) main loop."""
        thread, result = self.call_in_thread(30)
        deadline = time.monotonic() + 5
        while not self.cb._http.main._waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        began = time.monotonic()
        self.cb._http.main.close()
        thread.join(5)
        self.assertLess(time.monotonic() - began, 1)
        self.assertIn("shutting down", str(result["r"]))

    def testBrokenClientDoesNotHurtTheServer(self):
        with socket.create_connection(self.server_.server_address[:2]) as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            s.recv(1000)
        self.assertEqual(self.fetch("/threats")[0], 200)

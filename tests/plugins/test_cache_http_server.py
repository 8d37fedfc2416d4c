"""The HTTP API's server against real, badly behaved clients on its real socket: a
client that sends half a request and goes quiet, one that trickles a byte at a time,
one from a forbidden address, oversized requests, bad bodies, more clients than
slots, and threats whose text has no UTF-8 form. Every socket has a timeout and every
wait a bound: no test can hang."""
import json
import select
import socket
import time
import urllib.request
from urllib.error import HTTPError

from cache_helpers import setting
from test_cache_http import TOKEN, HttpTestCase

HALF = b"GET /threatnet/threats HTTP/1.1\r\n"  # half a request: no end of the head


def parse(data):
    """(status, headers, JSON body) of one raw HTTP/1.0 answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return status, headers, json.loads(body.decode("utf-8")) if body else None


class ServerTestCase(HttpTestCase):
    config = dict(HttpTestCase.config, **{
        "supybot.plugins.ThreatNetCache.http.timeout": 1.0})

    def setUp(self):
        super().setUp()
        self.address = ("127.0.0.1", self.cb._http.server.port)
        self.sockets = []

    def tearDown(self):
        for s in self.sockets:
            s.close()
        super().tearDown()

    def connect(self, source=None):
        s = socket.socket()
        self.sockets.append(s)
        s.settimeout(5)
        if source:
            s.bind((source, 0))
        s.connect(self.address)
        return s

    def stall(self, count=1):
        """Clients that sent half a request line and went quiet, once the server has
        accepted them."""
        stalled = []
        for _ in range(count):
            s = self.connect()
            s.sendall(HALF)
            stalled.append(s)
        ours = {s.getsockname() for s in stalled}
        self.until(lambda: ours <= self.served())
        return stalled

    def served(self):
        """The client addresses of the connections holding a slot now."""
        peers = set()
        for conn in list(self.cb._http.server._holding):
            try:
                peers.add(conn.getpeername())
            except OSError:  # closed meanwhile
                pass
        return peers

    def until(self, condition, timeout=5):
        deadline = time.monotonic() + timeout
        while not condition():
            self.assertLess(time.monotonic(), deadline, "gave up waiting")
            time.sleep(0.005)

    @staticmethod
    def read_all(s):
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    def raw(self, data):
        """Send ``data`` on a new connection; the parsed answer."""
        s = self.connect()
        s.sendall(data)
        return parse(self.read_all(s))

    def post(self, body, ctype="application/x-www-form-urlencoded", token=TOKEN):
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        head = (f"POST /threatnet/report HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {ctype}"
                f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        return self.raw(head + body)

    def follow(self, path):
        """A long-poll on its own thread, once it waits: (the thread, its result)."""
        waiting = len(self.cb._http.waiters)
        poll, result = self.background(self.fetch, path, 10)
        self.until(lambda: len(self.cb._http.waiters) > waiting)
        return poll, result

    def fetch(self, path, timeout=5):
        url = f"http://127.0.0.1:{self.address[1]}/threatnet{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read().decode("utf-8"))
        except HTTPError as e:
            return e.code, json.loads(e.read().decode("utf-8"))


class StallTestCase(ServerTestCase):
    config = dict(ServerTestCase.config, **{
        "supybot.plugins.ThreatNetCache.http.timeout": 5.0})

    def testHalfOpenClientHoldsUpNoOtherRequest(self):
        (stalled,) = self.stall()
        self.synced()
        began = time.monotonic()
        for _ in range(50):
            self.assertEqual(self.fetch("/threats", timeout=2)[0], 200)
        thread, result = self.background(self.fetch, "/check?ip=45.0.0.9")
        self.pump(thread)
        self.assertEqual(result["answer"][0], 200)
        thread, result = self.background(self.post, b"ip=45.0.0.9&comment=while+stalled")
        self.pump(thread)
        self.assertEqual(result["answer"][0], 200, result["answer"])
        took = time.monotonic() - began
        self.assertLess(took, 3)
        stalled.settimeout(0)
        with self.assertRaises(BlockingIOError):  # still waiting, not yet cut
            stalled.recv(1)
        print(f"52 requests in {took * 1000:.0f} ms while a client stalled")

    def testForbiddenAddressIsRefusedAtAccept(self):
        with setting("http.clients").context(["127.0.0.1"]):
            began = time.monotonic()
            s = self.connect(source="127.0.0.2")  # sends nothing at all
            status, _, body = parse(self.read_all(s))
            self.assertLess(time.monotonic() - began, 1)  # not after a read timeout
            self.assertEqual(status, 403)
            self.assertIn("client address not allowed", body["error"])
            self.assertEqual(len(self.cb._http.server._holding), 0)  # never served
            self.assertEqual(self.fetch("/threats")[0], 200)  # from 127.0.0.1


class DeadlineTestCase(ServerTestCase):
    def testSlowlorisIsCutAtTheDeadline(self):
        """A byte every 0.2 s never waits for a read long: only a deadline for the
        whole request (1 s here) cuts it."""
        s = self.connect()
        began = time.monotonic()
        s.sendall(HALF)
        trickle = b"X-Padding: " + b"a" * 100
        for n in range(len(trickle)):
            if select.select([s], [], [], 0.2)[0]:
                break
            s.sendall(trickle[n:n + 1])
        cut = time.monotonic() - began
        status, _, body = parse(self.read_all(s))
        self.assertEqual(status, 408)
        self.assertIn("did not arrive whole within 1 s", body["error"])
        self.assertTrue(0.9 <= cut <= 2.5, cut)

    def testHalfOpenClientIsCutAndItsSlotFreed(self):
        (stalled,) = self.stall()
        self.assertEqual(parse(self.read_all(stalled))[0], 408)
        self.until(lambda: not self.cb._http.server._holding)


class LimitsTestCase(ServerTestCase):
    def testOversizedBodyIsRefusedBeforeItIsRead(self):
        for token in (None, TOKEN):  # the limit comes before the token is checked
            for length in ("67108864", "1" + "0" * 30):
                auth = f"Authorization: Bearer {token}\r\n" if token else ""
                began = time.monotonic()
                status, _, body = self.raw(
                    f"POST /threatnet/report HTTP/1.1\r\n{auth}Content-Type: application/"
                    f"x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n".encode())
                self.assertLess(time.monotonic() - began, 0.9)  # no body was waited for
                self.assertEqual((status, body["error"]),
                                 (413, "request body over 16384 bytes"))

    def testBodyWithoutLength(self):
        status, _, body = self.raw(b"POST /threatnet/report HTTP/1.1\r\n\r\nip=45.0.0.9")
        self.assertEqual((status, body["error"]), (411, "a POST needs a Content-Length"))
        status, _, _ = self.raw(b"POST /threatnet/report HTTP/1.1\r\nTransfer-Encoding: "
                                b"chunked\r\n\r\n5\r\nip=45\r\n0\r\n\r\n")
        self.assertEqual(status, 411)
        status, _, _ = self.raw(b"POST /threatnet/report HTTP/1.1\r\nContent-Length: 5\r\n"
                                b"Content-Length: 6\r\n\r\nip=45.")
        self.assertEqual(status, 400)

    def testOversizedHead(self):
        self.assertEqual(self.raw(b"GET /threatnet/check?ip=" + b"1" * 9000
                                  + b" HTTP/1.1\r\n\r\n")[0], 414)
        many = b"".join(b"X-%d: %s\r\n" % (n, b"a" * 200) for n in range(90))
        status, _, body = self.raw(b"GET /threatnet/threats HTTP/1.1\r\n" + many + b"\r\n")
        self.assertEqual((status, body["error"]), (431, "request line and headers over "
                                                        "16384 bytes"))
        lots = b"".join(b"X-%d: a\r\n" % n for n in range(120))
        self.assertEqual(self.raw(b"GET /threatnet/threats HTTP/1.1\r\n" + lots
                                  + b"\r\n")[0], 431)

    def testBadInputIs400NotADroppedConnection(self):
        self.synced()
        for body, ctype, reason in [
                (b"ip=45.0.0.9&comment=\xff\xfe", None, "bad request body: not UTF-8"),
                (b"ip=45.0.0.9&comment=%ED%A0%80", None, "a field is not UTF-8"),
                (b"ip=45.0.0.9&comment=%FF", None, "a field is not UTF-8"),
                (b'{"ip":"45.0.0.10","comment":"x\\ud800"}', "application/json",
                 "comment holds a lone surrogate"),
                (b'{"ip":"45.0.0.10","x\\udfff":""}', "application/json",
                 "holds a lone surrogate"),
                (b'{"ip":"45.0.0.10","comment":"\xff"}', "application/json",
                 "bad request body: not UTF-8"),
                (b'{"ip": "45.0.0.10",', "application/json", "bad request body: Expecting"),
                (b'{"ip":"45.0.0.10","ip":"45.0.0.11"}', "application/json",
                 "ip given more than once"),
                (b'{"ip":"45.0.0.10","comment":["x"]}', "application/json",
                 "comment is too long or not text"),
                (b"[" * 5000 + b"]" * 5000, "application/json", "bad request body"),
                (b"&".join(b"f%d=1" % n for n in range(30)), None, "more than 20 fields")]:
            status, headers, answer = self.post(body, ctype or
                                                "application/x-www-form-urlencoded")
            self.assertEqual(status, 400, (body, answer))
            self.assertEqual(headers["Content-Type"], "application/json")
            self.assertIn(reason, answer["error"], body)
        for target in (b"/threatnet/check?ip=%ff", b"/threatnet/check?ip=%ED%A0%80",
                       b"/threatnet/check?ip=\xc3\xa9"):
            status, _, answer = self.raw(b"GET " + target + b" HTTP/1.1\r\n\r\n")
            self.assertEqual(status, 400, (target, answer))
        self.assertEqual(self.raw(b"GARBAGE\r\n\r\n")[0], 400)
        self.assertEqual(self.sent(), [])


class SlotsTestCase(ServerTestCase):
    config = dict(ServerTestCase.config, **{
        "supybot.plugins.ThreatNetCache.http.timeout": 5.0,
        "supybot.plugins.ThreatNetCache.http.connections": 8,
        "supybot.plugins.ThreatNetCache.http.maxFollowers": 3})

    def testClientsBeyondTheSlotsGet503NotAHang(self):
        stalled = self.stall(4)  # half the slots
        threads = [self.background(self.fetch, "/threats", 3) for _ in range(30)]
        for thread, _ in threads:
            thread.join(5)
        answers = [result["answer"] for _, result in threads]
        statuses = sorted(a[0] if isinstance(a, tuple) else repr(a) for a in answers)
        self.assertTrue(set(statuses) <= {200, 503}, statuses)
        self.assertIn(200, statuses)
        for a in answers:
            if a[0] == 503:
                self.assertIn("too many connections (at most 8 at once)", a[1]["error"])
        stalled += self.stall(4)  # every slot
        self.assertEqual(self.fetch("/threats")[0], 503)
        stalled[0].close()  # one slot free again
        self.until(lambda: len(self.cb._http.server._holding) < 8)
        self.assertEqual(self.fetch("/threats")[0], 200)

    def testWaitingLongPollsTakeNoSlot(self):
        start = self.fetch("/threats")[1]
        url = f"/events?stream={start['stream']}&since={start['next']}&timeout=30"
        self.stall(7)  # one slot left for requests
        polls = []
        for n in range(1, 4):  # each through the one slot, then waiting without it
            polls.append(self.background(self.fetch, url, 10))
            self.until(lambda: len(self.cb._http.waiters) == n
                       and len(self.cb._http.server._holding) == 7)
        status, answer = self.fetch(url)  # uses the last slot, then gives it back
        self.assertEqual((status, answer["error"]), (503, "too many waiting requests "
                                                          "(plugins.ThreatNetCache.http."
                                                          "maxFollowers)"))
        self.until(lambda: len(self.cb._http.server._holding) == 7)  # that one is done
        self.assertEqual(self.fetch("/threats")[0], 200)
        self.hear("45.0.0.9 seen")
        for thread, result in polls:
            thread.join(5)
            status, answer = result["answer"]
            self.assertEqual([e["ip"] for e in answer["events"]], ["45.0.0.9"])

    def testCloseIsBounded(self):
        port = self.address[1]
        self.stall(3)
        poll, result = self.follow("/events?since=1&timeout=30")
        began = time.monotonic()
        self.cb._close_http()
        self.assertLess(time.monotonic() - began, 2.5)
        poll.join(5)
        self.assertFalse(poll.is_alive())
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

    def testSettingsRestartTheServer(self):
        old = self.address[1]
        with setting("http.connections").context(9):
            self.tick()
            self.assertEqual(self.cb._http.server.settings.connections, 9)
            self.assertNotEqual(self.cb._http.server.port, old)  # port 0: a new one
            self.address = ("127.0.0.1", self.cb._http.server.port)
            self.assertEqual(self.fetch("/threats")[0], 200)


class SurrogateTestCase(ServerTestCase):
    """Text with no UTF-8 form (a lone surrogate) in a threat: the answers stay valid
    JSON in UTF-8 ("?" in its place), the long-polls keep working."""

    def testLoneSurrogateInAHeardThreatBreaksNothing(self):
        start = self.fetch("/threats")[1]
        url = f"/events?stream={start['stream']}&since={start['next']}&timeout=10"
        poll, result = self.follow(url)
        self.hear("45.0.0.10 x\ud800y")
        poll.join(5)
        status, answer = result["answer"]
        self.assertEqual(status, 200)
        self.assertEqual([(e["ip"], e["comment"]) for e in answer["events"]],
                         [("45.0.0.10", "x?y")])
        self.idle()
        status, threats = self.fetch("/threats")
        self.assertEqual((status, threats["threats"][0]["comment"]), (200, "x?y"))
        poll, result = self.follow(f"/events?since={answer['next']}&timeout=10")
        self.hear("45.0.0.11 after")
        poll.join(5)
        self.assertEqual([e["ip"] for e in result["answer"][1]["events"]], ["45.0.0.11"])
        thread, result = self.background(self.fetch, "/check?ip=45.0.0.10")
        self.pump(thread)
        self.assertEqual(result["answer"][1]["threats"][0]["comment"], "x?y")

    def testReportWithALoneSurrogateIsRefused(self):
        self.synced()
        status, _, answer = self.post(b'{"ip":"45.0.0.10","comment":"x\\ud800"}',
                                      "application/json")
        self.assertEqual((status, answer["error"]), (400, "comment holds a lone surrogate, "
                                                          "not text"))
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.fetch("/threats")[0], 200)

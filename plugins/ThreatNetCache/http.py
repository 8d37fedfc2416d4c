"""The HTTP API of ThreatNetCache, under /threatnet/ on Limnoria's HTTP server.

    GET  /threatnet/check?ip=IP[&network=N][&channel=C]   is IP a current threat? (JSON)
    GET  /threatnet/threats[?network=N][&channel=C]        every current threat (JSON)
    GET  /threatnet/events?since=S[&stream=ID][&timeout=T] changes after S (JSON long-poll)
    GET  /threatnet/metrics                                Prometheus text format
    POST /threatnet/report  ip=IP[&comment=…][&channel=C][&network=N]   (Bearer token)

Every answer but /metrics is JSON; an error is a 4xx/5xx with ``{"error": reason}``.
Only clients in plugins.ThreatNetCache.http.clients (default loopback) are served.

Threads. Limnoria's HTTP server is one thread (http.server.HTTPServer, no
ThreadingMixIn) serving every plugin's requests one at a time, apart from the
IRC main loop; the Threat Cache, the outbox and the plugin's state are not
thread-safe and are only ever touched by the main loop. So:

- check, metrics and report run on the main loop: the request thread schedules
  a function with ``schedule.addEvent`` and waits for its result (``MainLoop``).
  The loop runs it within supybot.drivers.poll (1 s by default; lower it for
  snappier answers); after 5 s the request gets 503. No lock is held anywhere
  near the hot path, and nothing else in the plugin has to know about threads.
- threats and events never touch the main loop: they read each channel's
  ChangesResponder (threatnet/response/changes.py), a thread-safe mirror of the
  cache that the channel's responder host keeps in step within milliseconds and
  expires at each threat's own expiry.
- A long-lived stream would pin the server's only thread and stall every other
  request (and Server-Sent Events would pin it forever), so the stream is a
  long-poll: numbered changes after a cursor, answered at once when there are
  some. When there are none yet, the connection is detached from the server
  (``socket.detach()``: the server's close then leaves it open) and parked with
  a waiter thread, which answers it when changes arrive or its timeout (at most
  http.maxWait) runs out. The server thread is free again at once.

Following the cache from elsewhere: GET /threatnet/threats gives ``stream`` and
``next``; then loop GET /threatnet/events?stream=ID&since=NEXT&timeout=30 and
take each answer's ``next``. ``"resync": true`` (the bot restarted, or the
follower fell behind the last 20,000 changes) means: fetch /threats again.
"""
import hmac
import json
import math
import socket
import threading
import time
import uuid
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import parse_qsl, urlsplit

import supybot.ircutils as ircutils
import supybot.schedule as schedule
import supybot.world as world
from supybot import httpserver

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from threatnet.address import AddressError, format_ip, parse_ip
from threatnet.filter import NetworkFilter
from threatnet.language import ThreatError, format_message
from threatnet.response.changes import ChangeLog

SUBDIR = "threatnet"
MAIN_LOOP_TIMEOUT = 5.0  # seconds a request waits for the main loop
PARKED_MAX = 64  # long-polls waiting at once
SEND_TIMEOUT = 5.0  # seconds to write a parked answer to a slow client
FIELD_MAX = 1000  # characters of one form or query field
JSON = "application/json"


class HttpError(Exception):
    """An answer other than 200: status, reason, and extra JSON fields."""

    def __init__(self, status, reason, **fields):
        super().__init__(reason)
        self.status = status
        self.fields = fields




class MainLoop:
    """Runs functions on Limnoria's main loop for other threads (see the module doc)."""

    def __init__(self):
        self._closed = False
        self._waiting = set()  # futures of the requests waiting now
        self._lock = threading.Lock()

    def call(self, fn, timeout=MAIN_LOOP_TIMEOUT):
        if threading.current_thread() is threading.main_thread():
            return fn()  # already there (PluginTestCase requests, tests)
        future = Future()

        def run():
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as e:
                    future.set_exception(e)

        name = f"ThreatNetCache.http.{uuid.uuid4().hex}"  # unique in the whole bot
        with self._lock:
            if self._closed:
                raise HttpError(503, "shutting down")
            self._waiting.add(future)
        schedule.addEvent(run, time.time(), name)
        try:
            return future.result(timeout)
        except FutureTimeout:
            # Cancelled, the event does nothing when the loop gets to it. Never
            # schedule.removeEvent here: off the main loop it races with
            # schedule.run(), whose KeyError would kill the scheduler.
            future.cancel()
            raise HttpError(503, "the bot's main loop did not answer in time") from None
        except CancelledError:
            raise HttpError(503, "shutting down") from None
        finally:
            with self._lock:
                self._waiting.discard(future)

    def close(self):
        """Fail every waiting request (the main loop is about to stop serving them)."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, set()
        for future in waiting:
            future.cancel()  # its event, when run, does nothing


class _Parked:
    __slots__ = ("sock", "since", "stream", "network", "channel", "deadline")

    def __init__(self, sock, since, stream, network, channel, deadline):
        self.sock, self.since, self.stream = sock, since, stream
        self.network, self.channel, self.deadline = network, channel, deadline


class Waiters:
    """Long-polls parked off the server thread, answered by one waiter thread."""

    def __init__(self, changes, render):
        self.changes = changes
        self.render = render  # Read -> JSON-able dict
        self._parked = []
        self._stopping = False
        self._thread = None

    def __len__(self):
        return len(self._parked)

    def park(self, sock, since, stream, network, channel, timeout):
        cond = self.changes.cond
        with cond:
            if self._stopping or len(self._parked) >= PARKED_MAX:
                return False
            self._parked.append(_Parked(sock, since, stream, network, channel,
                                        time.monotonic() + timeout))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="threatnet-http-waiters")
                self._thread.start()
            cond.notify_all()
        return True

    def stop(self):
        cond = self.changes.cond
        with cond:
            self._stopping = True
            cond.notify_all()
        if self._thread is not None:
            self._thread.join(SEND_TIMEOUT + 1)

    def _run(self):
        cond = self.changes.cond
        while True:
            ready = []
            with cond:
                now = time.monotonic()
                keep = []
                for p in self._parked:
                    read = self.changes.read(p.since, p.stream, network=p.network,
                                             channel=p.channel)
                    if read.changes or read.resync or now >= p.deadline or self._stopping:
                        ready.append((p, read))
                    else:
                        p.since = read.next  # changes of other channels: skip them
                        keep.append(p)
                self._parked = keep
                if not ready:
                    if self._stopping:
                        return
                    wait = min((p.deadline for p in keep), default=now + 60) - now
                    cond.wait(max(0.01, min(wait, 60)))
                    continue
            for p, read in ready:
                _send_raw(p.sock, 200, _json(self.render(read)))


def _send_raw(sock, status, body):
    """A whole HTTP/1.0 answer on a detached connection, then close it."""
    head = (f"HTTP/1.0 {status} {'OK' if status == 200 else 'Error'}\r\n"
            f"Content-Type: {JSON}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n").encode()
    try:
        sock.settimeout(SEND_TIMEOUT)
        sock.sendall(head + body)
    except OSError:
        pass  # the follower went away; it will ask again
    finally:
        sock.close()


def _detach(handler):
    """The request's connection, taken from the server so it stays open after this
    request returns; None where that is impossible (tests' fake handlers)."""
    conn = getattr(handler, "connection", None)
    if not isinstance(conn, socket.socket):
        return None
    handler.close_connection = True
    try:
        return socket.socket(fileno=conn.detach())
    except OSError:
        return None


def _json(data):
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _send(handler, status, body, ctype=JSON, headers=(), write=True):
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-store")
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    if write:
        handler.wfile.write(body)


def _fields(pairs):
    """Request fields (query or form) as a dict; a field given twice is an error."""
    fields = {}
    for name, value in pairs:
        if name in fields:
            raise HttpError(400, f"{name} given more than once")
        if not isinstance(value, str) or len(value) > FIELD_MAX:
            raise HttpError(400, f"{name} is too long or not text")
        fields[name] = value
    return fields


def _number(fields, name, default, lowest, highest):
    text = fields.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not lowest <= value <= highest:  # NaN fails too
        raise HttpError(400, f"{name} must be a number from {lowest} to {highest}")
    return value


def _round(t):
    return round(t, 3)


class ThreatNetHttp(httpserver.SupyHTTPServerCallback):
    """The /threatnet/ callback; ``plugin`` is the ThreatNetCache instance."""

    name = "ThreatNet"
    public = False  # not listed on the server's index page
    defaultResponse = "ThreatNet API: see /threatnet/"

    def __init__(self, plugin):
        super().__init__()
        self.plugin = plugin
        self.changes = ChangeLog()
        self.main = MainLoop()
        self.waiters = Waiters(self.changes, self._render_read)
        self._clients = None  # (setting, NetworkFilter)

    def close(self):
        self.main.close()
        self.waiters.stop()

    # -- dispatch

    def doGet(self, handler, path):
        self._serve(handler, "GET", path, None, write=True)

    def doHead(self, handler, path):
        self._serve(handler, "HEAD", path, None, write=False)

    def doPost(self, handler, path, form=None):
        self._serve(handler, "POST", path, form, write=True)

    _ROUTES = {"/check": ("GET", "_check"), "/threats": ("GET", "_threats"),
               "/events": ("GET", "_events"), "/metrics": ("GET", "_metrics"),
               "/report": ("POST", "_report"), "/": ("GET", "_index")}

    def _serve(self, handler, method, path, form, write):
        try:
            self._allow(handler)
            parts = urlsplit(path)
            route = self._ROUTES.get(parts.path.rstrip("/") or "/")
            if parts.path == f"/{SUBDIR}":  # /threatnet without the slash
                route = self._ROUTES["/"]
            if route is None:
                raise HttpError(404, f"no such endpoint: {parts.path}; see /{SUBDIR}/")
            wanted, method_name = route
            if method != wanted and not (method == "HEAD" and wanted == "GET"):
                raise HttpError(405, f"{parts.path} takes {wanted}", allow=wanted)
            query = _fields(parse_qsl(parts.query, keep_blank_values=True))
            answer = getattr(self, method_name)(handler, query, form)
            if answer is None:
                return  # parked: the waiter thread answers
            status, body, ctype = answer
            _send(handler, status, body, ctype, write=write)
        except HttpError as e:
            headers = [("Allow", e.fields.pop("allow"))] if "allow" in e.fields else []
            if e.status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="threatnet"'))
            _send(handler, e.status, _json({"error": str(e), **e.fields}), headers=headers,
                  write=write)
        except Exception:
            self.plugin.log.exception("HTTP %s %s failed", method, path)
            _send(handler, 500, _json({"error": "internal error (see the bot's log)"}),
                  write=write)

    def _allow(self, handler):
        setting = tuple(self.plugin.registryValue("http.clients"))
        if self._clients is None or self._clients[0] != setting:
            self._clients = (setting, NetworkFilter("keep", setting))
        address = getattr(handler, "client_address", None)
        try:
            key = parse_ip(address[0].split("%", 1)[0])
        except (AddressError, TypeError, IndexError):
            key = None
        if key is None or not self._clients[1].accepts(key):
            raise HttpError(403, "client address not allowed (plugins.ThreatNetCache."
                                 "http.clients)")

    def _ok(self, data, status=200):
        return status, _json(data), JSON

    # -- endpoints

    def _index(self, handler, query, form):
        return self._ok({"endpoints": [
            "GET /threatnet/check?ip=IP[&network=N][&channel=C]",
            "GET /threatnet/threats[?network=N][&channel=C]",
            "GET /threatnet/events?since=N[&stream=ID][&timeout=S][&network=N][&channel=C]",
            "GET /threatnet/metrics",
            "POST /threatnet/report ip=IP[&comment=TEXT][&channel=C][&network=N]"]})

    def _check(self, handler, query, form):
        text = query.get("ip")
        if not text:
            raise HttpError(400, "ip is missing")
        try:
            key = parse_ip(text)
        except AddressError as e:
            raise HttpError(400, f"{text!r} is not a valid IP address: {e}") from None
        network, channel = query.get("network") or None, query.get("channel") or None

        def look():
            found = []
            for st in self._channels(network, channel):
                entry = st.cache.check(key)
                if entry is not None:
                    found.append(self._entry(st, entry))
            return found
        found = self.main.call(look)
        return self._ok({"ip": format_ip(key), "current": bool(found), "threats": found})

    @staticmethod
    def _entry(st, entry):
        expires_at = entry.first_seen + st.cache.timeout
        return {"network": st.network, "channel": st.channel, "ip": entry.ip,
                "comment": entry.comment, "reporter": entry.nick, "account": entry.account,
                "first_seen": _round(entry.first_seen), "expires_at": _round(expires_at),
                "expires_in": _round(entry.expires_in)}

    def _threats(self, handler, query, form):
        network, channel = query.get("network") or None, query.get("channel") or None
        cursor = self.changes.next  # before the mirrors are read: nothing is missed
        now = time.time()
        threats = []
        for mirror in self._mirrors(network, channel):
            for t in mirror.current():
                if t.expires_at > now:
                    threats.append(self._threat(mirror.network, mirror.channel, t, now))
        threats.sort(key=lambda t: (t["network"], t["channel"], t["expires_at"]))
        return self._ok({"stream": self.changes.stream, "next": cursor,
                         "count": len(threats), "threats": threats})

    @staticmethod
    def _threat(network, channel, t, now=None):
        data = {"network": network, "channel": channel, "ip": t.ip, "comment": t.comment,
                "reporter": t.reporter, "expires_at": _round(t.expires_at)}
        if now is not None:
            data["expires_in"] = _round(t.expires_at - now)
        return data

    def _events(self, handler, query, form):
        since_text = query.get("since", "")
        if since_text and not since_text.isdigit():
            raise HttpError(400, "since must be a change number (an answer's next)")
        since = int(since_text) if since_text else None
        wait = _number(query, "timeout", 0.0, 0, self.plugin.registryValue("http.maxWait"))
        stream = query.get("stream") or None
        network, channel = query.get("network") or None, query.get("channel") or None
        read = self.changes.read(since, stream, network=network, channel=channel)
        if read.changes or read.resync or since is None or wait <= 0:
            return self._ok(self._render_read(read))
        sock = _detach(handler)
        if sock is None:  # cannot park (a test handler): answer now, empty
            return self._ok(self._render_read(read))
        if not self.waiters.park(sock, read.next, stream, network, channel, wait):
            _send_raw(sock, 503, _json({"error": "too many waiting requests"}))
        return None

    def _render_read(self, read):
        return {"stream": self.changes.stream, "next": read.next, "resync": read.resync,
                "events": [dict(self._threat(c.network, c.channel, c.threat),
                                seq=c.seq, event=c.kind) for c in read.changes]}

    def _metrics(self, handler, query, form):
        data = self.main.call(lambda: _gather(self.plugin))
        data["http"] = {"changes": self.changes.next - 1, "waiting": len(self.waiters)}
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(data))
        # Prometheus text format, or OpenMetrics if the scraper's Accept asks for it.
        encode, ctype = choose_encoder(handler.headers.get("Accept") if handler.headers
                                       else None)
        return 200, encode(registry), ctype

    def _report(self, handler, query, form):
        token = self.plugin.registryValue("http.token")
        if not token:
            raise HttpError(403, "reporting is disabled: set plugins.ThreatNetCache.http."
                                 "token")
        given = handler.headers.get("Authorization", "") if handler.headers else ""
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                credential.strip().encode(), token.encode()):
            raise HttpError(401, "a valid Authorization: Bearer token is required")
        fields = self._form(handler, form)
        ip, comment = fields.get("ip", ""), fields.get("comment", "")
        if not ip:
            raise HttpError(400, "ip is missing")
        try:
            ip = format_ip(parse_ip(ip))
        except AddressError as e:
            raise HttpError(400, f"{ip!r} is not a valid IP address: {e}") from None
        network, channel = fields.get("network") or None, fields.get("channel") or None
        plugin = self.plugin

        def report():
            chans = self._channels(network, channel)
            if not chans:
                raise HttpError(404, "no such ThreatNet channel (see plugins."
                                     "ThreatNetCache.enable)")
            if len(chans) > 1:
                raise HttpError(400, "several ThreatNet channels: name one with channel= "
                                     "(and network=)", channels=[
                                         f"{st.network} {st.channel}" for st in chans])
            st = chans[0]
            irc = world.getIrc(st.network)
            if irc is None:
                raise HttpError(503, f"not connected to {st.network}")
            threat, queued = plugin._report(irc, st, ip, comment)
            return {"status": "queued" if queued else "reported", "network": st.network,
                    "channel": st.channel, "line": format_message(threat)}
        from .plugin import Refused  # the plugin module imports this one
        try:
            result = self.main.call(report)
        except ThreatError as e:
            raise HttpError(400, str(e)) from None
        except Refused as e:
            raise HttpError(409, str(e), refused=e.kind) from None
        return self._ok(result, 202 if result["status"] == "queued" else 200)

    def _form(self, handler, form):
        """POST fields: a form (parsed by Limnoria or here) or a JSON object."""
        if isinstance(form, httpserver.HttpHeaders):
            return _fields((item.name, item.value) for item in form.list)
        body = form if isinstance(form, bytes) else b""
        ctype = (handler.headers.get("Content-Type", "") if handler.headers else "").lower()
        try:
            if ctype.startswith("application/json"):
                data = json.loads(body)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                return _fields(data.items())
            if ctype.startswith("application/x-www-form-urlencoded"):
                return _fields(parse_qsl(body.decode(), keep_blank_values=True))
        except (ValueError, UnicodeDecodeError) as e:
            raise HttpError(400, f"bad request body: {e}") from None
        raise HttpError(415, "send application/x-www-form-urlencoded or application/json")

    # -- what the endpoints read

    def _channels(self, network, channel):
        """The listened channels matching the filters (main loop only)."""
        return [st for st in self.plugin._channels.values()
                if (network is None or st.network == network)
                and (channel is None or ircutils.strEqual(st.channel, channel))]

    def _mirrors(self, network, channel):
        """The channels' ChangesResponders matching the filters (any thread)."""
        found = []
        for responses in tuple(self.plugin._responses.values()):
            mirror = responses.changes
            if mirror is not None and mirror.log is self.changes \
                    and (network is None or mirror.network == network) \
                    and (channel is None or ircutils.strEqual(mirror.channel, channel)):
                found.append(mirror)
        return found


def _gather(plugin):
    """The numbers /metrics shows, gathered on the main loop."""
    channels = []
    for key, st in plugin._channels.items():
        stats = st.cache.stats()
        responses = plugin._responses.get(key)
        channels.append({
            "network": st.network, "channel": st.channel, "heard": dict(st.heard),
            "size": stats.size, "expired": stats.expired, "block": st.cache.timeout,
            "synced": st.cache.synced, "reported": st.reported, "refused": dict(st.refused),
            "pending": len(st.pending),
            "feeds": [(spec, feed.stats(), feed.error) for spec, feed in st.feeds.items()],
            "responders": responses.status() if responses is not None else [],
            "problems": list(responses.problems) if responses is not None else []})
    return {"channels": channels,
            "outboxes": {network: box.stats() for network, box in plugin._outboxes.items()}}


class _Collector:
    """Metric families over the numbers _gather took on the main loop."""

    def __init__(self, data):
        self.data = data

    def collect(self):
        chan = ["network", "channel"]

        def family(kind, name, doc, labels):
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            return cls(name, doc, labels=labels)

        f = {
            "seen": family("counter", "threatnet_lines_seen", "Threat lines heard.", chan),
            "kept": family("counter", "threatnet_lines_kept",
                           "Threat lines kept (new threats).", chan),
            "discarded": family("counter", "threatnet_lines_discarded",
                                "Threat lines discarded, by reason.", chan + ["reason"]),
            "size": family("gauge", "threatnet_cache_threats",
                           "Current threats in the cache.", chan),
            "expired": family("counter", "threatnet_cache_expired",
                              "Threats expired from the cache.", chan),
            "block": family("gauge", "threatnet_block_period_seconds",
                            "The block period.", chan),
            "synced": family("gauge", "threatnet_synced",
                             "1 once the quiet period is over.", chan),
            "reported": family("counter", "threatnet_reports_sent",
                               "Threats this agent posted.", chan),
            "refused": family("counter", "threatnet_reports_refused",
                              "Reports from feeds refused, by reason.", chan + ["reason"]),
            "pending": family("gauge", "threatnet_reports_queued",
                              "Reports waiting in the outbox.", chan),
            "feed": family("counter", "threatnet_feed_lines",
                           "Log lines read by a feed, by result.",
                           chan + ["feed", "result"]),
            "feed_error": family("gauge", "threatnet_feed_error",
                                 "1 while a feed cannot be read.", chan + ["feed"]),
            "r_up": family("gauge", "threatnet_responder_up",
                           "1 if the responder is applying without errors.",
                           chan + ["responder"]),
            "r_threats": family("gauge", "threatnet_responder_threats",
                                "Threats the responder holds.", chan + ["responder"]),
            "r_applies": family("counter", "threatnet_responder_applies",
                                "Successful applies.", chan + ["responder"]),
            "r_errors": family("counter", "threatnet_responder_errors",
                               "Failed applies.", chan + ["responder"]),
            "r_failing": family("gauge", "threatnet_responder_consecutive_failures",
                                "Failed applies since the last success.",
                                chan + ["responder"]),
            "r_lag": family("gauge", "threatnet_responder_lag_seconds",
                            "Age of the oldest change not yet applied.",
                            chan + ["responder"]),
        }
        outbox = {
            "waiting": family("gauge", "threatnet_outbox_waiting",
                              "Reports waiting to be sent.", ["network"]),
            "sent": family("counter", "threatnet_outbox_sent", "Reports sent.", ["network"]),
            "dropped": family("counter", "threatnet_outbox_dropped",
                              "Reports dropped from a full outbox.", ["network"]),
        }
        for c in self.data["channels"]:
            labels = [c["network"], c["channel"]]
            heard = c["heard"]
            f["seen"].add_metric(labels, sum(heard.values()))
            f["kept"].add_metric(labels, heard.get("kept", 0))
            for reason, n in sorted(heard.items()):
                if reason != "kept":
                    f["discarded"].add_metric(labels + [reason], n)
            f["size"].add_metric(labels, c["size"])
            f["expired"].add_metric(labels, c["expired"])
            f["block"].add_metric(labels, c["block"])
            f["synced"].add_metric(labels, 1 if c["synced"] else 0)
            f["reported"].add_metric(labels, c["reported"])
            for reason, n in sorted(c["refused"].items()):
                f["refused"].add_metric(labels + [reason], n)
            f["pending"].add_metric(labels, c["pending"])
            for spec, stats, error in c["feeds"]:
                for result in ("threats", "ignored", "rejected"):
                    f["feed"].add_metric(labels + [spec, result], stats.get(result, 0))
                f["feed_error"].add_metric(labels + [spec], 1 if error else 0)
            for s in c["responders"]:
                rl = labels + [s.name]
                f["r_up"].add_metric(rl, 0 if s.failures else 1)
                f["r_threats"].add_metric(rl, s.threats)
                f["r_applies"].add_metric(rl, s.applies)
                f["r_errors"].add_metric(rl, s.errors)
                f["r_failing"].add_metric(rl, s.failures)
                f["r_lag"].add_metric(rl, s.lag)
            for name, _reason in c["problems"]:
                f["r_up"].add_metric(labels + [name], 0)
        for network, stats in sorted(self.data["outboxes"].items()):
            for key, fam in outbox.items():
                fam.add_metric([network], stats.get(key, 0))
        http = self.data["http"]
        changes = CounterMetricFamily("threatnet_http_changes",
                                      "Threat changes published to followers.")
        changes.add_metric([], http["changes"])
        waiting = GaugeMetricFamily("threatnet_http_waiting", "Long-polls waiting now.")
        waiting.add_metric([], http["waiting"])
        yield from f.values()
        yield from outbox.values()
        yield changes
        yield waiting

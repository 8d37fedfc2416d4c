"""The HTTP API of ThreatNetCache, under /threatnet/ on Limnoria's HTTP server: its
routes (the long-poll is in longpoll.py, the metrics in metrics.py).

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
from __future__ import annotations

import hmac
import json
import math
import threading
import time
import uuid
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import parse_qsl, urlsplit

import supybot.schedule as schedule
import supybot.world as world
from supybot import httpserver

from threatnet.address import AddressError, format_ip, parse_ip
from threatnet.filter import NetworkFilter
from threatnet.language import ThreatError, format_message
from threatnet.provider import Refused
from threatnet.response.changes import ChangeLog

from . import metrics
from .longpoll import JSON, Waiters, detach, send_raw, to_json

SUBDIR = "threatnet"
MAIN_LOOP_TIMEOUT = 5.0  # seconds a request waits for the main loop
FIELD_MAX = 1000  # characters of one form or query field


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
            _send(handler, e.status, to_json({"error": str(e), **e.fields}), headers=headers,
                  write=write)
        except Exception:
            self.plugin.log.exception("HTTP %s %s failed", method, path)
            _send(handler, 500, to_json({"error": "internal error (see the bot's log)"}),
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
        return status, to_json(data), JSON

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

        found = [self._found(f) for f in self.main.call(
            lambda: self.plugin.check(key, network, channel))]
        return self._ok({"ip": format_ip(key), "current": bool(found), "threats": found})

    @staticmethod
    def _found(found):
        entry = found.entry
        return {"network": found.network, "channel": found.channel, "ip": entry.ip,
                "comment": entry.comment, "reporter": entry.nick, "account": entry.account,
                "first_seen": _round(entry.first_seen), "expires_at": _round(found.expires_at),
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
        sock = detach(handler)
        if sock is None:  # cannot park (a test handler): answer now, empty
            return self._ok(self._render_read(read))
        if not self.waiters.park(sock, read.next, stream, network, channel, wait):
            send_raw(sock, 503, to_json({"error": "too many waiting requests"}))
        return None

    def _render_read(self, read):
        return {"stream": self.changes.stream, "next": read.next, "resync": read.resync,
                "events": [dict(self._threat(c.network, c.channel, c.threat),
                                seq=c.seq, event=c.kind) for c in read.changes]}

    def _metrics(self, handler, query, form):
        channels, outboxes = self.main.call(lambda: (self.plugin.status(),
                                                     self.plugin.outboxes()))
        body, ctype = metrics.render(channels, outboxes, self.changes.next - 1,
                                     len(self.waiters),
                                     handler.headers.get("Accept") if handler.headers else None)
        return 200, body, ctype

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
            chans = plugin.channels(network, channel)
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
            threat, queued = plugin.report(irc, st, ip, comment)
            return {"status": "queued" if queued else "reported", "network": st.network,
                    "channel": st.channel, "line": format_message(threat)}
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

    def _mirrors(self, network, channel):
        """The channels' ChangesResponders feeding this change log (any thread)."""
        return [m for m in self.plugin.mirrors(network, channel) if m.log is self.changes]



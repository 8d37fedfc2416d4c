"""The HTTP API of ThreatNetCache, under /threatnet/ on a server of its own
(server.py, at plugins.ThreatNetCache.http.host and .port): its routes (the long-poll
is in longpoll.py, the metrics in metrics.py).

    GET  /threatnet/check?ip=IP[&network=N][&channel=C]   is IP a current threat? (JSON)
    GET  /threatnet/threats[?network=N][&channel=C]        every current threat (JSON)
    GET  /threatnet/events?since=S[&stream=ID][&timeout=T] changes after S (JSON long-poll)
    GET  /threatnet/metrics                                Prometheus text format
    GET  /threatnet/status[?q=TEXT]                        a read-only HTML page (status.py)
    GET  /threatnet/crowdsec/v1/decisions[/stream]         CrowdSec's bouncer API (crowdsec.py);
    GET  /v1/decisions[/stream]                            also at the root
    POST /threatnet/report  ip=IP[&comment=…][&channel=C][&network=N]   (Bearer token)

Every answer but /metrics and /status is JSON, always valid UTF-8 (a lone surrogate becomes "?");
an error is a 4xx/5xx with ``{"error": reason}``. Bad input is a 400, never a 500 or
a dropped connection: bad JSON, invalid UTF-8, a lone surrogate, a field given twice.
Only clients in plugins.ThreatNetCache.http.clients (default loopback) may connect:
the server refuses any other at accept, before reading a byte.

Threads. Every request has its own connection thread (server.py bounds how many, and
how long and large a request may be); the Threat Cache, the outbox and the plugin's
state are not thread-safe and are only ever touched by the main loop. So:

- check, metrics and report run on the main loop: the request thread schedules
  a function with ``schedule.addEvent``, wakes the loop (threatnet_irc.wakeup: its
  select would otherwise sleep up to supybot.drivers.poll, 1 s) and waits for the
  result (``MainLoop``); after 5 s the request gets 503. No lock is held anywhere
  near the hot path, and nothing else in the plugin has to know about threads.
- threats and events never touch the main loop: they read each channel's
  ChangesResponder (threatnet/response/changes.py), a thread-safe mirror of the
  cache that the channel's responder host keeps in step within milliseconds and
  expires at each threat's own expiry.
- The change stream is a long-poll: numbered changes after a cursor, answered at
  once when there are some. When there are none yet, the request waits in its
  thread on the change log (longpoll.py), its connection slot given back to the
  server, until changes arrive or its timeout (at most http.maxWait) runs out; at
  most http.maxFollowers wait at once. Each waits and answers for itself, so a
  threat that cannot be rendered could fail one answer, never the others.

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
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import supybot.schedule as schedule
import supybot.world as world

from threatnet.address import AddressError, format_ip, parse_ip
from threatnet.filter import NetworkFilter
from threatnet.language import ThreatError, format_message
from threatnet.provider import Refused
from threatnet.response.changes import ChangeLog

from . import metrics, status
from .longpoll import Waiters
from .server import JSON, ApiServer, Request, Settings, to_json

SUBDIR = "threatnet"
MAIN_LOOP_TIMEOUT = 5.0  # seconds a request waits for the main loop
FIELD_MAX = 1000  # characters of one form or query field
FIELDS_MAX = 20  # fields in one query or form


def read_settings(value: Callable[[str], Any]) -> Settings:
    """The server's settings from the registry (``value(name)``)."""
    return Settings(value("http.host"), value("http.port"), value("http.timeout"),
                    value("http.connections"))


class HttpError(Exception):
    """An answer other than 200: status, reason, and extra JSON fields."""

    def __init__(self, status, reason, **fields):
        super().__init__(reason)
        self.status = status
        self.fields = fields


class MainLoop:
    """Runs functions on Limnoria's main loop for other threads (see the module doc)."""

    def __init__(self, wake=lambda: None, settle=lambda: None):
        # wake: no select of the main loop waits until settle (the event ran): on a bot
        # of several networks each selects in turn, the schedule runs once between them
        self._wake, self._settle = wake, settle
        self._closed = False
        self._waiting = set()  # futures of the requests waiting now
        self._lock = threading.Lock()

    def call(self, fn, timeout=MAIN_LOOP_TIMEOUT):
        if threading.current_thread() is threading.main_thread():
            return fn()  # already there (PluginTestCase requests, tests)
        future = Future()

        def run():
            self._settle()
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
        self._wake()
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


def _fields(pairs: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    """Request fields (query or form) as a dict: text only, each at most FIELD_MAX
    characters, every one Unicode (no lone surrogate), none given twice."""
    fields: dict[str, str] = {}
    for n, (name, value) in enumerate(pairs):
        if n >= FIELDS_MAX:
            raise HttpError(400, f"more than {FIELDS_MAX} fields")
        if name in fields:
            raise HttpError(400, f"{name} given more than once")
        if not isinstance(value, str) or len(value) > FIELD_MAX:
            raise HttpError(400, f"{name} is too long or not text")
        if not (name.isascii() and value.isascii()):
            try:
                name.encode(), value.encode()
            except UnicodeEncodeError:
                raise HttpError(400, f"{name} holds a lone surrogate, not text") from None
        fields[name] = value
    return fields


def _parse_qs(text: str) -> list[tuple[str, str]]:
    """Percent-encoded fields; invalid UTF-8 in them is a 400."""
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict",
                         max_num_fields=FIELDS_MAX)
    except UnicodeDecodeError:
        raise HttpError(400, "a field is not UTF-8") from None
    except ValueError:
        raise HttpError(400, f"more than {FIELDS_MAX} fields") from None


class _Pairs(list):
    """A JSON object's members, in order, duplicates kept (to refuse them)."""


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


class ThreatNetHttp:
    """The /threatnet/ API, the ``app`` of its server; ``plugin`` is the ThreatNetCache
    instance. ``listen`` (re)starts the server, ``close`` stops it."""

    def __init__(self, plugin):
        self.plugin = plugin
        self.changes = ChangeLog()
        self.main = MainLoop(plugin._wakeup.keep_awake, plugin._wakeup.settle)
        self.waiters = Waiters(self.changes)
        self.server: ApiServer | None = None
        self.crowdsec = None  # crowdsec.CrowdSecApi: /crowdsec/..., set by the plugin
        self._clients = None  # (setting, NetworkFilter)
        self._failed = None  # (settings, error) last logged

    def listen(self, settings: Settings) -> None:
        """Serve on ``settings``, restarting the server if they changed. A server that
        cannot start (the port is taken) is logged once and tried again next time."""
        if self.server is not None and self.server.settings == settings:
            return
        self._stop(timeout=0)
        try:
            server = ApiServer(settings, self, self.allowed, self.plugin.log)
        except OSError as e:
            if self._failed != (settings, str(e)):
                self._failed = (settings, str(e))
                self.plugin.log.error("HTTP API: cannot listen on %s port %s: %s; trying "
                                      "again every pollInterval", settings.host,
                                      settings.port, e)
            return
        self._failed = None
        server.start()
        self.server = server
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        self.plugin.log.info("HTTP API on http://%s:%s/%s/", host, server.port, SUBDIR)

    def close(self):
        self.main.close()  # first: requests waiting for the main loop give up
        self.waiters.close()
        self._stop(timeout=2.0)

    def _stop(self, timeout):
        server, self.server = self.server, None
        if server is not None:
            self.waiters.flush()  # long-polls answer now, on connections about to be cut
            server.close(timeout)

    # -- dispatch

    _ROUTES = {"/check": ("GET", "_check"), "/threats": ("GET", "_threats"),
               "/events": ("GET", "_events"), "/metrics": ("GET", "_metrics"),
               "/report": ("POST", "_report"), "/status": ("GET", "_status"),
               "/": ("GET", "_index")}

    def __call__(self, handler: Request) -> None:
        """Answer one request (on its connection thread)."""
        headers: list[tuple[str, str]] = []
        try:
            code, body, ctype, *extra = self._route(handler)  # extra: (headers,)
            for more in extra:
                headers.extend(more)
        except HttpError as e:
            if "allow" in e.fields:
                headers.append(("Allow", e.fields.pop("allow")))
            if e.status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="threatnet"'))
            code, body, ctype = e.status, to_json({"error": str(e), **e.fields}), JSON
        except Exception:
            self.plugin.log.exception("HTTP %s %s failed", handler.command, handler.path)
            code, body, ctype = 500, to_json({"error": "internal error (see the bot's "
                                                       "log)"}), JSON
        handler.answer(code, body, ctype, headers)

    def _route(self, handler):
        if not self.allowed(handler.client_address[0]):  # the setting changed since
            raise HttpError(403, "client address not allowed (plugins.ThreatNetCache."
                                 "http.clients)")
        if not handler.path.isascii():
            raise HttpError(400, "the request target must be ASCII (percent-encode "
                                 "the rest)")
        parts = urlsplit(handler.path)
        prefix = f"/{SUBDIR}"
        path = parts.path[len(prefix):]
        if self.crowdsec is not None:
            # CrowdSec's bouncer API, also at the root for bouncers that take only a
            # host (the Traefik plugin's crowdsecLapiHost)
            if parts.path.startswith("/v1/"):
                return self.crowdsec.route(handler, parts.path, _fields(_parse_qs(parts.query)))
            if parts.path.startswith(prefix) and (path + "/").startswith("/crowdsec/"):
                return self.crowdsec.route(handler, path[len("/crowdsec"):],
                                           _fields(_parse_qs(parts.query)))
        if parts.path != prefix and not parts.path.startswith(prefix + "/"):
            raise HttpError(404, f"no such endpoint: {parts.path}; see {prefix}/")
        route = self._ROUTES.get(path.rstrip("/") or "/")
        if route is None:
            raise HttpError(404, f"no such endpoint: {path}; see {prefix}/")
        wanted, method_name = route
        method = handler.command
        if method != wanted and not (method == "HEAD" and wanted == "GET"):
            raise HttpError(405, f"{path} takes {wanted}", allow=wanted)
        query = _fields(_parse_qs(parts.query))
        return getattr(self, method_name)(handler, query)

    def allowed(self, host: str) -> bool:
        """Whether a client at ``host`` may use the API (any thread)."""
        setting = tuple(self.plugin.registryValue("http.clients"))
        clients = self._clients
        if clients is None or clients[0] != setting:
            clients = self._clients = (setting, NetworkFilter("keep", setting))
        try:
            key = parse_ip(host.split("%", 1)[0])
        except (AddressError, AttributeError):
            return False
        return clients[1].accepts(key)

    def _ok(self, data, status=200):
        return status, to_json(data), JSON

    # -- endpoints

    def _index(self, handler, query):
        return self._ok({"endpoints": [
            "GET /threatnet/check?ip=IP[&network=N][&channel=C]",
            "GET /threatnet/threats[?network=N][&channel=C]",
            "GET /threatnet/events?since=N[&stream=ID][&timeout=S][&network=N][&channel=C]",
            "GET /threatnet/metrics",
            "GET /threatnet/status[?q=TEXT]",
            "GET /threatnet/crowdsec/v1/decisions/stream[?startup=true] (X-Api-Key)",
            "GET /threatnet/crowdsec/v1/decisions?ip=IP (X-Api-Key)",
            "POST /threatnet/report ip=IP[&comment=TEXT][&channel=C][&network=N]"]})

    def _check(self, handler, query):
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

    def _threats(self, handler, query):
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

    def _events(self, handler, query):
        since_text = query.get("since", "")
        if since_text and not since_text.isdigit():
            raise HttpError(400, "since must be a change number (an answer's next)")
        since = int(since_text) if since_text else None
        wait = _number(query, "timeout", 0.0, 0, self.plugin.registryValue("http.maxWait"))
        stream = query.get("stream") or None
        network, channel = query.get("network") or None, query.get("channel") or None
        read = self.changes.read(since, stream, network=network, channel=channel)
        if not (read.changes or read.resync or since is None or wait <= 0):
            read = self.waiters.wait(read, stream, network, channel, wait,
                                     self.plugin.registryValue("http.maxFollowers"),
                                     handler.release_slot)
            if read is None:
                raise HttpError(503, "too many waiting requests (plugins.ThreatNetCache."
                                     "http.maxFollowers)")
        return self._ok(self._render_read(read))

    def _render_read(self, read):
        return {"stream": self.changes.stream, "next": read.next, "resync": read.resync,
                "events": [dict(self._threat(c.network, c.channel, c.threat),
                                seq=c.seq, event=c.kind) for c in read.changes]}

    def _metrics(self, handler, query):
        def gather():
            guard = self.plugin.guard()
            return (self.plugin.status(), self.plugin.outboxes(), None if guard is None
                    else (guard.guard_statuses(), guard.whitelist_state()))
        channels, outboxes, guarded = self.main.call(gather)
        body, ctype = metrics.render(channels, outboxes, self.changes.next - 1,
                                     len(self.waiters), handler.headers.get("Accept"),
                                     guarded)
        return 200, body, ctype

    def _status(self, handler, query):
        page = self.main.call(self.plugin.page)
        return 200, status.render(page, query.get("q", "")), status.HTML, status.HEADERS

    def _report(self, handler, query):
        token = self.plugin.registryValue("http.token")
        if not token:
            raise HttpError(403, "reporting is disabled: set plugins.ThreatNetCache.http."
                                 "token")
        given = handler.headers.get("Authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                credential.strip().encode(), token.encode()):
            raise HttpError(401, "a valid Authorization: Bearer token is required")
        fields = self._form(handler)
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

    @staticmethod
    def _form(handler):
        """POST fields: a form or a JSON object, in UTF-8."""
        ctype = handler.headers.get("Content-Type", "").lower()
        if not ctype.startswith(("application/json", "application/x-www-form-urlencoded")):
            raise HttpError(415, "send application/x-www-form-urlencoded or "
                                 "application/json")
        try:
            text = handler.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise HttpError(400, f"bad request body: not UTF-8 ({e.reason} at byte "
                                 f"{e.start})") from None
        if ctype.startswith("application/x-www-form-urlencoded"):
            return _fields(_parse_qs(text))
        try:
            data = json.loads(text, object_pairs_hook=_Pairs)
        except (ValueError, RecursionError) as e:
            raise HttpError(400, f"bad request body: {e}") from None
        if not isinstance(data, _Pairs):
            raise HttpError(400, "bad request body: not an object")
        return _fields(data)

    # -- what the endpoints read

    def _mirrors(self, network, channel):
        """The channels' ChangesResponders feeding this change log (any thread)."""
        return [m for m in self.plugin.mirrors(network, channel) if m.log is self.changes]



"""CrowdSec bouncers reading ThreatNet (threatnet/crowdsec.py has the protocol): the
bouncer keys, ``tn bouncer add|list|remove``, and the LAPI endpoints under the HTTP API:

    GET /threatnet/crowdsec/v1/decisions/stream[?startup=true][&scopes=ip,range]...
    GET /threatnet/crowdsec/v1/decisions?ip=IP|range=CIDR[&contains=false]...

A bouncer's ``api_url`` is ``http://127.0.0.1:8780/threatnet/crowdsec/`` and its
``api_key`` what ``tn bouncer add`` sent in private. Each key reads one channel.

Keys: 32 random bytes (64 hex digits) shown once; the file
``data/ThreatNetCache/bouncers.json`` (mode 0600, written atomically) keeps only
their SHA-256, compared in constant time. A wrong or missing key gets 403, as from
LAPI (the firewall bouncer gives up for good when its first pull fails, so a typo
shows at once). Requests run on their connection threads: the keys are an immutable
dict swapped under a lock, the threats come from the channels' thread-safe mirrors.
"""
from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from typing import Any, NamedTuple

import supybot.callbacks as callbacks
import supybot.conf as conf
from supybot.commands import wrap

import threatnet_irc.converters  # noqa: F401  registers servedChannel

from threatnet.atomic import atomic_write
from threatnet.crowdsec import (Source, Streams, lookup, parse_lookup_query,
                                parse_stream_query)

from .http import HttpError
from .server import JSON, to_json

PREFIX = "/crowdsec"  # under /threatnet
KEY_BYTES = 32
GZIP_MIN = 16384  # bytes of JSON from which an answer is compressed for clients that take gzip
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # what cscli bouncer names look like
SERVED = ("servedChannel", "ThreatNetCache")


class Bouncer(NamedTuple):
    name: str
    network: str
    channel: str
    digest: str  # SHA-256 of the key, hex
    created: float


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


class Keys:
    """The registered bouncers, kept in ``path`` (see the module doc)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._bouncers: dict[str, Bouncer] = {}
        self.error: str | None = None
        self.load()

    def load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read())
            bouncers = {b["name"]: Bouncer(b["name"], b["network"], b["channel"],
                                           b["sha256"], float(b["created"]))
                        for b in data["bouncers"]}
            self.error = None
        except FileNotFoundError:
            bouncers, self.error = {}, None
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.error = f"cannot read {self.path}: {e}; no bouncer is let in (fix or " \
                         "remove the file, then reload the plugin)"
            bouncers = {}
        with self._lock:
            self._bouncers = bouncers

    def _save(self, bouncers: dict[str, Bouncer]) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        atomic_write(self.path, json.dumps({"bouncers": [
            {"name": b.name, "network": b.network, "channel": b.channel, "sha256": b.digest,
             "created": b.created} for b in bouncers.values()]}, indent=1), mode=0o600)

    def add(self, name: str, network: str, channel: str) -> str:
        """Register ``name`` for ``channel``; its key (shown once). KeyError if taken;
        OSError if the file cannot be written (nothing changes then)."""
        if self.error:  # never overwrite a file that could not be read
            raise OSError(self.error)
        key = secrets.token_hex(KEY_BYTES)
        with self._lock:
            if name in self._bouncers:
                raise KeyError(name)
            bouncers = dict(self._bouncers)
            bouncers[name] = Bouncer(name, network, channel, _digest(key), time.time())
            self._save(bouncers)
            self._bouncers = bouncers
        return key

    def remove(self, name: str) -> bool:
        if self.error:
            raise OSError(self.error)
        with self._lock:
            if name not in self._bouncers:
                return False
            bouncers = dict(self._bouncers)
            del bouncers[name]
            self._save(bouncers)
            self._bouncers = bouncers
        return True

    def all(self) -> list[Bouncer]:
        return sorted(self._bouncers.values(), key=lambda b: b.name)

    def find(self, key: str) -> Bouncer | None:
        """The bouncer whose key this is (any thread); every key is compared, in
        constant time."""
        digest = _digest(key)
        found = None
        for b in self._bouncers.values():
            if hmac.compare_digest(b.digest, digest):
                found = b
        return found


def keys_path() -> str:
    return conf.supybot.directories.data.dirize(os.path.join("ThreatNetCache",
                                                             "bouncers.json"))


class Pulls(NamedTuple):
    count: int
    last: float
    address: str


class CrowdSecApi:
    """The LAPI endpoints (``http`` is the ThreatNetHttp serving them, which routes
    every path under PREFIX here)."""

    def __init__(self, http: Any, keys: Keys) -> None:
        self.http = http
        self.keys = keys
        self.streams = Streams(http.changes)
        self.pulls: dict[str, Pulls] = {}  # bouncer -> its pulls, for tn bouncer list

    def route(self, handler: Any, path: str, query: dict[str, str]) -> tuple[int, bytes, str]:
        """Answer ``path`` (after /threatnet/crowdsec); raises the HTTP API's HttpError."""
        error = HttpError
        if handler.command not in ("GET", "HEAD"):
            raise error(405, f"{PREFIX}{path} takes GET", allow="GET")
        path = "/" + path.strip("/")
        if path not in ("/v1/decisions/stream", "/v1/decisions"):
            raise error(404, f"no such endpoint: {PREFIX}{path}; a bouncer's api_url is "
                             f"http://HOST:PORT/threatnet{PREFIX}/")
        bouncer = self.keys.find(handler.headers.get("X-Api-Key") or "")
        if bouncer is None:
            raise error(403, "access forbidden: a valid X-Api-Key is required (tn bouncer "
                             "add)", message="access forbidden")
        try:
            parsed = (parse_stream_query if path.endswith("/stream") else
                      parse_lookup_query)(query)
        except ValueError as e:
            raise error(400, str(e), message=str(e)) from None
        if handler.command == "HEAD":  # LAPI's way: a stream HEAD moves nothing on
            return 200, b"", JSON
        sources = [Source(m.network, m.channel, m.current)
                   for m in self.http._mirrors(bouncer.network, bouncer.channel)]
        now = time.time()
        if path == "/v1/decisions":
            return _answer(handler, lookup(sources, parsed, now))
        answer = self.streams.pull(bouncer.name, sources, parsed, now)
        old = self.pulls.get(bouncer.name)
        self.pulls[bouncer.name] = Pulls((old.count if old else 0) + 1, now,
                                         handler.client_address[0])
        return _answer(handler, answer.json())

    def forget(self, name: str) -> None:
        self.streams.forget(name)
        self.pulls.pop(name, None)


def _answer(handler: Any, data: Any) -> tuple[int, bytes, str, list[tuple[str, str]]]:
    """A 200 with ``data`` as JSON, gzipped when large and the client takes gzip (the
    Go bouncers do, transparently): a startup stream of 10,000 threats is 1.9 MB."""
    body = to_json(data)
    if len(body) >= GZIP_MIN and _takes_gzip(handler.headers.get("Accept-Encoding", "")):
        return 200, gzip.compress(body, 1), JSON, [("Content-Encoding", "gzip"),
                                                   ("Vary", "Accept-Encoding")]
    return 200, body, JSON, [("Vary", "Accept-Encoding")]


def _takes_gzip(accept: str) -> bool:
    for item in accept.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() == "gzip":
            q = params.strip().lower()
            if not q.startswith("q="):
                return True
            try:
                return float(q[2:]) > 0  # q=0: "not gzip"
            except ValueError:
                return False
    return False


def _api(plugin) -> CrowdSecApi | None:
    http = plugin._http
    return http.crowdsec if http is not None else None


class bouncer(callbacks.Commands):
    """CrowdSec bouncers reading this bot's threats (the HTTP API must be on)."""

    def add(self, irc, msg, args, channel, name):
        """[<channel>] <name>

        Registers a CrowdSec bouncer named <name> that reads the current threats of
        <channel> through the HTTP API (api_url http://HOST:PORT/threatnet/crowdsec/).
        Its api_key is sent to you in a private notice, once: only its hash is kept.
        Needs the admin capability.
        """
        parent = self.parent
        st = parent._channel(irc, channel)
        if not NAME.fullmatch(name):
            irc.error("A bouncer name is 1 to 64 letters, digits, '.', '_' or '-'.",
                      Raise=True)
        try:
            key = parent.bouncer_keys.add(name, st.network, st.channel)
        except KeyError:
            irc.error(f"There is a bouncer named {name} already (tn bouncer remove it "
                      "first).", Raise=True)
        except OSError as e:
            irc.error(f"Cannot save the bouncer keys: {e}", Raise=True)
        host, port = parent.registryValue("http.host"), parent.registryValue("http.port")
        host = f"[{host}]" if ":" in host else host
        irc.reply(f"CrowdSec bouncer {name} reads {st.channel} on {st.network}: api_url: "
                  f"http://{host}:{port}/threatnet/crowdsec/ api_key: {key}",
                  private=True, notice=True)
        if irc.isChannel(msg.args[0]):
            irc.reply(f"Bouncer {name} added for {st.channel}; its api_key is in a private "
                      "notice to you.")
        elif not parent.registryValue("http.enable"):
            irc.reply("Note: the HTTP API is off (plugins.ThreatNetCache.http.enable).")
    add = wrap(add, ["admin", SERVED, "somethingWithoutSpaces"])

    def list(self, irc, msg, args):
        """takes no arguments

        The CrowdSec bouncers registered: name, channel, and their pulls (how many,
        how long ago, from where). Needs the admin capability.
        """
        parent = self.parent
        api = _api(parent)
        now = time.time()
        parts = []
        for b in parent.bouncer_keys.all():
            pulls = api.pulls.get(b.name) if api is not None else None
            seen = f"{pulls.count} pulls, last {int(now - pulls.last)} s ago from " \
                   f"{pulls.address}" if pulls else "no pull yet"
            parts.append(f"{b.name} ({b.channel} on {b.network}; {seen})")
        error = parent.bouncer_keys.error
        if error:
            irc.error(error, Raise=True)
        irc.reply(("CrowdSec bouncers: " + "; ".join(parts)) if parts else
                  "No CrowdSec bouncers (tn bouncer add).")
    list = wrap(list, ["admin"])

    def remove(self, irc, msg, args, name):
        """<name>

        Unregisters the CrowdSec bouncer <name>: its key stops working at once.
        Needs the admin capability.
        """
        parent = self.parent
        try:
            removed = parent.bouncer_keys.remove(name)
        except OSError as e:
            irc.error(f"Cannot save the bouncer keys: {e}", Raise=True)
        if not removed:
            irc.error(f"No bouncer named {name}.", Raise=True)
        api = _api(parent)
        if api is not None:
            api.forget(name)
        irc.reply(f"Bouncer {name} removed.")
    remove = wrap(remove, ["admin", "somethingWithoutSpaces"])

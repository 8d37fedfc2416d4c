"""CrowdSec both ways: its bouncers read ThreatNet, and ThreatNet shares what it detects.

CrowdSec's Local API (LAPI) keeps decisions (ban this IP for that long); bouncers
(nftables, nginx, HAProxy, Traefik, ...) enforce them, pulling with an API key
(header ``X-Api-Key``):

- ``GET <api_url>v1/decisions/stream?startup=true`` once: every active decision as
  ``new``; then ``GET <api_url>v1/decisions/stream`` every ``update_frequency``: what
  is ``new`` and what was ``deleted`` since this bouncer's last pull.
- ``GET <api_url>v1/decisions?ip=IP`` (live bouncers): the decisions covering IP, or
  ``null`` when there are none.

Serving them (``Streams``, ``lookup``): a channel's current threats are decisions of
type ban, scope Ip (Range for an aggregated IPv6 /64), origin ``threatnet``, scenario
naming the network and channel, duration the time left in the block period as a Go
duration string. Each bouncer's stream remembers what it was sent, so an expired,
withdrawn or forgotten threat is in its next ``deleted``, and a renewed one (another
expiry) is deleted and new again: bouncers apply ``deleted`` before ``new`` (the
firewall bouncer never touches an element already in its set, so a new timeout needs
the delete).

Reading one (``CrowdSecFeed``): a provider feed registered on a LAPI as a bouncer.
Only decisions this CrowdSec made itself are reported (origin ``crowdsec``, a
scenario, or ``cscli``, an operator), scope Ip, type ban: never what came from the
central API (``CAPI``), subscribed blocklists (``lists``), the console or an import
(``cscli-import``). Those were not detected here, and their terms forbid
redistribution.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import yaml

from threatnet.address import AddressError, is_ipv4, parse_ip, parse_network
from threatnet.feed import COMMENT_MAX, Detector, Position, clean
from threatnet.language import ThreatMessage
from threatnet.response.changes import ChangeLog
from threatnet.response.responder import SINGLE, Threat

ORIGIN = "threatnet"  # the origin of every decision ThreatNet serves
LOCAL_ORIGINS = frozenset({"crowdsec", "cscli"})  # decisions made here: shared
SCOPES = {"ip": "Ip", "range": "Range"}  # the scopes served, by their lower-case name
DEFAULT_SCOPES = frozenset(SCOPES.values())  # what LAPI streams when a bouncer names none


# -- Go durations (time.Duration.String, parsed by time.ParseDuration)

def go_duration(seconds: float) -> str:
    """``seconds`` as a Go duration string in milliseconds: ``3h59m58.123s``,
    ``0.5s``, ``0s``, ``-1.25s``. Under a second it stays in seconds (``0.5s``, not
    Go's ``500ms``): the nginx bouncer's parser reads only h, m and s."""
    ms = round(seconds * 1000)
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    text = f"{secs}.{ms:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text if text != "0s" else "0s"


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_go_duration(text: str) -> float:
    """Seconds of a Go duration string (``10s``, ``1m30s``, ``500ms``, ``-2h``);
    ValueError for anything else."""
    rest = text.strip()
    sign = -1.0 if rest.startswith("-") else 1.0
    rest = rest.lstrip("+-")
    if not rest:
        raise ValueError(f"not a duration: {text!r}")
    total = 0.0
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
            i += 1
        j = i
        while j < len(rest) and not (rest[j].isdigit() or rest[j] == "."):
            j += 1
        number, unit = rest[:i], rest[i:j]
        if unit not in _UNITS or not number or number.count(".") > 1 or number == ".":
            raise ValueError(f"not a duration: {text!r} (use e.g. 10s, 1m30s, 500ms)")
        total += float(number) * _UNITS[unit]
        rest = rest[j:]
    return sign * total


# -- serving bouncers

def decision_id(network: str, channel: str, threat: Threat) -> int:
    """A stable decision id (48 bits): the same threat with the same expiry has the same
    id after a restart; a renewed one gets another."""
    digest = hashlib.blake2b(f"{network}\0{channel}\0{threat.key}\0{threat.expires_at!r}"
                             .encode(), digest_size=6).digest()
    return int.from_bytes(digest, "big") or 1


def scope(threat: Threat) -> str:
    return "Ip" if threat.prefix == SINGLE else "Range"


def scenario(network: str, channel: str, threat: Threat) -> str:
    """What the decision says it is: ThreatNet, the channel and the threat's comment."""
    comment = clean(threat.comment, COMMENT_MAX)
    return f"threatnet {network} {channel}" + (f": {comment}" if comment else "")


def decision(network: str, channel: str, threat: Threat, now: float,
             deleted: bool = False) -> dict[str, Any]:
    """The LAPI decision for a current threat (``deleted``: one taken back, whose
    duration is what is left of it, at most 0: bouncers need one)."""
    left = threat.expires_at - now
    return {"id": decision_id(network, channel, threat), "origin": ORIGIN,
            "scenario": scenario(network, channel, threat), "scope": scope(threat),
            "type": "ban", "value": threat.ip, "simulated": False,
            "duration": go_duration(min(left, 0.0) if deleted else left)}


class Filters(NamedTuple):
    """The decision filters a bouncer may send (LAPI's names): which scopes, origins,
    types, scenario words, and (lookups) which address, range or value."""

    scopes: frozenset[str] = DEFAULT_SCOPES
    origins: frozenset[str] | None = None
    type: str | None = None
    containing: tuple[str, ...] = ()
    not_containing: tuple[str, ...] = ()
    value: str | None = None
    first: int | None = None  # ip= or range=: the keys asked about
    last: int | None = None
    contains: bool = True  # decisions containing the range (else within it)


class StreamQuery(NamedTuple):
    startup: bool
    filters: Filters


_COMMON = ("scopes", "origins", "type", "scenarios_containing", "scenarios_not_containing",
           "dedup", "simulated")
STREAM_PARAMS = frozenset(("startup",) + _COMMON)
LOOKUP_PARAMS = frozenset(("ip", "range", "scope", "value", "contains") + _COMMON)


def _bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "t"):
        return True
    if value in ("false", "0", "f", ""):
        return False
    raise ValueError(f"{name} must be true or false, not {text[:20]!r}")


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip().lower() for w in text.split(",") if w.strip())


def _filters(fields: Mapping[str, str], allowed: frozenset[str]) -> Filters:
    # Another parameter is ignored, as LAPI does: bouncers send their own (the Traefik
    # plugin's banned=true), and newer ones will send more.
    fields = {k: v for k, v in fields.items() if k in allowed}
    for name in ("dedup", "simulated"):
        if name in fields:
            _bool(name, fields[name])
    scopes = DEFAULT_SCOPES
    if "scopes" in fields or "scope" in fields:
        names = _words(fields.get("scopes", "")) + _words(fields.get("scope", ""))
        if not names:
            raise ValueError("scopes must name at least one scope (ip, range)")
        # another scope (country, as, username...) is valid and matches nothing here
        scopes = frozenset(SCOPES.get(n, n) for n in names)
    origins = frozenset(o.strip() for o in fields["origins"].split(",") if o.strip()) \
        if "origins" in fields else None
    first = last = None
    contains = _bool("contains", fields["contains"]) if "contains" in fields else True
    for name in ("ip", "range"):
        if name not in fields:
            continue
        if first is not None:
            raise ValueError("give ip or range, not both")
        text = fields[name].strip()
        try:
            if name == "ip":
                first = last = parse_ip(text)
            else:
                net = parse_network(text)
                first, last = net.first, net.last
        except AddressError as e:
            raise ValueError(f"{name}: {text[:50]!r} is not a valid "
                             f"{'IP address' if name == 'ip' else 'network'}: {e}") from None
    return Filters(scopes, origins, fields.get("type") or None,
                   _words(fields.get("scenarios_containing", "")),
                   _words(fields.get("scenarios_not_containing", "")),
                   fields.get("value") or None, first, last, contains)


def parse_stream_query(fields: Mapping[str, str]) -> StreamQuery:
    """The query of ``GET v1/decisions/stream``; ValueError says what is wrong. A
    missing ``startup`` means false, as in LAPI."""
    startup = _bool("startup", fields["startup"]) if "startup" in fields else False
    return StreamQuery(startup, _filters(fields, STREAM_PARAMS))


def parse_lookup_query(fields: Mapping[str, str]) -> Filters:
    """The query of ``GET v1/decisions``; ValueError says what is wrong."""
    return _filters(fields, LOOKUP_PARAMS)


def _last(threat: Threat) -> int:
    return threat.key + (1 << (SINGLE - threat.prefix)) - 1


def matches(filters: Filters, network: str, channel: str, threat: Threat) -> bool:
    """Whether the decision for ``threat`` passes ``filters``."""
    if scope(threat) not in filters.scopes:
        return False
    if filters.origins is not None and ORIGIN not in filters.origins:
        return False
    if filters.type is not None and filters.type != "ban":
        return False
    if filters.value is not None and filters.value != threat.ip:
        return False
    if filters.containing or filters.not_containing:
        text = scenario(network, channel, threat).lower()
        if filters.containing and not any(w in text for w in filters.containing):
            return False
        if any(w in text for w in filters.not_containing):
            return False
    if filters.first is not None:
        last = _last(threat)
        if is_ipv4(threat.key) != is_ipv4(filters.first):
            return False
        if filters.contains:
            return threat.key <= filters.first and filters.last <= last  # type: ignore[operator]
        return filters.first <= threat.key and last <= filters.last  # type: ignore[operator]
    return True


class Source(NamedTuple):
    """Where a bouncer's threats come from: a channel's network, name (as the change log
    has it) and its current threats (a function: a stream's increment need not call it)."""

    network: str
    channel: str
    current: Callable[[], Iterable[Threat]]


def lookup(sources: Iterable[Source], filters: Filters, now: float,
           ) -> list[dict[str, Any]] | None:
    """``GET v1/decisions``: the decisions passing ``filters``, or None (LAPI answers
    ``null`` when there are none)."""
    found = [decision(s.network, s.channel, t, now)
             for s in sources for t in s.current()
             if t.expires_at > now and matches(filters, s.network, s.channel, t)]
    return found or None


class Pull(NamedTuple):
    """One stream answer: the decisions new and deleted since the last pull."""

    new: list[dict[str, Any]]
    deleted: list[dict[str, Any]]

    def json(self) -> dict[str, list[dict[str, Any]]]:
        return {"new": self.new, "deleted": self.deleted}


_Key = tuple[str, str, int]  # (network, channel, threat key)


class _Stream:
    """What one bouncer was sent, with the filters it was sent under and where in the
    change log its next increment starts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: dict[_Key, Threat] | None = None  # None: nothing known (never pulled)
        self.filters: Filters | None = None
        self.stream: str | None = None
        self.next = 0


class Streams:
    """Each bouncer's decision stream: what it was sent, so each pull answers what is
    new and what was deleted since. Thread-safe (pulls come from request threads); one
    bouncer's pulls are answered one at a time, different bouncers' at once.

    A startup pull reads every current threat; an increment reads only the changes
    written to ``log`` since the bouncer's last pull (the channels' ChangesResponders
    write them), so it costs what changed, not what is current. When the log cannot
    say (the bouncer fell more than the log's size behind, the filters changed, no
    log), the increment is the difference between what it was sent and what is
    current now.

    A bouncer the bot does not know yet (first pull after a restart without
    ``startup=true``) gets every current threat as new: bouncers add idempotently.
    What it held that was taken back while the bot was down stays until its own
    timeout (the duration it was given), as the bot cannot know it.
    """

    def __init__(self, log: ChangeLog | None = None) -> None:
        self.log = log
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()

    def pull(self, bouncer: str, sources: Sequence[Source], query: StreamQuery,
             now: float) -> Pull:
        with self._lock:
            state = self._streams.setdefault(bouncer, _Stream())
        with state.lock:
            if not query.startup and state.sent is not None \
                    and state.filters == query.filters:
                pulled = self._increment(state, sources, now)
                if pulled is not None:
                    return pulled
            return self._full(state, sources, query, now)

    def _full(self, state: _Stream, sources: Sequence[Source], query: StreamQuery,
              now: float) -> Pull:
        log = self.log
        cursor = log.next if log is not None else 0  # before the mirrors: nothing missed
        current: dict[_Key, Threat] = {}
        for network, channel, threats in sources:
            for t in threats():
                if t.expires_at > now and matches(query.filters, network, channel, t):
                    current[network, channel, t.key] = t
        sent = {} if query.startup or state.sent is None else state.sent
        touched = [*current, *(key for key in sent if key not in current)]
        pulled = _diff(touched, sent, current, now)
        state.sent, state.filters = current, query.filters
        state.stream, state.next = (log.stream, cursor) if log is not None else (None, 0)
        return pulled

    def _increment(self, state: _Stream, sources: Sequence[Source], now: float,
                   ) -> Pull | None:
        log, sent, filters = self.log, state.sent, state.filters
        if log is None or sent is None or filters is None:
            return None
        before: dict[_Key, Threat | None] = {}
        # One read of every channel: a change appended between reads of two channels
        # would be behind the cursor of both and never sent.
        read = log.read(state.next, state.stream, limit=1 << 30)
        if read.resync:
            return None
        wanted = {(network, channel) for network, channel, _ in sources}
        for change in read.changes:
            network, channel, t = change.network, change.channel, change.threat
            if (network, channel) not in wanted:
                continue
            key = (network, channel, t.key)
            if key not in before:
                before[key] = sent.get(key)
            if change.kind == "added" and t.expires_at > now \
                    and matches(filters, network, channel, t):
                sent[key] = t
            else:
                sent.pop(key, None)
        state.next = read.next
        return _diff(before, before, sent, now)

    def forget(self, bouncer: str) -> None:
        """The bouncer was removed: its stream goes."""
        with self._lock:
            self._streams.pop(bouncer, None)


def _diff(keys: Iterable[_Key], before: Mapping[_Key, Threat | None],
          after: Mapping[_Key, Threat], now: float) -> Pull:
    """What a bouncer that held ``before`` must be told to hold ``after`` (for ``keys``):
    a threat gone or changed is deleted (as it was sent), a new or changed one new."""
    new, deleted = [], []
    for key in keys:
        was, is_ = before.get(key), after.get(key)
        if was == is_:
            continue
        if was is not None:
            deleted.append(decision(key[0], key[1], was, now, deleted=True))
        if is_ is not None:
            new.append(decision(key[0], key[1], is_, now))
    return Pull(new, deleted)


# -- reading a LAPI: the provider feed

class Credentials(NamedTuple):
    """A feed's bouncer configuration, a YAML file only its owner may read, in the
    firewall bouncer's own words: ``api_url``, ``api_key``, ``update_frequency``."""

    url: str
    key: str
    interval: float


DEFAULT_INTERVAL = 2.0  # seconds between two pulls when update_frequency is not given
INTERVAL_MIN, INTERVAL_MAX = 0.1, 3600.0
ANSWER_MAX = 64 << 20  # bytes of one LAPI answer read at most
TIMEOUT = 10.0  # seconds a pull may take
REPORTED_MAX = 100_000  # reported decisions remembered (to withdraw them), oldest dropped


def read_credentials(path: str) -> Credentials:
    """The feed's configuration; ValueError (or OSError) says what is wrong. A file
    others may read is refused: the key is a secret."""
    with open(path, "rb") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o077:
            raise ValueError(f"{path} is readable by others (mode {mode:o}): chmod 600 it, "
                             "it holds an API key")
        data = yaml.safe_load(f.read(1 << 16))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a YAML mapping with api_url and api_key")
    url, key = data.get("api_url"), data.get("api_key")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"{path}: api_url must be the LAPI's http(s):// URL")
    if not isinstance(key, str) or not key.strip() or not key.strip().isprintable():
        raise ValueError(f"{path}: api_key must be the key `cscli bouncers add` printed")
    interval = DEFAULT_INTERVAL
    if data.get("update_frequency") is not None:
        interval = parse_go_duration(str(data["update_frequency"]))
        if not INTERVAL_MIN <= interval <= INTERVAL_MAX:
            raise ValueError(f"{path}: update_frequency must be 100ms to 1h")
    return Credentials(url if url.endswith("/") else url + "/", key.strip(), interval)


class Found(NamedTuple):
    """A decision worth sharing: its LAPI id, address, comment and the seconds it had
    left when read (None if its duration could not be read)."""

    id: int
    ip: str
    comment: str
    left: float | None = None


def _left(d: dict[str, Any]) -> float | None:
    try:
        return parse_go_duration(str(d.get("duration")))
    except ValueError:
        return None


def local_bans(decisions: object) -> tuple[list[Found], int]:
    """The decisions of a stream's ``new`` list this CrowdSec made itself (origin
    crowdsec or cscli, scope Ip, type ban), and how many others were skipped.
    Anything malformed is skipped too, never raised."""
    found: list[Found] = []
    skipped = 0
    for d in decisions if isinstance(decisions, list) else ():
        if not (isinstance(d, dict) and d.get("origin") in LOCAL_ORIGINS
                and str(d.get("scope", "")).lower() == "ip" and d.get("type") == "ban"
                and isinstance(d.get("value"), str) and type(d.get("id")) is int):
            skipped += 1
            continue
        if d["origin"] == "cscli":  # its scenario holds the machine id or free text
            comment = "crowdsec: manual ban (cscli)"
        else:
            comment = f"crowdsec: {clean(str(d.get('scenario') or 'decision'), 60)}"
        found.append(Found(d["id"], d["value"], comment, _left(d)))
    return found, skipped


EARLY = 5.0  # seconds: a decision deleted this long before its end was taken back


def taken_back(deleted: object, reported: Mapping[int, tuple[str, float]], now: float,
               ) -> list[int]:
    """The ids of a stream's ``deleted`` list that ``reported`` (id -> (address, when it
    was to end)) knows and that ended early: an operator deleted them (``cscli decisions delete``),
    they did not expire. LAPI lists a deleted decision for a few pulls: each is
    answered once by whoever drops it from ``ends``."""
    return [d["id"] for d in deleted if isinstance(d, dict) and type(d.get("id")) is int
            and d["id"] in reported and now < reported[d["id"]][1] - EARLY] \
        if isinstance(deleted, list) else []


class CrowdSecFeed:
    """A provider feed reading a CrowdSec LAPI's decision stream as a registered
    bouncer (``crowdsec:/path/to/credentials.yaml`` in the feeds setting).

    A thread of its own pulls the stream every ``update_frequency`` (a LAPI that
    hangs never holds up the bot); ``poll`` (on the bot's timer) hands what it found
    to the Detector (threshold, strict address check, counters). Like a log feed it
    starts "at the end": the decisions active at its first pull were made before it
    started and are not reported, unless ``resume`` says where an earlier run was
    (the highest decision id it had seen, kept as the Position's offset). The thread
    pulls first when ``poll`` is first called, so a ``resume`` before it always counts.
    """

    def __init__(self, path: str, extractor: str = "crowdsec", *,
                 clock: Callable[[], float] = time.time,
                 maxretry: int | None = None, findtime: int | None = None,
                 opener: Callable[..., Any] | None = None) -> None:
        self.path = path
        self.extractor = extractor
        self.detector = Detector(extractor, maxretry, findtime, clock)
        self._clock = clock
        self._open = opener or urllib.request.urlopen
        self._lock = threading.Lock()
        self._found: deque[tuple[Found, float]] = deque(maxlen=100_000)
        self._reported: dict[int, tuple[str, float]] = {}  # id -> (address, its end)
        self._withdrawn: list[str] = []  # addresses deleted early in CrowdSec
        self._last_id: int | None = None  # the highest decision id seen
        self._resume_id: int | None = None
        self._stop = threading.Event()
        self._go = threading.Event()  # set by the first poll: the thread may pull
        self.error: str | None = None
        self.behind = False  # a poll takes everything found so far
        # called (on the pulling thread) when a pull found something, so the bot reads
        # it at once instead of at its next poll
        self.notify: Callable[[], None] | None = None
        self.pulls = 0
        self.skipped = 0  # decisions not made here (lists, CAPI, imports, ranges, ...)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"threatnet-crowdsec-{os.path.basename(path)}")
        self._thread.start()

    # -- the bot's side (main loop)

    def poll(self) -> list[ThreatMessage]:
        self._go.set()
        with self._lock:
            found, self._found = list(self._found), deque(maxlen=100_000)
        out = []
        self.detector.threshold.prune(self._clock())
        reported = {}
        for f, at in found:
            threat = self.detector.line(f"{f.ip} {f.comment}", at)
            if threat is not None:
                out.append(threat)
                if f.left is not None:
                    reported[f.id] = (f.ip, at + f.left)
        if reported:
            with self._lock:
                self._reported.update(reported)
                while len(self._reported) > REPORTED_MAX:
                    del self._reported[next(iter(self._reported))]
        return out

    def withdrawn(self) -> list[str]:
        """Addresses reported from decisions deleted early since the last call."""
        with self._lock:
            gone, self._withdrawn = self._withdrawn, []
        return gone

    def stats(self) -> dict[str, int]:
        return {**self.detector.stats(), "pulls": self.pulls, "skipped": self.skipped}

    def position(self) -> Position | None:
        last = self._last_id
        return None if last is None else Position(0, 0, last)

    def resume(self, position: Position, saved_at: float) -> bool:
        if (position.dev, position.ino) != (0, 0) or self.pulls:
            return False
        self._resume_id = position.offset
        return True

    def close(self) -> None:
        self._stop.set()
        self._go.set()

    # -- the pulling thread

    def _run(self) -> None:
        startup = True
        interval = DEFAULT_INTERVAL
        self._go.wait()
        while not self._stop.is_set():
            try:
                creds = read_credentials(self.path)
                interval = creds.interval
                self._pull(creds, startup)
                startup = False
                self.error = None
            except (OSError, ValueError, yaml.YAMLError) as e:
                self.error = _reason(e)
                if isinstance(e, urllib.error.HTTPError) and e.code == 403:
                    self.error = "the LAPI refused the api_key (403): `cscli bouncers " \
                                 "add threatnet` gives one"
            self._stop.wait(interval)

    def _pull(self, creds: Credentials, startup: bool) -> None:
        url = creds.url + "v1/decisions/stream" + ("?startup=true" if startup else "")
        request = urllib.request.Request(url, headers={
            "X-Api-Key": creds.key, "User-Agent": "threatnet-crowdsec-feed/1"})
        with self._open(request, timeout=TIMEOUT) as answer:
            body = answer.read(ANSWER_MAX + 1)
        if len(body) > ANSWER_MAX:
            raise ValueError(f"the LAPI's answer is over {ANSWER_MAX} bytes")
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("the LAPI's answer is not a JSON object")
        found, skipped = local_bans(data.get("new"))
        now = self._clock()
        ids = [f.id for f in found]
        if startup:
            floor = self._resume_id
            found = [] if floor is None else [f for f in found if f.id > floor]
            ids += [d["id"] for d in data.get("new") or () if isinstance(d, dict)
                    and type(d.get("id")) is int]
        with self._lock:
            self._found.extend((f, now) for f in found)
            for i in taken_back(data.get("deleted"), self._reported, now):
                self._withdrawn.append(self._reported.pop(i)[0])
            for d in data.get("deleted") or ():  # expired: forget them
                if isinstance(d, dict) and type(d.get("id")) is int:
                    self._reported.pop(d["id"], None)
            if ids:
                self._last_id = max(ids + [self._last_id or 0])
            self.pulls += 1
            self.skipped += skipped
        if (found or self._withdrawn) and self.notify is not None:
            self.notify()


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"the LAPI answered {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"cannot reach the LAPI: {e.reason}"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e) or type(e).__name__

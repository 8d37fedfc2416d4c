"""DNSBL lookup: does a DNS blocklist zone already list an address? A Threat Filter.

The proposal's Network Bridge example: "filter out any messages that reference
hosts already listed on the university DNSBL server". ``DnsblLookup`` is that
filter. (threatnet/response/dnsbl.py is the other end: the zone files our own
rbldnsd serves.)

Queries (RFC 5782): the A record of ``d.c.b.a.<zone>`` for IPv4 a.b.c.d, of the 32
nibbles of an IPv6 address in reverse order under the zone. An answer in
127.0.0.0/8 means listed, except 127.255.255.0/24 (the codes DNSBLs such as
Spamhaus answer when they refuse a query); NXDOMAIN or no A record means not
listed. Any other answer (a resolver that rewrites NXDOMAIN to an address of its
own, an error code) is a bad answer: counted, never taken for a listing.

The filter runs on the caller's thread (the bot's main loop) and never waits on the
network. ``screen`` answers from a cache, or asks ``workers`` threads to resolve and
returns ``PENDING``: ask again later. At most ``queue_size`` lookups are outstanding;
each has a deadline ``timeout`` after it was asked. Answers are cached for their
DNS TTL (negative answers: the zone's SOA minimum), kept within ``MIN_TTL`` (a
waiting relay must find its answer) and ``max_ttl`` (a new or lifted listing shows
soon).

A lookup that fails (no answer by its deadline, a DNS error, a bad answer, or too
many outstanding: "busy") passes the threat: the DNSBL only spares a network threats
it already blocks, so an unreachable DNSBL must not stop the sharing. Failures are
counted by reason and cached for ``FAILURE_TTL``, so a down DNSBL delays each
address at most once a while, by at most ``timeout``.
"""
from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Union

from threatnet.address import AddressError, format_ip, is_ipv4, parse_ip
from threatnet.filter import PENDING

if TYPE_CHECKING:
    from threatnet.envelope import Envelope
    from threatnet.language import ThreatMessage

LISTED = "listed"  # the drop reason
DEFAULT_TIMEOUT = 2.0  # seconds a relay waits for an answer at most
MIN_TTL = 10.0
MAX_TTL = 60.0
FAILURE_TTL = 10.0
QUEUE_SIZE = 256
WORKERS = 2
MAX_ENTRIES = 65536  # cached answers (about 100 bytes each)
DNS_PORT = 53

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# A query name has at most 253 characters; an IPv6 one spends 64 on its nibbles.
_MAX_ZONE = 253 - 64
_EXAMPLE = "e.g. bl.example.net"


class DnsblSpec(NamedTuple):
    """A DNSBL zone and the DNS server to ask (address, port), None: the system's
    resolvers (/etc/resolv.conf)."""

    zone: str
    server: tuple[str, int] | None = None

    def __str__(self) -> str:
        if self.server is None:
            return self.zone
        host, port = self.server
        if ":" in host:
            host = f"[{host}]"
        return f"{self.zone}@{host}" + (f":{port}" if port != DNS_PORT else "")


def parse_dnsbl(text: str) -> DnsblSpec | None:
    """``zone`` or ``zone@server[:port]`` (the server an IP address; an IPv6 one in
    brackets when a port follows); "" is None (no lookup). Raises ValueError."""
    text = text.strip()
    if not text:
        return None
    zone, at, server = text.partition("@")
    return DnsblSpec(_zone(zone, text), _server(server, text) if at else None)


def _zone(zone: str, text: str) -> str:
    name = zone.lower().removesuffix(".")
    labels = name.split(".")
    if ":" in name or labels[-1].isdigit():
        raise ValueError(f"{text!r}: {zone!r} is an address, not a zone; {_EXAMPLE}, "
                         "and zone@address to name the server")
    if len(labels) < 2:
        raise ValueError(f"{text!r}: a DNSBL zone is a domain name with a dot, {_EXAMPLE}")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"{text!r}: {label!r} is not a DNS label (letters, digits "
                             "and -, at most 63, not starting or ending with -)")
    if len(name) > _MAX_ZONE:
        raise ValueError(f"{text!r}: a zone longer than {_MAX_ZONE} characters leaves "
                         "no room for an IPv6 address")
    return name


def _server(server: str, text: str) -> tuple[str, int]:
    host, port = server, ""
    if server.startswith("["):
        host, bracket, port = server[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise ValueError(f"{text!r}: write an IPv6 server as [address]:port")
        port = port[1:]
    elif server.count(":") == 1:
        host, _, port = server.partition(":")
    try:
        address = format_ip(parse_ip(host))
    except AddressError:
        raise ValueError(f"{text!r}: the server must be an IP address, not {host!r} (the "
                         "system's resolvers: no @)") from None
    if not port:
        return address, DNS_PORT
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{text!r}: {port!r} is not a port (1-65535)")
    return address, int(port)


def query_name(key: int, zone: str) -> str:
    """The name to ask for the A record of: the address reversed, then the zone."""
    if is_ipv4(key):
        labels = [str(b) for b in (key & 0xFFFFFFFF).to_bytes(4, "big")]
    else:
        labels = list(f"{key:032x}")
    return ".".join(reversed(labels)) + "." + zone


class Answer(NamedTuple):
    """What the DNS said: the A records (empty: NXDOMAIN or no A record), and how
    long it may be cached."""

    addresses: tuple[str, ...]
    ttl: float


class DnsblError(Exception):
    """A lookup that got no answer; ``reason`` ("timeout" or "error") is counted,
    ``str(e)`` says what happened."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# Resolve the A records of a name within a number of seconds; raises DnsblError.
Resolve = Callable[[str, float], Answer]


def listing(addresses: tuple[str, ...]) -> bool:
    """Whether an answer lists the address. Raises ValueError for a bad answer."""
    for address in addresses:
        if not address.startswith("127."):
            raise ValueError(f"answered {address}, outside 127.0.0.0/8 (a resolver that "
                             "rewrites NXDOMAIN?)")
        if address.startswith("127.255.255."):
            raise ValueError(f"answered {address}, an error code of the DNSBL, not a listing")
    return bool(addresses)


class LookupStatus(NamedTuple):
    """One lookup for ``tn bridge status``: how its lookups ended, how many are
    outstanding, how many answers are cached."""

    spec: DnsblSpec
    listed: int
    clear: int
    failed: dict[str, int]  # reason -> lookups (timeout, error, bad answer, busy)
    waiting: int
    cached: int
    last_error: str | None

    def format(self) -> str:
        failed = sum(self.failed.values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.failed.items()))
        text = (f"dnsbl {self.spec}: listed {self.listed}, not listed {self.clear}, "
                f"failed {failed}" + (f" ({reasons}: passed unchecked)" if failed else "")
                + f"; waiting {self.waiting}, cached {self.cached}")
        return text + (f"; last error: {self.last_error}" if self.last_error else "")


_Result = Union[Answer, BaseException]


class DnsblLookup:
    """A Threat Filter rejecting (as "listed") what the DNSBL ``spec`` lists, asking it
    through ``resolve`` on worker threads; see the module docstring.

    ``screen``, ``check``, ``expire`` and ``status`` belong to one thread (the caller's);
    the workers start with the first lookup. ``close`` stops them.
    """

    name = LISTED

    def __init__(self, spec: DnsblSpec, resolve: Resolve, *,
                 timeout: float = DEFAULT_TIMEOUT, max_ttl: float = MAX_TTL,
                 queue_size: int = QUEUE_SIZE, workers: int = WORKERS,
                 max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if timeout <= 0 or queue_size < 1 or workers < 0 or max_entries < 1:
            raise ValueError("timeout, queue_size and max_entries must be positive, "
                             "workers not negative")
        self.spec = spec
        self.timeout = timeout
        self.max_ttl = max_ttl
        self.queue_size = queue_size
        self.max_entries = max_entries
        self._resolve = resolve
        self._clock = clock
        self._workers = workers
        # The caller's thread:
        self._answers: dict[int, tuple[bool, float, float]] = {}  # key -> (listed, from, until)
        self._waiting: dict[int, tuple[int, float]] = {}  # key -> (ticket, deadline)
        self._tally: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._last_error: str | None = None
        self._tickets = itertools.count(1)
        # Shared with the workers, under _cond:
        self._cond = threading.Condition()
        self._queries: deque[tuple[int, int, float]] = deque()  # (ticket, key, deadline)
        self._results: deque[tuple[int, int, _Result]] = deque()
        self._busy = 0  # queries being resolved
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # -- the caller's thread

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        return self.check(msg.key)

    def check(self, key: int) -> str | None:
        """LISTED, None (not listed, or the lookup failed), or PENDING: asked, ask again."""
        now = self._clock()
        if self._results:
            self._collect(now)
        # Each time is checked from both ends: a clock that steps back must not keep an
        # answer beyond its TTL, nor a relay waiting beyond the timeout.
        cached = self._answers.get(key)
        if cached is not None and cached[1] <= now < cached[2]:
            return LISTED if cached[0] else None
        waiting = self._waiting.get(key)
        if waiting is None:
            return self._ask(key, now)
        if waiting[1] - self.timeout <= now < waiting[1]:
            return PENDING
        self._time_out(key, now)
        return None

    def _time_out(self, key: int, now: float) -> None:
        del self._waiting[key]
        self._fail(key, "timeout", f"{query_name(key, self.spec.zone)}: no answer within "
                   f"{self.timeout:g} s", now)

    def _ask(self, key: int, now: float) -> str | None:
        if self._stopping:
            return None
        deadline = now + self.timeout
        with self._cond:
            busy = (len(self._waiting) >= self.queue_size
                    or len(self._queries) >= self.queue_size)
            if not busy:
                ticket = next(self._tickets)
                self._queries.append((ticket, key, deadline))
                self._cond.notify()
        if busy:
            self._fail(key, "busy", f"{self.queue_size} lookups outstanding", now)
            return None
        self._waiting[key] = (ticket, deadline)
        if len(self._threads) < self._workers:
            self._start()
        return PENDING

    def _collect(self, now: float) -> None:
        """Take in what the workers answered; an answer to a lookup that already
        timed out (or was asked again since) is dropped."""
        with self._cond:
            results = list(self._results)
            self._results.clear()
        for ticket, key, result in results:
            waiting = self._waiting.get(key)
            if waiting is None or waiting[0] != ticket:
                continue
            del self._waiting[key]
            name = query_name(key, self.spec.zone)
            if isinstance(result, DnsblError):
                self._fail(key, result.reason, f"{name}: {result}", now)
                continue
            if isinstance(result, BaseException):
                self._fail(key, "error", f"{name}: {type(result).__name__}: {result}", now)
                continue
            try:
                listed = listing(result.addresses)
            except ValueError as e:
                self._fail(key, "bad answer", f"{name}: {e}", now)
                continue
            self._tally["listed" if listed else "clear"] += 1
            self._store(key, listed, now, min(max(result.ttl, MIN_TTL), self.max_ttl))

    def _fail(self, key: int, reason: str, message: str, now: float) -> None:
        self._failed[reason] += 1
        self._last_error = message
        self._store(key, False, now, FAILURE_TTL)

    def _store(self, key: int, listed: bool, now: float, ttl: float) -> None:
        answers = self._answers
        answers.pop(key, None)
        if len(answers) >= self.max_entries:
            del answers[next(iter(answers))]  # the oldest
        answers[key] = (listed, now, now + ttl)

    def expire(self) -> None:
        """Forget answers past their TTL, and count lookups past their deadline as
        timed out; call it every few seconds."""
        now = self._clock()
        self._collect(now)
        self._answers = {key: hit for key, hit in self._answers.items()
                         if hit[1] <= now < hit[2]}
        for key, (_, deadline) in list(self._waiting.items()):
            if not deadline - self.timeout <= now < deadline:
                self._time_out(key, now)

    def status(self) -> LookupStatus:
        self._collect(self._clock())
        return LookupStatus(self.spec, self._tally["listed"],
                            self._tally["clear"], dict(self._failed), len(self._waiting),
                            len(self._answers), self._last_error)

    # -- the workers

    def _start(self) -> None:
        thread = threading.Thread(target=self._work, daemon=True,
                                  name=f"threatnet-dnsbl-{self.spec.zone}")
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while self.work_once(block=True):
            pass

    def work_once(self, block: bool = False) -> bool:
        """Resolve one queued lookup on this thread (the workers' loop; tests call it
        with ``workers=0``). False if there was none (or the lookup is closed)."""
        with self._cond:
            while not self._queries or self._stopping:
                if self._stopping or not block:
                    return False
                self._cond.wait()
            ticket, key, deadline = self._queries.popleft()
            self._busy += 1
        result: _Result
        try:
            left = min(deadline - self._clock(), self.timeout)
            if left <= 0:  # waited in the queue too long: nobody waits for it now
                raise DnsblError("timeout", f"no answer within {self.timeout:g} s")
            result = self._resolve(query_name(key, self.spec.zone), left)
        except Exception as e:  # a resolver's bug must not end the worker
            result = e
        with self._cond:
            self._busy -= 1
            self._results.append((ticket, key, result))
            self._cond.notify_all()
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait (in real time) until every queued lookup is resolved; for tests."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queries or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Stop the workers (each after the query it is resolving); lookups no longer
        asked pass unchecked."""
        with self._cond:
            self._stopping = True
            self._queries.clear()
            self._cond.notify_all()

    def __repr__(self) -> str:
        return f"DnsblLookup({str(self.spec)!r})"


def dns_resolver(server: tuple[str, int] | None) -> Resolve:
    """A Resolve over DNS (dnspython): asks ``server`` (address, port), or the
    system's resolvers (/etc/resolv.conf) for None."""
    import dns.exception
    import dns.rdatatype
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=server is None)
    except dns.exception.DNSException as e:  # no /etc/resolv.conf, or nothing in it
        problem = f"no system resolver: {e}"

        def unconfigured(name: str, timeout: float) -> Answer:
            raise DnsblError("error", problem)
        return unconfigured
    if server is not None:
        resolver.nameservers = [server[0]]
        resolver.port = server[1]

    def resolve(name: str, timeout: float) -> Answer:
        try:
            answer = resolver.resolve(name + ".", "A", search=False,
                                      raise_on_no_answer=False, lifetime=timeout)
        except dns.resolver.NXDOMAIN as e:
            responses = list(e.responses().values())
            return Answer((), _negative_ttl(responses[0] if responses else None))
        except dns.exception.Timeout:
            raise DnsblError("timeout", f"no answer within {timeout:g} s") from None
        except dns.exception.DNSException as e:  # SERVFAIL, REFUSED, unreachable, ...
            raise DnsblError("error", str(e) or type(e).__name__) from None
        if answer.rrset is None:  # NOERROR without an A record
            return Answer((), _negative_ttl(answer.response))
        return Answer(tuple(rr.address for rr in answer.rrset), float(answer.rrset.ttl))

    def _negative_ttl(response: object) -> float:
        """RFC 2308: the SOA record's TTL, at most its minimum field; 0 without one."""
        for rrset in getattr(response, "authority", ()):
            if rrset.rdtype == dns.rdatatype.SOA:
                return float(min(rrset.ttl, rrset[0].minimum))
        return 0.0

    return resolve

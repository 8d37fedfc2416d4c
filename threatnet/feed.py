"""Threat Provider feeds: tail a log file and turn attack lines into Verified Threats.

An extractor reads one log line and returns a ``Find`` (address, kind of failure)
or None; the address must pass the strict Threat Language (``parse_message``)
before it counts, so a sloppy regex can never put a bad address on the channel.
A feed reports an address only once its failures reach a threshold
(``threatnet.threshold``: fail2ban's maxretry within findtime), and the comment
names the kind of attack and the count, e.g. ``sshd: 5 failed passwords in 600 s``:
never a username, mail address or anything else a log line says about a person.
Log lines are attacker influenced, so what does reach a comment (a SASL
mechanism, a DNSBL zone, a fail2ban jail, a ``plain`` comment) keeps printable
characters only and is capped.

Extractors (``EXTRACTORS``), with their default thresholds:

- ``plain`` (1): the Threat Language itself, ``IP comment`` per line, written by a
  tool that has decided; blank lines and ``#`` lines are skipped.
- ``sshd`` (5 in 600 s): OpenSSH authentication failures, bare or behind a syslog
  prefix (``Nov 22 03:04:05 host sshd[123]: ...`` or RFC 3339
  ``2026-11-22T03:04:05.123456+00:00 host sshd-session[123]: ...``). Attempts
  count, not lines (see threatnet.threshold): the process id ties the lines of
  one connection together.
- ``postfix`` (5 in 600 s): SASL authentication failures and DNSBL rejects.
- ``crowdsec`` (1): not a log file but a CrowdSec Local API, read as a registered
  bouncer; the path names its configuration (threatnet.crowdsec.CrowdSecFeed).
- ``fail2ban`` (1): ban records only, a decision fail2ban made. The file written
  by ThreatNet's fail2ban action, one ban per line::

      <ip> fail2ban <jail>          e.g.  203.0.113.7 fail2ban sshd

  written by ``actionban = printf '%%s fail2ban %%s\\n' '<ip>' '<name>' >> FILE``.
  fail2ban's own log (``... NOTICE  [sshd] Ban 203.0.113.7``) is read as well, so
  a stock fail2ban works without the action; ``Restore Ban`` lines (a fail2ban
  restart re-banning) are not new threats and are skipped.

A feed is configured as ``extractor:/absolute/path`` or, to set its threshold,
``extractor(maxretry=N,findtime=T):/absolute/path`` (``parse_spec``).

When a syslog prefix is present the program must be the expected one, so another
program (or ``logger``) writing sshd-looking text cannot frame an address.
"""
from __future__ import annotations

import functools
import os
import re
import stat
import time
from collections.abc import Callable
from io import FileIO
from typing import NamedTuple

from threatnet.language import ThreatError, ThreatMessage, parse_message
from threatnet.threshold import CAPACITY, FINDTIME_MAX, MAXRETRY_MAX, Find, Kind, Threshold

MAX_LINE = 8192  # bytes; a longer line is no log line we understand: dropped
COMMENT_MAX = 100  # characters; a comment names the attack, it does not quote it
_CHUNK = 65536


class Extractor(NamedTuple):
    """One log format: ``read`` finds a failure in a line; ``label`` starts the
    comment of a count; the default threshold is ``maxretry`` within ``findtime``."""

    read: Callable[[str], "Find | None"]
    label: str
    maxretry: int
    findtime: int


# Shape only; parse_message does the strict check.
_IP = r"(?P<ip>[0-9A-Fa-f:.]+)"
_SYSLOG = re.compile(
    r"(?:[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}(?:\.[0-9]+)?"  # Nov 22 03:04:05[.123]
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2}))"
    r" \S+ (?P<prog>[^\s\[:]+)(?:\[(?P<pid>[0-9]+)\])?: (?P<msg>.*)")
# rsyslog folds identical lines into one of these: N more of the line it holds.
_REPEATED = re.compile(r"message repeated (?P<times>[0-9]{1,9}) times: \[ ?(?P<msg>.*)\]")


class _Message(NamedTuple):
    text: str  # the syslog message
    pid: str  # the process id in the prefix, or ""
    times: int  # how many times it was said


def _message(line: str, program: re.Pattern[str]) -> _Message | None:
    """The syslog message of ``line`` (the line itself if it has no prefix), or None
    if the prefix names another program."""
    pid = ""
    m = _SYSLOG.fullmatch(line)
    if m:
        if not program.fullmatch(m["prog"]):
            return None
        line, pid = m["msg"], m["pid"] or ""
    m = _REPEATED.fullmatch(line)
    return _Message(m["msg"], pid, max(1, int(m["times"]))) if m else _Message(line, pid, 1)


def clean(text: str, limit: int) -> str:
    """Printable characters only (no control, IRC formatting or bidi codes),
    whitespace runs as one space, at most ``limit`` characters."""
    if not text.isprintable():
        text = "".join(c for c in " ".join(text.split()) if c.isprintable())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_plain(line: str) -> Find | None:
    """``IP comment``: the Threat Language as written by a tool or a person."""
    parts = line.split(None, 1)
    if not parts or parts[0].startswith("#"):
        return None
    comment = clean(parts[1], COMMENT_MAX) if len(parts) > 1 else ""
    what = f" ({comment})" if comment else ""
    return Find(parts[0], Kind(comment, f"report{what}", f"reports{what}"))


def _sshd_kind(one: str, many: str) -> Kind:
    return Kind(f"sshd: {one}", one, many)


FAILED_PASSWORD = _sshd_kind("failed password", "failed passwords")
INVALID_USER = _sshd_kind("invalid user", "invalid users")
DISALLOWED_USER = _sshd_kind("disallowed user", "disallowed users")
PREAUTH_DISCONNECT = _sshd_kind("disconnect before auth", "disconnects before auth")
SCAN = _sshd_kind("scan", "scans")

_SSHD_PROGRAM = re.compile(r"sshd(?:-session|-auth)?")  # OpenSSH 9.8+ split sshd
_PORT = r" port [0-9]+"
_PREAUTH = r"(?: \[preauth\])?"
# The username (never kept) is greedy and the tails are anchored: sshd writes the
# address after the name, so a name that itself contains "from 192.0.2.1 port 22"
# cannot win. Each pattern: (regex, kind, kind when the user is invalid, attempt).
_USER = r"(?P<invalid>invalid user )?.*"
_SSHD: list[tuple[re.Pattern[str], Kind, Kind, bool]] = [
    (re.compile(rf"Failed (?:password|keyboard-interactive/pam) for {_USER} from {_IP}{_PORT} "
                rf"ssh2{_PREAUTH}"),
     FAILED_PASSWORD, INVALID_USER, True),
    (re.compile(rf"Invalid user .* from {_IP}(?:{_PORT})?{_PREAUTH}"),
     INVALID_USER, INVALID_USER, False),
    (re.compile(rf"(?:Connection (?:closed|reset) by|Disconnected from) (?:authenticating "
                rf"|(?P<invalid>invalid ))user .* {_IP}{_PORT}{_PREAUTH}"),
     PREAUTH_DISCONNECT, INVALID_USER, False),
    (re.compile(rf"(?:error: )?maximum authentication attempts exceeded for {_USER} from "
                rf"{_IP}{_PORT} ssh2{_PREAUTH}"),  # the attempts were counted: a disconnect
     PREAUTH_DISCONNECT, INVALID_USER, False),
    (re.compile(rf"User .* from {_IP} not allowed because (?:not listed in "
                r"AllowUsers|listed in DenyUsers|not in any group|a group is listed in "
                r"DenyGroups|none of user's groups are listed in AllowGroups)"),
     DISALLOWED_USER, DISALLOWED_USER, False),
    (re.compile(rf"Did not receive identification string from {_IP}(?:{_PORT})?"),
     SCAN, SCAN, False),
    (re.compile(rf"(?:error: )?banner exchange: Connection from {_IP}{_PORT}: "
                r"(?:invalid format|could not read protocol version)"),
     SCAN, SCAN, False),
]


def read_sshd(line: str) -> Find | None:
    """OpenSSH: failed passwords, invalid and disallowed users, preauth disconnects,
    scanners. The process id is the session: sshd runs one per connection."""
    msg = _message(line, _SSHD_PROGRAM)
    if msg is None:
        return None
    for pattern, kind, invalid, attempt in _SSHD:
        m = pattern.fullmatch(msg.text)
        if m:
            return Find(m["ip"], invalid if m.groupdict().get("invalid") else kind,
                        msg.times if attempt else 1, msg.pid, attempt)
    return None


_POSTFIX_PROGRAM = re.compile(r"postfix(?:-[\w.]+)?(?:/[\w.-]+)+")  # postfix/smtpd, postfix-out/...
_CLIENT = rf"[^\s\[\]]*\[{_IP}\](?::[0-9]+)?"  # name[addr] or name[addr]:port
_POSTFIX_SASL = re.compile(
    rf"warning: {_CLIENT}: SASL (?P<mech>[A-Za-z0-9-]{{1,20}}) authentication failed(?::.*)?")
# The listed address must be the client itself, not a sender or HELO name; the
# reply text before it has no <address> (a quoted RCPT address can hold anything).
_POSTFIX_RBL = re.compile(
    rf"(?:NOQUEUE|[0-9A-Za-z]+): reject: [A-Z]+ from {_CLIENT}: [45][0-9]{{2}} "
    r"[45]\.[0-9]{1,3}\.[0-9]{1,3} [^;<]*; (?:Client host|client) \[(?P=ip)\] "
    r"blocked using (?P<rbl>[A-Za-z0-9.-]{1,64})(?:[;,] .*)?")


@functools.lru_cache(maxsize=256)
def _kind(alone: str, one: str, many: str) -> Kind:
    """One Kind object per kind however many lines show it (what a feed remembers)."""
    return Kind(alone, one, many)


def read_postfix(line: str) -> Find | None:
    """Postfix smtpd and postscreen: SASL failures and client DNSBL rejects, each
    one attempt (a SASL client may try many times on one connection)."""
    msg = _message(line, _POSTFIX_PROGRAM)
    if msg is None:
        return None
    m = _POSTFIX_SASL.fullmatch(msg.text)
    if m:
        mech = m["mech"].lower()
        return Find(m["ip"], _kind(f"postfix: sasl {mech} auth failed",
                                   f"sasl {mech} auth failure", f"sasl {mech} auth failures"),
                    msg.times)
    m = _POSTFIX_RBL.fullmatch(msg.text)
    if m:
        rbl = m["rbl"].lower()
        return Find(m["ip"], _kind(f"postfix: listed on {rbl}", f"reject listed on {rbl}",
                                   f"rejects listed on {rbl}"), msg.times)
    return None


_FAIL2BAN_LOG = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8},[0-9]+ fail2ban\.(?P<msg>.*)")
_JAIL = r"(?P<jail>[A-Za-z0-9_.:-]{1,64})"  # what fail2ban's jail.conf section names use
_FAIL2BAN_BAN = re.compile(rf"actions\s*\[[0-9]+\]: NOTICE\s+\[{_JAIL}\] Ban {_IP}")
_FAIL2BAN_ACTION = re.compile(rf"{_IP} fail2ban {_JAIL}")


def read_fail2ban(line: str) -> Find | None:
    """A ban record and nothing else: ThreatNet's fail2ban action output (exactly
    ``IP fail2ban JAIL``) or a ``Ban IP`` record of fail2ban's own log. Anything else
    (other records, the continuation lines of a multi-line dump) is no threat."""
    log = _FAIL2BAN_LOG.fullmatch(line)
    m = _FAIL2BAN_ACTION.fullmatch(line.strip()) if log is None \
        else _FAIL2BAN_BAN.fullmatch(log["msg"])
    if m is None:
        return None
    jail = m["jail"]
    return Find(m["ip"], _kind(f"fail2ban {jail}", f"{jail} ban", f"{jail} bans"))


# Defaults: a decision already made (plain, fail2ban) is reported at once; failures
# take fail2ban's own defaults (jail.conf [DEFAULT]: maxretry 5, findtime 10m).
EXTRACTORS: dict[str, Extractor] = {
    "plain": Extractor(read_plain, "", 1, 600),
    "sshd": Extractor(read_sshd, "sshd", 5, 600),
    "postfix": Extractor(read_postfix, "postfix", 5, 600),
    "fail2ban": Extractor(read_fail2ban, "fail2ban", 1, 600),
    # a CrowdSec LAPI (threatnet.crowdsec.CrowdSecFeed): its path is the feed's bouncer
    # configuration, and each decision it reports reaches the Detector as a plain line
    "crowdsec": Extractor(read_plain, "crowdsec", 1, 600),
}


class FeedSpec(NamedTuple):
    """One entry of the feeds setting: ``extractor[(options)]:/absolute/path``."""

    extractor: str
    path: str
    maxretry: int
    findtime: int


_SPEC = re.compile(r"(?P<extractor>[^:(]*)(?:\((?P<options>[^)]*)\))?:(?P<path>.*)", re.S)
_DURATION = re.compile(r"([0-9]{1,6})([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_spec(text: str) -> FeedSpec:
    """``extractor:/absolute/path`` or ``extractor(maxretry=N,findtime=T):/absolute/path``
    (T in seconds, or with a unit: 10m, 1h); options left out take the extractor's
    defaults. Raises ValueError saying what is wrong."""
    m = _SPEC.fullmatch(text)
    if m is None:
        raise ValueError("use extractor:/absolute/path or "
                         "extractor(maxretry=N,findtime=SECONDS):/absolute/path")
    extractor = EXTRACTORS.get(m["extractor"])
    if extractor is None:
        raise ValueError(f"unknown extractor {m['extractor']!r}: "
                         f"use one of {', '.join(EXTRACTORS)}")
    if not m["path"].startswith("/"):
        raise ValueError("the path must be absolute: use extractor:/absolute/path")
    options = {"maxretry": extractor.maxretry, "findtime": extractor.findtime}
    if m["options"] is not None:
        if not m["options"].strip():
            raise ValueError("empty options (): leave out the parentheses for the defaults")
        given = set()
        for option in m["options"].split(","):
            name, eq, value = option.partition("=")
            name = name.strip()
            if name not in options or not eq:
                raise ValueError(f"unknown option {option!r} in ({m['options']}): use "
                                 "maxretry=N and/or findtime=SECONDS")
            if name in given:
                raise ValueError(f"{name} given twice")
            given.add(name)
            options[name] = _option(name, value.strip())
    return FeedSpec(m["extractor"], m["path"], options["maxretry"], options["findtime"])


def _option(name: str, value: str) -> int:
    if name == "maxretry":
        if value.isascii() and value.isdigit() and 1 <= int(value) <= MAXRETRY_MAX:
            return int(value)
        raise ValueError(f"maxretry must be a whole number from 1 to {MAXRETRY_MAX}, "
                         f"not {value!r}")
    m = _DURATION.fullmatch(value)
    seconds = int(m[1]) * _UNIT[m[2]] if m else 0
    if not 1 <= seconds <= FINDTIME_MAX:
        raise ValueError(f"findtime must be 1 s to 1 day, in seconds or with a unit "
                         f"(600, 10m, 1h), not {value!r}")
    return seconds


def _threat(ip: str, comment: str, created: float | None) -> ThreatMessage:
    """``ip`` and ``comment`` as strict Threat Language; raises ThreatError."""
    if ip.split() != [ip]:  # a blank or spaced "IP" would shift into the comment
        raise ThreatError("not one address")
    return parse_message(f"{ip} {clean(comment, COMMENT_MAX)}", created)


def extract(line: str, extractor: Extractor, created: float | None = None) -> ThreatMessage | None:
    """One log line through ``extractor`` and the strict Threat Language, as the
    threat it is on its own (a threshold of 1: ``Kind.alone``).

    None: the line holds no threat. ThreatError: the extractor found one but its
    address is not valid Threat Language.
    """
    found = extractor.read(line)
    return None if found is None else _threat(found.ip, found.kind.alone, created)


class Detector:
    """One feed's log lines in, Verified Threats out: ``extractor`` finds failures,
    ``threshold`` decides when an address is reported. How the lines are read (a
    tailed file, an inotify watch) is not its business; ``line`` takes them one by
    one with the time they were read.
    """

    def __init__(self, extractor: str, maxretry: int | None = None,
                 findtime: int | None = None, clock: Callable[[], float] = time.time,
                 capacity: int = CAPACITY) -> None:
        try:
            self._extractor = EXTRACTORS[extractor]
        except KeyError:
            raise ValueError(f"unknown extractor {extractor!r}: "
                             f"use one of {', '.join(EXTRACTORS)}") from None
        self.extractor = extractor
        self.threshold = Threshold(
            self._extractor.maxretry if maxretry is None else maxretry,
            self._extractor.findtime if findtime is None else findtime, clock, capacity)
        self.lines_read = 0
        self.found = 0  # lines with a failure, counted by the threshold
        self.ignored = 0  # lines without one
        self.rejected = 0  # overlong lines, finds whose address failed the Threat Language
        self.threats = 0  # addresses that reached the threshold: reports

    def line(self, text: str, now: float) -> ThreatMessage | None:
        """Count one log line read at ``now``; the threat when its address reaches the
        threshold. Never raises: a bad address is counted (rejected), never acted on."""
        self.lines_read += 1
        found = self._extractor.read(text)
        if found is None:
            self.ignored += 1
            return None
        try:
            address = _threat(found.ip, "", now)  # only a valid address counts
        except ThreatError:
            self.rejected += 1
            return None
        self.found += 1
        counted = self.threshold.add(address.key, found, now)
        if counted is None:
            return None
        self.threats += 1
        return _threat(address.ip, self.threshold.describe(counted, self._extractor.label), now)

    def drop(self) -> None:
        """Count a line too long to be one we understand (rejected)."""
        self.lines_read += 1
        self.rejected += 1

    def stats(self) -> dict[str, int]:
        """Counters for status lines: lines_read = found + ignored + rejected; threats
        reported; addresses counted below the threshold now, and those forgotten
        below it because too many were counted (evicted)."""
        return {"lines_read": self.lines_read, "found": self.found, "ignored": self.ignored,
                "rejected": self.rejected, "threats": self.threats,
                "below_threshold": self.threshold.below(), "evicted": self.threshold.evicted}


class Position(NamedTuple):
    """Where a LogFeed is in its file: the file (device, inode) and the offset of the
    first byte it has not used (the start of a line, or inside a line it drops)."""

    dev: int
    ino: int
    offset: int


class LogFeed:
    """Follow one log file like ``tail -F`` and pass its new lines to a Detector
    (``detector``: extractor and threshold).

    Never blocks and never raises for file trouble: ``poll()`` does a bounded
    amount of work, and an OS error (unreadable file, not a regular file) is kept
    in ``error`` and retried on the next poll. An idle poll costs two stat calls.

    - Starts at the end of an existing file (a restart never re-reports); a file
      that appears later is new and is read from its start. ``resume`` instead goes
      on from the ``position`` an earlier run saved, so lines written while the agent
      was down are read too.
    - Only complete lines are used; a partial last line waits for its newline, a
      line over ``max_line`` bytes is dropped without being buffered.
    - Rotation (the path is now another file): the old file is read to its end, and
      kept until the new one has data, because the writer appends to the old file
      until it reopens. A file truncated in place (copytruncate) is re-read from 0.
    """

    def __init__(self, path: str | os.PathLike[str], extractor: str,
                 clock: Callable[[], float] = time.time, max_line: int = MAX_LINE, *,
                 maxretry: int | None = None, findtime: int | None = None,
                 capacity: int = CAPACITY) -> None:
        self.detector = Detector(extractor, maxretry, findtime, clock, capacity)
        self.path = os.fspath(path)
        self.extractor = extractor
        self._clock = clock
        self._max_line = max_line
        self._file: FileIO | None = None
        self._ident = (0, 0)  # (st_dev, st_ino) of the open file
        self._offset = 0  # bytes consumed from the open file
        self._buf = bytearray()  # the partial line read so far
        self._skipping = False  # inside a line we drop: discard up to its newline
        self._lines_left = self._bytes_left = 0  # this poll's budget
        self.error: str | None = None  # why the last poll could not read, if it could not
        self.behind = False  # the last poll stopped at its budget: more to read now
        self._at_end = True
        try:
            self._open(at_end=True)
        except OSError as e:
            # A file we may not read yet is old content; a file that is not there
            # (or is no regular file) is new when it appears.
            self._at_end = isinstance(e, PermissionError)
            self.error = e.strerror or str(e)

    def poll(self, max_lines: int = 1000, max_bytes: int = 1 << 20) -> list[ThreatMessage]:
        """Threats in lines appended since the last poll, at most ``max_lines`` lines
        and about ``max_bytes`` bytes read; the rest waits for the next poll."""
        out: list[ThreatMessage] = []
        self._lines_left, self._bytes_left = max_lines, max_bytes
        self.behind = False
        created = self._clock()
        self.detector.threshold.prune(created)
        try:
            for _ in range(2):  # the current file, then at most one successor
                if self._file is None:
                    self._open(at_end=self._at_end)
                if not self._read(out, created) or not self._replaced():
                    break
                # Lines the writer appended between our last read and the stat.
                if not self._read(out, created):
                    break
                self._close()
            self.error = None
        except OSError as e:
            self.error = e.strerror or str(e)
        return out

    def stats(self) -> dict[str, int]:
        """The detector's counters (Detector.stats)."""
        return self.detector.stats()

    def position(self) -> Position | None:
        """Where to go on from after a restart (None while no file is open): a partial
        line not yet complete is read again whole."""
        if self._file is None:
            return None
        dev, ino = self._ident
        return Position(dev, ino, self._offset - len(self._buf))

    def resume(self, position: Position, saved_at: float) -> bool:
        """Go on from ``position``, saved by an earlier run at ``saved_at``, instead of
        the end of the file; call before the first poll. The same file (device and
        inode): from the position, or from its start if it is shorter now (truncated);
        another file modified since ``saved_at`` (rotated meanwhile): from its start
        (what the old file got after ``saved_at`` is not read); else the end stays.
        True if it moved."""
        if self._file is None:
            return False
        fd = self._file.fileno()
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == (position.dev, position.ino):
            offset = position.offset if 0 <= position.offset <= st.st_size else 0
        elif st.st_mtime >= saved_at:
            offset = 0
        else:
            return False
        self._offset = offset
        self._buf.clear()
        # Inside a line (one being dropped when saved): skip to its end.
        self._skipping = offset > 0 and os.pread(fd, 1, offset - 1) != b"\n"
        return True

    def close(self) -> None:
        """Release the open file (call from the plugin's die()); a later poll starts
        again at the end of the file, so nothing is reported twice."""
        self._close()
        self._at_end = True

    def _open(self, at_end: bool) -> None:
        # O_NONBLOCK: opening a FIFO without a writer would otherwise block.
        f = open(self.path, "rb", buffering=0,
                 opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK))
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            f.close()
            raise OSError(f"{self.path}: not a regular file")
        self._file = f
        self._at_end = False
        self._ident = (st.st_dev, st.st_ino)
        self._offset = st.st_size if at_end else 0
        self._buf.clear()
        # Starting inside a line would read its tail as a line of its own.
        self._skipping = at_end and st.st_size > 0 and os.pread(f.fileno(), 1, st.st_size - 1) != b"\n"

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _replaced(self) -> bool:
        """True when the open file is no longer the one to follow (we are at its end)."""
        assert self._file is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            # Renamed away: the writer may still append. Deleted: nothing will.
            return os.fstat(self._file.fileno()).st_nlink == 0
        return (st.st_dev, st.st_ino) != self._ident and st.st_size > 0

    def _read(self, out: list[ThreatMessage], created: float) -> bool:
        """Consume lines up to the end of the open file; False if the budget ran out."""
        assert self._file is not None
        fd = self._file.fileno()
        size = os.fstat(fd).st_size
        if size < self._offset:  # truncated in place: what is there now is new
            self._offset = 0
            self._buf.clear()
            self._skipping = False
        elif size > self._offset and not self._buf and not self._skipping and self._offset:
            # Truncated and regrown past our offset between two polls: we would start
            # mid-line and could read a fragment such as "3.0.113.7" as an address.
            self._skipping = os.pread(fd, 1, self._offset - 1) != b"\n"
        while self._offset < size:
            if self._lines_left <= 0 or self._bytes_left <= 0:
                self.behind = True
                return False
            chunk = os.pread(fd, min(_CHUNK, size - self._offset, self._bytes_left), self._offset)
            if not chunk:
                break
            self._bytes_left -= len(chunk)
            start = 0
            while self._lines_left > 0:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    self._partial(chunk[start:])
                    start = len(chunk)
                    break
                self._lines_left -= 1
                self._line(chunk[start:nl], out, created)
                start = nl + 1
            self._offset += start  # unconsumed lines are read again next poll
        return True

    def _partial(self, data: bytes) -> None:
        if self._skipping:
            return
        if len(self._buf) + len(data) > self._max_line:
            self._drop()
            self._skipping = True
        else:
            self._buf += data

    def _drop(self) -> None:
        self._buf.clear()
        self.detector.drop()

    def _line(self, data: bytes, out: list[ThreatMessage], created: float) -> None:
        if self._skipping:  # the tail of a dropped or half-seen line
            self._skipping = False
            return
        if self._buf:
            self._buf += data
            data = bytes(self._buf)
            self._buf.clear()
        if len(data) > self._max_line:
            self._drop()
            return
        threat = self.detector.line(data.decode("utf-8", "replace").rstrip("\r"), created)
        if threat is not None:
            out.append(threat)

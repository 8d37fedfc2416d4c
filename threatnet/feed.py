"""Threat Provider feeds: tail a log file and turn attack lines into threat messages.

An extractor reads one log line and returns ``(ip text, comment)`` or None; its
find must then pass the strict Threat Language (``parse_message``), so a sloppy
regex can never put a bad address on the channel. Log lines are attacker
influenced (an sshd username can contain anything), so comments keep printable
characters only and are capped.

Extractors (``EXTRACTORS``):

- ``plain``: the Threat Language itself, ``IP comment`` per line; blank lines and
  ``#`` lines are skipped.
- ``sshd``: OpenSSH authentication failures, bare or behind a syslog prefix
  (``Nov 22 03:04:05 host sshd[123]: ...`` or RFC 3339
  ``2026-11-22T03:04:05.123456+00:00 host sshd-session[123]: ...``).
- ``postfix``: SASL authentication failures and DNSBL rejects.
- ``fail2ban``: ban records only. The file written by ThreatNet's fail2ban action,
  one ban per line::

      <ip> fail2ban <jail>          e.g.  203.0.113.7 fail2ban sshd

  written by ``actionban = printf '%%s fail2ban %%s\\n' '<ip>' '<name>' >> FILE``.
  fail2ban's own log (``... NOTICE  [sshd] Ban 203.0.113.7``) is read as well, so
  a stock fail2ban works without the action; ``Restore Ban`` lines (a fail2ban
  restart re-banning) are not new threats and are skipped.

When a syslog prefix is present the program must be the expected one, so another
program (or ``logger``) writing sshd-looking text cannot frame an address.
"""
from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable
from io import FileIO

from threatnet.language import ThreatError, ThreatMessage, parse_message

MAX_LINE = 8192  # bytes; a longer line is no log line we understand: dropped
COMMENT_MAX = 100  # characters; a comment names the attack, it does not quote it
USER_MAX = 32  # characters of a log-supplied username kept in a comment
_CHUNK = 65536

Extractor = Callable[[str], "tuple[str, str] | None"]

# Shape only; parse_message does the strict check.
_IP = r"(?P<ip>[0-9A-Fa-f:.]+)"
_SYSLOG = re.compile(
    r"(?:[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}(?:\.[0-9]+)?"  # Nov 22 03:04:05[.123]
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2}))"
    r" \S+ (?P<prog>[^\s\[:]+)(?:\[[0-9]+\])?: (?P<msg>.*)")
# rsyslog folds identical lines into one of these.
_REPEATED = re.compile(r"message repeated [0-9]+ times: \[ ?(?P<msg>.*)\]")


def _message(line: str, program: re.Pattern[str]) -> str | None:
    """The syslog message of ``line`` (the line itself if it has no prefix), or None
    if the prefix names another program."""
    m = _SYSLOG.fullmatch(line)
    if m:
        if not program.fullmatch(m["prog"]):
            return None
        line = m["msg"]
    m = _REPEATED.fullmatch(line)
    return m["msg"] if m else line


def clean(text: str, limit: int) -> str:
    """Printable characters only (no control, IRC formatting or bidi codes),
    whitespace runs as one space, at most ``limit`` characters."""
    if not text.isprintable():
        text = "".join(c for c in " ".join(text.split()) if c.isprintable())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _user(user: str) -> str:
    """A log-supplied username fit for a comment; ``""`` shows an empty one."""
    return clean(user, USER_MAX) or '""'


def plain(line: str) -> tuple[str, str] | None:
    """``IP comment``: the Threat Language as written by a tool or a person."""
    parts = line.split(None, 1)
    if not parts or parts[0].startswith("#"):
        return None
    return parts[0], parts[1] if len(parts) > 1 else ""


_SSHD_PROGRAM = re.compile(r"sshd(?:-session|-auth)?")  # OpenSSH 9.8+ split sshd
_PORT = r" port [0-9]+"
_PREAUTH = r"(?: \[preauth\])?"
# The username is greedy and the tails are anchored: sshd writes the address after
# the name, so a name that itself contains "from 192.0.2.1 port 22" cannot win.
# Comment templates take the named groups; {user} is cleaned first.
_SSHD: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"Failed (?P<method>password|keyboard-interactive/pam) for "
                rf"(?P<invalid>invalid user )?(?P<user>.*) from {_IP}{_PORT} ssh2{_PREAUTH}"),
     "failed {method} for {invalid}{user}"),
    (re.compile(rf"Invalid user (?P<user>.*) from {_IP}(?:{_PORT})?{_PREAUTH}"),
     "invalid user {user}"),
    (re.compile(rf"(?:Connection (?:closed|reset) by|Disconnected from) (?P<kind>authenticating"
                rf"|invalid) user (?P<user>.*) {_IP}{_PORT}{_PREAUTH}"),
     "closed by {kind} user {user}"),
    (re.compile(rf"(?:error: )?maximum authentication attempts exceeded for "
                rf"(?P<invalid>invalid user )?(?P<user>.*) from {_IP}{_PORT} ssh2{_PREAUTH}"),
     "max auth attempts for {invalid}{user}"),
    (re.compile(rf"User (?P<user>.*) from {_IP} not allowed because (?:not listed in "
                r"AllowUsers|listed in DenyUsers|not in any group|a group is listed in "
                r"DenyGroups|none of user's groups are listed in AllowGroups)"),
     "user {user} not allowed"),
    (re.compile(rf"Did not receive identification string from {_IP}(?:{_PORT})?"),
     "no identification string"),
    (re.compile(rf"(?:error: )?banner exchange: Connection from {_IP}{_PORT}: "
                r"(?:invalid format|could not read protocol version)"),
     "bad banner"),
]


def sshd(line: str) -> tuple[str, str] | None:
    """OpenSSH: failed passwords, invalid users, preauth disconnects, scanners."""
    msg = _message(line, _SSHD_PROGRAM)
    if msg is None:
        return None
    for pattern, template in _SSHD:
        m = pattern.fullmatch(msg)
        if m:
            fields = m.groupdict("")
            fields["user"] = _user(fields.get("user", ""))
            return m["ip"], "sshd: " + template.format_map(fields)
    return None


_POSTFIX_PROGRAM = re.compile(r"postfix(?:-[\w.]+)?(?:/[\w.-]+)+")  # postfix/smtpd, postfix-out/...
_CLIENT = rf"[^\s\[\]]*\[{_IP}\](?::[0-9]+)?"  # name[addr] or name[addr]:port
_POSTFIX_SASL = re.compile(
    rf"warning: {_CLIENT}: SASL (?P<mech>[A-Za-z0-9-]+) authentication failed(?::.*)?")
# The listed address must be the client itself, not a sender or HELO name; the
# reply text before it has no <address> (a quoted RCPT address can hold anything).
_POSTFIX_RBL = re.compile(
    rf"(?:NOQUEUE|[0-9A-Za-z]+): reject: [A-Z]+ from {_CLIENT}: [45][0-9]{{2}} "
    r"[45]\.[0-9]{1,3}\.[0-9]{1,3} [^;<]*; (?:Client host|client) \[(?P=ip)\] "
    r"blocked using (?P<rbl>[A-Za-z0-9.-]+)(?:[;,] .*)?")


def postfix(line: str) -> tuple[str, str] | None:
    """Postfix smtpd and postscreen: SASL failures and client DNSBL rejects."""
    msg = _message(line, _POSTFIX_PROGRAM)
    if msg is None:
        return None
    m = _POSTFIX_SASL.fullmatch(msg)
    if m:
        return m["ip"], f"postfix: sasl {m['mech'].lower()} auth failed"
    m = _POSTFIX_RBL.fullmatch(msg)
    if m:
        return m["ip"], f"postfix: listed on {m['rbl'].lower()}"
    return None


_FAIL2BAN_LOG = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8},[0-9]+ fail2ban\.(?P<msg>.*)")
_JAIL = r"(?P<jail>[A-Za-z0-9_.:-]{1,64})"  # what fail2ban's jail.conf section names use
_FAIL2BAN_BAN = re.compile(rf"actions\s*\[[0-9]+\]: NOTICE\s+\[{_JAIL}\] Ban {_IP}")
_FAIL2BAN_ACTION = re.compile(rf"{_IP} fail2ban {_JAIL}")


def fail2ban(line: str) -> tuple[str, str] | None:
    """A ban record and nothing else: ThreatNet's fail2ban action output (exactly
    ``IP fail2ban JAIL``) or a ``Ban IP`` record of fail2ban's own log. Anything else
    (other records, the continuation lines of a multi-line dump) is no threat."""
    log = _FAIL2BAN_LOG.fullmatch(line)
    m = _FAIL2BAN_ACTION.fullmatch(line.strip()) if log is None \
        else _FAIL2BAN_BAN.fullmatch(log["msg"])
    return (m["ip"], f"fail2ban {m['jail']}") if m else None


EXTRACTORS: dict[str, Extractor] = {
    "plain": plain,
    "sshd": sshd,
    "postfix": postfix,
    "fail2ban": fail2ban,
}


def extract(line: str, extractor: Extractor, created: float | None = None) -> ThreatMessage | None:
    """Run one log line through ``extractor`` and the strict Threat Language.

    None: the line holds no threat. ThreatError: the extractor found one but its
    address or comment is not valid Threat Language.
    """
    found = extractor(line)
    if found is None:
        return None
    ip, comment = found
    if ip.split() != [ip]:  # a blank or spaced "IP" would shift into the comment
        raise ThreatError("not one address")
    return parse_message(f"{ip} {clean(comment, COMMENT_MAX)}", created)


class LogFeed:
    """Follow one log file like ``tail -F`` and extract threats from new lines.

    Never blocks and never raises for file trouble: ``poll()`` does a bounded
    amount of work, and an OS error (unreadable file, not a regular file) is kept
    in ``error`` and retried on the next poll. An idle poll costs two stat calls.

    - Starts at the end of an existing file (a restart never re-reports); a file
      that appears later is new and is read from its start.
    - Only complete lines are used; a partial last line waits for its newline, a
      line over ``max_line`` bytes is dropped without being buffered.
    - Rotation (the path is now another file): the old file is read to its end, and
      kept until the new one has data, because the writer appends to the old file
      until it reopens. A file truncated in place (copytruncate) is re-read from 0.
    """

    def __init__(self, path: str | os.PathLike[str], extractor: str,
                 clock: Callable[[], float] = time.time, max_line: int = MAX_LINE) -> None:
        try:
            self._extractor = EXTRACTORS[extractor]
        except KeyError:
            raise ValueError(f"unknown extractor {extractor!r}: "
                             f"use one of {', '.join(EXTRACTORS)}") from None
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
        self.lines_read = 0
        self.threats = 0
        self.ignored = 0  # lines without a threat
        self.rejected = 0  # overlong lines, finds that failed the Threat Language
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
        created = self._clock()
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
        """Counters for status lines; lines_read = threats + ignored + rejected."""
        return {"lines_read": self.lines_read, "threats": self.threats,
                "ignored": self.ignored, "rejected": self.rejected}

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
        self.lines_read += 1
        self.rejected += 1

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
        self.lines_read += 1
        text = data.decode("utf-8", "replace").rstrip("\r")
        try:
            msg = extract(text, self._extractor, created)
        except ThreatError:
            self.rejected += 1
            return
        if msg is None:
            self.ignored += 1
        else:
            self.threats += 1
            out.append(msg)

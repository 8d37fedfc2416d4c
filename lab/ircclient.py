"""A small raw-socket IRC client for tests, benchmarks and `make run`'s set-up steps.

One reader thread per connection answers PING and appends every line, parsed by
Limnoria's `IrcMsg` (IRCv3 tag values unescaped), to a list; `wait_for` scans that list
from a cursor. Registration does CAP negotiation (optionally SASL PLAIN, or EXTERNAL with
a client certificate). InspIRCd registers clients on a one-second tick, so connect many
clients at once with `connect_all`.

TLS (`tls=True`) never trusts a certificate authority: the server certificate's SHA-256
`fingerprint` must be given and must match, as the bots pin it.
"""
from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from supybot.ircmsgs import IrcMsg

DEFAULT_TIMEOUT = 10.0


class IRCError(RuntimeError):
    """The server refused something, or a wait timed out."""


@dataclass
class Line:
    """One received IRC line; `received` is time.time() when the reader got it."""
    raw: str
    command: str
    params: list[str]
    source: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    received: float = 0.0

    @property
    def nick(self) -> str:
        return self.source.split("!", 1)[0]

    @property
    def host(self) -> str:
        return self.source.rpartition("@")[2] if "@" in self.source else ""

    @property
    def text(self) -> str:
        """The last parameter (trailing text), or ''."""
        return self.params[-1] if self.params else ""


def parse(raw: str, received: float = 0.0) -> Line:
    """One IRC line (without CRLF), parsed by Limnoria; a tag without a value is ''.
    A line Limnoria refuses is kept with no command, so that waits pass over it."""
    try:
        msg = IrcMsg(raw)
    except Exception:  # MalformedIrcMsg; no line may stop the reader thread
        return Line(raw, "", [], received=received)
    tags = {key: value or "" for key, value in msg.server_tags.items()}
    return Line(raw, msg.command.upper(), list(msg.args), msg.prefix, tags, received)


def _matcher(command: Optional[str], predicate: Optional[Callable[[Line], bool]]):
    def match(line: Line) -> bool:
        if command is not None and line.command != command.upper():
            return False
        return predicate is None or bool(predicate(line))
    return match


class Client:
    """One IRC connection. `lines` holds everything received, in order."""

    def __init__(self, host: str, port: int, nick: str, *, user: str = "",
                 caps: Iterable[str] = (), sasl: Optional[tuple[str, str]] = None,
                 realname: str = "ThreatNet test client", source: str = "",
                 tls: bool = False, fingerprint: str = "", certfile: str = "",
                 sasl_external: bool = False, deaf: str = ""):
        self.host, self.port, self.nick = host, port, nick
        # A channel whose PRIVMSGs are dropped unparsed (like user mode +D): a load
        # generator that only posts need not parse and keep everyone else's lines. A
        # substring test on the raw line: good enough for load agents, not a parser.
        self._deaf = f" PRIVMSG {deaf} :".encode() if deaf else b""
        self.source = source  # local address to connect from, e.g. 127.0.0.2 (any 127/8 works)
        self.user = user or nick[:10]
        self.caps = list(caps)
        self.sasl = sasl
        self.realname = realname
        self.tls = tls
        self.fingerprint = fingerprint.replace(":", "").lower()  # server cert, SHA-256
        self.certfile = str(certfile)  # client certificate + key (PEM), for CertFP
        self.sasl_external = sasl_external  # SASL EXTERNAL: log in with that certificate
        if tls and not self.fingerprint:
            raise ValueError("tls=True needs the server certificate's fingerprint")
        self.lines: list[Line] = []
        self.cursor = 0
        self.acked: set[str] = set()
        self.available: dict[str, str] = {}
        self.closed = False
        self._cond = threading.Condition()
        self._sock: Optional[socket.socket] = None
        self._send_lock = threading.Lock()

    # --- connection -------------------------------------------------------------------
    def connect(self, timeout: float = DEFAULT_TIMEOUT) -> "Client":
        """Connect and register; returns self once 001 arrived (SASL done if asked)."""
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout,
                                              source_address=(self.source, 0) if self.source
                                              else None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            self._sock = self._wrap_tls(self._sock)
        self._sock.settimeout(None)
        threading.Thread(target=self._read, name=f"irc-{self.nick}", daemon=True).start()
        want = set(self.caps) | ({"sasl"} if self.sasl or self.sasl_external else set())
        if want:
            self.send("CAP LS 302")
        self.send(f"NICK {self.nick}")
        self.send(f"USER {self.user} 0 * :{self.realname}")
        if want:
            self._negotiate(want, timeout)
        welcome = self.wait_for(lambda l: l.command in ("001", "433", "432", "ERROR", "465"),
                                timeout=timeout)
        if welcome.command != "001":
            raise IRCError(f"{self.nick}: registration failed: {welcome.raw}")
        self.nick = welcome.params[0]
        return self

    def _wrap_tls(self, sock: socket.socket) -> ssl.SSLSocket:
        """TLS with the server certificate pinned by fingerprint (no CA, no host name)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # checked below, by fingerprint
        if self.certfile:
            context.load_cert_chain(self.certfile)
        try:
            tls = context.wrap_socket(sock, server_hostname=self.host)
        except (ssl.SSLError, OSError) as e:
            sock.close()
            raise IRCError(f"{self.nick}: TLS handshake failed: {e}") from None
        got = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
        if got != self.fingerprint:
            tls.close()
            raise IRCError(f"{self.nick}: server certificate fingerprint {got} is not the "
                           f"pinned {self.fingerprint}")
        return tls

    def _negotiate(self, want: set[str], timeout: float) -> None:
        while True:  # CAP LS may span several lines ("CAP * LS * :...")
            line = self.wait_for(lambda l: l.command == "CAP" and l.params[1:2] == ["LS"],
                                 timeout=timeout)
            for item in line.text.split():
                name, _, value = item.partition("=")
                self.available[name] = value
            if len(line.params) < 4 or line.params[2] != "*":
                break
        request = sorted(c for c in want if c in self.available)
        if (self.sasl or self.sasl_external) and "sasl" not in request:
            raise IRCError(f"{self.nick}: server offers no SASL ({sorted(self.available)})")
        if request:
            self.send("CAP REQ :" + " ".join(request))
            reply = self.wait_for(lambda l: l.command == "CAP" and l.params[1] in ("ACK", "NAK"),
                                  timeout=timeout)
            if reply.params[1] == "NAK":
                raise IRCError(f"{self.nick}: CAP NAK {reply.text}")
            self.acked = set(reply.text.split())
        if self.sasl_external:
            self.send("AUTHENTICATE EXTERNAL")
            self.wait_for(lambda l: l.command == "AUTHENTICATE", timeout=timeout)
            self.send("AUTHENTICATE +")  # no authorization identity: the certificate's account
            done = self.wait_for(lambda l: l.command in ("903", "904", "905", "906"),
                                 timeout=timeout)
            if done.command != "903":
                raise IRCError(f"{self.nick}: SASL EXTERNAL failed: {done.raw}")
        elif self.sasl:
            self.send("AUTHENTICATE PLAIN")
            self.wait_for(lambda l: l.command == "AUTHENTICATE", timeout=timeout)
            account, password = self.sasl
            token = base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode()
            self.send(f"AUTHENTICATE {token}")
            done = self.wait_for(lambda l: l.command in ("903", "904", "905", "906"),
                                 timeout=timeout)
            if done.command != "903":
                raise IRCError(f"{self.nick}: SASL failed: {done.raw}")
        self.send("CAP END")

    def _read(self) -> None:
        buf = b""
        sock = self._sock
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                now = time.time()
                buf += data
                *complete, buf = buf.split(b"\n")
                parsed = []
                for raw in complete:
                    if self._deaf and self._deaf in raw:
                        continue
                    text = raw.rstrip(b"\r").decode("utf-8", "replace")
                    if not text:
                        continue
                    line = parse(text, now)
                    if line.command == "PING":
                        self.send("PONG :" + line.text)
                    parsed.append(line)
                with self._cond:
                    self.lines.extend(parsed)
                    self._cond.notify_all()
        except OSError:
            pass
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def send(self, line: str) -> None:
        data = (line + "\r\n").encode()
        with self._send_lock:
            self._sock.sendall(data)

    def send_many(self, lines: Iterable[str]) -> None:
        data = "".join(l + "\r\n" for l in lines).encode()
        with self._send_lock:
            self._sock.sendall(data)

    def close(self, message: str = "bye") -> None:
        if self._sock is None:
            return
        try:
            if not self.closed:
                self.send(f"QUIT :{message}")
                with self._cond:
                    self._cond.wait_for(lambda: self.closed, timeout=1.0)
        except OSError:
            pass
        finally:
            try:
                self._sock.close()
            except OSError:
                pass

    # --- waiting ----------------------------------------------------------------------
    def mark(self) -> None:
        """Ignore everything received so far in later waits."""
        with self._cond:
            self.cursor = len(self.lines)

    def wait_for(self, predicate: Optional[Callable[[Line], bool]] = None, *,
                 command: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT,
                 required: bool = True) -> Optional[Line]:
        """The first line after the cursor that matches; the cursor moves past it.

        With required=False a timeout returns None (and the cursor stays)."""
        match = _matcher(command, predicate)
        deadline = time.monotonic() + timeout
        with self._cond:
            index = self.cursor
            while True:
                while index < len(self.lines):
                    line = self.lines[index]
                    index += 1
                    if match(line):
                        self.cursor = index
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and index >= len(self.lines)):
                    if not required:
                        return None
                    recent = "\n  ".join(l.raw for l in self.lines[self.cursor:][-15:])
                    state = "connection closed" if self.closed else f"{timeout} s"
                    raise IRCError(f"{self.nick}: no matching line ({state}); "
                                   f"recent lines:\n  {recent}")
                self._cond.wait(left)

    # --- conveniences -----------------------------------------------------------------
    def join(self, channel: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """JOIN and wait for the end of NAMES."""
        self.send(f"JOIN {channel}")
        self.wait_for(lambda l: l.command == "366" and l.params[1].lower() == channel.lower()
                      or l.command in ("471", "473", "474", "475"), timeout=timeout)

    def privmsg(self, target: str, text: str) -> None:
        self.send(f"PRIVMSG {target} :{text}")

    def ask(self, target: str, text: str, reply_from: str, *,
            timeout: float = DEFAULT_TIMEOUT) -> Line:
        """Send `text` to `target` and wait for the next PRIVMSG/NOTICE from `reply_from`."""
        self.mark()
        self.privmsg(target, text)
        return self.wait_for(lambda l: l.command in ("PRIVMSG", "NOTICE")
                             and l.nick.lower() == reply_from.lower(), timeout=timeout)


def connect_all(clients: Iterable[Client], timeout: float = DEFAULT_TIMEOUT) -> list[Client]:
    """Connect clients in parallel (InspIRCd registers all of them on the same tick)."""
    clients = list(clients)
    if not clients:
        return clients
    with ThreadPoolExecutor(max_workers=min(32, len(clients))) as pool:
        list(pool.map(lambda c: c.connect(timeout), clients))
    return clients

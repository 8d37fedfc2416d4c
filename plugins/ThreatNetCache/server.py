"""The HTTP server of ThreatNetCache's API: the standard library's HTTPServer with a
thread per connection (as its ThreadingHTTPServer), made safe to face any client. It
knows nothing of ThreatNet: it reads whole requests within bounds and hands each to
``app`` (http.py), which answers through ``Request.answer``.

Why not Limnoria's HTTP server (supybot.httpserver): it serves one request at a time
on one thread with no read timeout, so a client that sends half a request line and
goes quiet stalls every request of every plugin; it reads a request before any plugin
can look at the client's address; and it reads a POST body of any Content-Length into
memory. None of that can be changed from a plugin. Here:

- ``allowed(host)`` is asked at accept, before a byte is read: a refused client gets
  a 403 and the connection is closed.
- Each connection has its own thread, and at most ``connections`` are served at
  once: one more is answered 503 at accept, so a stalled client costs one slot, never
  the server. A handler that will wait a long time (a long-poll) gives its slot back
  (``Request.release_slot``); the app bounds how many may wait.
- A request must arrive whole (request line, headers, body) within ``timeout``
  seconds of the connection: a deadline for the whole request, not per read, so a
  client that trickles a byte now and then is cut too (408). Writing an answer may
  take at most WRITE_TIMEOUT seconds.
- The request line is at most LINE_MAX bytes (414), the head at most HEAD_MAX bytes
  and the standard library's 100 header lines (431). A body needs a Content-Length
  (411; no chunked bodies), checked against BODY_MAX before a byte of it is read
  (413).
- One request per connection (HTTP/1.0): the slot is free again once it is answered.
- Every answer, errors included, is JSON (``to_json``: valid UTF-8 whatever the
  strings hold) unless the app chooses otherwise.
"""
from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, NamedTuple

JSON = "application/json"
LINE_MAX = 8192  # bytes of the request line
HEAD_MAX = 16384  # bytes of the request line and headers together
BODY_MAX = 16384  # bytes of a body: a report's fields are at most 1000 characters each
WRITE_TIMEOUT = 30.0  # seconds to write one answer to a slow reader
RECV_SIZE = 8192
POLL_INTERVAL = 0.2  # seconds the accept loop may take to notice a shutdown


def to_json(data: Any) -> bytes:
    """``data`` as compact JSON in UTF-8. A lone surrogate (it has no UTF-8 form)
    becomes "?", so the answer is always valid UTF-8 and valid JSON."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "replace")


class Settings(NamedTuple):
    """Where the server listens and how much it takes."""

    host: str  # an IPv4 or IPv6 address
    port: int  # 0: any free port
    timeout: float  # seconds to receive a whole request
    connections: int  # requests served at once


class RequestTimeout(Exception):
    """The request did not arrive whole within the deadline."""


class HeadTooLarge(Exception):
    """The request line and headers are over HEAD_MAX bytes."""


class _Reader:
    """The file a request is read from (``rfile``): reads from the socket until a
    deadline, and at most HEAD_MAX bytes through ``readline`` (the request's head)."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock = sock
        self._deadline = time.monotonic() + timeout
        self._buffer = bytearray()
        self._head_left = HEAD_MAX

    def _fill(self) -> bool:
        """Receive more; False at the end of the stream."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise RequestTimeout
        self._sock.settimeout(left)
        try:
            data = self._sock.recv(RECV_SIZE)
        except TimeoutError:
            raise RequestTimeout from None
        self._buffer += data
        return bool(data)

    def readline(self, limit: int = -1) -> bytes:
        if limit < 0:
            limit = HEAD_MAX + 1
        while True:
            end = self._buffer.find(b"\n", 0, limit)
            if end >= 0:
                size = end + 1
                break
            if len(self._buffer) >= limit or len(self._buffer) > self._head_left:
                size = limit
                break
            if not self._fill():
                size = len(self._buffer)
                break
        line = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._head_left -= len(line)
        if self._head_left < 0:
            raise HeadTooLarge
        return line

    def read(self, size: int) -> bytes:
        """``size`` bytes, or fewer if the stream ends first."""
        while len(self._buffer) < size and self._fill():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def close(self) -> None:
        self._buffer.clear()


class _Writer:
    """The file an answer is written to (``wfile``): whole writes, each within
    WRITE_TIMEOUT seconds."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def write(self, data: bytes) -> int:
        self._sock.settimeout(WRITE_TIMEOUT)
        self._sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Request(BaseHTTPRequestHandler):
    """One connection, one request: read whole within the limits, then given to the
    app with ``command``, ``path``, ``headers``, ``body`` and ``client_address``."""

    server: ApiServer
    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/1.0"  # never HTTP/0.9's answers without a head
    server_version = "ThreatNet"
    sys_version = ""

    def setup(self) -> None:
        self.connection = self.request
        self.rfile: Any = _Reader(self.request, self.server.settings.timeout)
        self.wfile: Any = _Writer(self.request)
        self.command: Any = None  # until the request line is read
        self.requestline, self.request_version = "", "HTTP/1.0"
        self.body = b""
        self.close_connection = True
        self._headers_buffer: list[bytes] = []

    def handle(self) -> None:
        try:
            if self._read():
                self.server.app(self)
        except RequestTimeout:
            self.send_error(408, "the request did not arrive whole within "
                                 f"{self.server.settings.timeout:g} s")
        except HeadTooLarge:
            self.send_error(431, f"request line and headers over {HEAD_MAX} bytes")
        except OSError:
            pass  # the client went away, or would not read the answer
        except Exception:
            self.server.handle_error(self.request, self.client_address)
            self.send_error(500, "internal error (see the bot's log)")

    def finish(self) -> None:
        self.rfile.close()  # the server closes the connection

    def _read(self) -> bool:
        """Read the whole request; False when it was answered (an error) or empty."""
        line = self.rfile.readline(LINE_MAX + 1)
        if not line:
            return False
        if len(line) > LINE_MAX:
            self.send_error(414, f"request line over {LINE_MAX} bytes")
            return False
        self.raw_requestline = line
        if not self.parse_request():  # sends its own errors (400, 431, 505)
            return False
        if self.headers.get("Transfer-Encoding") is not None:
            self.send_error(411, "send the body with a Content-Length, not chunked")
            return False
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            if self.command == "POST":
                self.send_error(411, "a POST needs a Content-Length")
                return False
            return True
        length = lengths[0].strip()
        if len(set(lengths)) > 1 or not (length.isascii() and length.isdigit()):
            self.send_error(400, "bad Content-Length")
            return False
        if len(length) > 12 or int(length) > BODY_MAX:
            self.send_error(413, f"request body over {BODY_MAX} bytes")
            return False
        self.body = self.rfile.read(int(length))
        if len(self.body) < int(length):
            self.send_error(400, "the body is shorter than its Content-Length")
            return False
        return True

    def answer(self, status: int, body: bytes, ctype: str = JSON,
               headers: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()) -> None:
        """Send the answer (no body to a HEAD request), in one write."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for name, value in headers:
            self.send_header(name, value)
        self._headers_buffer.append(b"\r\n")
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        self.wfile.write(head if self.command == "HEAD" else head + body)
        self.server.release(self.request)  # answered: the slot is free for the next

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Errors the server finds (and http.server's own) as JSON, then close."""
        self.close_connection = True
        reason = message or explain or HTTPStatus(code).phrase
        try:
            self.answer(code, to_json({"error": reason}))
        except OSError:
            pass

    def release_slot(self) -> None:
        """This request will wait long (a long-poll): free its connection slot."""
        self.server.release(self.request)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        self.server.log.debug("HTTP %s: %s", self.address_string(), format % args)


def _refuse(sock: socket.socket, status: int, reason: str) -> None:
    """Answer ``status`` on a connection just accepted, without waiting for anything."""
    body = to_json({"error": reason})
    head = (f"HTTP/1.0 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {JSON}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        sock.setblocking(False)
        try:
            sock.recv(65536)  # what has arrived: closing with it unread would reset
        except BlockingIOError:
            pass
        sock.send(head + body)
    except OSError:
        pass


class ApiServer(HTTPServer):
    """``app(request)`` answers each request; ``allowed(host)`` says at accept whether
    a client address may connect at all. ``log`` gets errors. See the module doc."""

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, settings: Settings, app: Callable[[Request], None],
                 allowed: Callable[[str], bool], log: Any) -> None:
        self.settings, self.app, self.allowed, self.log = settings, app, allowed, log
        self.address_family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self._slots = threading.BoundedSemaphore(settings.connections)
        self._lock = threading.Lock()
        self._holding: set[socket.socket] = set()  # connections holding a slot
        self._workers: set[threading.Thread] = set()
        self._connections: set[socket.socket] = set()
        self._closing = False
        self._loop: threading.Thread | None = None
        super().__init__((settings.host, settings.port), Request)

    def server_bind(self) -> None:
        # not HTTPServer's: it looks the host's name up (socket.getfqdn), maybe in DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> None:
        self._loop = threading.Thread(target=self.serve_forever, args=(POLL_INTERVAL,),
                                      daemon=True, name="threatnet-http")
        self._loop.start()

    # -- at accept, on the accept loop's thread: never blocks

    def verify_request(self, request: Any, client_address: Any) -> bool:
        try:
            ok = self.allowed(client_address[0])
        except Exception:
            self.log.exception("HTTP: checking a client address failed")
            ok = False
        if not ok:
            _refuse(request, 403, "client address not allowed (plugins.ThreatNetCache."
                                  "http.clients)")
        return ok

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._closing:
            _refuse(request, 503, "shutting down")
            self.shutdown_request(request)
            return
        if not self._slots.acquire(blocking=False):
            _refuse(request, 503, f"too many connections (at most "
                                  f"{self.settings.connections} at once)")
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self._serve, args=(request, client_address),
                                  daemon=True, name="threatnet-http-request")
        with self._lock:
            self._holding.add(request)
            self._connections.add(request)
            self._workers.add(thread)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: BaseServer closes the connection
            with self._lock:
                self._connections.discard(request)
                self._workers.discard(thread)
            self.release(request)
            raise

    # -- on the connection's thread

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.release(request)  # if not answered
            self.shutdown_request(request)
            with self._lock:
                self._connections.discard(request)
                self._workers.discard(threading.current_thread())

    def release(self, request: socket.socket) -> None:
        """Give ``request``'s connection slot back (once)."""
        with self._lock:
            if request not in self._holding:
                return
            self._holding.discard(request)
        self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.log.exception("HTTP: serving %s failed", client_address)

    # -- from the plugin

    def close(self, timeout: float = 2.0) -> None:
        """Stop accepting, close the listening socket, cut every connection, and
        wait at most ``timeout`` seconds for their threads."""
        self._closing = True
        if self._loop is not None:
            self.shutdown()
        self.server_close()
        with self._lock:
            connections, threads = list(self._connections), list(self._workers)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

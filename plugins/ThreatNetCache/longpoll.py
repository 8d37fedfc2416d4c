"""The HTTP API's long-poll: GET /threatnet/events requests with no change to answer yet
are detached from Limnoria's one-thread HTTP server and parked with a waiter thread,
which answers each when changes arrive or its wait runs out (see http.py's doc)."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from threatnet.response.changes import ChangeLog, Read

PARKED_MAX = 64  # long-polls waiting at once
SEND_TIMEOUT = 5.0  # seconds to write a parked answer to a slow client
JSON = "application/json"


def to_json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


class _Parked:
    __slots__ = ("sock", "since", "stream", "network", "channel", "deadline")

    def __init__(self, sock: socket.socket, since: int, stream: str | None,
                 network: str | None, channel: str | None, deadline: float) -> None:
        self.sock, self.since, self.stream = sock, since, stream
        self.network, self.channel, self.deadline = network, channel, deadline


class Waiters:
    """Long-polls parked off the server thread, answered by one waiter thread."""

    def __init__(self, changes: ChangeLog, render: Callable[[Read], dict[str, Any]]) -> None:
        self.changes = changes
        self.render = render  # Read -> JSON-able dict
        self._parked: list[_Parked] = []
        self._stopping = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, sock: socket.socket, since: int, stream: str | None, network: str | None,
             channel: str | None, timeout: float) -> bool:
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

    def stop(self) -> None:
        cond = self.changes.cond
        with cond:
            self._stopping = True
            cond.notify_all()
        if self._thread is not None:
            self._thread.join(SEND_TIMEOUT + 1)

    def _run(self) -> None:
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
                send_raw(p.sock, 200, to_json(self.render(read)))


def send_raw(sock: socket.socket, status: int, body: bytes) -> None:
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


def detach(handler: Any) -> socket.socket | None:
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



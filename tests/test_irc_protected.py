"""threatnet_irc.protected: the addresses a listener protects without being told."""
from __future__ import annotations

import socket

from threatnet_irc import protected


class Driver:
    def __init__(self, conn):
        self.conn = conn


class Irc:
    def __init__(self, conn):
        self.driver = Driver(conn)


def test_both_ends_of_the_connection_the_host_and_its_resolvers(tmp_path, monkeypatch):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# comment\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n"
                      "nameserver not-an-address\nsearch example.org\n")
    monkeypatch.setattr(protected, "RESOLV_CONF", str(resolv))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname()) as conn:
            found = protected.found(Irc(conn))
    assert {"127.0.0.1", "192.0.2.53", "fe80::1"} <= set(found)
    assert "not-an-address" not in found


def test_no_connection_yet():
    assert all(":" in a or "." in a for a in protected.found(Irc(None)))

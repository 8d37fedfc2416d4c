"""Server certificates: kept across starts when asked (clients keep their pin), new
when the kept one does not fit; the fingerprint a server presents."""
from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

from threatnet_tools import tlscert


def test_a_kept_certificate_keeps_its_fingerprint(tmp_path: Path) -> None:
    cert, key, first = tlscert.server_certificate(tmp_path, "127.0.0.1")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert tlscert.server_certificate(tmp_path, "127.0.0.1", reuse=True)[2] == first
    assert tlscert.server_certificate(tmp_path, "127.0.0.1")[2] != first  # without reuse


def test_a_certificate_that_does_not_fit_is_replaced(tmp_path: Path) -> None:
    _, key, first = tlscert.server_certificate(tmp_path, "127.0.0.1")
    other = tlscert.server_certificate(tmp_path, "localhost", reuse=True)[2]
    assert other != first  # another host
    key.write_bytes(tlscert._key_pem(tlscert.generate("x")[0]))  # not the certificate's key
    assert tlscert.server_certificate(tmp_path, "localhost", reuse=True)[2] != other
    (tmp_path / "server.crt").write_text("garbage")
    assert tlscert.is_fingerprint(tlscert.server_certificate(tmp_path, "localhost",
                                                             reuse=True)[2])


def test_presented_fingerprint(tmp_path: Path) -> None:
    cert, key, fingerprint = tlscert.server_certificate(tmp_path, "127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert tlscert.presented_fingerprint("127.0.0.1", port) == fingerprint
    finally:
        thread.join(5)
        listener.close()
    assert tlscert.presented_fingerprint("127.0.0.1", port, timeout=1) is None

"""Self-signed TLS certificates: the local server's, and agents' client certificates (CertFP).

Used by the lab (lab/servers.py: a server certificate per run directory, kept across
runs by `make run`) and by threatnet_tools/agentcert.py (an agent's key and
certificate). Nothing here is a
certificate authority: trust is the certificate's SHA-256 fingerprint, pinned by
the bot (supybot.networks.<net>.ssl.serverFingerprints) or registered to a services
account (NickServ CERT ADD). The fingerprint is written the way InspIRCd reports it
(sslinfo with hash="sha256") and Atheme stores it: 64 lowercase hex digits.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import socket
import ssl
from pathlib import Path
from typing import Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PathLike = Union[str, "os.PathLike[str]"]
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def generate(common_name: str, days: int = 825,
             server_names: tuple[str, ...] = ()) -> tuple[ec.EllipticCurvePrivateKey,
                                                          x509.Certificate]:
    """A new ECDSA P-256 key and a self-signed certificate for it (valid from an hour ago,
    for ``days``); ``server_names`` become DNS/IP subjectAltNames of a server certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(name).issuer_name(name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server_names:
        alt: list[x509.GeneralName] = []
        for n in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return key, builder.sign(key, hashes.SHA256())


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate: 64 lowercase hex digits, no colons."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def file_fingerprint(path: PathLike) -> str:
    """The fingerprint of the first certificate in a PEM file (the key may be in it too)."""
    return fingerprint(x509.load_pem_x509_certificate(Path(path).read_bytes()))


def is_fingerprint(text: str) -> bool:
    return bool(_FINGERPRINT.fullmatch(text))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: PathLike, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temp file created with ``mode``, then rename."""
    path = Path(path)
    # A directory made for a private file is private too (one that exists is left alone).
    path.parent.mkdir(mode=0o755 if mode & 0o077 else 0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # whatever the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_combined(path: PathLike, key: ec.EllipticCurvePrivateKey,
                   cert: x509.Certificate) -> None:
    """Certificate and key in one PEM file, mode 0600: what Limnoria's certfile setting
    wants (ssl's load_cert_chain)."""
    _write(path, _cert_pem(cert) + _key_pem(key), 0o600)


def write_pair(cert_path: PathLike, key_path: PathLike, key: ec.EllipticCurvePrivateKey,
               cert: x509.Certificate) -> None:
    """Certificate (mode 0644) and key (mode 0600) in two files, as InspIRCd reads them."""
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, _cert_pem(cert), 0o644)


def server_certificate(directory: PathLike, host: str, *,
                       reuse: bool = False) -> tuple[Path, Path, str]:
    """A self-signed server certificate for ``host`` in ``directory`` (server.crt,
    server.key): (cert path, key path, fingerprint). New unless ``reuse`` and the
    directory holds one for ``host`` valid for another day: a server that keeps its
    certificate keeps its clients' pins."""
    directory = Path(directory)
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    if reuse:
        kept = _usable(cert_path, key_path, host)
        if kept is not None:
            return cert_path, key_path, kept
    key, cert = generate(host, days=825, server_names=(host,))
    write_pair(cert_path, key_path, key, cert)
    return cert_path, key_path, fingerprint(cert)


def client_certificate(path: PathLike, name: str, days: int = 825) -> str:
    """A new key and self-signed client certificate for agent ``name`` in one PEM file
    (mode 0600); returns its fingerprint."""
    key, cert = generate(name, days=days)
    write_combined(path, key, cert)
    return fingerprint(cert)


def _usable(cert_path: Path, key_path: Path, host: str) -> Optional[str]:
    """The fingerprint of the certificate at ``cert_path`` if it names ``host``, is valid
    for at least another day and ``key_path`` holds its key; else None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return None
    try:
        wanted: object = ipaddress.ip_address(host)
        listed: list[object] = list(names.get_values_for_type(x509.IPAddress))
    except ValueError:
        wanted, listed = host, list(names.get_values_for_type(x509.DNSName))
    tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    same_key = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        cert.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    if wanted not in listed or cert.not_valid_after_utc < tomorrow or not same_key:
        return None
    return fingerprint(cert)


def presented_fingerprint(host: str, port: int, timeout: float = 5.0) -> Optional[str]:
    """The fingerprint of the certificate a TLS server at host:port presents now
    (nothing is verified: it is only looked at), or None if it cannot be reached."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None

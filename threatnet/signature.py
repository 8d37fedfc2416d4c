"""Signed threat lines: trust a provider by its key, not by its voice in a channel.

A provider appends one token to the comment of its threat line, so the line is
still one PRIVMSG that old agents parse as ``IP comment``::

    203.0.113.7 ssh brute force sig=<key id>.<unix seconds>.<ed25519 signature>

- key id: 1-16 characters ``[A-Za-z0-9_-]`` naming the provider's key in the
  listener's KeyRing (``threatnet_tools.keygen`` uses the first 8 characters of the
  base64url SHA-256 of the public key);
- unix seconds: when the line was signed, decimal without leading zeros;
- signature: the 64-byte Ed25519 signature, unpadded base64url (86 characters).

The signed bytes are UTF-8 of ``DOMAIN + key id \\n canonical IP \\n comment \\n
seconds``, where the comment is the one on the line without the final `` sig=``
token. A signed line is never longer than MAX_LINE_BYTES: the signer cuts the
comment to fit before signing, and a relay (``format_message`` of the parsed
line) reproduces it byte for byte, so bridges pass on the provider's signature.

A listener accepts a signature from a known key, made at most ``max_age`` seconds
ago (the block period: a replay after it is rejected) and at most ``skew`` seconds
in the future (clock differences).
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from threatnet.address import format_ip
from threatnet.atomic import atomic_write
from threatnet.language import MAX_LINE_BYTES, WITHDRAW, ThreatMessage, format_message
from threatnet.text import truncate_utf8

if TYPE_CHECKING:
    from threatnet.envelope import Envelope

# Domain separation: these bytes can never be mistaken for anything else the key signs;
# a withdrawal is signed in its own domain, so a signed threat line cannot be replayed
# as the withdrawal of itself.
DOMAIN = "ThreatNet signed threat line v1\n"
WITHDRAWAL = "ThreatNet signed withdrawal v1\n"
SIG_PREFIX = "sig="
MAX_SKEW = 120  # seconds a signature may lie in the future: NTP-synced clocks, some slack
KEY_ID_LENGTH = 8  # of a derived key id: 48 bits, collisions among a channel's keys improbable

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
# Seconds up to 11 digits (year 5138); no leading zeros, so one time has one spelling.
_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,16})\.(0|[1-9][0-9]{0,10})\.([A-Za-z0-9_-]{86})")
_B64 = re.compile(r"[A-Za-z0-9_-]*")
_SIG_CHARS = 86


class KeyFileError(ValueError):
    """A bad key ring or private key file; ``str(e)`` is ``file:line: reason``."""

    def __init__(self, reason: str, *, file: str, line: int | None = None) -> None:
        self.reason, self.file, self.line = reason, file, line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {reason}")


class Verified(NamedTuple):
    """A valid signature: whose key, when it was made, and the comment it covers."""

    key_id: str
    signed_at: int
    comment: str


class TrustedKey(NamedTuple):
    """One key ring entry: the provider's public key and the operator's note on it."""

    public_key: Ed25519PublicKey
    comment: str


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str, size: int) -> bytes | None:
    """``size`` bytes from canonical unpadded base64url, else None.

    Canonical means re-encoding gives the same text: unused low bits of the last
    character must be zero, so one key or signature has exactly one spelling.
    """
    if not _B64.fullmatch(text) or len(text) % 4 == 1:  # 4n+1 characters: never base64
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if len(data) == size and _b64encode(data) == text else None


def _signed_bytes(key_id: str, ip: str, comment: str, seconds: str, domain: str) -> bytes:
    # surrogatepass: a received lone surrogate must fail to verify, not raise.
    return f"{domain}{key_id}\n{ip}\n{comment}\n{seconds}".encode("utf-8", "surrogatepass")


def public_bytes(key: Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def derive_key_id(key: Ed25519PublicKey) -> str:
    """A short key id from the key's fingerprint: the same key always gets the same id."""
    return _b64encode(hashlib.sha256(public_bytes(key)).digest())[:KEY_ID_LENGTH]


def check_key_id(key_id: str) -> str:
    """``key_id`` if it is valid, else ValueError."""
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"key id must be 1-16 characters A-Z a-z 0-9 _ -, not {key_id!r}")
    return key_id


def strip_signature(comment: str) -> tuple[str, str | None]:
    """Split a comment into the comment proper and its signature (the text after
    ``sig=`` in the final space-separated word), or ``(comment, None)`` if unsigned.
    """
    head, space, last = comment.rpartition(" ")
    if not last.startswith(SIG_PREFIX):
        return comment, None
    return head if space else "", last[len(SIG_PREFIX):]


class Signer:
    """Signs a provider's threat lines with its Ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey, key_id: str) -> None:
        self.private_key = private_key
        self.key_id = check_key_id(key_id)
        self.public_key = private_key.public_key()

    def sign(self, msg: ThreatMessage, now: float) -> str:
        """The canonical signed line for ``msg``, signed at ``now`` (unix seconds).

        The comment is normalised as format_message does, any signature it carries
        is dropped (a re-signed relay vouches once, not twice) and it is cut so the
        signed line fits MAX_LINE_BYTES.
        """
        return self._sign(msg, now, DOMAIN, "")

    def withdraw(self, msg: ThreatMessage, now: float) -> str:
        """The canonical signed withdrawal line (``withdraw IP reason sig=...``) of the
        threat at ``msg.ip``, ``msg.comment`` the reason, signed in its own domain."""
        return self._sign(msg, now, WITHDRAWAL, f"{WITHDRAW} ")

    def _sign(self, msg: ThreatMessage, now: float, domain: str, head: str) -> str:
        if not 0 <= now < 10 ** 11:
            raise ValueError(f"signing time out of range: {now!r}")
        seconds = str(int(now))
        ip = format_ip(msg.key)
        comment = format_message(msg)[len(ip) + 1:]
        comment = strip_signature(comment)[0].rstrip()
        tail = f"{SIG_PREFIX}{self.key_id}.{seconds}."
        room = MAX_LINE_BYTES - len(head) - len(ip) - 1 - len(tail) - _SIG_CHARS - 1
        comment = truncate_utf8(comment, room).rstrip()
        sig = self.private_key.sign(_signed_bytes(self.key_id, ip, comment, seconds, domain))
        token = tail + _b64encode(sig)
        return f"{head}{ip} {comment} {token}" if comment else f"{head}{ip} {token}"

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"


class KeyRing:
    """The providers' public keys a listener trusts, by key id.

    The file is one key per line, ``key-id base64url-public-key [comment...]``
    (what ``threatnet_tools.keygen`` prints); blank lines and lines starting with
    ``#`` are ignored.
    """

    def __init__(self, keys: Mapping[str, TrustedKey] | None = None) -> None:
        self.keys: Mapping[str, TrustedKey] = dict(keys or {})
        for key_id in self.keys:
            check_key_id(key_id)

    @classmethod
    def parse(cls, text: str, file: str = "<keyring>") -> KeyRing:
        """Parse key ring text; raises KeyFileError naming ``file`` and the line."""
        keys: dict[str, TrustedKey] = {}
        first_seen: dict[str, int] = {}
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(None, 2)
            if len(fields) < 2:
                raise KeyFileError("expected 'key-id public-key [comment]'", file=file,
                                   line=number)
            key_id, encoded = fields[0], fields[1]
            try:
                check_key_id(key_id)
            except ValueError as e:
                raise KeyFileError(str(e), file=file, line=number) from None
            if key_id in first_seen:
                raise KeyFileError(f"duplicate key id {key_id!r} (first on line "
                                   f"{first_seen[key_id]})", file=file, line=number)
            raw_key = _b64decode(encoded, 32)
            if raw_key is None:
                raise KeyFileError("public key must be 43 characters of unpadded base64url "
                                   "(as threatnet_tools.keygen prints it)", file=file, line=number)
            first_seen[key_id] = number
            keys[key_id] = TrustedKey(Ed25519PublicKey.from_public_bytes(raw_key),
                                      fields[2] if len(fields) > 2 else "")
        return cls(keys)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyRing:
        """The key ring in ``path``; a missing or unreadable file raises KeyFileError."""
        return cls.parse(_read_text(path), file=str(path))

    def get(self, key_id: str) -> TrustedKey | None:
        return self.keys.get(key_id)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self.keys

    def __repr__(self) -> str:
        return f"KeyRing({sorted(self.keys)!r})"


def verify(msg: ThreatMessage, keyring: KeyRing, now: float, max_age: float,
           skew: float = MAX_SKEW, domain: str = DOMAIN) -> Verified | str:
    """Verified if ``msg`` carries a valid signature from a key in ``keyring``, made
    no more than ``max_age`` seconds before ``now`` and no more than ``skew`` after;
    else the reason: ``unsigned``, ``bad signature``, ``unknown key``,
    ``expired signature`` or ``future signature``. A withdrawal (parse_withdrawal's
    message) is verified with ``domain`` WITHDRAWAL.

    The cheap checks come first, so a flood of junk costs no Ed25519 verification.
    """
    comment, token = strip_signature(msg.comment)
    if token is None:
        return "unsigned"
    match = _TOKEN.fullmatch(token)
    if match is None:
        return "bad signature"
    key_id, seconds, encoded = match.groups()
    trusted = keyring.keys.get(key_id)
    if trusted is None:
        return "unknown key"
    signed_at = int(seconds)
    if now - signed_at > max_age:
        return "expired signature"
    if signed_at - now > skew:
        return "future signature"
    sig = _b64decode(encoded, 64)
    if sig is None:
        return "bad signature"
    try:
        trusted.public_key.verify(sig, _signed_bytes(key_id, msg.ip, comment, seconds, domain))
    except InvalidSignature:
        return "bad signature"
    return Verified(key_id, signed_at, comment)


# What ``verify`` and RequireSignature reject a line with, in the order status lines show.
REJECTIONS = ("unsigned", "bad signature", "unknown key", "expired signature",
              "future signature")


class RequireSignature:
    """Threat Filter: pass only lines validly signed by a key in ``keyring``.

    For channels on networks one does not control, and downstream of bridges:
    trust comes from the provider's key, not from voice. Rejects with the reason
    ``verify`` gives.
    """

    def __init__(self, keyring: KeyRing, max_age: float,
                 clock: Callable[[], float] = time.time, skew: float = MAX_SKEW) -> None:
        if max_age <= 0:
            raise ValueError(f"max_age must be positive, not {max_age!r}")
        self.keyring = keyring
        self.max_age = max_age
        self.clock = clock
        self.skew = skew

    def screen(self, msg: ThreatMessage, envelope: Envelope | None = None) -> str | None:
        result = verify(msg, self.keyring, self.clock(), self.max_age, self.skew)
        return None if type(result) is Verified else result

    def __repr__(self) -> str:
        return f"RequireSignature({self.keyring!r}, max_age={self.max_age!r})"


# --- keys and key files ------------------------------------------------------------------

def generate_key() -> Ed25519PrivateKey:
    """A new random signing key."""
    return Ed25519PrivateKey.generate()


def public_line(key_id: str, key: Ed25519PublicKey, comment: str = "") -> str:
    """The key ring line for ``key``: what a listener's operator adds."""
    line = f"{check_key_id(key_id)} {_b64encode(public_bytes(key))}"
    return f"{line} {comment.strip()}" if comment.strip() else line


def write_private_key(path: str | os.PathLike[str], key_id: str,
                      key: Ed25519PrivateKey) -> None:
    """Write ``key-id base64url-seed`` to ``path``, mode 0600, atomically."""
    seed = key.private_bytes_raw()
    text = (f"# ThreatNet signing key: secret, keep mode 0600. Public key ring line:\n"
            f"# {public_line(key_id, key.public_key())}\n"
            f"{key_id} {_b64encode(seed)}\n")
    atomic_write(path, text, mode=0o600)


def load_signer(path: str | os.PathLike[str]) -> Signer:
    """The Signer for the private key file at ``path``; raises KeyFileError.

    Like ssh, refuses a file that others may read or replace: the key may be leaked.
    """
    file = str(path)
    text = _read_text(path)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise KeyFileError(f"open to others (mode {mode:04o}): chmod 600 it", file=file)
    found: tuple[int, list[str]] | None = None
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if found is not None:
            raise KeyFileError(f"more than one key (first on line {found[0]})", file=file,
                               line=number)
        found = number, line.split()
    if found is None:
        raise KeyFileError("no key in file", file=file)
    number, fields = found
    if len(fields) != 2:
        raise KeyFileError("expected 'key-id private-key'", file=file, line=number)
    try:
        check_key_id(fields[0])
    except ValueError as e:
        raise KeyFileError(str(e), file=file, line=number) from None
    seed = _b64decode(fields[1], 32)
    if seed is None:
        raise KeyFileError("private key must be 43 characters of unpadded base64url",
                           file=file, line=number)
    return Signer(Ed25519PrivateKey.from_private_bytes(seed), fields[0])


def _read_text(path: str | os.PathLike[str]) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise KeyFileError(e.strerror or str(e), file=str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise KeyFileError("not UTF-8", file=str(path),
                           line=data.count(b"\n", 0, e.start) + 1) from None

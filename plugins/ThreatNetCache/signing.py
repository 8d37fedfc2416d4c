"""Signed threat lines in ThreatNetCache: the key files behind the settings (registered in
config.py), around threatnet.signature (KeyRing, load_signer, verify).

Per channel (``plugins.ThreatNetCache.signatures.*``, documented in
conf/ThreatNetCache.conf):

- ``require``: threat lines count only when validly signed by a key in ``keyring``,
  made at most one block period ago (a replay after it is rejected). A
  RequireSignature goes into the channel's listen chain right after the trust
  rule, so a line must come from a trusted sender *and* be signed. With trust mode
  ``signed`` there is no IRC-level trust at all: the signature is the trust (for
  channels on networks one does not control, and downstream of bridges). The
  channel's Listener (threatnet/listener.py) runs the check; rejected
  lines are counted by reason (unsigned, bad signature, unknown key, expired
  signature, future signature) in ``tn status`` and otherwise ignored.
- ``keyring``: the key ring file (``key-id public-key [comment]`` lines, what
  threatnet-keygen prints); re-read when it changes. A missing or bad
  file trusts no key (fail closed) and is logged.
- ``key``: this agent's private signing key (threatnet_tools.keygen, mode 0600). When
  set, every report to the channel (``tn report`` and feeds) is posted signed; a key
  that cannot be loaded stops the reports (refused as ``unsigned``), it never
  falls back to unsigned lines.

The plugin calls ``ChannelSigning.configure`` from its poll timer and when it starts
listening, then hands the key ring to the channel's Listener and the signer to its
Provider. Relative paths are in the bot's data directory.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from logging import Logger
from typing import Generic, TypeVar

import supybot.conf as conf

from threatnet.cache import Entry
from threatnet.language import ThreatMessage
from threatnet.signature import KeyFileError, KeyRing, Signer, Verified, load_signer, verify

T = TypeVar("T")

_FOREVER = float("inf")


def _resolve(path: str) -> str:
    return conf.supybot.directories.data.dirize(path) if not os.path.isabs(path) else path


class _File(Generic[T]):
    """A file's parsed content, parsed again when the path or the file changes."""

    def __init__(self, parse: Callable[[str], T]) -> None:
        self.parse = parse
        self.stamp: tuple | None = None
        self.value: T | None = None
        self.error: str | None = None

    def update(self, path: str) -> bool:
        """Re-read ``path`` if needed; True if value or error changed."""
        try:
            s = os.stat(path)
            stamp = (path, s.st_mtime_ns, s.st_size, s.st_ino)
        except OSError as e:
            stamp = (path, "missing", e.errno)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        try:
            self.value, self.error = self.parse(path), None
        except KeyFileError as e:
            self.value, self.error = None, str(e)
        return True


class ChannelSigning:
    """The signature files of one channel: its key ring and this agent's signing key,
    (re)loaded when the settings or the files change."""

    def __init__(self) -> None:
        self.keyring_file = _File(KeyRing.load)
        self.key_file = _File(load_signer)
        self.required = False  # signatures.require (or trust "signed") as last applied
        self.keyring: KeyRing | None = None  # None: no keyring configured
        self.signer: Signer | None = None  # signs our own reports, or None
        self.signer_error: str | None = None  # why the configured key cannot sign

    def configure(self, get: Callable[[str], object], where: str, log: Logger) -> None:
        """Read the channel's settings (``get(name)``) and reload files that changed;
        ``where`` ("#channel on network") names the channel in the log."""
        require = bool(get("signatures.require")) or get("trust") == "signed"
        path = str(get("signatures.keyring"))
        if not path:
            if require and (self.keyring is not None or not self.required):
                log.warning("%s requires signatures but no signatures.keyring is set: no "
                            "key is trusted", where)
            self.keyring_file.stamp = None
            self.keyring = None
        elif self.keyring_file.update(_resolve(path)):
            if self.keyring_file.error:
                log.warning("%s: key ring %s; no key is trusted", where, self.keyring_file.error)
                self.keyring = KeyRing()
            else:
                self.keyring = self.keyring_file.value
                log.info("%s: key ring %s with %s keys", where, _resolve(path),
                         len(self.keyring))
        if require and not self.required:
            log.info("%s: threat lines must be signed", where)
        self.required = require

        key = str(get("signatures.key"))
        if not key:
            self.key_file.stamp = None
            self.signer = self.signer_error = None
        elif self.key_file.update(_resolve(key)):
            self.signer, self.signer_error = self.key_file.value, self.key_file.error
            if self.signer_error:
                log.error("%s: cannot sign reports, so none are sent: %s", where,
                          self.signer_error)
            else:
                log.info("%s: reports are signed with key %s", where, self.signer.key_id)


def verified(keyring: KeyRing | None, entry: Entry, now: float) -> Verified | None:
    """Verified if the cached line carries a valid signature from a key in ``keyring``
    (whenever it was made: it was current when heard), else None."""
    if not keyring or "sig=" not in entry.comment:
        return None
    result = verify(ThreatMessage(entry.ip, entry.comment, entry.first_seen, entry.key),
                    keyring, now, _FOREVER, _FOREVER)
    return result if isinstance(result, Verified) else None

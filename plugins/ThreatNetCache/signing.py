"""Signed threat lines in ThreatNetCache: the registry settings, and the Limnoria glue
around threatnet.signature (RequireSignature, KeyRing, load_signer).

Per channel (``plugins.ThreatNetCache.signatures.*``, documented in
conf/ThreatNetCache.conf):

- ``require``: threat lines count only when validly signed by a key in ``keyring``,
  made at most one block period ago (a replay after it is rejected). A
  RequireSignature goes into the channel's listen chain right after the trust
  rule, so a line must come from a trusted sender *and* be signed. With trust mode
  ``signed`` there is no IRC-level trust at all: the signature is the trust (for
  channels on networks one does not control, and downstream of bridges). Rejected
  lines are counted by reason (unsigned, bad signature, unknown key, expired
  signature, future signature) in ``tn status`` and otherwise ignored.
- ``keyring``: the key ring file (``key-id public-key [comment]`` lines, what
  scripts/threatnet_keygen.py prints); re-read when it changes. A missing or bad
  file trusts no key (fail closed) and is logged.
- ``key``: this agent's private signing key (threatnet_keygen.py, mode 0600). When
  set, every report to the channel (``tn report`` and feeds) is posted signed; a key
  that cannot be loaded stops the reports (refused as ``unsigned``), it never
  falls back to unsigned lines.

The plugin calls ``Signing.configure(irc, st)`` from its poll timer (after the
channel's own settings) and when it starts listening; the hot path only runs the
chain. Relative paths are in the bot's data directory.
"""
from __future__ import annotations

import os

import supybot.conf as conf
import supybot.registry as registry

from threatnet_irc.clock import now as _now
from threatnet.language import ThreatMessage
from threatnet.signature import KeyFileError, KeyRing, RequireSignature, Verified, \
    load_signer, verify

# What RequireSignature rejects with, in the order tn status shows them.
REASONS = ("unsigned", "bad signature", "unknown key", "expired signature",
           "future signature")
_FOREVER = float("inf")


def register_config(group):
    """The ``signatures`` settings under the plugin's registry group."""
    conf.registerGroup(group, "signatures")

    def channel(name, value):
        conf.registerChannelValue(group.signatures, name, value, opSettable=False)

    channel("require", registry.Boolean(False, """Whether threat lines in this channel
        count only when validly signed by a key in signatures.keyring, made within the
        block period. Unsigned and badly signed lines are counted by reason (tn status)
        and ignored. Trust mode "signed" implies it."""))
    channel("keyring", registry.String("", """The key ring file: one "key-id
        public-key [comment]" line per trusted provider (scripts/threatnet_keygen.py
        prints them). A relative path is in the bot's data directory. Re-read when it
        changes; a missing or bad file trusts no key."""))
    channel("key", registry.String("", """This agent's private signing key file
        (scripts/threatnet_keygen.py; mode 0600). When set, the agent's reports to this
        channel are signed; if it cannot be loaded, reports are refused, never sent
        unsigned. A relative path is in the bot's data directory."""))


def _resolve(path):
    return conf.supybot.directories.data.dirize(path) if not os.path.isabs(path) else path


class _File:
    """A file's parsed content, parsed again when the path or the file changes."""

    def __init__(self, parse):
        self.parse = parse
        self.stamp = None
        self.value = None
        self.error = None

    def update(self, path):
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
    """The signature state of one channel: key ring, signer, and their files."""

    def __init__(self):
        self.keyring_file = _File(KeyRing.load)
        self.key_file = _File(load_signer)
        self.keyring = None  # KeyRing, or None when no keyring is configured
        self.signer = None  # Signer for our own reports, or None
        self.signer_error = None  # why the configured key cannot sign, or None


class Signing:
    """Applies the signatures.* settings to the plugin's channels."""

    def __init__(self, plugin):
        self.plugin = plugin

    def configure(self, irc, st):
        """Read the channel's settings; (re)load files that changed; put the signature
        check into or out of its listen chain."""
        def get(name):
            return self.plugin.registryValue(name, st.channel, irc.network)
        log = self.plugin.log
        sig = st.signing
        if sig is None:
            sig = st.signing = ChannelSigning()
        require = get("signatures.require") or get("trust") == "signed"

        path = get("signatures.keyring")
        if not path:
            if require and (sig.keyring is not None or st.signature_check is None):
                log.warning("%s on %s requires signatures but no signatures.keyring is "
                            "set: no key is trusted", st.channel, st.network)
            sig.keyring_file.stamp = None
            sig.keyring = None
        elif sig.keyring_file.update(_resolve(path)):
            if sig.keyring_file.error:
                log.warning("%s on %s: key ring %s; no key is trusted", st.channel,
                            st.network, sig.keyring_file.error)
                sig.keyring = KeyRing()
            else:
                sig.keyring = sig.keyring_file.value
                log.info("%s on %s: key ring %s with %s keys", st.channel, st.network,
                         _resolve(path), len(sig.keyring))
        keyring = sig.keyring if sig.keyring is not None else KeyRing()

        check = st.signature_check
        if require:
            if check is None:
                check = RequireSignature(keyring, max_age=st.cache.timeout, clock=_now)
                for reason in REASONS:
                    st.heard.setdefault(reason, 0)
                st.set_signature_check(check, log)
                log.info("%s on %s: threat lines must be signed", st.channel, st.network)
            else:
                check.keyring = keyring
        elif check is not None:
            st.set_signature_check(None, log)

        key = get("signatures.key")
        if not key:
            sig.key_file.stamp = None
            sig.signer = sig.signer_error = None
        elif sig.key_file.update(_resolve(key)):
            sig.signer, sig.signer_error = sig.key_file.value, sig.key_file.error
            if sig.signer_error:
                log.error("%s on %s: cannot sign reports, so none are sent: %s",
                          st.channel, st.network, sig.signer_error)
            else:
                log.info("%s on %s: reports are signed with key %s", st.channel,
                         st.network, sig.signer.key_id)


def signer(st):
    """The channel's Signer, or None for unsigned reports; raises ValueError (the
    reason) when a key is configured but cannot be loaded."""
    sig = st.signing
    if sig is None:
        return None
    if sig.signer_error:
        raise ValueError(sig.signer_error)
    return sig.signer


def discarded(st):
    """The signature counters for tn status (", unsigned 1, ..."), or "" if the
    channel does not require signatures."""
    if st.signature_check is None:
        return ""
    return "".join(f", {reason} {st.heard.get(reason, 0)}" for reason in REASONS)


def verified(st, entry):
    """Verified if the cached line carries a valid signature from a key in the
    channel's key ring (whenever it was made: it was current when heard), else None."""
    sig = st.signing
    if sig is None or not sig.keyring or "sig=" not in entry.comment:
        return None
    result = verify(ThreatMessage(entry.ip, entry.comment, entry.first_seen, entry.key),
                    sig.keyring, _now(), _FOREVER, _FOREVER)
    return result if isinstance(result, Verified) else None

"""Signed threat lines: wire format, verification rules, key files, the filter."""
from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from threatnet.address import KEY_LAST, V4_MAPPED_FIRST, V4_MAPPED_LAST
from threatnet.filter import Chain, NullFilter
from threatnet.language import MAX_LINE_BYTES, ThreatMessage, format_message, parse_message
from threatnet.signature import (MAX_SKEW, KeyFileError, KeyRing, RequireSignature, Signer,
                                 TrustedKey, Verified, derive_key_id, load_signer, public_bytes,
                                 public_line, strip_signature, verify, write_private_key)

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_700_000_000
HOUR = 3600
# Fixed keys, so a line signed here is a test vector.
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
SIGNER = Signer(KEY, "ammo")
RING = KeyRing({"ammo": TrustedKey(KEY.public_key(), "AmmoBot on Libera")})


def signed(line: str, at: float = NOW, signer: Signer = SIGNER) -> ThreatMessage:
    """What a listener receives when ``signer`` announces ``line``."""
    return parse_message(signer.sign(parse_message(line), at))


def check(msg: ThreatMessage, now: float = NOW, max_age: float = HOUR) -> Verified | str:
    return verify(msg, RING, now, max_age)


# --- wire format -----------------------------------------------------------------------------

VECTOR = ("203.0.113.7 ssh brute force sig=ammo.1700000000.8M3pGNeamH15I5lGNQpgLoXO3bpHndju9"
          "oXGKlKfKRA7j2gVnOaHRyunXCP19ltCklIVxZtEDOnmPzcbhwgaAg")


def test_wire_format_vector() -> None:
    """Ed25519 is deterministic: this key, line and time always give this line."""
    assert SIGNER.sign(parse_message("203.0.113.7 ssh brute force"), NOW + 0.9) == VECTOR
    assert SIGNER.sign(parse_message("203.0.113.7  ssh brute force\r\n"), NOW) == VECTOR
    ring_line = "ammo A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
    assert public_line("ammo", KEY.public_key()) == ring_line


def test_signed_bytes_as_documented() -> None:
    """What an implementation in another language must sign, spelled out."""
    sig = base64.urlsafe_b64decode(VECTOR.rsplit(".", 1)[1] + "==")
    KEY.public_key().verify(sig, b"ThreatNet signed threat line v1\nammo\n203.0.113.7\n"
                                 b"ssh brute force\n1700000000")


def test_round_trip() -> None:
    line = SIGNER.sign(parse_message("2001:DB8::0:1 smtp: RCPT rejected"), NOW)
    msg = parse_message(line)
    assert msg.ip == "2001:db8::1"
    assert check(msg) == Verified("ammo", NOW, "smtp: RCPT rejected")
    assert format_message(msg) == line  # a bridge relays it unchanged


def test_old_parser_reads_a_signed_line() -> None:
    """The signature is only the comment's last word to an agent that does not know it."""
    msg = signed("198.51.100.1 spam trap hit")
    assert msg.ip == "198.51.100.1"
    assert msg.comment.startswith("spam trap hit sig=ammo.")
    assert " " not in msg.comment.removeprefix("spam trap hit ")


def test_empty_comment() -> None:
    msg = signed("198.51.100.1")
    assert msg.comment.startswith("sig=ammo.")
    assert check(msg) == Verified("ammo", NOW, "")


def test_existing_signature_is_replaced_not_nested() -> None:
    relayed = signed("198.51.100.1 scanner", signer=Signer(OTHER, "other"))
    again = parse_message(SIGNER.sign(relayed, NOW + 5))
    assert again.comment.count("sig=") == 1
    assert check(again, NOW + 5) == Verified("ammo", NOW + 5, "scanner")


@pytest.mark.parametrize("comment, expected", [
    ("ssh brute force", ("ssh brute force", None)),
    ("", ("", None)),
    ("ssh sig=a.1.x", ("ssh", "a.1.x")),
    ("sig=a.1.x", ("", "a.1.x")),
    ("sig=a.1.x trailing words", ("sig=a.1.x trailing words", None)),
    ("ssh\tsig=a.1.x", ("ssh\tsig=a.1.x", None)),  # the signer separates with one space
    ("ssh sig=", ("ssh", "")),
])
def test_strip_signature(comment: str, expected: tuple[str, str | None]) -> None:
    assert strip_signature(comment) == expected


def test_signer_rejects_bad_key_id_and_time() -> None:
    for bad in ("", "a.b", "x" * 17, "k y", "ключ"):
        with pytest.raises(ValueError, match="key id"):
            Signer(KEY, bad)
    with pytest.raises(ValueError, match="signing time"):
        SIGNER.sign(parse_message("192.0.2.1"), -1)


keys = st.one_of(st.integers(V4_MAPPED_FIRST, V4_MAPPED_LAST), st.integers(0, KEY_LAST))
# Everything: lone surrogates, NUL and line breaks too (the signer normalises them).
comments = st.text(st.characters(blacklist_categories=()), max_size=300)
key_ids = st.text("abcXYZ019_-", min_size=1, max_size=16)


@given(keys, comments, key_ids, st.integers(0, 10 ** 11 - 1))
def test_signed_line_fits_and_verifies(key: int, comment: str, key_id: str, at: int) -> None:
    """Any comment (lone surrogates, line breaks, sig= words, overlong), any address,
    the longest key id and timestamp: one line, within budget, verifying as signed."""
    signer = Signer(KEY, key_id)
    line = signer.sign(ThreatMessage("", comment, 0.0, key), at)
    assert len(line.encode("utf-8")) <= MAX_LINE_BYTES
    msg = parse_message(line)
    assert msg.key == key
    assert format_message(msg) == line
    ring = KeyRing({key_id: TrustedKey(KEY.public_key(), "")})
    result = verify(msg, ring, at, HOUR)
    assert isinstance(result, Verified) and result.signed_at == at
    assert f"{msg.ip} {result.comment}".strip() == format_message(msg._replace(
        comment=result.comment))  # the signed comment is itself canonical


def test_maximal_comment_is_cut_to_fit() -> None:
    ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"
    line = Signer(KEY, "k" * 16).sign(parse_message(f"{ip} {'é' * 200}"), 10 ** 11 - 1)
    assert len(line.encode()) in (MAX_LINE_BYTES - 1, MAX_LINE_BYTES)  # é is 2 bytes
    assert "é" * 30 in line


# --- verification rules ----------------------------------------------------------------------

def tampered(msg: ThreatMessage, old: str, new: str) -> ThreatMessage:
    return parse_message(format_message(msg).replace(old, new, 1))


def test_tampering_is_rejected() -> None:
    msg = signed("203.0.113.7 ssh brute force")
    sig = msg.comment.rsplit(".", 1)[1]
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    for old, new in [("203.0.113.7", "203.0.113.8"), ("ssh", "SSH"), ("force", "force "),
                     (f".{NOW}.", f".{NOW + 1}."), (sig, flipped)]:
        assert check(tampered(msg, old, new)) == "bad signature", (old, new)


def test_signature_binds_key_id() -> None:
    """Another key's id on the same signature fails: the id is part of the signed bytes."""
    ring = KeyRing({"ammo": TrustedKey(KEY.public_key(), ""),
                    "alias": TrustedKey(KEY.public_key(), "")})
    msg = tampered(signed("203.0.113.7 x"), "sig=ammo.", "sig=alias.")
    assert verify(msg, ring, NOW, HOUR) == "bad signature"


def test_undecodable_comment_is_a_bad_signature() -> None:
    """A lone surrogate (never in a signed line) must fail verification, not raise."""
    msg = signed("203.0.113.7 x")
    assert check(msg._replace(comment="\ud800" + msg.comment[1:])) == "bad signature"


def test_non_canonical_base64_is_rejected() -> None:
    """86 characters carry 516 bits for 512: the 4 spare bits must be zero."""
    msg = signed("203.0.113.7 x")
    last = msg.comment[-1]
    variant = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = variant[variant.index(last) + 1]  # same top bits, a spare bit set
    assert check(msg._replace(comment=msg.comment[:-1] + other)) == "bad signature"


@pytest.mark.parametrize("token", ["", "ammo", "ammo.1700000000", f"ammo.0{NOW}.{'A' * 86}",
                                   f"ammo.{NOW}.{'A' * 85}", f"ammo.{NOW}.{'A' * 87}",
                                   f"ammo.{NOW}.{'+' * 86}", f"ammo.+{NOW}.{'A' * 86}",
                                   f"ammo.{'١' * 10}.{'A' * 86}"])
def test_malformed_token(token: str) -> None:
    assert check(parse_message(f"192.0.2.1 x sig={token}")) == "bad signature"


def test_unsigned_and_unknown_key() -> None:
    assert check(parse_message("192.0.2.1 ssh brute force")) == "unsigned"
    assert check(signed("192.0.2.1 x", signer=Signer(OTHER, "other"))) == "unknown key"
    # Known id, wrong key: a forgery, not an unknown provider.
    assert check(signed("192.0.2.1 x", signer=Signer(OTHER, "ammo"))) == "bad signature"


def test_expiry_and_replay() -> None:
    msg = signed("192.0.2.1 x")
    assert isinstance(check(msg, NOW + HOUR), Verified)  # a replay inside the block period
    assert check(msg, NOW + HOUR + 1) == "expired signature"  # after it: rejected
    assert check(msg, NOW + 10 * HOUR) == "expired signature"


def test_future_skew() -> None:
    assert isinstance(check(signed("192.0.2.1 x", NOW + MAX_SKEW)), Verified)
    assert check(signed("192.0.2.1 x", NOW + MAX_SKEW + 1)) == "future signature"
    assert verify(signed("192.0.2.1 x", NOW + 10), RING, NOW, HOUR, skew=5) == "future signature"


# --- the filter ------------------------------------------------------------------------------

class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_require_signature_in_a_chain() -> None:
    clock = Clock(NOW)
    chain = Chain([RequireSignature(RING, HOUR, clock), NullFilter()])
    good = signed("192.0.2.1 x")
    assert chain.check(good) is None
    assert chain.check(parse_message("192.0.2.1 x")) == "unsigned"
    assert chain.check(tampered(good, "192.0.2.1", "192.0.2.2")) == "bad signature"
    assert chain.check(signed("192.0.2.1 x", signer=Signer(OTHER, "o"))) == "unknown key"
    clock.now = NOW + HOUR + 1
    assert chain.check(good) == "expired signature"
    with pytest.raises(ValueError, match="max_age"):
        RequireSignature(RING, 0)


# --- key files -------------------------------------------------------------------------------

def test_key_ring_file(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    path.write_text("# ThreatNet key ring\n\n"
                    f"{public_line('ammo', KEY.public_key(), 'AmmoBot  on Libera')}\n"
                    f"  {public_line('other', OTHER.public_key())}  \n")
    ring = KeyRing.load(path)
    assert len(ring) == 2 and "ammo" in ring and "nobody" not in ring
    assert ring.get("ammo").comment == "AmmoBot  on Libera"
    assert ring.get("other").comment == ""
    assert isinstance(verify(signed("192.0.2.1 x"), ring, NOW, HOUR), Verified)


GOOD = public_line("ammo", KEY.public_key())
PUB = GOOD.split()[1]


@pytest.mark.parametrize("text, where, reason", [
    ("ammo\n", 1, "expected 'key-id public-key [comment]'"),
    (f"# c\na.b {PUB}\n", 2, "key id must be"),
    (f"{GOOD}\n\nammo {PUB} again\n", 3, "duplicate key id 'ammo' (first on line 1)"),
    (f"ammo {PUB}=\n", 1, "unpadded base64url"),
    (f"ammo {PUB[:-1]}\n", 1, "unpadded base64url"),
    (f"ammo {PUB[:-1]}B\n", 1, "unpadded base64url"),  # 43rd character's spare bits set
    (f"ammo {base64.b64encode(public_bytes(KEY.public_key())).decode()}\n", 1,
     "unpadded base64url"),  # standard, padded base64
])
def test_bad_key_ring(tmp_path: Path, text: str, where: int, reason: str) -> None:
    path = tmp_path / "keyring"
    path.write_text(text)
    with pytest.raises(KeyFileError, match=f"^{path}:{where}: ") as e:
        KeyRing.load(path)
    assert reason in str(e.value) and e.value.line == where


def test_key_ring_unreadable(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=f"^{tmp_path / 'absent'}: No such file"):
        KeyRing.load(tmp_path / "absent")
    path = tmp_path / "latin1"
    path.write_bytes(f"{GOOD}\nbad \xe9\n".encode("latin-1"))
    with pytest.raises(KeyFileError, match=f"^{path}:2: not UTF-8$"):
        KeyRing.load(path)


def test_private_key_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    write_private_key(path, "ammo", KEY)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    signer = load_signer(path)
    assert signer.key_id == "ammo"
    assert signer.sign(parse_message("192.0.2.1 x"), NOW) == SIGNER.sign(
        parse_message("192.0.2.1 x"), NOW)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match=r"open to others \(mode 0640\): chmod 600"):
        load_signer(path)


@pytest.mark.parametrize("text, reason", [
    ("# nothing\n", f"{{}}: no key in file"),
    ("ammo\n", "{}:1: expected 'key-id private-key'"),
    (f"ammo {PUB}\nammo {PUB}\n", "{}:2: more than one key (first on line 1)"),
    (f"ammo {PUB}=\n", "{}:1: private key must be 43 characters of unpadded base64url"),
])
def test_bad_private_key_file(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "agent.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as e:
        load_signer(path)
    assert str(e.value) == reason.format(path)


def test_keygen_script(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    script = [sys.executable, "-m", "threatnet_tools.keygen", str(path)]
    out = subprocess.run(script + ["--comment", "ammo@libera"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    signer = load_signer(path)
    assert signer.key_id == derive_key_id(signer.public_key)
    assert out[0] == f"key id: {signer.key_id}"
    ring_line = out[-1]
    assert ring_line == public_line(signer.key_id, signer.public_key, "ammo@libera")
    ring = KeyRing.parse(ring_line)
    assert isinstance(verify(signed("192.0.2.1 x", signer=signer), ring, NOW, HOUR), Verified)
    again = subprocess.run(script, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
    assert load_signer(path).key_id == signer.key_id  # not replaced

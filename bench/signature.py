"""Benchmark of signed threat lines: what requiring signatures costs a listener.

    .venv/bin/python -m bench.signature [--lines N] [--keys K] [--seed S]

Signs N lines (bench/core.py's addresses and comments) with K provider keys, then
prints, per CPU second on one core: signing, verification alone (µs each), and a
listener's path parse -> RequireSignature for valid lines and for junk (unsigned,
unknown key, expired: rejected before any Ed25519 work). Ends with the share of a
core that verifying 1,000 threats/s takes. Asserts nothing.
"""
from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from bench.core import COMMENTS, fresh_ips
from threatnet.filter import Chain
from threatnet.language import ThreatMessage, parse_message
from threatnet.signature import (KeyRing, RequireSignature, Signer, TrustedKey, derive_key_id,
                                 generate_key, verify)

NOW = 1_700_000_000
MAX_AGE = 3600
LISTENER_TARGET = 1_000  # threats/s a listener must keep up with


def per_second(label: str, count: int, run: Callable[[], object]) -> float:
    """Run once, print and return the rate in items per CPU second."""
    start = time.process_time()
    run()
    seconds = time.process_time() - start
    rate = count / seconds
    print(f"{label:44s} {rate:>10,.0f} /s {1e6 / rate:>8.1f} µs each")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=5, help="providers (keys in the ring)")
    parser.add_argument("--seed", type=int, default=2004)
    args = parser.parse_args()
    rnd = random.Random(args.seed)

    signers = []
    for _ in range(args.keys):
        key = generate_key()
        signers.append(Signer(key, derive_key_id(key.public_key())))
    ring = KeyRing({s.key_id: TrustedKey(s.public_key, "") for s in signers})
    ips = fresh_ips(rnd, 0.10)
    plain = [parse_message(f"{next(ips)} {rnd.choice(COMMENTS)}") for _ in range(args.lines)]
    jobs = [(rnd.choice(signers), msg) for msg in plain]
    lines: list[str] = []
    n = args.lines
    print(f"{n:,} lines, {args.keys} keys")

    per_second("sign", n, lambda: lines.extend(s.sign(m, NOW) for s, m in jobs))
    msgs: list[ThreatMessage] = [parse_message(line) for line in lines]
    rate = per_second("verify alone", n, lambda: [verify(m, ring, NOW, MAX_AGE) for m in msgs])
    check = Chain([RequireSignature(ring, MAX_AGE, clock=lambda: NOW)]).check
    per_second("listener: parse -> RequireSignature (valid)", n,
               lambda: [check(parse_message(line)) for line in lines])
    stranger = Signer(generate_key(), "stranger")
    junk = [f"{m.ip} {m.comment}" for m in plain]
    junk += [stranger.sign(m, NOW) for m in plain[: n // 2]]
    junk += lines[: n // 2]
    late = Chain([RequireSignature(ring, MAX_AGE, clock=lambda: NOW + MAX_AGE + 1)]).check
    per_second("listener: junk (unsigned, unknown, expired)", len(junk),
               lambda: [late(parse_message(line)) for line in junk])
    print(f"verifying {LISTENER_TARGET:,} threats/s takes {LISTENER_TARGET / rate:.1%} of a core")


if __name__ == "__main__":
    main()

"""Benchmark of the core hot path: Threat Language parse -> Threat Filter chain
(discard BOGONS) -> Threat Cache, over generated channel lines.

    .venv/bin/python -m bench.core [--lines N] [--entries N] [--ipv6 SHARE] [--seed S]

Prints lines per second of CPU time on one core, for a feed line (no sender) and
a channel line (wrapped in an Envelope, reporter recorded), and for parsing and
filtering alone; then the tracemalloc bytes per cached threat with ``--entries``
distinct threats in the cache. Asserts nothing.
"""
from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import TypeVar

from threatnet.address import format_ip
from threatnet.cache import ThreatCache
from threatnet.envelope import Envelope
from threatnet.filter import Chain, NetworkFilter
from threatnet.language import ThreatMessage, parse_message

DUPLICATE_SHARE = 0.45  # lines naming a threat that is still current
DUPLICATE_WINDOW = 50_000  # a duplicate repeats one of the last this-many threats
BOGON_SHARE = 0.03
COMMENTS = ["ssh brute force", "smtp: RCPT rejected, listed in zen", "spam trap hit",
            "web scanner /wp-login.php", "", "imap auth failures"]
REPORTERS = [("ammo", "AmmoBot"), ("mx-trap", None), ("sshguard", "sshguard"),
             ("fail2ban-eu", "f2b"), ("honeypot3", None)]
BOGON_EXAMPLES = ["10.{}.{}.{}", "192.168.{}.{}", "127.0.{}.{}", "100.64.{}.{}",
                  "fe80::{:x}:{:x}:{:x}", "fd00::{:x}:{:x}:{:x}"]

Line = tuple[str, int]  # (channel line, index into REPORTERS)
T = TypeVar("T")


def fresh_ips(rnd: random.Random, ipv6: float) -> Iterator[str]:
    """Distinct non-bogon addresses, a share ``ipv6`` of them IPv6 (2400:: to 2bff:ffff::)."""
    bogons = NetworkFilter("keep", ["BOGONS"])
    seen: set[int] = set()
    while True:
        if rnd.random() < ipv6:
            key = (0x2400 + rnd.randrange(0x0800)) << 112 | rnd.getrandbits(112)
        else:
            key = 0xFFFF << 32 | rnd.getrandbits(32)
        if key not in seen and not bogons.accepts(key):
            seen.add(key)
            yield format_ip(key)


def channel_lines(count: int, rnd: random.Random, ipv6: float) -> list[Line]:
    """New threats, duplicates of recent ones and a few bogons, from a few reporters."""
    fresh = fresh_ips(rnd, ipv6)
    issued: list[str] = []
    lines = []
    for _ in range(count):
        roll = rnd.random()
        if roll < BOGON_SHARE:
            ip = rnd.choice(BOGON_EXAMPLES).format(*(rnd.randrange(256) for _ in range(3)))
        elif roll < BOGON_SHARE + DUPLICATE_SHARE and issued:
            ip = issued[rnd.randrange(max(0, len(issued) - DUPLICATE_WINDOW), len(issued))]
        else:
            ip = next(fresh)
            issued.append(ip)
        lines.append((f"{ip} {rnd.choice(COMMENTS)}", rnd.randrange(len(REPORTERS))))
    return lines


def chain_for(cache: ThreatCache) -> Chain:
    return Chain([NetworkFilter("discard", ["BOGONS"], name="bogon"), cache])


def channel_path(lines: list[Line], cache: ThreatCache) -> dict[str | None, int]:
    """What a channel line goes through; returns how many lines ended how."""
    check = chain_for(cache).check
    outcomes: dict[str | None, int] = {}
    for line, who in lines:
        msg = parse_message(line)
        nick, account = REPORTERS[who]
        reason = check(msg, Envelope(msg, nick, account, voiced=True))
        outcomes[reason] = outcomes.get(reason, 0) + 1
    return outcomes


def feed_path(lines: list[Line], cache: ThreatCache) -> None:
    """What a line from a local feed goes through: no sender."""
    check = chain_for(cache).check
    created = time.time()  # LogFeed.poll stamps a whole batch with one clock reading
    for line, _ in lines:
        check(parse_message(line, created))


def chain_only(msgs: list[ThreatMessage], cache: ThreatCache) -> None:
    check = chain_for(cache).check
    for msg in msgs:
        check(msg)


def speed(count: int, rnd: random.Random, ipv6: float) -> None:
    lines = channel_lines(count, rnd, ipv6)
    gc.freeze()  # the generated input is the bench's, not the agent's: keep it out of GC passes
    figures: list[tuple[str, float]] = []

    def timed(label: str, run: Callable[[], T]) -> T:
        start = time.process_time()
        result = run()
        figures.append((label, time.process_time() - start))
        return result

    timed("feed line:    parse -> chain", lambda: feed_path(lines, ThreatCache()))
    outcomes = timed("channel line: parse -> Envelope -> chain",
                     lambda: channel_path(lines, ThreatCache()))
    msgs = timed("  parse alone", lambda: [parse_message(line) for line, _ in lines])
    timed("  chain alone (discard BOGONS, cache)", lambda: chain_only(msgs, ThreatCache()))

    mix = ", ".join(f"{reason or 'kept'} {n / count:.0%}" for reason, n in outcomes.items())
    print(f"{count:,} lines, {ipv6:.0%} of new threats IPv6: {mix}")
    for label, seconds in figures:
        print(f"{label:42s} {count / seconds:>10,.0f} lines/s")


def memory(entries: int, rnd: random.Random, ipv6: float) -> None:
    fresh = fresh_ips(rnd, ipv6)
    lines = [(f"{next(fresh)} {rnd.choice(COMMENTS)}", rnd.randrange(len(REPORTERS)))
             for _ in range(entries)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache = ThreatCache()
    channel_path(lines, cache)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(f"memory: {used / len(cache):.1f} bytes per cached threat at {len(cache):,} entries "
          f"({used / 2**20:,.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines for the speed runs")
    parser.add_argument("--entries", type=int, default=1_000_000,
                        help="distinct threats for the memory run")
    parser.add_argument("--ipv6", type=float, default=0.10,
                        help="share of new threats that are IPv6 (default 0.10)")
    parser.add_argument("--seed", type=int, default=2004)
    args = parser.parse_args()
    speed(args.lines, random.Random(args.seed), args.ipv6)
    memory(args.entries, random.Random(args.seed), args.ipv6)


if __name__ == "__main__":
    main()

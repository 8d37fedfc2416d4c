"""Time for the firewall responder to apply 10,000 threats to real nftables sets.

Runs inside a network namespace of its own (root needed), loading the shipped
ruleset conf/nftables/threatnet.nft there; the host's firewall is not touched.
Target: under 0.5 s for 10,000 threats.

    sudo .venv/bin/python -m bench.firewall [COUNT]
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from threatnet.response import FirewallResponder, Threat, ThreatResponse

ROOT = Path(__file__).resolve().parents[1]

TARGET = 0.5


def threats(count: int, v6_share: float = 0.2) -> list[Threat]:
    rng = random.Random(2004)
    now = time.time()
    out = {}
    while len(out) < count:
        if rng.random() < v6_share:
            ip = f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
        else:
            ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}." \
                 f"{rng.randrange(1, 255)}"
        t = Threat.make(ip, "bench", "bench", now + rng.uniform(60, 3600))
        out[t.key] = t
    return list(out.values())


def timed(label: str, action) -> float:
    start = time.perf_counter()
    action()
    elapsed = time.perf_counter() - start
    print(f"{label:<52} {elapsed:7.3f} s")
    return elapsed


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    if os.geteuid() != 0:
        print("bench.firewall needs root (network namespace + nftables)", file=sys.stderr)
        return 2
    ns = f"tnbench{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        nft = ["ip", "netns", "exec", ns, "nft"]
        fw = FirewallResponder(nft=nft, ruleset=ROOT / "conf" / "nftables" / "threatnet.nft")
        batch = threats(count)
        fw.resync([], time.time())  # load the ruleset
        print(f"{count} threats ({sum(t.v4 for t in batch)} IPv4, "
              f"{sum(not t.v4 for t in batch)} IPv6), one nft transaction each:")
        renewed = [t._replace(expires_at=t.expires_at + 600) for t in batch]
        results = [
            timed("resync: flush + add all (start-up)", lambda: fw.resync(batch, time.time())),
            timed("update: remove all (add + delete)", lambda: fw.update([], batch, time.time())),
            timed("update: add all (a burst of new threats)",
                  lambda: fw.update(batch, [], time.time())),
        ]
        timed("update: renew all present (add + delete + add)",
              lambda: fw.update(renewed, [], time.time()))  # rare: not held to the target
        fw.resync([], time.time())

        host = ThreatResponse([fw])
        host.start()

        def through_host() -> None:
            for t in batch:
                host.added(t)
            assert host.wait_idle(30), host.status()

        results.append(timed(f"host: {count} added() calls until applied", through_host))
        host.stop()
        listed = subprocess.run(nft + ["-j", "list", "set", "inet", "threatnet", "tn_v4"],
                                capture_output=True, text=True, check=True).stdout
        count4 = sum(len(item["set"].get("elem", [])) for item in json.loads(listed)["nftables"]
                     if "set" in item)
        print(f"elements in tn_v4 afterwards: {count4} (expected {sum(t.v4 for t in batch)})")
        worst = max(results)
        verdict = "OK" if worst < TARGET else "SLOW"
        print(f"slowest: {worst:.3f} s (target < {TARGET} s): {verdict}")
        return 0 if worst < TARGET else 1
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    sys.exit(main())

"""Long run of the plugin fuzzer: both plugins in one bot, fed fuzzed raw IRC lines.

    .venv/bin/python -m bench.fuzz [--lines 1000000] [--seed 2004] [--check-every 100]

The fuzz harness of lab/fuzz.py (read its docstring), which the tests run for a few
thousand lines: raw bytes decoded and parsed the way Limnoria's socket driver does, fed to a bot running
ThreatNetCache + ThreatNetGuard in #test, every exception Limnoria catches in a hook
captured from its log. Per line it checks the voice of the members the line concerns;
every --check-every lines the full invariants (Guard WHOX IPs, listener caches), and
every 500 lines a rejoin and resync after which voices must match the whitelist
exactly. Prints progress every 100,000 lines, then lines/s, each kind of failure
with the first line that caused it and how often, and what Limnoria itself refused
or raised (not failures of ours). Exit status 1 if anything failed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from lab.fuzz import FuzzHarness  # Limnoria in test mode, with a throw-away registry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2004)
    parser.add_argument("--check-every", type=int, default=100,
                        help="full invariant check every N lines (the voice check is per line)")
    args = parser.parse_args()

    harness = FuzzHarness()
    harness.setUp()
    try:
        def progress(n, seconds, failures):
            print(f"  {n:>9,} lines  {seconds:7.1f} s  {n / seconds:7.0f} lines/s  "
                  f"{failures} kinds of failure", flush=True)
        print(f"fuzzing ThreatNetCache + ThreatNetGuard with {args.lines:,} lines "
              f"(seed {args.seed}, pid {os.getpid()})", flush=True)
        started = time.process_time()
        report = harness.run_fuzz(args.lines, args.seed, check_every=args.check_every,
                                  progress=progress)
        cpu = time.process_time() - started
    finally:
        harness.tearDown()

    print(f"\nlines: {report['lines']:,} in {report['seconds']:.1f} s wall, {cpu:.1f} s CPU: "
          f"{report['lines_per_s']:.0f} lines/s")
    print(f"failures (kinds): {len(report['failures'])}")
    for text in report["failures"]:
        print("\n" + "\n".join(line[:300] for line in text.splitlines()))
    print(f"\nLimnoria refused to parse {report['refused_by_limnoria']:,} lines (dropped, as "
          "its driver does)")
    for title, counts in (("Limnoria raised out of feedMsg", report["limnoria_raised"]),
                          ("Limnoria logged exceptions of its own",
                           report["limnoria_logged"]),
                          ("irc.state oddities (Limnoria's)", report["limnoria_state"])):
        if counts:
            print(f"{title}:")
            for kind, count in sorted(counts.items(), key=lambda kv: -kv[1]):
                print(f"  {count:>8,}  {kind}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

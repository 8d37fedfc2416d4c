"""Benchmark of the ThreatNetCache listener inside Limnoria: raw channel lines fed
through a real ``irclib.Irc`` (parse, IRC state, every plugin hook) with only
ThreatNetCache loaded, versus the same with a no-op plugin, in one run.

    .venv/bin/python bench/listener.py [--lines N] [--chunk C] [--ipv6 F] [--seed S]

Two workloads: channel traffic of threat lines from voiced agents (bench/core.py's
mix of new threats, duplicates, IPv6 and bogons), and chatter that is not threat
lines. Prints lines per CPU second for both plugins and their ratio (the target is
>= 90 %): the two Irc objects take turns on chunks of the same lines, and the
median chunk ratio is reported, so drifting machine load cancels. Asserts nothing.
"""
from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

CHANNEL, NICK = "#threatnet", "agent"
NOOP, NOOP_NOIGNORE = "no-op", "no-op noIgnore"
NETWORKS = {"ThreatNetCache": "bench", NOOP: "baseline", NOOP_NOIGNORE: "baseline2"}  # own Irc


def open_registry(tmp: str) -> None:
    """A throwaway registry, opened before supybot.conf is imported (as supybot does)."""
    for sub in ("conf", "data", "data/tmp", "logs", "backup"):
        os.makedirs(os.path.join(tmp, sub))
    path = os.path.join(tmp, "conf", "bench.conf")
    with open(path, "w") as f:
        servers = "".join(f"supybot.networks.{net}.servers: 127.0.0.1:6667\n"
                          for net in NETWORKS.values())
        f.write(f"""supybot.nick: {NICK}
supybot.networks: {" ".join(NETWORKS.values())}
{servers}supybot.directories.conf: {tmp}/conf
supybot.directories.data: {tmp}/data
supybot.directories.data.tmp: {tmp}/data/tmp
supybot.directories.log: {tmp}/logs
supybot.directories.backup: {tmp}/backup
supybot.directories.plugins: {ROOT}/plugins
supybot.log.stdout: False
supybot.log.level: WARNING
supybot.plugins.ThreatNetCache.enable: True
""")
    import supybot.registry as registry
    registry.open_registry(path)


def workloads(count: int, seed: int, ipv6: float) -> dict[str, list[str]]:
    """Raw server lines: threat traffic from the voiced reporters, and plain chatter."""
    from core import REPORTERS, channel_lines
    rnd = random.Random(seed)
    threats = [f":{REPORTERS[who][0]}!u@198.51.100.{who} PRIVMSG {CHANNEL} :{line}"
               for line, who in channel_lines(count, rnd, ipv6)]
    words = ["hello", "anyone seen the new scanner?", "lunch", "brb", "ok", "+1"]
    chatter = [f":human{n % 50}!h@203.0.113.{n % 50} PRIVMSG {CHANNEL} :{rnd.choice(words)}"
               for n in range(count)]
    return {"threat lines": threats, "chatter": chatter}


def make_irc(plugin: str):
    """An Irc joined to CHANNEL, with the reporters voiced and only ``plugin`` loaded."""
    import supybot.callbacks as callbacks
    import supybot.irclib as irclib
    import supybot.ircmsgs as ircmsgs
    import supybot.plugin as supyplugin
    from core import REPORTERS

    class Noop(callbacks.Plugin):
        """Does nothing with channel lines: the baseline."""
        noIgnore = plugin == NOOP_NOIGNORE

        def doPrivmsg(self, irc, msg):
            pass

    irc = irclib.Irc(NETWORKS[plugin], callbacks=[])  # not Limnoria's shared plugin list
    if plugin != "ThreatNetCache":
        irc.addCallback(Noop(irc))
    else:
        supyplugin.loadPluginClass(irc, supyplugin.loadPluginModule(plugin))
    voiced = " ".join("+" + nick for nick, _ in REPORTERS)
    for raw in (f":{NICK}!a@192.0.2.1 JOIN {CHANNEL}",
                f":irc.example.net 353 {NICK} = {CHANNEL} :@{NICK} {voiced}",
                f":irc.example.net 366 {NICK} {CHANNEL} :End of /NAMES list."):
        irc.feedMsg(ircmsgs.IrcMsg(raw))
    return irc


def cpu_seconds(irc, lines: list[str]) -> float:
    """CPU time to feed raw lines to an Irc: other processes on the machine do not count."""
    import supybot.ircmsgs as ircmsgs
    feed, parse = irc.feedMsg, ircmsgs.IrcMsg
    start = time.process_time()
    for raw in lines:
        feed(parse(raw))
    return time.process_time() - start


def compare(lines: list[str], chunk: int) -> tuple[dict[str, float], dict[str, float]]:
    """Lines/s of each plugin over all lines, and per no-op the median of the
    per-chunk rate ratios: every Irc gets each chunk in turn (in a rotating order),
    so drift in machine load cancels."""
    ircs = {plugin: make_irc(plugin) for plugin in NETWORKS}
    seconds = dict.fromkeys(ircs, 0.0)
    ratios: dict[str, list[float]] = {NOOP: [], NOOP_NOIGNORE: []}
    orders = list(itertools.permutations(ircs))
    for n, start in enumerate(range(0, len(lines), chunk)):
        part = lines[start:start + chunk]
        took = {plugin: cpu_seconds(ircs[plugin], part) for plugin in orders[n % len(orders)]}
        for plugin, t in took.items():
            seconds[plugin] += t
        for noop, chunk_ratios in ratios.items():
            chunk_ratios.append(took[noop] / took["ThreatNetCache"])
    for plugin in (NOOP, NOOP_NOIGNORE, "ThreatNetCache"):  # the last: runs the plugin's die()
        ircs[plugin]._reallyDie()
    return ({p: len(lines) / t for p, t in seconds.items()},
            {noop: statistics.median(r) for noop, r in ratios.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=40_000)
    parser.add_argument("--chunk", type=int, default=1_000, help="lines per alternation")
    parser.add_argument("--ipv6", type=float, default=0.10,
                        help="share of new threats that are IPv6 (default 0.10)")
    parser.add_argument("--seed", type=int, default=2004)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="threatnet-bench-")
    try:
        open_registry(tmp)
        for name, lines in workloads(args.lines, args.seed, args.ipv6).items():
            gc.collect()
            gc.freeze()  # the generated input is the bench's: keep it out of GC passes
            rates, ratios = compare(lines, args.chunk)
            print(f"{name:>12}: no-op {rates[NOOP]:>7,.0f} lines/s, ThreatNetCache "
                  f"{rates['ThreatNetCache']:>7,.0f} lines/s, ratio {ratios[NOOP]:.1%}; "
                  f"vs a no-op with noIgnore {ratios[NOOP_NOIGNORE]:.1%} "
                  f"(medians of {len(range(0, args.lines, args.chunk))} chunks)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

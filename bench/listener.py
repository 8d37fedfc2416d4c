"""Benchmark of a plugin inside Limnoria (the ThreatNetCache listener, or with
--plugin the ThreatNetGuard channel bot): raw channel lines fed through a real
``irclib.Irc`` (parse, IRC state, every plugin hook) with only that plugin loaded,
versus the same with no-op plugins, in one run.

    .venv/bin/python -m bench.listener [--lines N] [--chunk C] [--ipv6 F] [--seed S]
                                       [--plugin ThreatNetGuard] [--owner]

``--plugin ThreatNetGuard`` measures the channel bot's policing the same way: the
reporters are whitelisted and the bot is op; its flood limit and bogon kicks are off,
since here the lines arrive all at once and a kicked reporter would leave the hot path.
The chatter comes from people not in the channel: for the Guard, its cheapest path.

``--owner`` loads Limnoria's Owner plugin into every Irc too, as into every real bot:
Owner looks for a command in each channel line, which the plugins spare it for lines
that cannot address the bot (threatnet_irc/addressing.py).

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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHANNEL, NICK = "#threatnet", "agent"
REPORTER_HOST = "198.51.100.{}"  # the reporters' hosts: the Guard whitelists the /24
TOPIC = "threatnet://threatnet.invalid/datn2004/ip-comment block=3600"
NOOP, NOOP_NOIGNORE = "no-op", "no-op noIgnore"
PLUGIN = "plugin"  # the plugin measured
NETWORKS = {PLUGIN: "bench", NOOP: "baseline", NOOP_NOIGNORE: "baseline2"}  # each its own Irc
SETTINGS = {
    "ThreatNetCache": {"enable": True},
    "ThreatNetGuard": {"enable": True, "flood.lines": 0, "kick.bogons": False,
                       "realHosts": True},  # the reporters' hosts are their IPs
}


def open_registry(tmp: str, plugin: str = "ThreatNetCache") -> None:
    """A throwaway registry, opened before supybot.conf is imported (as supybot does),
    and the Guard's whitelist (the reporters' network)."""
    for sub in ("conf", "data", "data/tmp", "data/web", "logs", "backup"):
        os.makedirs(os.path.join(tmp, sub))
    path = os.path.join(tmp, "conf", "bench.conf")
    with open(path, "w") as f:
        servers = "".join(f"supybot.networks.{net}.servers: 127.0.0.1:6667\n"
                          for net in NETWORKS.values())
        settings = "".join(f"supybot.plugins.{plugin}.{name}: {value}\n"
                           for name, value in SETTINGS[plugin].items())
        f.write(f"""supybot.nick: {NICK}
supybot.networks: {" ".join(NETWORKS.values())}
{servers}supybot.directories.conf: {tmp}/conf
supybot.directories.data: {tmp}/data
supybot.directories.data.tmp: {tmp}/data/tmp
supybot.directories.data.web: {tmp}/data/web
supybot.directories.log: {tmp}/logs
supybot.directories.backup: {tmp}/backup
supybot.directories.plugins: {ROOT}/plugins
supybot.log.stdout: False
supybot.log.level: WARNING
{settings}""")
    with open(os.path.join(tmp, "data", "ThreatNetGuard.whitelist.yaml"), "w") as f:
        f.write(f'channels:\n  "{CHANNEL}":\n    - {REPORTER_HOST.format("0/24")}\n')
    import supybot.registry as registry
    registry.open_registry(path)


def workloads(count: int, seed: int, ipv6: float) -> dict[str, list[str]]:
    """Raw server lines: threat traffic from the voiced reporters, and plain chatter."""
    from bench.core import REPORTERS, channel_lines
    rnd = random.Random(seed)
    threats = [f":{REPORTERS[who][0]}!u@{REPORTER_HOST.format(who)} PRIVMSG {CHANNEL} :{line}"
               for line, who in channel_lines(count, rnd, ipv6)]
    words = ["hello", "anyone seen the new scanner?", "lunch", "brb", "ok", "+1"]
    chatter = [f":human{n % 50}!h@203.0.113.{n % 50} PRIVMSG {CHANNEL} :{rnd.choice(words)}"
               for n in range(count)]
    return {"threat lines": threats, "chatter": chatter}


def make_irc(which: str, plugin: str, owner: bool):
    """An Irc joined to CHANNEL (opped, with its topic), with the reporters voiced and
    only ``plugin`` loaded, or only one of the no-ops (``which``); Owner too if asked."""
    import supybot.callbacks as callbacks
    import supybot.irclib as irclib
    import supybot.ircmsgs as ircmsgs
    import supybot.plugin as supyplugin
    from bench.core import REPORTERS

    class Noop(callbacks.Plugin):
        """Does nothing with channel lines: the baseline."""
        noIgnore = which == NOOP_NOIGNORE

        def doPrivmsg(self, irc, msg):
            pass

    irc = irclib.Irc(NETWORKS[which], callbacks=[])  # not Limnoria's shared plugin list
    if owner:
        supyplugin.loadPluginClass(irc, supyplugin.loadPluginModule("Owner"))
    if which == PLUGIN:
        supyplugin.loadPluginClass(irc, supyplugin.loadPluginModule(plugin))
    else:
        irc.addCallback(Noop(irc))
    voiced = " ".join("+" + nick for nick, _ in REPORTERS)
    for raw in (f":{NICK}!a@192.0.2.1 JOIN {CHANNEL}",
                f":irc.example.net 332 {NICK} {CHANNEL} :{TOPIC}",
                f":irc.example.net 353 {NICK} = {CHANNEL} :@{NICK} {voiced}",
                f":irc.example.net 366 {NICK} {CHANNEL} :End of /NAMES list.",
                f":irc.example.net 315 {NICK} {CHANNEL} :End of /WHO list."):
        irc.feedMsg(ircmsgs.IrcMsg(raw))
    while irc.takeMsg():  # what the plugin sent on joining (the Guard: modes)
        pass
    return irc


def cpu_seconds(irc, lines: list[str]) -> float:
    """CPU time to feed raw lines to an Irc: other processes on the machine do not count."""
    import supybot.ircmsgs as ircmsgs
    feed, parse = irc.feedMsg, ircmsgs.IrcMsg
    start = time.process_time()
    for raw in lines:
        feed(parse(raw))
    return time.process_time() - start


def compare(lines: list[str], chunk: int, plugin: str,
            owner: bool) -> tuple[dict[str, float], dict[str, float]]:
    """Lines/s of each plugin over all lines, and per no-op the median of the
    per-chunk rate ratios: every Irc gets each chunk in turn (in a rotating order),
    so drift in machine load cancels."""
    ircs = {which: make_irc(which, plugin, owner) for which in NETWORKS}
    seconds = dict.fromkeys(ircs, 0.0)
    ratios: dict[str, list[float]] = {NOOP: [], NOOP_NOIGNORE: []}
    orders = list(itertools.permutations(ircs))
    for n, start in enumerate(range(0, len(lines), chunk)):
        part = lines[start:start + chunk]
        took = {which: cpu_seconds(ircs[which], part) for which in orders[n % len(orders)]}
        for which, t in took.items():
            seconds[which] += t
        for noop, chunk_ratios in ratios.items():
            chunk_ratios.append(took[noop] / took[PLUGIN])
    for which in (NOOP, NOOP_NOIGNORE, PLUGIN):  # the last: runs the plugin's die()
        ircs[which]._reallyDie()
    return ({w: len(lines) / t for w, t in seconds.items()},
            {noop: statistics.median(r) for noop, r in ratios.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=40_000)
    parser.add_argument("--chunk", type=int, default=1_000, help="lines per alternation")
    parser.add_argument("--ipv6", type=float, default=0.10,
                        help="share of new threats that are IPv6 (default 0.10)")
    parser.add_argument("--seed", type=int, default=2004)
    parser.add_argument("--plugin", choices=sorted(SETTINGS), default="ThreatNetCache")
    parser.add_argument("--owner", action="store_true", help="Owner in every Irc, too")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="threatnet-bench-")
    try:
        open_registry(tmp, args.plugin)
        for name, lines in workloads(args.lines, args.seed, args.ipv6).items():
            gc.collect()
            gc.freeze()  # the generated input is the bench's: keep it out of GC passes
            rates, ratios = compare(lines, args.chunk, args.plugin, args.owner)
            print(f"{name:>12}: no-op {rates[NOOP]:>7,.0f} lines/s, {args.plugin} "
                  f"{rates[PLUGIN]:>7,.0f} lines/s, ratio {ratios[NOOP]:.1%}; "
                  f"vs a no-op with noIgnore {ratios[NOOP_NOIGNORE]:.1%} "
                  f"(medians of {len(range(0, args.lines, args.chunk))} chunks)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

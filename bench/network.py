#!/usr/bin/env python3
"""Network benchmark: propagation across linked servers, to N listener bots.

Three linked ngIRCd servers on loopback (servers 2 and 3 link to server 1, as
lab/servers.py's ngircd_network makes them), one provider on server 1 (a raw
client that creates the channel, so it is opped and therefore trusted) and N
listener bots (real supybot processes with ThreatNetCache) spread round-robin over
the servers. The provider offers each rate for a bounded time; latency is from the
provider's send to when a listener has the threat in its Threat Cache, measured by
bench/propagation.py's Probe plugin (its helpers are reused, not copied). Raw
clients on every server give what the servers alone deliver. Prints figures,
asserts nothing.

With --bridged M, a separate ngIRCd network ("far") gets M more listeners, reached
through one Network Bridge bot (ThreatNetCache, bridge main #bench -> far #bench,
its queue unthrottled): what one bridge hop adds.

    .venv/bin/python -m bench.network [--listeners 9] [--seconds 10] [--rates 100,1000]
                                      [--servers 3] [--config ThreatNetCache|NoOp]
                                      [--bridged 0]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.propagation import (CHANNEL, CONFIGS, PROBE_INIT, PROBE_PLUGIN, collect,
                               cpu_seconds, host_busy, ips, offer, percentile, probe_size)
from lab.bots import MINIMAL, PLUGINS_DIR, Bot, network_settings, start_bots, stop_bots
from lab.process import stop_all
from lab.servers import NgIRCd, ngircd_network


IDLE = 5.0  # seconds of no traffic, to measure a listener's idle CPU
BRIDGE_BLOCK = 3  # the bridge bot's block period: its quiet period is over after 5 s
P = "supybot.plugins.ThreatNetCache."


def bridge_bot(work: Path, main: NgIRCd, far: NgIRCd, plugins_dir: str) -> Bot:
    """A bot on both networks relaying main #bench -> far #bench as fast as it can."""
    settings = {**network_settings({"main": (main.address, [CHANNEL]),
                                    "far": (far.address, [CHANNEL])}),
                f"{P}enable": True, f"{P}blockPeriod": BRIDGE_BLOCK, f"{P}pollInterval": 0.05,
                f"{P}outbox.rate": 1_000_000, f"{P}outbox.burst": 100_000,
                f"{P}outbox.size": 100_000, f"{P}bridges": "bench",
                f"{P}bridge.bench.a": f"main {CHANNEL}", f"{P}bridge.bench.b": f"far {CHANNEL}",
                f"{P}bridge.bench.direction": "a->b"}
    return Bot(work / "bots", "bridge", main.address, CHANNEL, network="main",
               plugins=["ThreatNetCache"], settings=settings, plugins_dir=plugins_dir)


def install_probe(work: Path) -> str:
    """The Probe plugin in work/plugins; returns supybot.directories.plugins."""
    probe_dir = work / "plugins" / "Probe"
    probe_dir.mkdir(parents=True)
    (probe_dir / "__init__.py").write_text(PROBE_INIT)
    (probe_dir / "plugin.py").write_text(PROBE_PLUGIN)
    return f"{PLUGINS_DIR}, {work / 'plugins'}"


def raw_latencies(client, sent: dict[str, float]) -> list[float]:
    with client._cond:
        seen = client.lines[client.cursor:]
    return [(l.received - sent[l.text.split(" ", 1)[0]]) * 1000 for l in seen
            if l.command == "PRIVMSG" and l.text.split(" ", 1)[0] in sent]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=9)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="100,1000")
    parser.add_argument("--config", default="ThreatNetCache", choices=sorted(CONFIGS))
    parser.add_argument("--minimal", action="store_true",
                        help="listeners load only their plugins (+ Owner), not Admin, "
                             "Channel, Config, Misc, User")
    parser.add_argument("--bridged", type=int, default=0,
                        help="listeners on a far network, behind a bridge bot")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="threatnet-netbench-"))
    plugins_dir = install_probe(work)
    cfg = dict(CONFIGS[args.config])
    if args.minimal:
        cfg["settings"] = {**cfg["settings"], **MINIMAL}
    t0 = time.monotonic()
    servers = ngircd_network(work / "net", args.servers)
    linked_in = time.monotonic() - t0
    provider = servers[0].client("provider").connect()
    provider.join(CHANNEL)  # first in: opped by the server, so trusted as voiced-or-better
    observers = [s.client(f"observer{n}").connect() for n, s in enumerate(servers, 1)]
    for o in observers:
        o.join(CHANNEL)
    bots = [Bot(work / "bots", f"listen{i}", servers[i % len(servers)].address, CHANNEL,
                plugins=cfg["plugins"], settings=cfg["settings"], plugins_dir=plugins_dir)
            for i in range(args.listeners)]
    home = {b.nick: i % len(servers) for i, b in enumerate(bots)}  # group: server index
    groups = [f"s{n}" for n in range(1, len(servers) + 1)]
    far = bridge = None
    if args.bridged:
        far = NgIRCd(work / "far", name="far.test").start()
        bridge = bridge_bot(work, servers[0], far, plugins_dir)
        observers.append(far.client("observerfar").connect())  # joins after the bridge
        for i in range(args.bridged):
            bot = Bot(work / "bots", f"far{i}", far.address, CHANNEL, plugins=cfg["plugins"],
                      settings=cfg["settings"], plugins_dir=plugins_dir)
            bots.append(bot)
            home[bot.nick] = len(groups)
        groups.append("far")
    rows = []
    try:
        print(f"{len(servers)} linked ngIRCd servers (linked in {linked_in:.2f} s); "
              f"{args.listeners} {args.config}{' (minimal)' if args.minimal else ''} listener "
              "bots, round-robin over them; provider "
              f"on server 1; {args.seconds:g} s per rate; Python {sys.version.split()[0]}; "
              f"{os.cpu_count()} cores", flush=True)
        if bridge is not None:
            print(f"bridge bot on s1 and a separate ngIRCd (far), {args.bridged} listener "
                  "bots there", flush=True)
            bridge.start()  # first in far #bench: opped there, so its relays are trusted
            while f"Join to {CHANNEL} on far synced" not in bridge.read_log():
                bridge.proc.check_alive()
                time.sleep(0.05)
            observers[-1].join(CHANNEL)
            synced_at = time.monotonic() + BRIDGE_BLOCK + 3
        start_bots(bots, timeout=90)
        time.sleep(1.0)  # let the joins settle (WHO replies, plugin timers)
        before = [cpu_seconds(b.proc.pid) for b in bots]
        time.sleep(IDLE)
        idle = statistics.mean(cpu_seconds(b.proc.pid) - c for b, c in zip(bots, before))
        print(f"idle listener: {idle / IDLE * 100:.1f} % of a core (mean over {IDLE:g} s, "
              "no traffic)", flush=True)
        if bridge is not None:
            time.sleep(max(0.0, synced_at - time.monotonic()))
        first_ip = 0
        for rate in rates:
            count = int(rate * args.seconds)
            addresses = ips(first_ip, count)
            first_ip += count
            offsets = {b.nick: probe_size(b) for b in bots}
            bot_cpu = {b.nick: cpu_seconds(b.proc.pid) for b in bots}
            server_cpu = [cpu_seconds(s.proc.pid) for s in servers]
            bridge_cpu = cpu_seconds(bridge.proc.pid) if bridge else 0.0
            busy_before = host_busy()
            for o in observers:
                o.mark()
            sent = offer(provider, addresses, rate)
            arrived = collect(bots, offsets, sent, stall=3.0, limit=120.0)
            last = max((t for got in arrived.values() for t in got.values()), default=0.0)
            wall = max(args.seconds, last - min(sent.values()))
            cpu = [cpu_seconds(b.proc.pid) - bot_cpu[b.nick] for b in bots]
            scpu = [cpu_seconds(s.proc.pid) - c for s, c in zip(servers, server_cpu)]
            bridge_cpu = cpu_seconds(bridge.proc.pid) - bridge_cpu if bridge else 0.0
            busy, total = (a - b for a, b in zip(host_busy(), busy_before))
            by_server = [[(t - sent[ip]) * 1000 for b in bots if home[b.nick] == n
                          for ip, t in arrived[b.nick].items()] for n in range(len(groups))]
            latencies = [x for group in by_server for x in group]
            raw = [raw_latencies(o, sent) for o in observers]
            cached = len(latencies)
            rows.append({
                "rate": rate, "sent": len(sent), "cached": cached,
                "loss": 1 - cached / (len(sent) * len(bots)),
                "p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99),
                "max": max(latencies, default=float("nan")),
                "p99s": [percentile(g, 0.99) for g in by_server],
                "raw_p99": [percentile(r, 0.99) for r in raw],
                "raw_loss": 1 - sum(len(r) for r in raw) / (len(sent) * len(raw)),
                "cpu": statistics.mean(cpu) / wall * 100,
                "us_line": sum(cpu) / max(1, cached) * 1e6,
                "server_cpu": [c / wall * 100 for c in scpu],
                "server_us": sum(scpu) / max(1, len(sent)) * 1e6,
                "host": busy / max(total, 1) * 100, "wall": wall,
                "bridge_us": bridge_cpu / len(sent) * 1e6,
                "errors": sum(1 for b in bots + ([bridge] if bridge else [])
                              for e in b.errors() if e.startswith("ERROR")),
            })
            time.sleep(1.0)
    finally:
        stop_bots(bots + ([bridge] if bridge else []))
        for c in [provider, *observers]:
            c.close()
        for s in servers + ([far] if far else []):
            s.stop()
        stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("groups: " + "/".join(groups))
    print(f"{'rate/s':>6} {'sent':>6} {'cached':>7} {'loss':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'p99 by server ms':>22} {'raw p99 by server':>22} {'raw loss':>8} "
          f"{'CPU %':>6} {'us/line':>7} {'ircd CPU % each':>18} {'ircd us/line':>12} "
          f"{'host %':>6} {'done s':>6} {'bridge us/line':>14} {'errors':>6}")
    for r in rows:
        p99s = "/".join(f"{x:.1f}" for x in r["p99s"])
        raw = "/".join(f"{x:.2f}" for x in r["raw_p99"])
        scpu = "/".join(f"{x:.1f}" for x in r["server_cpu"])
        print(f"{r['rate']:>6} {r['sent']:>6} {r['cached']:>7} {r['loss']:>7.2%} "
              f"{r['p50']:>8.2f} {r['p99']:>8.2f} {r['max']:>8.1f} {p99s:>22} {raw:>22} "
              f"{r['raw_loss']:>8.2%} {r['cpu']:>6.1f} {r['us_line']:>7.0f} {scpu:>18} "
              f"{r['server_us']:>12.1f} {r['host']:>6.0f} {r['wall']:>6.1f} "
              f"{r['bridge_us']:>14.0f} {r['errors']:>6}")
    print("\ncached: (threat, listener) pairs seen in a listener's cache; loss: pairs never seen"
          "\n(waited until nothing new arrived for 3 s). p99 by server: listeners on each"
          "\ngroup (the provider is on s1; far: behind the bridge). raw: ms from send to a raw"
          "\nclient on each server (the servers alone; far: after the bridge bot). CPU %: one"
          "\nlistener's mean over `done s` (from the first send until the last threat was"
          "\ncached), in % of one core; us/line: listener"
          "\nCPU per cached line. ircd CPU %: each server's, in % of one core; ircd us/line:"
          "\nthe linked servers' CPU per line offered. bridge us/line: the bridge bot's CPU"
          "\nper line offered. host %: the whole machine (all cores, every process) while"
          "\nthe rate ran.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

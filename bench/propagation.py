#!/usr/bin/env python3
"""Propagation benchmark: how fast a threat line reaches the Threat Cache of every listener.

One ngIRCd on loopback (MaxPenaltyTime=0), one provider (a raw client in the provider
role: it creates the channel, so it is opped and therefore trusted, and sends
`IP comment` lines) and five listener bots (real supybot processes). The provider offers
each rate for a bounded time; latency is from the provider's send to the time.time() a
Probe plugin records once a listener has the threat (data/probe.tsv). The same bots then
run a no-op plugin that records each line it sees: the baseline cost of Limnoria's
ingest. Prints figures, asserts nothing.

    .venv/bin/python -m bench.propagation [--seconds 10] [--rates 100,1000] [--listeners 5]
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

from lab.ircclient import Client
from lab.bots import PLUGINS_DIR, Bot, start_bots, stop_bots
from lab.process import stop_all
from lab.servers import NgIRCd

CHANNEL = "#bench"
TICK = 0.01  # the provider sends a batch every 10 ms

# The listener-side observable. ThreatNetCache writes no log line per cached threat, so
# the bench loads this Probe plugin after it (callAfter): for every channel line it
# records `IP <tab> time.time()` once the IP is in ThreatNetCache's cache of that channel
# (through the plugin's public `channel()`). Without ThreatNetCache it is
# the baseline no-op plugin and records every line. Records go to a buffered file
# (data/probe.tsv, flushed every 0.2 s), so the probe itself costs microseconds.
PROBE_INIT = '''"""Probe: the propagation benchmark's listener-side observable and baseline."""
import supybot
__version__ = "0"
__author__ = supybot.authors.unknown
__contributors__ = {}
from . import plugin
Class = plugin.Class
configure = lambda advanced: None
'''
PROBE_PLUGIN = '''import time

import supybot.callbacks as callbacks
import supybot.conf as conf
import supybot.schedule as schedule


class Probe(callbacks.Plugin):
    """Records when each threat is cached (or, alone, when each line arrives)."""
    threaded = False
    callAfter = ("ThreatNetCache",)

    def __init__(self, irc):
        super().__init__(irc)
        self._out = open(conf.supybot.directories.data.dirize("probe.tsv"), "a",
                         buffering=1 << 20)
        schedule.addPeriodicEvent(self._out.flush, 0.2, "Probe.flush", now=False)

    def die(self):
        schedule.removePeriodicEvent("Probe.flush")
        self._out.close()
        super().die()

    def doPrivmsg(self, irc, msg):
        ip = msg.args[1].split(" ", 1)[0]
        cache = irc.getCallback("ThreatNetCache")
        if cache is not None:
            st = cache.channel(irc.network, msg.channel or "")
            if st is None or st.listener.cache.check(ip) is None:
                return
        self._out.write(f"{ip}\\t{time.time()}\\n")


Class = Probe
'''

# What each configuration loads and how it is set.
CONFIGS = {
    "ThreatNetCache": {
        "plugins": ["ThreatNetCache", "Probe"],
        "settings": {
            "supybot.plugins.ThreatNetCache.enable": True,
            "supybot.plugins.ThreatNetCache.trust": "voiced",
        },
    },
    "NoOp": {"plugins": ["Probe"], "settings": {}},
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_seconds(pid: int) -> float:
    """CPU time of all of ``pid``'s threads to the nanosecond (/proc/PID/task/*/schedstat):
    an idle bot uses less than /proc/PID/stat's 10 ms ticks can measure."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            pass
    return total / 1e9


def host_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, all cores (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def ips(start: int, count: int) -> list[str]:
    """Distinct public-looking IPv4 addresses in 11.0.0.0/8 (never contacted)."""
    base = (11 << 24) + start
    return [f"{(n >> 24) & 255}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            for n in range(base, base + count)]


def offer(provider: Client, addresses: list[str], rate: int) -> dict[str, float]:
    """Send `rate` lines per second in 10 ms batches; returns ip → send time."""
    sent: dict[str, float] = {}
    per_tick = max(1, round(rate * TICK))
    start = time.monotonic()
    for i in range(0, len(addresses), per_tick):
        due = start + (i / rate)
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        batch = addresses[i:i + per_tick]
        now = time.time()
        provider.send_many(f"PRIVMSG {CHANNEL} :{ip} bench provider" for ip in batch)
        for ip in batch:
            sent[ip] = now
    return sent


def probe_path(bot: Bot) -> Path:
    return bot.dir / "data" / "probe.tsv"


def probe_size(bot: Bot) -> int:
    path = probe_path(bot)
    return path.stat().st_size if path.exists() else 0


def collect(bots: list[Bot], offsets: dict[str, int], sent: dict[str, float],
            stall: float, limit: float) -> dict[str, dict[str, float]]:
    """ip → time cached, per bot: waits until every threat arrived, or nothing new
    arrived for `stall` s (the rest is lost), or `limit` s passed."""
    deadline = time.monotonic() + limit
    last_total, last_change = -1, time.monotonic()
    while True:
        arrived: dict[str, dict[str, float]] = {}
        for bot in bots:
            got = arrived.setdefault(bot.nick, {})
            with open(probe_path(bot), "rb") as f:
                f.seek(offsets[bot.nick])
                for line in f.read().decode().splitlines():
                    ip, _, t = line.partition("\t")
                    if ip in sent and ip not in got and t:
                        got[ip] = float(t)
        total = sum(len(g) for g in arrived.values())
        now = time.monotonic()
        if total != last_total:
            last_total, last_change = total, now
        if total >= len(sent) * len(bots) or now - last_change > stall or now > deadline:
            return arrived
        time.sleep(0.25)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def run_config(name: str, server: NgIRCd, provider: Client, observer: Client, work: Path,
               listeners: int, rates: list[int], seconds: float, first_ip: int,
               plugins_dir: str) -> list[dict]:
    cfg = CONFIGS[name]
    bots = [Bot(work / name, f"listen{i}", server.address, CHANNEL, plugins=cfg["plugins"],
                settings=cfg["settings"], plugins_dir=plugins_dir)
            for i in range(listeners)]
    rows = []
    try:
        start_bots(bots, timeout=60)
        time.sleep(1.0)  # let the joins settle (WHO replies, plugin timers)
        for rate in rates:
            count = int(rate * seconds)
            addresses = ips(first_ip, count)
            first_ip += count
            offsets = {b.nick: probe_size(b) for b in bots}
            log_offsets = {b.nick: b.log_path.stat().st_size for b in bots}
            cpu_before = {b.nick: cpu_seconds(b.proc.pid) for b in bots}
            busy_before = host_busy()
            observer.mark()
            sent = offer(provider, addresses, rate)
            arrived = collect(bots, offsets, sent, stall=3.0, limit=120.0)
            last = max((t for got in arrived.values() for t in got.values()), default=0.0)
            wall = max(seconds, last - min(sent.values()))  # until the last one was cached
            cpu = [cpu_seconds(b.proc.pid) - cpu_before[b.nick] for b in bots]
            busy, total = (a - b for a, b in zip(host_busy(), busy_before))
            with observer._cond:
                seen = observer.lines[observer.cursor:]
            raw = [(l.received - sent[l.text.split(" ", 1)[0]]) * 1000 for l in seen
                   if l.command == "PRIVMSG" and l.text.split(" ", 1)[0] in sent]
            disconnects = sum(b.read_log(log_offsets[b.nick]).count("Disconnect from")
                              for b in bots)
            latencies = [(t - sent[ip]) * 1000 for got in arrived.values()
                         for ip, t in got.items()]
            expected = len(sent) * len(bots)
            rows.append({
                "config": name, "rate": rate, "sent": len(sent),
                "cached": sum(len(g) for g in arrived.values()),
                "loss": 1 - len(latencies) / expected if expected else 0.0,
                "p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99),
                "max": max(latencies, default=float("nan")),
                "cpu": statistics.mean(cpu) / wall * 100, "wall": wall,
                "us_per_line": sum(cpu) / max(1, sum(len(g) for g in arrived.values())) * 1e6,
                "disconnects": disconnects, "host": busy / max(total, 1) * 100,
                "raw_p50": percentile(raw, 0.50), "raw_p99": percentile(raw, 0.99),
                "raw_loss": 1 - len(raw) / len(sent),
                "errors": sum(len([e for e in b.errors() if e.startswith("ERROR")]) for b in bots),
            })
            time.sleep(1.0)
    finally:
        stop_bots(bots)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="100,1000")
    parser.add_argument("--listeners", type=int, default=5)
    parser.add_argument("--configs", default="ThreatNetCache,NoOp")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="threatnet-bench-"))
    probe_dir = work / "plugins" / "Probe"
    probe_dir.mkdir(parents=True)
    (probe_dir / "__init__.py").write_text(PROBE_INIT)
    (probe_dir / "plugin.py").write_text(PROBE_PLUGIN)
    plugins_dir = f"{PLUGINS_DIR}, {work / 'plugins'}"
    server = NgIRCd(work / "ngircd").start()
    provider = Client(server.host, server.port, "provider").connect()
    provider.join(CHANNEL)  # first in: opped by the server, so trusted as voiced-or-better
    observer = Client(server.host, server.port, "observer").connect()
    observer.join(CHANNEL)  # a raw client: what the server alone delivers
    rows: list[dict] = []
    try:
        print(f"ngIRCd on {server.host}:{server.port}; {args.listeners} listener bots; "
              f"{args.seconds:g} s per rate; Python {sys.version.split()[0]}; "
              f"{os.cpu_count()} cores", flush=True)
        first_ip = 0
        for name in args.configs.split(","):
            rows += run_config(name, server, provider, observer, work, args.listeners, rates,
                               args.seconds, first_ip, plugins_dir)
            first_ip += sum(int(r * args.seconds) for r in rates)
    finally:
        provider.close()
        observer.close()
        server.stop()
        stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'config':<15} {'rate/s':>6} {'sent':>6} {'cached':>7} {'loss':>7} "
          f"{'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'done s':>7} {'CPU %':>6} "
          f"{'CPU us/line':>11} {'host %':>6} {'raw p50':>7} {'raw p99':>7} {'disc':>4} "
          f"{'errors':>6}")
    for r in rows:
        print(f"{r['config']:<15} {r['rate']:>6} {r['sent']:>6} {r['cached']:>7} "
              f"{r['loss']:>7.2%} {r['p50']:>9.2f} {r['p99']:>9.2f} {r['max']:>9.2f} "
              f"{r['wall']:>7.1f} {r['cpu']:>6.1f} {r['us_per_line']:>11.0f} "
              f"{r['host']:>6.0f} {r['raw_p50']:>7.2f} {r['raw_p99']:>7.2f} "
              f"{r['disconnects']:>4} {r['errors']:>6}")
    print("\ncached: (threat, listener) pairs seen in a listener's cache; loss: pairs never seen"
          "\n(waited until nothing new arrived for 3 s). done s: from the first send until the"
          "\nlast threat was cached. CPU %: one listener's mean over `done s`, in % of one core;"
          "\nCPU us/line: listener CPU per cached line. host %: the whole machine's CPU use"
          "\n(all cores, every process, not only the bench's) while the rate ran. raw p50/p99:"
          "\nms from send to a raw client in the channel (the server alone). disc: listener"
          "\ndisconnects.")
    by = {(r["config"], r["rate"]): r for r in rows}
    for rate in rates:
        a, b = by.get(("ThreatNetCache", rate)), by.get(("NoOp", rate))
        if a and b:
            print(f"ThreatNetCache / NoOp at {rate}/s: p50 x{a['p50'] / b['p50']:.2f}, "
                  f"p99 x{a['p99'] / b['p99']:.2f}, "
                  f"CPU per line x{a['us_per_line'] / max(b['us_per_line'], 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

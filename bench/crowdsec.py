#!/usr/bin/env python3
"""CrowdSec bouncer benchmark: a real ThreatNetCache bot (supybot, on ngIRCd) serving its
bouncer API to the real crowdsec-firewall-bouncer 0.0.25 in a network namespace of its
own (lab/crowdsec.py), as the integration test runs them. Prints, asserts nothing:

- the time from a threat line said on IRC to the element in the bouncer's nftables set,
  at update_frequency 1 s and 10 s (the line is sent at a random phase of the pulls);
- N threats (default 10,000, restored from a snapshot) through the stream: the
  startup=true answer's time and size, an empty increment's time, and how long the
  bouncer takes to have them all in its set;
- the bot's CPU and RSS while serving them: idle, one bouncer at 1 s, and ten more
  stream clients pulling every second.

    .venv/bin/python -m bench.crowdsec [--samples 8] [--slow-samples 4] [--threats 10000]

Needs root (namespaces, nftables) and the Debian packages (make setup).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from lab.bots import CACHE_SETTINGS, Bot
from lab.crowdsec import FirewallBouncer, require
from lab.ircclient import Client
from lab.process import free_port, stop_all, wait_port
from lab.servers import NgIRCd

CHANNEL = "#crowdsec"
NS = "crowdsecbench"
OWNER = ("admin", "bench-owner-secret")
TICK = 0.01  # seconds between two looks at the bouncer's set


def snapshot(bot: Bot, threats: int) -> None:
    """``threats`` current threats for the bot to restore (saved just now: no quiet
    period), each with 50 minutes left."""
    now = time.time()
    entries = [[f"46.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", now - 600, "bench", None,
                "bench threat", ""] for n in range(1, threats + 1)]
    path = bot.dir / "data" / "ThreatNetCache" / "threatnet" / (
        quote(CHANNEL, safe="") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "saved_at": now, "listening_since": now - 7200,
                                "entries": entries}))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def usage(pid: int, seconds: float) -> tuple[float, float]:
    """(CPU %, RSS MiB) of ``pid`` over ``seconds``."""
    start, began = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - start) / (time.monotonic() - began), rss_mib(pid)


def pull(url: str, key: str, startup: bool, packed: bool = False) -> tuple[float, int, dict]:
    """One stream pull: (seconds, bytes on the wire, the answer)."""
    began = time.monotonic()
    headers = {"X-Api-Key": key}
    if packed:
        headers["Accept-Encoding"] = "gzip"
    request = urllib.request.Request(url + "v1/decisions/stream" +
                                     ("?startup=true" if startup else ""), headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        body = answer.read()
        if answer.headers.get("Content-Encoding") == "gzip":
            size, body = len(body), gzip.decompress(body)
        else:
            size = len(body)
    return time.monotonic() - began, size, json.loads(body)


def add_bouncer(owner: Client, bot: Bot, name: str) -> str:
    reply = owner.ask(bot.nick, f"tn bouncer add {CHANNEL} {name}", bot.nick)
    return reply.text.rsplit("api_key: ", 1)[1]


def latencies(alice: Client, bouncer: FirewallBouncer, frequency: float, samples: int,
              first: int) -> list[float]:
    found = []
    for n in range(samples):
        time.sleep(random.uniform(0, frequency))  # a random phase of the bouncer's pulls
        ip = f"47.0.{(first + n) >> 8 & 255}.{(first + n) & 255}"
        sent = time.monotonic()
        alice.privmsg(CHANNEL, f"{ip} bench latency")
        deadline = sent + frequency + 10
        while ip not in bouncer.elements():
            if time.monotonic() > deadline:
                break
            time.sleep(TICK)
        else:
            found.append(time.monotonic() - sent)
    return found


def describe(values: list[float]) -> str:
    if not values:
        return "none arrived"
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (f"n={len(ms)} min {ms[0]:.0f} ms, p50 {statistics.median(ms):.0f} ms, "
            f"p95 {p95:.0f} ms, max {ms[-1]:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="lines at 1 s")
    parser.add_argument("--slow-samples", type=int, default=4, help="lines at 10 s")
    parser.add_argument("--threats", type=int, default=10_000)
    args = parser.parse_args()
    require()
    work = Path(tempfile.mkdtemp(prefix="threatnet-bench-crowdsec-"))
    FirewallBouncer.namespace(NS)
    server = NgIRCd(work / "ngircd").start()
    bouncers: list[FirewallBouncer] = []
    try:
        port = free_port(FirewallBouncer.HOST_IP)
        url = f"http://{FirewallBouncer.HOST_IP}:{port}/threatnet/crowdsec/"
        bot = Bot(work / "bots", "csbench", (server.host, server.port), CHANNEL, owner=OWNER,
                  settings={**CACHE_SETTINGS,
                            "supybot.plugins.ThreatNetCache.trust": "all",
                            "supybot.plugins.ThreatNetCache.topicHold": 0,
                            "supybot.plugins.ThreatNetCache.http.enable": True,
                            "supybot.plugins.ThreatNetCache.http.host": FirewallBouncer.HOST_IP,
                            "supybot.plugins.ThreatNetCache.http.port": port,
                            "supybot.plugins.ThreatNetCache.http.clients": "10.233.0.0/30",
                            "supybot.drivers.poll": 0.02})
        bot.configure()
        snapshot(bot, args.threats)
        alice = Client(server.host, server.port, "alice").connect()
        alice.join(CHANNEL)
        bot.start()
        wait_port(FirewallBouncer.HOST_IP, port, 10)
        reply = alice.ask(bot.nick, f"identify {OWNER[0]} {OWNER[1]}", bot.nick)
        assert "operation succeeded" in reply.text, reply.raw
        pid = bot.proc.pid
        print(f"ngIRCd, one bot (pid {pid}), crowdsec-firewall-bouncer 0.0.25 in netns {NS}; "
              f"Python {sys.version.split()[0]}; {os.cpu_count()} cores", flush=True)
        time.sleep(2)  # the restored threats reach the HTTP API's mirror
        cpu, rss = usage(pid, 5)
        print(f"bot idle with {args.threats} threats: CPU {cpu:.1f} %, RSS {rss:.0f} MiB",
              flush=True)

        key = add_bouncer(alice, bot, "raw")
        took, size, data = pull(url, key, True)
        print(f"stream startup=true: {len(data['new'])} decisions, {size / 1e6:.2f} MB in "
              f"{took * 1000:.0f} ms", flush=True)
        took, size, data = pull(url, key, True, packed=True)
        print(f"stream startup=true, gzip: {len(data['new'])} decisions, {size / 1e6:.2f} MB "
              f"in {took * 1000:.0f} ms", flush=True)
        took, size, data = pull(url, key, False)
        print(f"stream increment (nothing new): {size} bytes in {took * 1000:.1f} ms",
              flush=True)

        fast = FirewallBouncer(work / "fw1", NS, url, add_bouncer(alice, bot, "fw1"), "1s")
        began = time.monotonic()
        fast.start()
        bouncers.append(fast)
        while len(fast.elements()) < args.threats and time.monotonic() - began < 300:
            time.sleep(0.2)
        print(f"firewall bouncer start to {len(fast.elements())} elements in its set: "
              f"{time.monotonic() - began:.1f} s", flush=True)
        cpu, rss = usage(pid, 10)
        print(f"bot serving one bouncer at 1 s ({args.threats} threats): CPU {cpu:.1f} %, "
              f"RSS {rss:.0f} MiB", flush=True)

        print(f"IRC line to element, update_frequency 1 s: "
              f"{describe(latencies(alice, fast, 1.0, args.samples, 1))}", flush=True)
        fast.stop()
        bouncers.clear()
        slow = FirewallBouncer(work / "fw10", NS, url, add_bouncer(alice, bot, "fw10"), "10s")
        slow.start()
        bouncers.append(slow)
        began = time.monotonic()
        while len(slow.elements()) < args.threats and time.monotonic() - began < 300:
            time.sleep(0.2)
        print(f"IRC line to element, update_frequency 10 s: "
              f"{describe(latencies(alice, slow, 10.0, args.slow_samples, 1000))}",
              flush=True)

        keys = [add_bouncer(alice, bot, f"sim{n}") for n in range(10)]
        stop = threading.Event()
        answered = [0]

        def follower(k: str) -> None:
            pull(url, k, True)
            while not stop.wait(1.0):
                pull(url, k, False)
                answered[0] += 1
        threads = [threading.Thread(target=follower, args=(k,), daemon=True) for k in keys]
        for t in threads:
            t.start()
        time.sleep(3)
        cpu, rss = usage(pid, 10)
        stop.set()
        print(f"bot serving 10 stream clients at 1 s + one bouncer at 10 s "
              f"({args.threats} threats, {answered[0]} increments): CPU {cpu:.1f} %, "
              f"RSS {rss:.0f} MiB", flush=True)
        alice.close()
    finally:
        for b in bouncers:
            b.stop()
        stop_all()
        server.stop()
        FirewallBouncer.remove_namespace(NS)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

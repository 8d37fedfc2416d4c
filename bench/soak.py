#!/usr/bin/env python3
"""Soak: many agents posting threats through a real server to listener bots, for a while.

One ngIRCd on loopback, one channel bot (ThreatNetCache + ThreatNetGuard, whitelisting
the agents' address), --listeners listener bots and --agents raw-client agents. The bots
are real supybot processes loading what they need, as docs/SCALING.md advises: Owner and
ThreatNetCache, and on the channel bot also ThreatNetGuard and User (for its admins);
Limnoria costs ~70 µs of CPU per plugin per line. The agents are voiced by the bot and
post distinct threats at --rate lines/s in total for --seconds, each from an address
of its own in 127.0.2.0/24 (the Guard counts floods per host: 20 agents behind
one address at 10 lines/s each are one sender at 200/s). A probe measures the Guard,
first --idle-probes times with no load and then every --probe-every seconds under load:
a new agent joins (time to its +v) and a stranger posts a threat line (time to its
KICK). A probe that gets no answer within --probe-timeout counts as a miss.

When the agents stop, `!tn status` goes to the channel: a bot answers it only after
it has read every line before it, so its answer is its final count and its delay is
how far it had fallen behind. Then prints: threats sent, threats lost per bot (sent
minus what its `tn status` says it kept) and when it caught up, how many lines the
server relayed to a raw client, RSS and CPU of each bot (start, peak, end), Guard
voice and kick latency idle and under load (median, p95, max, misses), how busy the
machine was, and anything the bots logged as errors. Asserts nothing.

    .venv/bin/python -m bench.soak [--agents 20] [--rate 200] [--seconds 30]
                                   [--listeners 3] [--probe-every 2] [--idle-probes 5]
                                   [--probe-timeout 30] [--drain-timeout 600]
                                   [--listener-nice N] [--keep]

The defaults are sized for a 2-core machine running everything (server, 4 bots, 20
clients, the probe); the proposal's soak is --rate 1000 --seconds 60 (1.8 of 2 cores
busy here). Where the bots
need more CPU than the machine has, they fall behind and catch up after the agents
stop: the lag shows in the Guard's latency and in when each bot caught up.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import leave
from lab.ircclient import Client, connect_all
from lab.bots import CACHE_SETTINGS, GUARD_SETTINGS, MINIMAL, Bot, start_bots, stop_bots
from lab.process import stop_all
from lab.servers import NgIRCd

CHANNEL = "#soak"
AGENT_NET = "127.0.2.0/24"  # each agent its own address: the Guard counts floods per host
STRANGER_IP = "127.0.0.3"
LISTENER_IP = "127.0.0.4"
G = "supybot.plugins.ThreatNetGuard."


def rss_cpu(pid: int) -> tuple[float, float]:
    """(RSS in MiB, CPU seconds so far) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


def threat_ip(n: int) -> str:
    """The n-th distinct public address (21.0.0.1, 21.0.0.2, ...)."""
    n += 1
    return f"{21 + n // 16777216}.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def is_voice(line, nick):
    return line.command == "MODE" and line.params[1].startswith("+v") and nick in line.params[2:]


def quantiles(values):
    """Median, p95 and max of latencies; None is a probe that got no answer."""
    misses = values.count(None)
    values = sorted(v for v in values if v is not None)
    missed = f", {misses} missed" if misses else ""
    if not values:
        return f"n/a{missed}"
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return (f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {values[-1] * 1000:.1f} ms (n={len(values)}{missed})")


def probe_guard(server, name: str, timeout: float) -> tuple[float | None, float | None]:
    """One probe of the Guard: (join -> +v, stranger's line -> KICK) in seconds, None
    for no answer within ``timeout``."""
    p = Client(*server.address, f"probe{name}", source="127.0.2.250").connect()
    s = Client(*server.address, f"stranger{name}", source=STRANGER_IP).connect()
    try:
        s.join(CHANNEL)
        p.mark()
        t0 = time.monotonic()
        p.join(CHANNEL)
        voiced = p.wait_for(lambda l: is_voice(l, p.nick), timeout=timeout, required=False)
        voice = time.monotonic() - t0 if voiced else None
        s.mark()
        t0 = time.monotonic()
        s.privmsg(CHANNEL, "22.0.0.1 from a stranger")
        kicked = s.wait_for(lambda l: l.command == "KICK" and l.params[1] == s.nick,
                            timeout=timeout, required=False)
        return voice, (time.monotonic() - t0 if kicked else None)
    finally:
        p.close()
        s.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="threat lines/s, all agents")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--listeners", type=int, default=3)
    parser.add_argument("--probe-every", type=float, default=2.0)
    parser.add_argument("--idle-probes", type=int, default=5, help="probes before the load")
    parser.add_argument("--probe-timeout", type=float, default=30.0)
    parser.add_argument("--drain-timeout", type=float, default=600.0,
                        help="seconds to wait for each bot's final `tn status`")
    parser.add_argument("--listener-nice", type=int, default=0,
                        help="run the listener bots at this nice level: on one machine, "
                             "gives the channel bot the CPU it would have on a host of its own")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()

    run = Path(tempfile.mkdtemp(prefix="threatnet-soak-"))
    server = NgIRCd(run / "ngircd").start()
    bots: list[Bot] = []
    clients: list[Client] = []
    try:
        per_agent = args.rate / args.agents
        guard = Bot(run / "bots", "guard", server.address, CHANNEL,
                    plugins=["ThreatNetCache", "ThreatNetGuard"],
                    settings={**CACHE_SETTINGS, **GUARD_SETTINGS, **MINIMAL,
                              "supybot.plugins.User": True,  # its admins identify
                              # an honest agent at per_agent lines/s must not be a flood
                              G + "flood.lines": int(per_agent * 10 * 3) + 10,
                              G + "ban.kicks": 0,  # the probe's strangers are kicked only
                              # ngIRCd shows real IPs: the agents' hosts are their IPs
                              G + "realHosts": True})
        guard.dir.mkdir(parents=True, exist_ok=True)
        (guard.dir / "data").mkdir(exist_ok=True)
        (guard.dir / "data" / "ThreatNetGuard.whitelist.yaml").write_text(
            f'channels:\n  "{CHANNEL}":\n    - {AGENT_NET}\n')
        guard.start()
        bots.append(guard)
        listeners = [Bot(run / "bots", f"listener{i}", server.address, CHANNEL,
                         plugins=["ThreatNetCache"], settings={**CACHE_SETTINGS, **MINIMAL},
                         vhost=LISTENER_IP) for i in range(args.listeners)]
        start_bots(listeners)
        for b in listeners:
            os.setpriority(os.PRIO_PROCESS, b.proc.pid, args.listener_nice)
        bots += listeners

        watcher = Client(*server.address, "watcher")
        agents = [Client(*server.address, f"agent{i}", source=f"127.0.2.{i + 1}", deaf=CHANNEL)
                  for i in range(args.agents)]
        clients += [watcher, *agents]
        connect_all(clients)
        watcher.join(CHANNEL)
        for a in agents:
            a.join(CHANNEL)
        waiting = {a.nick for a in agents}
        while waiting:  # the bot batches voices: +vvvv a b c d
            line = watcher.wait_for(lambda l: l.command == "MODE" and l.params[1].startswith("+v"),
                                    timeout=20)
            waiting -= set(line.params[2:])
        watcher.mark()
        idle = [probe_guard(server, f"i{n}", args.probe_timeout) for n in range(args.idle_probes)]

        usage = {b.nick: [rss_cpu(b.proc.pid)] for b in bots}
        others = (rss_cpu(server.proc.pid)[1], time.process_time())  # ngIRCd, this script
        sent = [0] * args.agents
        stop = threading.Event()
        started = time.monotonic()

        def post(i: int) -> None:
            a = agents[i]
            n = 0
            tick = 0.05
            while not stop.is_set():
                # exactly --seconds of load: the due count stops growing at the end
                elapsed = min(time.monotonic() - started, args.seconds)
                due = int(elapsed * per_agent)
                if due > n:
                    a.send_many(f"PRIVMSG {CHANNEL} :{threat_ip(j * args.agents + i)} soak"
                                for j in range(n, due))
                    n = due
                if elapsed >= args.seconds:
                    break
                time.sleep(tick)
            sent[i] = n

        threads = [threading.Thread(target=post, args=(i,), daemon=True)
                   for i in range(args.agents)]
        for t in threads:
            t.start()

        # Probes start on a fixed schedule, each on a thread of its own: a Guard that
        # lags answers late, and that must not thin out the probes.
        loaded: list[tuple[float | None, float | None]] = []
        probes = []
        while (due := len(probes) + 1) * args.probe_every < args.seconds:
            time.sleep(max(0.0, started + due * args.probe_every - time.monotonic()))
            probes.append(threading.Thread(
                target=lambda n=due: loaded.append(probe_guard(server, str(n), args.probe_timeout)),
                daemon=True))
            probes[-1].start()
            for b in bots:
                usage[b.nick].append(rss_cpu(b.proc.pid))
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        total = sum(sent)
        stopped = time.monotonic()

        def relayed():
            return sum(1 for l in list(watcher.lines)
                       if l.command == "PRIVMSG" and l.nick.startswith("agent"))
        # Once the server has relayed every agent line to the watcher, each bot's copy is
        # queued before the status request (a line sent earlier could overtake them).
        last_change, count = time.monotonic(), relayed()
        while count < total and time.monotonic() - last_change < 10:
            time.sleep(0.2)
            if (now := relayed()) != count:
                count, last_change = now, time.monotonic()
        watcher.mark()
        watcher.privmsg(CHANNEL, "!tn status")
        kept, statuses, caught_up = {}, {}, {}
        nicks = {b.nick for b in bots}
        while len(kept) < len(bots):
            line = watcher.wait_for(lambda l: l.command == "PRIVMSG" and l.nick not in kept
                                    and l.nick in nicks, timeout=args.drain_timeout,
                                    required=False)
            if line is None:
                break
            kept[line.nick] = int(re.search(r"kept (\d+)", line.text).group(1))
            statuses[line.nick] = line.text
            caught_up[line.nick] = time.monotonic() - stopped
        for t in probes:
            t.join()
        for b in bots:
            usage[b.nick].append(rss_cpu(b.proc.pid))
        server_cpu = rss_cpu(server.proc.pid)[1] - others[0]
        script_cpu = time.process_time() - others[1]
        wall = time.monotonic() - started

        nice = f" (nice {args.listener_nice})" if args.listener_nice else ""
        print(f"soak: {args.agents} agents, {args.rate:g} threats/s offered for "
              f"{args.seconds:g} s, {args.listeners} listeners{nice} + the channel bot, ngIRCd, "
              f"{os.cpu_count()} CPUs")
        print(f"threats sent: {total} ({total / elapsed:.0f}/s achieved)")
        for b in bots:
            rss = [u[0] for u in usage[b.nick]]
            cpu = usage[b.nick][-1][1] - usage[b.nick][0][1]
            if b.nick in kept:
                outcome = (f"kept {kept[b.nick]:>6}  lost {total - kept[b.nick]:>5}  caught up "
                           f"{caught_up[b.nick]:5.1f} s after the agents stopped")
            else:
                outcome = f"no `tn status` answer within {args.drain_timeout:g} s"
            print(f"  {b.nick:<10} {outcome}  RSS {rss[0]:.1f} -> peak {max(rss):.1f} -> "
                  f"{rss[-1]:.1f} MiB  CPU {cpu:.1f} s")
        if statuses:
            print(f"  e.g. {statuses[max(statuses, key=caught_up.get)]}")
        kicks = [l for l in watcher.lines if l.command == "KICK" and l.params[1].startswith("agent")]
        if kicks:  # an agent's lines after its kick are refused by the server (404)
            print(f"agents kicked by the Guard: {len(kicks)}, e.g. {kicks[0].raw}")
        print(f"threat lines the server relayed to a raw client in the channel: {count}")
        dropped = [(a.nick, next((l.raw for l in reversed(a.lines) if l.command in
                                  ("ERROR", "KICK", "404")), "")) for a in agents if a.closed]
        if dropped:
            print(f"agents disconnected by the server: {len(dropped)}, e.g. {dropped[:3]}")
        for when, results in (("idle", idle), ("under load", loaded)):
            voice, kick = [v for v, _ in results], [k for _, k in results]
            print(f"Guard voice latency (join -> +v) {when}: {quantiles(voice)}")
            print(f"Guard kick latency (stranger's line -> KICK) {when}: {quantiles(kick)}")
        bots_cpu = sum(u[-1][1] - u[0][1] for u in usage.values())
        print(f"CPU from the start of the load until the last answer ({wall:.0f} s): bots "
              f"{bots_cpu:.0f} s, ngIRCd {server_cpu:.0f} s, this script (agents, watcher, "
              f"probes) {script_cpu:.0f} s: {(bots_cpu + server_cpu + script_cpu) / wall:.1f} "
              f"of {os.cpu_count()} CPUs busy")
        errors = [(b.nick, e) for b in bots for e in b.errors()]
        # Limnoria logs the server's 401 as an error: a lagging Guard kicked or voiced a
        # probe's client that had already quit. Counted, not listed.
        gone = [(n, e) for n, e in errors if re.search(r"command=\"401\".*'(probe|stranger)", e)]
        if gone:
            print(f"401 No such nick for probe clients gone before the Guard acted: {len(gone)}")
        errors = [x for x in errors if x not in gone]
        print(f"bot errors logged: {len(errors)}")
        for nick, e in errors[:10]:
            print(f"  {nick}: {e[:200]}")
        return 0
    finally:
        stop_event = locals().get("stop")
        if stop_event is not None:
            stop_event.set()
            for t in locals().get("threads", []):
                t.join()
        for c in clients:
            c.close()
        stop_bots(bots)
        server.stop()
        stop_all()
        leave(run, args.keep)


if __name__ == "__main__":
    sys.exit(main())

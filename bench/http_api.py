"""Benchmark of the HTTP API's server (plugins/ThreatNetCache/server.py) under load
while clients stall it: requests per second, latency and answers by status, for a
number of concurrent clients, with and without stalled clients (half a request line,
then silence, reconnecting whenever the server cuts them).

    .venv/bin/python -m bench.http_api [--seconds S] [--threats N] [--clients 1,8,31,64]
                                       [--stall K] [--followers F]

The bot side is a real ThreatNetCache in a Limnoria ``Irc`` (as bench/listener.py
builds it, in its registry) with N threats heard on its channel and the API on 127.0.0.1, default
limits (32 connections, 5 s to send a request); this process runs the main loop
(``schedule.run`` every 20 ms, the lab's supybot.drivers.poll). The clients and the
stallers are other processes: a new connection per request (the API answers one per
connection), each request timed from connect to the end of the answer. /threats is
answered from the responders' mirror, /check on the main loop. ``--followers`` keeps
that many long-polls waiting meanwhile. Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter

from bench.listener import CHANNEL, NICK, open_registry

REPORTER = "rep"
HALF = b"GET /threatnet/threats HTTP/1.1\r\n"
POLL = 0.02  # seconds between main loop passes (the lab's supybot.drivers.poll)


# -- the client processes


def _request(port: int, raw: bytes) -> int | str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(raw)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        data = b"".join(chunks)
        return int(data[9:12]) if data.startswith(b"HTTP/") else "no answer"
    except OSError as e:
        return type(e).__name__


def clients(port: int, path: str, threads: int, seconds: float, out) -> None:
    """``threads`` clients asking for ``path`` over and over for ``seconds``."""
    raw = f"GET /threatnet{path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    statuses: Counter = Counter()
    times: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run():
        while time.monotonic() < end:
            began = time.perf_counter()
            status = _request(port, raw)
            took = time.perf_counter() - began
            with lock:
                statuses[status] += 1
                times.append(took)
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((dict(statuses), times))


def stallers(port: int, count: int, seconds: float, out) -> None:
    """``count`` connections that each send half a request line and go quiet, opened
    again whenever the server cuts them; how often it did, and what it answered."""
    cuts: Counter = Counter()
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run():
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(HALF)
                    s.settimeout(max(0.01, end - time.monotonic()))
                    data = s.recv(100)
            except socket.timeout:
                return  # the run is over and this one is still stalling
            except OSError as e:
                data = type(e).__name__.encode()
            with lock:
                cuts[data[9:12].decode() if data.startswith(b"HTTP/") else data.decode()] += 1
    workers = [threading.Thread(target=run) for _ in range(count)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(dict(cuts))


def followers(port: int, count: int, seconds: float, out) -> None:
    """``count`` long-polls kept waiting (30 s each, asked again when answered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /threatnet/events HTTP/1.1\r\n\r\n")
        data = b"".join(iter(lambda: s.recv(65536), b""))
    since = json.loads(data.partition(b"\r\n\r\n")[2])["next"]
    raw = f"GET /threatnet/events?since={since}&timeout=30 HTTP/1.1\r\n\r\n".encode()
    statuses: Counter = Counter()
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run():
        while time.monotonic() < end:
            status = _request(port, raw)
            with lock:
                statuses[status] += 1
    for _ in range(count):
        threading.Thread(target=run, daemon=True).start()
    time.sleep(seconds)
    out.put(dict(statuses))  # still waiting: none answered yet, as it should be


# -- the bot


def make_bot(threats: int):
    """An Irc with ThreatNetCache joined to CHANNEL, ``threats`` threats heard."""
    import supybot.conf as conf
    import supybot.irclib as irclib
    import supybot.ircmsgs as ircmsgs
    import supybot.plugin as supyplugin

    irc = irclib.Irc("bench", callbacks=[])  # listener.py's registry names it
    module = supyplugin.loadPluginModule("ThreatNetCache")  # registers its settings
    http = conf.supybot.plugins.ThreatNetCache.http
    http.port.setValue(0)  # any free port
    http.enable.setValue(True)
    supyplugin.loadPluginClass(irc, module)
    for raw in (f":{NICK}!a@192.0.2.1 JOIN {CHANNEL}",
                f":irc.example.net 353 {NICK} = {CHANNEL} :@{NICK} +{REPORTER}",
                f":irc.example.net 366 {NICK} {CHANNEL} :End of /NAMES list."):
        irc.feedMsg(ircmsgs.IrcMsg(raw))
    for n in range(threats):
        irc.feedMsg(ircmsgs.IrcMsg(f":{REPORTER}!u@198.51.100.1 PRIVMSG {CHANNEL} "
                                   f":45.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255} bench"))
    while irc.takeMsg():
        pass
    return irc


def run_phase(port: int, path: str, threads: int, seconds: float, stall: int,
              follow: int) -> tuple[dict, list[float], dict, dict]:
    """One measurement; the main loop runs here meanwhile."""
    import supybot.schedule as schedule
    ctx = multiprocessing.get_context("spawn")
    out_c, out_s, out_f = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = []
    if stall:
        procs.append(ctx.Process(target=stallers, args=(port, stall, seconds + 1.5, out_s)))
    if follow:
        procs.append(ctx.Process(target=followers, args=(port, follow, seconds + 1.5,
                                                         out_f)))
    for p in procs:
        p.start()
    time.sleep(1.0)  # the stallers and followers are in place
    load = ctx.Process(target=clients, args=(port, path, threads, seconds, out_c))
    load.start()
    procs.append(load)
    results = {}
    end = time.monotonic() + seconds + 30
    while time.monotonic() < end and len(results) < len(procs):
        schedule.run()
        for name, q in (("c", out_c), ("s", out_s), ("f", out_f)):
            if name not in results and not q.empty():
                results[name] = q.get()
        time.sleep(POLL)
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
    statuses, times = results.get("c", ({}, []))
    return statuses, times, results.get("s", {}), results.get("f", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--threats", type=int, default=100, help="in the cache (/threats)")
    parser.add_argument("--clients", default="1,8,31,64",
                        help="concurrent clients to try (more than 32: some get 503)")
    parser.add_argument("--stall", type=int, default=1, help="stalled clients (default 1)")
    parser.add_argument("--followers", type=int, default=64, help="waiting long-polls")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="threatnet-bench-")
    try:
        open_registry(tmp)
        irc = make_bot(args.threats)
        api = irc.getCallback("ThreatNetCache")._http
        port = api.server.port
        print(f"API on 127.0.0.1:{port}: {args.threats} threats, limits "
              f"{api.server.settings.connections} connections, "
              f"{api.server.settings.timeout:g} s per request; {os.cpu_count()} CPUs "
              f"shared by the server, the clients and the stallers")
        phases = []
        for n in (int(c) for c in args.clients.split(",")):
            phases.append(("/threats", n, 0, 0))
            phases.append(("/threats", n, args.stall, 0))
        top = api.server.settings.connections - args.stall  # every slot the stall leaves
        phases.append(("/check?ip=45.0.0.1", top, args.stall, 0))
        phases.append(("/threats", top, args.stall, args.followers))
        for path, n, stall, follow in phases:
            statuses, times, cuts, polls = run_phase(port, path, n, args.seconds, stall,
                                                     follow)
            ok = statuses.get(200, 0)
            times.sort()
            p = (lambda q: 1000 * times[min(len(times) - 1, int(q * len(times)))]
                 ) if times else (lambda q: float("nan"))
            extra = f", {stall} stalled (cut: {cuts})" if stall else ""
            extra += f", {follow} long-polls waiting ({polls})" if follow else ""
            print(f"{path:<20} {n:>3} clients{extra}: {ok / args.seconds:,.0f} ok/s, "
                  f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {p(1.0):.0f} ms; "
                  f"answers {dict(sorted(statuses.items(), key=str))}")
        irc._reallyDie()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""CPU per threat line in a real, lean agent bot, and where it goes.

`make run`'s server (InspIRCd + Atheme), one agent as `make agent` runs it (Owner, User,
ThreatNetCache; logged in to a services account) and a raw client, logged in to an
account the agent trusts, saying --rate distinct threat lines a second for --seconds.
Prints the agent's CPU time per line (from /proc/PID/task/*/schedstat, over the whole run until it
has read every line) and its idle CPU; with --profile, py-spy samples the bot while the
lines arrive and the functions with the most samples (own time, and with callees) are
printed, ThreatNet's own and Limnoria's.

    .venv/bin/python -m bench.agentcpu [--rate 1000] [--seconds 20] [--idle 20]
                                       [--profile] [--standard] [--keep]
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import leave
from bench.propagation import run_seconds
from lab.bots import BASE_PLUGINS, CACHE_SETTINGS, Bot, stop_bots
from lab.config import password
from lab.process import stop_all
from lab.servers import InspIRCdAtheme

CHANNEL = "#threatnet"
# `make agent`'s plugins, spelled out so the same file measures older checkouts too.
LEAN = {"supybot.plugins.alwaysLoadImportant": False,
        **{f"supybot.plugins.{name}": False for name in BASE_PLUGINS if name != "User"}}


def threat(n: int) -> str:
    n += 1
    return f"45.{n // 65536 % 256}.{n // 256 % 256}.{n % 256} sshd: 5 failed passwords in 600 s"


def top(stacks: Path, count: int = 25) -> None:
    """The functions with the most samples in py-spy's raw (collapsed) output."""
    own, total = collections.Counter(), collections.Counter()
    samples = 0
    for line in stacks.read_text().splitlines():
        frames, _, n = line.rpartition(" ")
        n = int(n)
        samples += n
        names = [f.rsplit(" (", 1)[0] + " (" + f.rsplit("/", 1)[-1] for f in frames.split(";")]
        own[names[-1]] += n
        for name in set(names):
            total[name] += n
    print(f"\n{samples} samples; own time:")
    for name, n in own.most_common(count):
        print(f"  {100 * n / samples:5.1f} %  {name}")
    print("with callees:")
    for name, n in total.most_common(count + 15):
        print(f"  {100 * n / samples:5.1f} %  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--idle", type=float, default=20, help="seconds of idle sampling")
    parser.add_argument("--profile", action="store_true", help="py-spy the bot meanwhile")
    parser.add_argument("--standard", action="store_true",
                        help="Limnoria's usual plugins too (Admin, Channel, Config, Misc), as "
                             "`make agent` loaded them before it was lean")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="threatnet-agentcpu-"))
    bot = None
    try:
        server = InspIRCdAtheme(work / "ircd").start()
        accounts = {"agent": password(), "sender": password()}
        server.register_accounts(accounts)
        bot = Bot(work / "bots", "agent", server.address, CHANNEL,
                  sasl=("agent", accounts["agent"]),
                  settings={**CACHE_SETTINGS, **({} if args.standard else LEAN),
                            "supybot.plugins.ThreatNetCache.trustedAccounts": "sender"})
        bot.start(timeout=60)
        sender = server.client("sender", sasl=("sender", accounts["sender"])).connect()
        sender.join(CHANNEL)
        time.sleep(2)
        pid = bot.proc.pid
        before = run_seconds(pid)
        time.sleep(args.idle)
        idle = (run_seconds(pid) - before) / args.idle * 100
        print(f"idle: {idle:.2f} % of a core over {args.idle:.0f} s")

        count = int(args.rate * args.seconds)
        profile = None
        if args.profile:
            stacks = work / "stacks.txt"
            profile = subprocess.Popen(
                [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                 "record", "--pid", str(pid), "--format", "raw", "--output", str(stacks),
                 "--rate", "200", "--nonblocking", "--duration", str(int(args.seconds) + 2)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        before = run_seconds(pid)
        start = time.monotonic()
        step = max(1, args.rate // 100)  # 10 ms worth per write
        for k in range(0, count, step):
            sender.send_many(f"PRIVMSG {CHANNEL} :{threat(n)}"
                             for n in range(k, min(count, k + step)))
            time.sleep(max(0.0, start + (k + step) / args.rate - time.monotonic()))
        # The bot answers after it has read every line before the question.
        reply = sender.ask("agent", f"tn status {CHANNEL}", "agent", timeout=600)
        used = run_seconds(pid) - before
        print(f"{count} lines at {args.rate}/s: {used * 1e6 / count:.0f} µs of CPU per line "
              f"(caught up {time.monotonic() - start - args.seconds:.2f} s after the last)")
        print(f"  tn status: {reply.text}")
        if profile is not None:
            profile.wait(60)
            top(stacks)
        return 0
    finally:
        stop_bots([bot] if bot else [])
        stop_all()
        leave(work, args.keep)


if __name__ == "__main__":
    sys.exit(main())

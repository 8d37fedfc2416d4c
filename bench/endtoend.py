"""Detection on host A to a block on host B, end to end, beside fail2ban.

Host A's agent (`make agent`'s settings: lean plugins, the outbox of `make run`'s
network) tails an sshd auth.log; `make run`'s IRC server (InspIRCd + Atheme, the agents'
connect class flood-exempt) carries its reports; host B's listener (lean, trusting A's
account) puts them into nftables sets in a network namespace of its own, through the
shipped ruleset (conf/nftables/threatnet.nft). fail2ban (the Debian package, its stock
`nftables-allports` action, pyinotify backend) runs in another namespace on the same
log, as the local-only reference: it cannot block on another host.

Times come from the events themselves: the log write (detect), the PRIVMSG as a raw IRC
client in the channel receives it (channel), and the element as `nft monitor` in B's
and fail2ban's namespaces reports it (set). Each attacker fails five passwords
(sshd's and fail2ban's default maxretry), written at once.

1. Latency: ATTACKERS attackers one after another (INTERVAL apart): detect -> channel
   and detect -> set on B, p50/p95/p99/max; fail2ban's detect -> set beside them.
2. Bulk: BULK attackers in one write (5 x BULK lines) to a log only A reads: until all
   are in B's set; then the same to a log only fail2ban reads.
3. CPU: each bot idle (% of a core), and its CPU per log line (A) or channel line (B)
   during the bulk.

Needs root (network namespaces, nftables), inspircd, atheme-services, nft, fail2ban.

    sudo .venv/bin/python -m bench.endtoend [--attackers 50] [--bulk 10000]
        [--interval 0.2] [--idle 20] [--ns-prefix tnbench] [--no-fail2ban] [--keep]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import leave
from bench.propagation import percentile, run_seconds
from lab.bots import CACHE_SETTINGS, LEAN_AGENT, LOCAL_OUTBOX, Bot, skip_quiet_period, stop_bots
from lab.config import password
from lab.fail2ban import STOCK, private_config, server_command
from lab.process import Proc, stop_all
from lab.servers import InspIRCdAtheme

ROOT = Path(__file__).resolve().parents[1]
RULESET = ROOT / "conf" / "nftables" / "threatnet.nft"
CHANNEL = "#threatnet"
TN = "supybot.plugins.ThreatNetCache."
_ADD = re.compile(r"^add element .*?\{ (.*) \}")
_IPV4 = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")


class Monitor:
    """`nft monitor` in a namespace: when each IPv4 address was first added to a set."""

    def __init__(self, ns: str, log: Path):
        self.added: dict[str, float] = {}
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "nft", "monitor"],
                                     stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
                                     bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            now = time.time()
            m = _ADD.match(line)
            if m:
                with self._cond:
                    for ip in _IPV4.findall(m[1]):
                        self.added.setdefault(ip, now)
                    self._cond.notify_all()

    def wait(self, ips: list[str], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: all(ip in self.added for ip in ips), timeout)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def sshd_failures(ips: list[str], first_pid: int) -> str:
    """Five failed passwords per address, as syslog writes them (one PID per connection:
    fail2ban's filter tracks sessions by PID), timestamped now."""
    stamp = time.strftime("%b %e %H:%M:%S")
    out, pid = [], first_pid
    for ip in ips:
        for n in range(5):
            out.append(f"{stamp} hostA sshd[{pid}]: Failed password for root from {ip} "
                       f"port {40000 + n} ssh2\n")
            pid += 1
    return "".join(out)


def attacker(n: int) -> str:
    """The n-th distinct public address in 45.0.0.0/8 (never contacted)."""
    n += 1
    return f"45.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def append(path: Path, text: str) -> float:
    """Append ``text`` in one write; the time just before it (detection)."""
    t0 = time.time()
    with open(path, "a") as f:
        f.write(text)
    return t0


def stats(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: none"
    ms = [v * 1000 for v in values]
    return (f"{label}: p50 {percentile(ms, 0.5):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
            f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})")


def fail2ban(ns: str, work: Path, logs: dict[str, Path]) -> Proc:
    """fail2ban-server in namespace ``ns``: one sshd jail per log, stock nftables action."""
    conf = work / "fail2ban"
    private_config(conf, work, {name: STOCK / "action.d" / name
                                for name in ("nftables.conf", "nftables-allports.conf")})
    jails = "".join(f"""
[{name}]
enabled = true
filter = sshd
logpath = {path}
""" for name, path in logs.items())
    (conf / "jail.conf").write_text(f"""[DEFAULT]
backend = pyinotify
maxretry = 5
findtime = 600
bantime = 3600
usedns = no
banaction = nftables-allports
action = %(banaction)s[name=%(__name__)s]
{jails}""")
    proc = Proc("fail2ban", ["ip", "netns", "exec", ns, *server_command(conf, work)],
                work / "fail2ban.out")
    deadline = time.monotonic() + 30
    f2b_log = work / "fail2ban.log"
    while not all(f"Jail '{name}' started" in (f2b_log.read_text() if f2b_log.exists() else "")
                  for name in logs):
        proc.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"fail2ban did not start: {proc.log_tail()}")
        time.sleep(0.05)
    return proc


def cpu_percent(pids: dict[str, int], seconds: float) -> dict[str, float]:
    before = {name: run_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    return {name: (run_seconds(pid) - before[name]) / seconds * 100
            for name, pid in pids.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attackers", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU sampling")
    parser.add_argument("--bulk-timeout", type=float, default=120.0)
    parser.add_argument("--ns-prefix", default="tnbench")
    parser.add_argument("--no-fail2ban", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench.endtoend needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    args.attackers = max(args.attackers, 50)
    work = Path(tempfile.mkdtemp(prefix="threatnet-endtoend-"))
    tag = os.getpid() % 100000
    ns_b, ns_f = f"{args.ns_prefix}B{tag}", f"{args.ns_prefix}F{tag}"
    namespaces, monitors, bots = [], [], []
    try:
        for ns in (ns_b, ns_f):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            namespaces.append(ns)
        mon_b = Monitor(ns_b, work / "monitor-b.err")
        mon_f = Monitor(ns_f, work / "monitor-f.err")
        monitors += [mon_b, mon_f]

        server = InspIRCdAtheme(work / "ircd", people=True).start()
        # The watcher logs in too: the agents' class has room for a 10,000-line burst.
        accounts = {"agentA": password(), "listenerB": password(), "watcher": password()}
        server.register_accounts(accounts)
        auth, bulk_a, bulk_f = (work / name for name in ("auth.log", "bulk-a.log", "bulk-f.log"))
        for log in (auth, bulk_a, bulk_f):
            log.write_text("")
        agent = Bot(work / "bots", "agentA", server.address, CHANNEL,
                    sasl=("agentA", accounts["agentA"]),
                    settings={**CACHE_SETTINGS, **LEAN_AGENT, **LOCAL_OUTBOX,
                              TN + "feeds": f"sshd:{auth} sshd:{bulk_a}"})
        listener = Bot(work / "bots", "listenerB", server.address, CHANNEL,
                       sasl=("listenerB", accounts["listenerB"]),
                       settings={**CACHE_SETTINGS, **LEAN_AGENT,
                                 TN + "trustedAccounts": "agentA",
                                 TN + "responders.firewall.enable": True,
                                 TN + "responders.firewall.nft": f"ip netns exec {ns_b} nft",
                                 TN + "responders.firewall.ruleset": str(RULESET)})
        for bot in (agent, listener):
            skip_quiet_period(bot, CHANNEL)  # both have listened for hours
            bots.append(bot)
        watcher = server.client("watcher", sasl=("watcher", accounts["watcher"])).connect()
        watcher.join(CHANNEL)
        for bot in bots:
            bot.start(wait_joined=False)
        for bot in bots:
            bot.wait_joined(60)
        f2b = None
        if not args.no_fail2ban:
            f2b = fail2ban(ns_f, work, {"sshd": auth, "sshd-bulk": bulk_f})
        time.sleep(2)  # let the join bursts and the first resync settle

        pids = {"agent A": agent.proc.pid, "listener B": listener.proc.pid}
        if f2b is not None:
            pids["fail2ban"] = f2b.pid
        idle = cpu_percent(pids, args.idle)
        print(f"idle CPU over {args.idle:.0f} s (% of one core): "
              + ", ".join(f"{name} {pct:.2f} %" for name, pct in idle.items()))

        # 1. Latency, one attacker at a time.
        detected: dict[str, float] = {}
        for n in range(args.attackers):
            ip = attacker(n)
            detected[ip] = append(auth, sshd_failures([ip], 10_000 + n * 10))
            time.sleep(args.interval)
        ips = list(detected)
        mon_b.wait(ips, 30)
        if f2b is not None:
            mon_f.wait(ips, 30)
        said = {line.params[1].split()[0]: line.received for line in list(watcher.lines)
                if line.command == "PRIVMSG" and line.nick == "agentA"}
        channel = [said[ip] - t for ip, t in detected.items() if ip in said]
        on_b = [mon_b.added[ip] - t for ip, t in detected.items() if ip in mon_b.added]
        print(f"\n{len(ips)} attackers, {args.interval} s apart, 5 failed passwords each:")
        print("  ThreatNet " + stats("detect -> channel", channel))
        print("  ThreatNet " + stats("detect -> set on B", on_b))
        print(f"  ThreatNet lost: {len(ips) - len(on_b)}")
        if f2b is not None:
            local = [mon_f.added[ip] - t for ip, t in detected.items() if ip in mon_f.added]
            print("  fail2ban  " + stats("detect -> set (same host)", local))
            print(f"  fail2ban  lost: {len(ips) - len(local)}")

        # 2. Bulk, ThreatNet then fail2ban (apart, so neither takes the other's CPU).
        bulk = [attacker(100_000 + n) for n in range(args.bulk)]
        text = sshd_failures(bulk, 100_000)
        before = {name: run_seconds(pid) for name, pid in pids.items() if name != "fail2ban"}
        t0 = append(bulk_a, text)
        done = mon_b.wait(bulk, args.bulk_timeout)
        got = [mon_b.added[ip] for ip in bulk if ip in mon_b.added]
        used = {name: run_seconds(pids[name]) - cpu for name, cpu in before.items()}
        heard = [line.received for line in list(watcher.lines) if line.command == "PRIVMSG"
                 and line.nick == "agentA" and line.received >= t0]
        said = len(heard)
        print(f"\nbulk: {args.bulk} attackers ({5 * args.bulk} log lines) in one write:")
        print(f"  ThreatNet: {len(got)} of {args.bulk} in B's set"
              + (f", all after {max(got) - t0:.2f} s" if done else
                 f" after {args.bulk_timeout:.0f} s (lost or late: {args.bulk - len(got)})")
              + f"; {said} lines in the channel"
              + (f", the last after {max(heard) - t0:.2f} s" if heard else ""))
        print(f"  CPU: agent A {used['agent A'] * 1e6 / (5 * args.bulk):.0f} µs per log line "
              f"({used['agent A'] * 1e6 / args.bulk:.0f} µs per threat), listener B "
              f"{used['listener B'] * 1e6 / max(1, said):.0f} µs per channel line")
        if f2b is not None:
            t0 = append(bulk_f, text)
            done = mon_f.wait(bulk, args.bulk_timeout)
            got = [mon_f.added[ip] for ip in bulk if ip in mon_f.added]
            print(f"  fail2ban:  {len(got)} of {args.bulk} in its set"
                  + (f", all after {max(got) - t0:.2f} s" if done else
                     f" after {args.bulk_timeout:.0f} s (not yet: {args.bulk - len(got)})"))
        errors = [e for bot in bots for e in bot.errors()]
        if errors:
            print("\nbot errors:\n  " + "\n  ".join(errors[:10]))
        return 0
    finally:
        stop_bots(bots)
        stop_all()
        for monitor in monitors:
            monitor.stop()
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        leave(work, args.keep)


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for the integration tests (fixtures are in conftest.py).

The stack itself (servers, bots, the raw client) is the lab (lab/), because `make run`
and the benchmarks use it too.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from lab import ROOT
from lab.bots import CACHE_SETTINGS, GUARD_SETTINGS, Bot, stop_bots
from lab.ircclient import Client, connect_all

# On loopback any 127/8 address can be a client's source: agents (whitelisted) connect
# from AGENT_IP, everyone else from STRANGER_IP, bots from 127.0.0.1 unless told.
AGENT_IP = "127.0.0.2"
STRANGER_IP = "127.0.0.3"
OWNER = ("admin", "owner-secret-1")

# Registry settings as `make run` uses them: the channel bot runs both plugins with
# CACHE and GUARD, other agents ThreatNetCache with CACHE. A new topic counts at once
# (topicHold 0, `make run` has 30 s): tests start agents right after the Guard set the
# topic and use it at once; test_guard_chanops tests the hold.
CACHE = {**CACHE_SETTINGS, "supybot.plugins.ThreatNetCache.topicHold": 0}
# The lab's servers show every client's real IP as its host (no vhosts, cloaks or
# services that set hosts), so IP-literal hosts count (realHosts).
GUARD = {**GUARD_SETTINGS, "supybot.plugins.ThreatNetGuard.realHosts": True}


def write_whitelist(bot: Bot, channels: dict) -> None:
    """The Guard's whitelist file, as an operator writes it (before the bot starts)."""
    lines = ["channels:"]
    for channel, entries in channels.items():
        lines.append(f'  "{channel}":')
        lines += [f"    - {e}" for e in entries]
    path = bot.dir / "data" / "ThreatNetGuard.whitelist.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def identify(client: Client, bot: Bot) -> None:
    """Log `client` in as the bot's owner (Limnoria's User plugin, by private message)."""
    reply = client.ask(bot.nick, f"identify {bot.owner[0]} {bot.owner[1]}", bot.nick)
    assert "operation succeeded" in reply.text, reply.raw


def answers(client: Client, nicks, timeout: float = 10.0) -> dict:
    """The next reply (PRIVMSG or NOTICE text) from each of `nicks`."""
    wanted = {n.lower() for n in nicks}
    got = {}
    for _ in nicks:
        line = client.wait_for(lambda l: l.command in ("PRIVMSG", "NOTICE")
                               and l.nick.lower() in wanted - set(got), timeout=timeout)
        got[line.nick.lower()] = line.text
    return {n: got[n.lower()] for n in nicks}


class Lab:
    """What one test starts on a server: bots and clients, all stopped at teardown."""

    def __init__(self, server, root: Path, name: str):
        self.server = server
        self.root = root
        self.name = name
        self.bots: list[Bot] = []
        self.clients: list[Client] = []
        self._seq = 0

    def unique(self, prefix: str) -> str:
        """A nick (and account) name unique in the session: tests share the servers."""
        self._seq += 1
        return f"{prefix}{self._seq}{self.name}"[:28]

    def channel(self) -> str:
        return f"#tn{self.name}"[:40]

    def bot(self, nick: str, channel: str, **kw) -> Bot:
        bot = Bot(self.root, nick, self.server.address, channel, **kw)
        self.bots.append(bot)
        return bot

    def client(self, nick: str, **kw) -> Client:
        c = self.server.client(nick, **kw)
        self.clients.append(c)
        return c

    def connect(self, *clients: Client) -> list[Client]:
        return connect_all(clients)

    def close(self) -> None:
        for c in self.clients:
            c.close()
        stop_bots(self.bots)


def voice_change(line, sign, nick):
    """Whether a MODE line gives (sign "+") or takes ("-") ``nick``'s voice."""
    if line.command != "MODE" or len(line.params) < 3:
        return False
    current, args = "+", list(line.params[2:])
    for ch in line.params[1]:
        if ch in "+-":
            current = ch
        elif ch in "vohbkeIq" or (ch == "l" and current == "+"):
            arg = args.pop(0) if args else ""
            if ch == "v" and current == sign and arg.lower() == nick.lower():
                return True
    return False


def never_voiced(client, nick, timeout=1.5):
    """True if ``client`` sees no +v for ``nick`` within ``timeout`` seconds."""
    return client.wait_for(lambda l: voice_change(l, "+", nick), timeout=timeout,
                           required=False) is None


class Runner:
    """The runner (scripts/threatnet_run.py) as `make run` and `make agent` start it, or
    any command (``argv``), into a run directory of the test's own (THREATNET_RUN_DIR);
    its output is collected line by line as it comes."""

    def __init__(self, run_dir: Path, *args: str, argv: Optional[list[str]] = None,
                 cwd: Path = ROOT):
        env = {**os.environ, "THREATNET_RUN_DIR": str(run_dir), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            argv or [sys.executable, "-m", "scripts.threatnet_run", *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        self.lines: list[str] = []
        self._cursor = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90.0) -> str:
        """The output up to the first line after the previous match that holds ``text``."""
        deadline = time.monotonic() + timeout
        ended = False
        while time.monotonic() < deadline:
            for n in range(self._cursor, len(self.lines)):
                if text in self.lines[n]:
                    self._cursor = n + 1
                    return "".join(self.lines[:n + 1])
            if ended:
                break
            ended = self.proc.poll() is not None  # one more look: the last lines
            time.sleep(0.2 if ended else 0.1)
        raise AssertionError(f"no {text!r} within {timeout} s (exit {self.proc.poll()}):\n"
                             f"{self.output}")

    def stop(self) -> Optional[int]:
        """Ctrl-C (SIGINT to its process group, as a terminal sends it) and wait."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode

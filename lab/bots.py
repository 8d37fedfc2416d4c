"""Limnoria bots as lab processes: real `supybot` processes configured from
conf/bot/agent.conf, and the registry settings the tests, benchmarks and `make run` share.

Facts behind the settings: docs/LIMNORIA.md.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union
from urllib.parse import quote

from supybot.utils.gen import saltHash

from lab import ROOT
from lab.config import private_dir, private_file, render
from lab.process import Proc, StackError, venv_script

PLUGINS_DIR = ROOT / "plugins"
# Limnoria's "important" plugins load only when listed in the registry (Owner always does).
BASE_PLUGINS = ("Admin", "Channel", "Config", "Misc", "User")
# Registry lines that unload the plugins Bot always adds (later lines win): a bot that
# only listens needs Owner and its own plugins. Limnoria's per-plugin work on every
# line (ignore checks, proxies) costs ~70 µs a line per plugin, see docs/SCALING.md.
MINIMAL = {"supybot.plugins.alwaysLoadImportant": False,
           **{f"supybot.plugins.{name}": False for name in BASE_PLUGINS}}


def owner_database(name: str, password: str) -> str:
    """Limnoria's users.conf with one owner, its password salted and hashed as Limnoria
    does: what supybot-adduser writes, without the password on a command line."""
    return (f"User 1\n  name {name}\n  ignore False\n  secure False\n  hashed True\n"
            f"  password {saltHash(password)}\n  capability owner\n\n")


# Registry settings shared by `make run`, `make agent` and the tests.
CACHE_SETTINGS = {"supybot.plugins.ThreatNetCache.enable": True}
# What an agent needs and no more (`make agent`, conf/bot/agent.conf's lean default):
# Owner (always), User (identify: its owner's admin commands) and ThreatNetCache.
LEAN_AGENT = {"supybot.plugins.alwaysLoadImportant": False,
              **{f"supybot.plugins.{name}": False for name in BASE_PLUGINS if name != "User"}}
# The outbox of an agent on `make run`'s network, whose "agents" connect class is flood
# exempt: 10,000 reports at once are all said within ~2 s (a listener reads ~5,000
# lines/s), and the outbox holds them all. On another network the plugin's defaults
# (1/s, burst 5) apply until its operators allow more (README: "Another network").
LOCAL_OUTBOX = {"supybot.plugins.ThreatNetCache.outbox.rate": 5000,
                "supybot.plugins.ThreatNetCache.outbox.burst": 50,
                "supybot.plugins.ThreatNetCache.outbox.size": 20000}
GUARD_SETTINGS = {"supybot.plugins.ThreatNetGuard.enable": True}


class Bot:
    """A real `supybot` process configured from conf/bot/agent.conf.

    The bot's whole world lives in `root/<nick>/`: conf/ (registry rendered by
    `configure()`, users.conf), data/, logs/messages.log, console.log (stdout/stderr).
    `settings` are extra registry lines (key → value), e.g. plugin configuration.
    """

    def __init__(self, root: Path, nick: str, server: tuple[str, int], channel: str, *,
                 plugins: Sequence[str] = ("ThreatNetCache",), network: str = "threatnet",
                 sasl: Optional[tuple[str, str]] = None, owner: Optional[tuple[str, str]] = None,
                 settings: Optional[Mapping[str, object]] = None, log_level: str = "INFO",
                 plugins_dir: Union[str, Path] = PLUGINS_DIR, ssl: bool = False,
                 vhost: str = "", server_fingerprints: Sequence[str] = (),
                 certfile: Union[str, Path] = "", supybot: Union[str, Path] = ""):
        self.nick, self.server, self.channel = nick, server, channel
        self.network = network
        self.plugins = list(dict.fromkeys([*BASE_PLUGINS, *plugins]))
        self.sasl = sasl
        self.owner = owner
        self.settings = dict(settings or {})
        self.log_level = log_level
        self.plugins_dir = plugins_dir
        self.ssl = ssl
        self.vhost = vhost  # source address, e.g. 127.0.0.2: on loopback any 127/8 works
        # TLS: the server certificate's pinned fingerprints (ssl.serverFingerprints), and a
        # client certificate + key (PEM) to present: with it the bot logs in by SASL EXTERNAL
        # (CertFP), before PLAIN if `sasl` is given too.
        self.server_fingerprints = list(server_fingerprints)
        self.certfile = str(certfile) if certfile else ""
        # Another installation's supybot script (a venv with the built wheel): the bot then
        # runs from that installation alone, without this checkout on its PYTHONPATH.
        self.supybot = str(supybot)
        self.dir = Path(root) / nick
        self.conf_path = self.dir / "conf" / f"{nick}.conf"
        self.log_path = self.dir / "logs" / "messages.log"
        self.proc: Optional[Proc] = None
        self._log_pos = 0

    # --- configuration ----------------------------------------------------------------
    def configure(self) -> Path:
        """(Re)write the registry from the template and create the owner if needed."""
        private_dir(self.dir)  # its registry holds the SASL password and the HTTP token
        for sub in ("conf", "data/tmp", "data/web", "backup", "logs"):
            private_dir(self.dir / sub)
        account, secret = self.sasl or ("", "")
        mechanisms = (["EXTERNAL"] if self.certfile else []) + (["PLAIN"] if self.sasl else [])
        plugin_lines = "\n".join(f"supybot.plugins.{p}: True" for p in self.plugins)
        extra = "\n".join(f"{k}: {v}" for k, v in self.settings.items())
        render("bot/agent.conf", self.conf_path, {
            "nick": self.nick, "ident": re.sub(r"[^A-Za-z0-9]", "", self.nick)[:9] or "agent",
            "network": self.network, "server": f"{self.server[0]}:{self.server[1]}",
            "ssl": self.ssl, "vhost": self.vhost, "channel": self.channel, "sasl_username": account, "sasl_password": secret,
            "sasl_required": bool(self.sasl or self.certfile), "bot_dir": self.dir,
            "sasl_mechanisms": " ".join(mechanisms) or "PLAIN", "certfile": self.certfile,
            "server_fingerprints": " ".join(self.server_fingerprints),
            "plugins_dir": self.plugins_dir, "log_stdout": False, "log_level": self.log_level,
            "plugins": " ".join(self.plugins), "plugin_lines": plugin_lines, "extra": extra})
        for db in ("channels.conf", "networks.conf", "ignores.conf"):
            # empty databases instead of "missing file" errors at first start
            (self.dir / "conf" / db).touch()
        users = self.dir / "conf" / "users.conf"
        if self.owner and not (users.exists() and f"name {self.owner[0]}\n" in users.read_text()):
            private_file(users, owner_database(*self.owner))
        else:
            users.touch()
        return self.conf_path

    # --- life cycle -------------------------------------------------------------------
    def start(self, *, wait_joined: bool = True, timeout: float = 30.0,
              configure: bool = True) -> "Bot":
        """Start the bot (rendering its config unless configure=False, as after a restart)
        and wait until its join to the channel is synced."""
        if configure or not self.conf_path.exists():
            self.configure()
        argv = [self.supybot or venv_script("supybot"), str(self.conf_path)]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        self._log_pos = self.log_path.stat().st_size if self.log_path.exists() else 0
        # The plugins come from this checkout, so must threatnet/ and threatnet_irc/,
        # whatever an (editable) install of the package happens to contain.
        env = dict(os.environ)
        if self.supybot:
            env.pop("PYTHONPATH", None)
        else:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        # umask 077: what Limnoria writes (its registry on exit: the SASL password) stays
        # the owner's, whatever mode the file had.
        # SIGINT to stop: Limnoria quits (QUIT sent) and flushes; SIGTERM would exit at
        # once, the server then sees the connection drop.
        self.proc = Proc(f"bot {self.nick}", argv, self.dir / "console.log", cwd=self.dir,
                         env=env, umask=0o077, stop_signal=signal.SIGINT, stop_timeout=10.0)
        if wait_joined:
            self.wait_joined(timeout)
        return self

    def wait_joined(self, timeout: float = 30.0) -> None:
        self.wait_log(rf"Join to {re.escape(self.channel)} on \S+ synced", timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT (Limnoria quits and flushes its registry and databases), SIGKILL later."""
        if self.proc:
            self.proc.stop(signal.SIGINT, timeout)
            self.proc = None

    def restart(self, timeout: float = 30.0) -> "Bot":
        """Stop and start again with the registry the bot itself wrote on exit."""
        self.stop()
        return self.start(configure=False, timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    # --- log --------------------------------------------------------------------------
    def read_log(self, start: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern: str, *, timeout: float = 10.0,
                 required: bool = True) -> Optional[re.Match]:
        """The first log match after the previous one (or after start); moves the cursor."""
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            text = self.read_log(self._log_pos)
            m = regex.search(text)
            if m:
                self._log_pos += len(text[:m.end()].encode("utf-8"))
                return m
            if self.proc is not None and not self.proc.alive():
                raise StackError(f"bot {self.nick} exited; console {self.proc.log_path}:\n"
                                 f"{self.proc.log_tail()}\nlog tail:\n{text[-2000:]}")
            if time.monotonic() > deadline:
                if not required:
                    return None
                raise StackError(f"bot {self.nick}: /{pattern}/ not in {self.log_path} after "
                                 f"{timeout} s; tail:\n{text[-3000:]}")
            time.sleep(0.02)

    def mark_log(self) -> None:
        self._log_pos = self.log_path.stat().st_size if self.log_path.exists() else 0

    def errors(self) -> list[str]:
        """ERROR/CRITICAL log lines (tracebacks included) since the file began."""
        return [l for l in self.read_log().splitlines()
                if l.startswith(("ERROR", "CRITICAL"))]


def skip_quiet_period(bot: Bot, channel: str, network: str = "threatnet") -> None:
    """Before ``bot`` starts: a cache snapshot saved just now by an agent listening for
    two hours, so ``bot`` restores it (within restartGrace), carries the listening start
    over and may report at once instead of waiting out its quiet period."""
    now = time.time()
    snapshot = bot.dir / "data" / "ThreatNetCache" / quote(network, safe="") / (
        quote(channel.lower(), safe="") + ".json")
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.write_text(json.dumps({"version": 1, "saved_at": now,
                                    "listening_since": now - 7200, "entries": []}))


def start_bots(bots: Iterable[Bot], timeout: float = 30.0) -> list[Bot]:
    """Start several bots at once and wait until all have joined."""
    bots = list(bots)
    for b in bots:
        b.start(wait_joined=False)
    for b in bots:
        b.wait_joined(timeout)
    return bots


def stop_bots(bots: Iterable[Bot]) -> None:
    bots = [b for b in bots if b.proc]
    for b in bots:  # signal all first, then wait for each
        if b.proc.alive():
            try:
                os.killpg(b.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    for b in bots:
        try:
            b.proc.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        b.stop()


def network_settings(networks: Mapping[str, tuple[tuple[str, int], Sequence[str]]], *,
                     vhost: str = "") -> dict[str, str]:
    """Registry settings (a Bot's `settings`) that put one bot on several IRC networks:
    network name -> (server address, channels). List the Bot's own network first (its
    `network`, server and channel are rendered into the template, and `wait_joined`
    waits for that one); wait for the others with `bot.wait_log(rf"Join to #c on NET
    synced")`. Plain TCP, no SASL."""
    settings = {"supybot.networks": " ".join(networks)}
    for name, ((host, port), channels) in networks.items():
        settings.update({f"supybot.networks.{name}.servers": f"{host}:{port}",
                         f"supybot.networks.{name}.ssl": "False",
                         f"supybot.networks.{name}.vhost": vhost,
                         f"supybot.networks.{name}.channels": " ".join(channels)})
    return settings

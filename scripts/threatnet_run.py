"""`make run` and `make agent`: ThreatNet on real IRC, on this machine or an existing network.

    python -m scripts.threatnet_run run         local InspIRCd + Atheme + the channel bot
    python -m scripts.threatnet_run run --server HOST:PORT
                                                only the bot, joining an existing network
    python -m scripts.threatnet_run agent --name NAME [--feed FILE]
                                                one more agent (ThreatNetCache only) on the
                                                local network started by `run`

Run from the repository root (the Makefile does): the servers and bots come from the lab
(lab/).

    python -m scripts.threatnet_run clean       forget the local network (clean slate)

Everything generated (configs, logs, databases, passwords) goes under run/ (gitignored).
The local network keeps its identity across runs (run/local/ircd/: services database,
TLS key and certificate); `run --fresh` or `clean` start afresh. Ctrl-C (or SIGTERM)
stops every process this script started, the bots first (they quit cleanly).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Optional, TextIO

from lab import ROOT
from lab.bots import CACHE_SETTINGS, GUARD_SETTINGS, LEAN_AGENT, LOCAL_OUTBOX, Bot
from lab.config import password, private_dir, private_file
from lab.ircclient import Client, IRCError
from lab.process import LIVE, StackError, free_port, port_is_free, stop_all
from lab.servers import (InspIRCdAtheme, add_certificates, grant_access, register_accounts,
                         services_accounts)
from threatnet.names import fold
from threatnet.whitelist import ACCOUNT_PREFIX, WhitelistError, WhitelistStore
from threatnet_tools import tlscert

# Where everything generated goes; THREATNET_RUN_DIR moves it (the tests' own runs).
RUN = Path(os.environ.get("THREATNET_RUN_DIR") or ROOT / "run")
LOCAL = RUN / "local"
IRCD = LOCAL / "ircd"  # the local network's identity: services database, TLS key, certificate
OWNER = "admin"
# The human channel operator's services account: ChanServ ops it on join (O), and it may
# op (o), set the topic (t), invite (i), kick and ban (r), voice (v), see the access list (A).
OPERATOR, OPERATOR_FLAGS = "operator", "+AOiortv"
DEFAULT_PORT = 6667
DEFAULT_TLS_PORT = 6697



def say(text: str = "") -> None:
    print(text, flush=True)


def shown(path: Path) -> Path:
    """``path`` as the user finds it: relative to the checkout where it is inside."""
    try:
        return path.relative_to(ROOT)
    except ValueError:
        return path


class Lock:
    """An exclusive lock on a file, held while this process runs (flock: the kernel
    releases it when the process ends, however it ends); the file says who holds it."""

    def __init__(self, path: Path):
        self.path = path
        self._file: Optional[TextIO] = None

    def acquire(self) -> bool:
        private_dir(self.path.parent)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return True

    def holder(self) -> Optional[int]:
        """The pid of the process that holds the lock, or None if nobody does."""
        if self._file is not None:
            return os.getpid()
        if not self.path.exists():
            return None
        with open(self.path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                text = f.read().strip()
                return int(text) if text.isdigit() else -1
        return None


def run_lock() -> Lock:
    return Lock(LOCAL / "run.lock")


def agent_lock(name: str) -> Lock:
    """One agent per name (as services compare names: agent1 is Agent1)."""
    return Lock(LOCAL / "agents" / f"{fold(name)}.lock")


def last_state() -> dict:
    """What the last local run wrote down (ports, fingerprint, ...), running or not."""
    try:
        state = json.loads((LOCAL / "network.json").read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def read_state() -> Optional[dict]:
    """The local network, if `make run` is running it."""
    state = last_state()
    return state if state and run_lock().holder() is not None else None


def read_credentials(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    return dict(line.partition("=")[::2] for line in lines if "=" in line)


def signals_as_interrupt() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # also when started with
        signal.signal(sig, handler)                              # SIGINT ignored (`cmd &`)


def watch(tick: Callable[[], None] = lambda: None) -> None:
    """Block until Ctrl-C or until one of our processes dies; ``tick`` every 0.5 s."""
    while True:
        for proc in list(LIVE):
            if not proc.alive():
                raise StackError(f"{proc.name} stopped unexpectedly (exit {proc.popen.returncode});"
                                 f" log {proc.log_path}:\n{proc.log_tail()}")
        tick()
        time.sleep(0.5)


def wait_topic(host: str, port: int, channel: str, timeout: float = 15.0) -> str:
    """Ask the server for the channel topic until it is a threatnet:// topic."""
    c = Client(host, port, f"tnprobe{os.getpid() % 10000}", user="probe").connect()
    try:
        deadline = time.monotonic() + timeout
        topic = ""
        while time.monotonic() < deadline:
            c.mark()
            c.send(f"TOPIC {channel}")
            line = c.wait_for(lambda l: l.command in ("331", "332", "403", "442"), timeout=5)
            topic = line.text if line.command == "332" else ""
            if topic.startswith("threatnet://"):
                break
            time.sleep(0.3)
        return topic
    finally:
        c.close()


def operator_account(server: InspIRCdAtheme, channel: str, founder: tuple[str, str],
                     secret: str, name: str = OPERATOR) -> tuple[str, str]:
    """Register the human operator's account (kept across runs, with the password of the
    last run) and give it ChanServ access to `channel` as its founder (account,
    password): (account, password)."""
    server.register_accounts({name: secret})
    grant_access(server.address, founder, channel, {name: OPERATOR_FLAGS})
    return name, secret


def guard_settings(args: argparse.Namespace) -> dict[str, object]:
    """The channel bot: both plugins enabled, the topic's block period if given."""
    settings = {**CACHE_SETTINGS, **GUARD_SETTINGS}
    if args.block:
        settings["supybot.plugins.ThreatNetGuard.topic.block"] = args.block
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    if args.server:
        return run_remote(args)
    return run_local(args)


def choose_port(wanted: int, default: int, previous: Optional[int], taken: set[int],
                ) -> tuple[int, str]:
    """The port to listen on and a note if it is not ``wanted``: the last run's port
    when the default is taken (agents left running reconnect there), else a free one."""
    if port_is_free(wanted) and wanted not in taken:
        return wanted, ""
    if wanted == default and previous and previous not in taken and port_is_free(previous):
        port = previous
    else:
        port = free_port()
        while port in taken:
            port = free_port()
    return port, f"port {wanted} is taken on 127.0.0.1, so this run uses {port}"


def clear_local() -> bool:
    """Forget the local network: services database, TLS key and certificate, the bots'
    and agents' data (whitelist, snapshots). Refused while any of it runs."""
    state = read_state()
    if state:
        say(f"The local ThreatNet is running (pid {state['pid']}): stop it first (Ctrl-C).")
        return False
    running = [(path.stem, pid) for path in sorted(LOCAL.glob("agents/*.lock"))
               if (pid := Lock(path).holder()) is not None]
    if running:
        say("Agents of the local network are running: "
            + ", ".join(f"{name} (pid {pid})" for name, pid in running)
            + ". Stop them first (Ctrl-C in their terminals).")
        return False
    if LOCAL.exists():
        shutil.rmtree(LOCAL)
    private_dir(LOCAL)
    say(f"Forgot the local network ({shown(LOCAL)}): its services accounts, channel "
        "registration, TLS certificate, whitelist and caches. The next `make run` makes "
        "a new one.")
    return True


def keep_whitelist_in_step(accounts: dict[str, str]) -> list[str]:
    """Remove from every channel bot's whitelist each `account:NAME` whose account the
    services database does not hold (``accounts``: folded name -> name): whoever
    registered NAME next would be voiced. Returns what the operator must be told."""
    told = []
    for path in sorted(LOCAL.glob("bots/*/data/ThreatNetGuard.whitelist.yaml")):
        store = WhitelistStore(path)
        try:
            whitelist = store.load()
        except WhitelistError as e:
            told.append(f"{shown(path)} is invalid ({e}): the bot trusts nobody until it is "
                        "fixed")
            continue
        bot = path.parent.parent.name
        for channel in whitelist.channels():
            for entry in whitelist.entries(channel):
                name = entry[len(ACCOUNT_PREFIX):]
                if not entry.startswith(ACCOUNT_PREFIX) or fold(name) in accounts:
                    continue
                store.remove(channel, entry)
                told.append(f"removed {entry} from the whitelist of {channel}: services have "
                            f"no account {name} (a new or lost services database), so "
                            f"whoever registers {name} next would have been voiced.\n"
                            f"    Once its owner has it again (make agent NAME={name} "
                            f"registers it), add it back:  /msg {bot} tn whitelist add "
                            f"{channel} {entry}")
    return told


def run_local(args: argparse.Namespace) -> int:
    if read_state():
        say(f"A local ThreatNet is already running (pid {run_lock().holder()}); stop it "
            "first.")
        return 1
    if args.fresh and not clear_local():
        return 1
    lock = run_lock()
    if not lock.acquire():
        say(f"A local ThreatNet is already running (pid {lock.holder()}); stop it first.")
        return 1
    previous = last_state()
    port, note = choose_port(args.port, DEFAULT_PORT, previous.get("port"), set())
    tls_port, tls_note = choose_port(args.tls_port, DEFAULT_TLS_PORT, previous.get("tls_port"),
                                     {port})
    notes = "".join(f"\n  ({n})" for n in (note, tls_note) if n)
    (LOCAL / "network.json").unlink(missing_ok=True)
    nick, channel = args.nick, args.channel
    server = InspIRCdAtheme(IRCD, port=port, tls_port=tls_port, keep_identity=True,
                            people=True)
    # The network keeps its services database (accounts, registered certificates, the
    # channel) and TLS key across runs; a whitelist entry must not outlive its account.
    accounts = services_accounts(server.services_db)
    first = not server.services_db.exists()
    removed = keep_whitelist_in_step(accounts)
    creds = read_credentials(LOCAL / "credentials.txt")
    known = not first and creds.get("bot_account") == nick and bool(creds.get("bot_password"))
    bot_password = creds["bot_password"] if known else password()
    operator_password = creds.get("operator_password") if not first else None
    operator_password = operator_password or password()
    owner_password = password()  # new each run
    if first:
        say(f"First run: making a new local network in {shown(IRCD)} (services database, TLS "
            "key and certificate), kept across runs; `make run FRESH=1` or `make clean-run` "
            "starts afresh.")
    else:
        say(f"Restart: the local network in {shown(IRCD)} keeps its identity: "
            f"{len(accounts)} services accounts, the channel registrations, and its TLS "
            "certificate (agents and clients keep their pin).")
    for text in removed:
        say(f"  Whitelist: {text}")
    say(f"Starting InspIRCd + Atheme services on 127.0.0.1:{port} and TLS port {tls_port}"
        f" ...{notes}")
    server.start()
    say(f"Registering services account {nick!r} and channel {channel} (founder {nick}) ...")
    try:
        server.register_accounts({nick: bot_password}, {channel: nick})
        operator, operator_password = operator_account(server, channel, (nick, bot_password),
                                                       operator_password)
    except StackError as e:
        raise StackError(f"{e}\n(the services account {nick} or {OPERATOR}, or channel "
                         f"{channel}, belongs to someone this run does not know; `make run "
                         "FRESH=1` starts afresh)") from None
    # The passwords (the bot's and the operator's also for the next run).
    creds_path = private_file(LOCAL / "credentials.txt",
                              f"owner_user={OWNER}\nowner_password={owner_password}\n"
                              f"bot_account={nick}\nbot_password={bot_password}\n"
                              f"operator_account={operator}\n"
                              f"operator_password={operator_password}\n"
                              f"oper={server.oper[0]}\noper_password={server.oper[1]}\n")
    # Over TLS, pinning the server's certificate (no CA, no "verify off").
    bot = Bot(LOCAL / "bots", nick, server.tls_address, channel,
              plugins=("ThreatNetCache", "ThreatNetGuard"), sasl=(nick, bot_password),
              owner=(OWNER, owner_password), settings={
                  **guard_settings(args),
                  # our InspIRCd gives nobody a vhost (no HostServ; only opers may CHGHOST)
                  "supybot.plugins.ThreatNetGuard.realHosts": True}, ssl=True,
              server_fingerprints=[server.tls_fingerprint])
    (bot.dir / "conf" / "users.conf").unlink(missing_ok=True)  # new owner password each run
    say(f"Starting the ThreatNet bot {nick!r} (ThreatNetCache + ThreatNetGuard) ...")
    bot.start(timeout=60)
    topic = wait_topic(server.host, port, channel)
    state = {"pid": os.getpid(), "host": server.host, "port": port, "channel": channel,
             "network": server.network, "bot": nick, "accounts": True,
             "tls_port": tls_port, "tls_fingerprint": server.tls_fingerprint}
    (LOCAL / "network.json").write_text(json.dumps(state, indent=2) + "\n")
    say(f"""
ThreatNet is running.

  IRC server   127.0.0.1:{port}  (plain text, InspIRCd {server.name} + Atheme services)
  TLS          127.0.0.1:{tls_port}  self-signed certificate {shown(IRCD / "tls" / "server.crt")}
               SHA-256 fingerprint {server.tls_fingerprint}
               (kept across runs; the bot and agents pin it: supybot.networks.{server.network}.ssl.serverFingerprints)
  channel      {channel}   topic: {topic or '(not set yet: the bot sets it once ChanServ ops it)'}
  bot          {nick}   (over TLS, account {nick}; ChanServ ops it because {channel} is registered to it)

Connect any IRC client, e.g.:
  irssi -c 127.0.0.1 -p {port} -n $USER        then  /join {channel}
  weechat over TLS: /server add tn 127.0.0.1/{tls_port} -tls -tls_fingerprint={server.tls_fingerprint}
                    /connect tn; /join {channel}

You, the channel operator (services account {operator}, password {operator_password}):
  /msg NickServ IDENTIFY {operator} {operator_password}     then /join {channel}: ChanServ ops you
  (/msg ChanServ OP {channel} if you joined first). Ops may talk in the channel and
  change modes; the bot reverts the topic: change it with tn topic (below).

Admin commands (owner user {OWNER}, password {owner_password}, new each run):
  /msg {nick} identify {OWNER} {owner_password}
  /msg {nick} tn whitelist add {channel} account:NAME     voice agents logged in as NAME
  /msg {nick} tn whitelist add {channel} 127.0.0.1        voice everyone on this machine
  /msg {nick} tn whitelist list {channel}
  /msg {nick} tn topic --block 600                      the topic agents follow (after 30 s)
In the channel anyone can ask:  !tn help   !tn status   !tn check 11.22.33.44
A voiced agent (or you, once whitelisted) posts a threat as a channel line: 11.22.33.44 ssh brute force

Services: /msg NickServ REGISTER <password> <email> makes an account (kept across runs);
SASL PLAIN works, and SASL EXTERNAL over TLS with a client certificate added by
/msg NickServ CERT ADD <fingerprint> (threatnet-agentcert makes one and
prints the steps).
Another agent against this network (TLS, logged in by its own certificate):
  make agent NAME=agent1 FEED=/var/log/auth.log
Credentials: {shown(creds_path)} (mode 600; also the IRC operator's, for /oper: server
administration only, it gives no channel op). Logs: {shown(IRCD)}/, {shown(bot.dir)}/logs/messages.log

Press Ctrl-C to stop everything (the next `make run` brings the same network back).""")
    watch()
    return 0


def sasl_credentials(args: argparse.Namespace) -> Optional[tuple[str, str]]:
    """From --sasl-file (`user:password` or two lines) or THREATNET_SASL_USER/_PASSWORD."""
    if args.sasl_file:
        text = Path(args.sasl_file).read_text().strip()
        user, sep, pw = text.partition("\n") if "\n" in text else text.partition(":")
        if not sep or not user.strip() or not pw.strip():
            raise SystemExit(f"{args.sasl_file}: expected `user:password` or two lines")
        return user.strip(), pw.strip()
    user = os.environ.get("THREATNET_SASL_USER")
    pw = os.environ.get("THREATNET_SASL_PASSWORD")
    if user and pw:
        return user, pw
    return None


def parse_server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"--server {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def run_remote(args: argparse.Namespace) -> int:
    host, port = parse_server(args.server)
    sasl = sasl_credentials(args)
    network = re.sub(r"[^A-Za-z0-9]", "", host.split(".")[0]) or "net"
    run_dir = RUN / f"{network}-{port}"
    owner_password = password()
    plugins = ("ThreatNetCache",) if args.listener_only else ("ThreatNetCache", "ThreatNetGuard")
    settings = guard_settings(args) if "ThreatNetGuard" in plugins else dict(CACHE_SETTINGS)
    tls = bool(args.tls or args.server_fingerprint)
    if tls and not args.server_fingerprint:
        settings["supybot.protocols.ssl.verifyCertificates"] = True  # CA-signed, then
    bot = Bot(run_dir / "bots", args.nick, (host, port), args.channel, network=network,
              plugins=plugins, sasl=sasl, owner=(OWNER, owner_password), ssl=tls,
              settings=settings, server_fingerprints=_pins(args),
              certfile=args.certfile or "")
    (bot.dir / "conf" / "users.conf").unlink(missing_ok=True)
    creds = private_file(run_dir / "credentials.txt",
                         f"owner_user={OWNER}\nowner_password={owner_password}\n")
    login = (f" with client certificate {args.certfile} (SASL EXTERNAL)" if args.certfile
             else f" with SASL account {sasl[0]}" if sasl else " without SASL")
    pinned = " pinning " + ", ".join(_pins(args)) if args.server_fingerprint else \
        " (certificate checked against the system's CAs)"
    say(f"Joining {args.channel} on {host}:{port}{' over TLS' + pinned if tls else ''} as "
        f"{args.nick}{login} ...")
    bot.start(timeout=120)
    say(f"""
The ThreatNet bot {args.nick} is in {args.channel} on {host}:{port} ({', '.join(plugins)}).
For the Guard to voice and kick, the bot needs channel op (e.g. ChanServ FLAGS {args.channel} {sasl[0] if sasl else args.nick} +O).

Admin commands (owner user {OWNER}, password {owner_password}, also in {shown(creds)}):
  /msg {args.nick} identify {OWNER} {owner_password}
  /msg {args.nick} tn whitelist add {args.channel} account:NAME
Log: {shown(bot.log_path)}

Press Ctrl-C to stop the bot.""")
    watch()
    return 0


def _pins(args: argparse.Namespace) -> list[str]:
    """--server-fingerprint: SHA-256 fingerprints of the server certificate (colons allowed)."""
    pins = [fp.replace(":", "").lower() for fp in (args.server_fingerprint or "").split(",")
            if fp.strip()]
    for fp in pins:
        if not tlscert.is_fingerprint(fp):
            raise SystemExit(f"--server-fingerprint {fp!r}: expected 64 hex digits (SHA-256)")
    if args.certfile and not Path(args.certfile).is_file():
        raise SystemExit(f"--certfile {args.certfile}: no such file")
    return pins


def cmd_agent(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-\[\]\\`^{}|]{0,29}", args.name):
        say(f"NAME={args.name!r}: give the agent an IRC nick, e.g. make agent NAME=agent1")
        return 1
    if args.server:
        host, port = parse_server(args.server)
        state = {"host": host, "port": port, "channel": args.channel, "network": "threatnet",
                 "accounts": False}
    else:
        state = read_state()
        if not state:
            say("No local ThreatNet is running: start `make run` in another terminal first "
                "(or pass SERVER=host:port).")
            return 1
    name, channel = args.name, args.channel or state["channel"]
    agent_dir = LOCAL / "agents"
    lock = agent_lock(name)
    if not lock.acquire():
        say(f"Agent {name} is already running (pid {lock.holder()}): one agent per name, as "
            f"the name is its nick and services account. Stop that one first (Ctrl-C in its "
            f"terminal), or start another under another name: make agent NAME={name}2")
        return 1
    sasl = sasl_credentials(args)
    certfile, fingerprint, tls = args.certfile or "", "", {}
    if state.get("accounts") and not sasl:
        # A services account per agent so the owner can whitelist it by account.
        secret_file = agent_dir / name / "sasl.txt"
        secret = secret_file.read_text().strip() if secret_file.exists() else password()
        private_file(secret_file, secret + "\n")
        register_accounts((state["host"], state["port"]), {name: secret})
        sasl = (name, secret)
        if state.get("tls_port"):
            # ... and a client certificate registered to it: the agent logs in by SASL
            # EXTERNAL over TLS, so `account:NAME` means "holds this certificate".
            cert = agent_dir / name / "agent.pem"
            if not cert.exists():
                tlscert.client_certificate(cert, name)
            fingerprint = tlscert.file_fingerprint(cert)
            add_certificates((state["host"], state["port"]), {name: (secret, fingerprint)})
            certfile, sasl = str(cert), None
    if state.get("tls_port"):
        tls = {"ssl": True, "server_fingerprints": [state["tls_fingerprint"]]}
        state = {**state, "port": state["tls_port"]}
    elif args.server_fingerprint or args.tls:
        tls = {"ssl": True, "server_fingerprints": _pins(args)}
    settings = {**CACHE_SETTINGS, **LEAN_AGENT, **({} if args.server else LOCAL_OUTBOX)}
    if args.feed:
        settings.update(feed_settings(args.feed))
    owner_password = password()
    if tls and not tls["server_fingerprints"]:
        settings["supybot.protocols.ssl.verifyCertificates"] = True  # CA-signed, then
    bot = Bot(agent_dir, name, (state["host"], state["port"]), channel,
              network=state["network"], plugins=("ThreatNetCache",), sasl=sasl,
              owner=(OWNER, owner_password), settings=settings, certfile=certfile, **tls)
    (bot.dir / "conf" / "users.conf").unlink(missing_ok=True)  # new owner password each run
    private_file(bot.dir / "credentials.txt",
                 f"owner_user={OWNER}\nowner_password={owner_password}\n")
    say(f"Starting agent {name!r} (ThreatNetCache) on {state['host']}:{state['port']} {channel}"
        f"{f', feed {args.feed}' if args.feed else ''} ...")
    console = AgentConsole(bot, (state["host"], state["port"]), tls.get("server_fingerprints"),
                           local=not args.server)
    bot.start(wait_joined=False)
    console.wait_joined(timeout=60)
    bot_nick = state.get("bot", "the channel bot")
    say(f"""
Agent {name} joined {channel}{f' as services account {sasl[0]}' if sasl else ''}{
    f' over TLS, logged in to account {name} by its certificate (SASL EXTERNAL)' + chr(10)
    + f'  {shown(Path(certfile))} (fingerprint {fingerprint})' if fingerprint
    else ''}.
It is voiced only once whitelisted; as the channel bot's owner:
  /msg {bot_nick} tn whitelist add {channel} account:{name}
It caches every threat a voiced agent posts; ask it (every agent answers in the channel):
  !tn status      !tn check 11.22.33.44      or privately: /msg {name} tn status {channel}
A new agent reports nothing of its own for its quiet period (the topic's block=N seconds
+ 2 s; `make run BLOCK=60` for a short one); then, once voiced, it posts what its feed finds.
Its owner (for tn report / tn feeds): /msg {name} identify {OWNER} {owner_password}
Log: {shown(bot.log_path)}

Press Ctrl-C to stop the agent.""")
    watch(console.poll)
    return 0


class AgentConsole:
    """What an agent's terminal is told while it runs, read from its log: a lost
    connection and its return, and, loudly and once, a server certificate that is not
    the pinned one (the agent retries on its own; its log says it once, see
    threatnet_irc.reconnects)."""

    JOINED = re.compile(r"Join to (\S+) on \S+ synced")
    LOST = ("Disconnect from ", "Error connecting to ")

    def __init__(self, bot: Bot, address: tuple[str, int], pins: Optional[list[str]],
                 local: bool):
        self.bot, self.address, self.pins, self.local = bot, address, pins or [], local
        self._pos = bot.log_path.stat().st_size if bot.log_path.exists() else 0
        self.joined = self.lost = self.told_pin = False

    def wait_joined(self, timeout: float) -> None:
        """Until the agent has joined. A certificate that is not the pinned one is told
        and waited out (the agent retries); anything else fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self.joined:
            self.bot.proc.check_alive()
            self.poll()
            if not self.told_pin and time.monotonic() > deadline:
                raise StackError(f"agent {self.bot.nick} did not join {self.bot.channel} "
                                 f"within {timeout:.0f} s; log {shown(self.bot.log_path)}:\n"
                                 + "\n".join(self.bot.read_log().splitlines()[-15:]))
            time.sleep(0.2)

    def poll(self) -> None:
        text = self.bot.read_log(self._pos)
        text = text[:text.rfind("\n") + 1]  # whole lines only
        self._pos += len(text.encode())
        for line in text.splitlines():
            if "Certificate validation failed" in line:
                self.pin_mismatch()
            elif self.JOINED.search(line):
                if self.lost or self.told_pin:
                    say(f"Agent {self.bot.nick} is back in {self.bot.channel}.")
                self.joined, self.lost, self.told_pin = True, False, False
            elif any(word in line for word in self.LOST) and self.joined \
                    and not (self.lost or self.told_pin):
                self.lost = True
                say(f"Agent {self.bot.nick} lost its connection to "
                    f"{self.address[0]}:{self.address[1]}; it reconnects by itself (every "
                    "10 s at most), e.g. once `make run` is back.")

    def pin_mismatch(self) -> None:
        if self.told_pin:
            return
        self.told_pin = True
        host, port = self.address
        presented = tlscert.presented_fingerprint(host, port)
        name = self.bot.nick
        lines = [f"Agent {name}: the server at {host}:{port} presents a TLS certificate "
                 "that is not the one this agent pins,",
                 f"  pinned:    {', '.join(self.pins) or '(none)'}",
                 f"  presented: {presented or '(cannot connect to see it)'}",
                 "so it does not connect (that is what pinning is for) and retries every "
                 "10 s."]
        running = read_state()
        if self.local and running and running.get("tls_fingerprint") == presented:
            lines += ["This is the certificate of the `make run` running now: the local "
                      "network got a new one (make run FRESH=1, make clean-run, or",
                      f"{shown(IRCD / 'tls')} was removed). To pin it, restart this agent: "
                      f"Ctrl-C, then  make agent NAME={name}"]
        elif self.local:
            lines += ["If the local network got a new certificate (make run FRESH=1, make "
                      "clean-run), restart this agent once `make run` is up: Ctrl-C, then",
                      f"  make agent NAME={name}"]
        else:
            lines += ["If the server's operator changed its certificate, restart this agent "
                      "with the new pin: Ctrl-C, then",
                      f"  make agent NAME={name} SERVER={host}:{port} "
                      f"SERVER_FP={presented or '<sha256>'}"]
        lines += ["If nobody changed it, someone may be intercepting the connection: do not "
                  "pin a certificate you cannot vouch for.",
                  f"(Said once; the log {shown(self.bot.log_path)} too.)"]
        say("\n" + "\n".join(f"!!! {line}" for line in lines) + "\n")


# Which extractor reads which log, by file name; FEED=extractor:/path chooses explicitly.
EXTRACTOR_BY_NAME = (("fail2ban", "fail2ban"), ("auth", "sshd"), ("secure", "sshd"),
                     ("sshd", "sshd"), ("mail", "postfix"), ("postfix", "postfix"))


def feed_settings(feed: str) -> dict[str, object]:
    """The Cache plugin's feeds setting for FEED (`/path` or `extractor:/path`)."""
    extractor, sep, path = feed.partition(":")
    if not sep or "/" in extractor:
        path = feed
        name = Path(path).name.lower()
        extractor = next((e for key, e in EXTRACTOR_BY_NAME if key in name), "plain")
    path = str(Path(path).resolve())
    if " " in path:
        raise SystemExit(f"FEED {path!r}: the feeds setting cannot hold paths with spaces")
    return {"supybot.plugins.ThreatNetCache.feeds": f"{extractor}:{path}"}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="local network + channel bot, or the bot on --server")
    run.add_argument("--server", help="HOST:PORT of an existing network (no local servers)")
    run.add_argument("--channel", default="#threatnet")
    run.add_argument("--nick", default="threatnet")
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help="local port (default 6667)")
    run.add_argument("--block", type=int, help="block period in the topic (default 3600)")
    run.add_argument("--tls", action="store_true", help="use TLS to --server (the "
                     "certificate must be CA-signed, unless --server-fingerprint pins it)")
    run.add_argument("--tls-port", type=int, default=DEFAULT_TLS_PORT,
                     help="local TLS port (default 6697)")
    run.add_argument("--server-fingerprint", help="--server's certificate SHA-256 "
                     "fingerprint(s), comma separated: TLS, pinned")
    run.add_argument("--certfile", help="client certificate + key (PEM) for SASL EXTERNAL "
                     "(threatnet-agentcert)")
    run.add_argument("--sasl-file", help="file with `user:password` (else THREATNET_SASL_USER"
                                         " and THREATNET_SASL_PASSWORD)")
    run.add_argument("--listener-only", action="store_true",
                     help="on --server: ThreatNetCache only, no channel guard")
    run.add_argument("--fresh", action="store_true", help="forget the local network first "
                     "(services accounts, channel registration, TLS certificate, whitelist)")
    sub.add_parser("clean", help="forget the local network (what run --fresh forgets)")
    agent = sub.add_parser("agent", help="one more agent (ThreatNetCache) on the network")
    agent.add_argument("--name", default="")
    agent.add_argument("--feed", help="log file to read threats from (IP comment lines)")
    agent.add_argument("--server", help="HOST:PORT instead of the local network")
    agent.add_argument("--channel")
    agent.add_argument("--sasl-file")
    agent.add_argument("--tls", action="store_true", help="TLS to --server")
    agent.add_argument("--server-fingerprint", help="pinned server certificate SHA-256")
    agent.add_argument("--certfile", help="client certificate + key (PEM): SASL EXTERNAL")
    args = parser.parse_args(argv)
    if args.command == "agent" and args.channel is None and args.server:
        args.channel = "#threatnet"
    private_dir(RUN)  # run/ and run/local hold passwords, keys and registries
    private_dir(LOCAL)
    if args.command == "clean":
        return 0 if clear_local() else 1
    signals_as_interrupt()
    try:
        return {"run": cmd_run, "agent": cmd_agent}[args.command](args)
    except KeyboardInterrupt:
        say("\nStopping ...")
        return 0
    except (StackError, IRCError) as e:
        say(f"\nError: {e}")
        return 1
    finally:
        stop_all()  # the bots first: they quit before their server goes
        if LIVE:
            say("Warning: some processes did not stop: "
                + ", ".join(f"{p.name} (pid {p.pid})" for p in LIVE))
        else:
            say("Everything this script started has stopped.")


if __name__ == "__main__":
    sys.exit(main())

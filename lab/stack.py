"""The real ThreatNet stack on this machine: IRC servers, services and Limnoria bots.

Used by the integration tests, the benchmarks and `make run` (scripts/threatnet_run.py).
Every process runs in its own process group, is remembered in `LIVE`, and is stopped by
`stop_all()` (registered with atexit; callers also stop what they start). Configs are
rendered from the templates in conf/ into a per-run directory; nothing checked in is ever
handed to a process that could rewrite it.

Facts behind the settings: docs/IRCD.md and docs/LIMNORIA.md.
"""
from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

from lab.ircclient import Client, connect_all
from threatnet_tools import tlscert

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
PLUGINS_DIR = ROOT / "plugins"
LOCALHOST = "127.0.0.1"
# Limnoria's "important" plugins load only when listed in the registry (Owner always does).
BASE_PLUGINS = ("Admin", "Channel", "Config", "Misc", "User")
# Registry lines that unload the plugins Bot always adds (later lines win): a bot that
# only listens needs Owner and its own plugins. Limnoria's per-plugin work on every
# line (ignore checks, proxies) costs ~70 µs a line per plugin, see docs/SCALING.md.
MINIMAL = {"supybot.plugins.alwaysLoadImportant": False,
           **{f"supybot.plugins.{name}": False for name in BASE_PLUGINS}}


# Registry settings shared by `make run`, `make agent` and the tests.
CACHE_SETTINGS = {"supybot.plugins.ThreatNetCache.enable": True}
GUARD_SETTINGS = {"supybot.plugins.ThreatNetGuard.enable": True}


class StackError(RuntimeError):
    """A process failed to start or to become ready; the message tells where its log is."""


# --- small helpers ------------------------------------------------------------------------
def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """Whether a server could listen on the port (connections in TIME-WAIT do not count:
    servers set SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    with socket.socket() as s:  # a listener on another address of the port still answers
        s.settimeout(0.2)
        return s.connect_ex((host, port)) != 0


def wait_port(host: str, port: int, timeout: float, proc: Optional["Proc"] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise StackError(f"nothing listens on {host}:{port} after {timeout} s"
                     + (f" (log: {proc.log_path})" if proc else ""))


def password(nbytes: int = 12) -> str:
    return secrets.token_urlsafe(nbytes)


def render(template: Union[str, Path], dest: Path, values: Mapping[str, object]) -> Path:
    """Fill `${name}` placeholders of a conf/ template (every one must be given)."""
    text = Path(CONF / template).read_text()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(string.Template(text).substitute({k: str(v) for k, v in values.items()}))
    return dest


def venv_script(name: str) -> str:
    """A console script next to the running interpreter (the venv's), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise StackError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def require_binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()),
        None)
    if not found:
        raise StackError(f"{name} is not installed (run `make setup`)")
    return found


# --- processes ----------------------------------------------------------------------------
LIVE: set["Proc"] = set()
_PR_SET_PDEATHSIG = 1
try:  # looked up here: the child between fork and exec must not import anything
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started us dies, even by
    SIGKILL (Linux; a server that then changes user, like ngIRCd as root, loses it)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Proc:
    """A child process in its own process group, output appended to `log_path`."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *,
                 cwd: Optional[Path] = None, env: Optional[Mapping[str, str]] = None):
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                list(argv), cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent if _prctl and sys.platform == "linux" else None,
                env=dict(env) if env is not None else None)
        LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            tail = self.log_tail()
            raise StackError(f"{self.name} exited with {self.popen.returncode}; "
                             f"log {self.log_path}:\n{tail}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> Optional[int]:
        """Send `sig` to the process group, wait, then SIGKILL the group."""
        try:
            if self.alive():
                try:
                    os.killpg(self.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:  # children left in the group, or a process that ignored `sig`
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.popen.wait(5)
            return self.popen.returncode
        finally:
            LIVE.discard(self)


def stop_all() -> None:
    for proc in list(LIVE):
        proc.stop(timeout=2.0)


atexit.register(stop_all)


# --- IRC servers --------------------------------------------------------------------------
class NgIRCd:
    """ngIRCd on loopback: no accounts; agents are known by IP (127.0.0.1)."""

    kind = "ngircd"
    has_accounts = False

    def __init__(self, run_dir: Path, port: Optional[int] = None, host: str = LOCALHOST,
                 name: str = "irc.threatnet.test"):
        self.run_dir = Path(run_dir)
        self.host, self.port, self.name = host, port or free_port(host), name
        self.network = "threatnet"
        self.oper = ("oper", password())
        self.proc: Optional[Proc] = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def start(self, timeout: float = 10.0) -> "NgIRCd":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o777)  # as root ngIRCd switches to `nobody` and writes its pid
        conf = render("ircd/ngircd.conf", self.run_dir / "ngircd.conf", {
            "server_name": self.name, "host": self.host, "port": self.port,
            "run_dir": self.run_dir, "oper_name": self.oper[0], "oper_password": self.oper[1]})
        extra = self.extra_config()
        if extra:
            with open(conf, "a") as f:
                f.write("\n" + extra)
        self.proc = Proc(f"ngircd {self.name}", [require_binary("ngircd"), "-n", "-f", str(conf)],
                         self.run_dir / "ngircd.log", cwd=self.run_dir)
        wait_port(self.host, self.port, timeout, self.proc)
        return self

    def extra_config(self) -> str:
        """Blocks appended to ngircd.conf (a linked server adds its [Server] blocks)."""
        return ""

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()

    def client(self, nick: str, **kw) -> Client:
        return Client(self.host, self.port, nick, **kw)


class InspIRCdAtheme:
    """InspIRCd 3 with Atheme services linked: accounts, SASL PLAIN, ChanServ.

    Also a TLS port (`tls_port`) with a self-signed certificate made at each start in
    run_dir/tls/, whose SHA-256 fingerprint is `tls_fingerprint` (what clients pin), and
    client certificates (CertFP): SASL EXTERNAL for accounts that registered theirs with
    NickServ CERT ADD.
    """

    kind = "inspircd"
    has_accounts = True

    def __init__(self, run_dir: Path, port: Optional[int] = None, host: str = LOCALHOST,
                 name: str = "irc.threatnet.test", services_name: str = "services.threatnet.test",
                 keep_services_db: bool = False, tls_port: Optional[int] = None):
        self.run_dir = Path(run_dir)
        self.host, self.port, self.name = host, port or free_port(host), name
        self.tls_port = tls_port or free_port(host)
        self.tls_fingerprint = ""  # of the server certificate, once started
        self.services_name = services_name
        self.network = "threatnet"
        self.link_port = free_port()
        self.link_password = password()
        self.oper = ("oper", password())
        self.keep_services_db = keep_services_db
        self.ircd: Optional[Proc] = None
        self.services: Optional[Proc] = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def tls_address(self) -> tuple[str, int]:
        return self.host, self.tls_port

    def start(self, timeout: float = 20.0) -> "InspIRCdAtheme":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tls_cert, tls_key, self.tls_fingerprint = tlscert.server_certificate(
            self.run_dir / "tls", self.host)
        values = {"tls_port": self.tls_port, "tls_cert": tls_cert, "tls_key": tls_key,
                  "server_name": self.name, "services_name": self.services_name,
                  "network": self.network, "host": self.host, "port": self.port,
                  "link_port": self.link_port, "link_password": self.link_password,
                  "run_dir": self.run_dir, "oper_name": self.oper[0],
                  "oper_password": self.oper[1]}
        ircd_conf = render("ircd/inspircd.conf", self.run_dir / "inspircd.conf", values)
        atheme_conf = render("services/atheme.conf", self.run_dir / "atheme.conf", values)
        data = self.run_dir / "services"
        if data.exists() and not self.keep_services_db:
            shutil.rmtree(data)
        data.mkdir(exist_ok=True)
        self.ircd = Proc("inspircd", [require_binary("inspircd"), "--config", str(ircd_conf),
                                      "--nofork", "--runasroot"],
                         self.run_dir / "inspircd.out", cwd=self.run_dir)
        wait_port(self.host, self.port, timeout, self.ircd)
        wait_port(self.host, self.tls_port, timeout, self.ircd)
        wait_port(LOCALHOST, self.link_port, timeout, self.ircd)
        self.services = Proc("atheme", [require_binary("atheme-services"), "-n",
                                        "-c", str(atheme_conf), "-D", str(data),
                                        "-l", str(self.run_dir / "atheme.log"),
                                        "-p", str(self.run_dir / "atheme.pid")],
                             self.run_dir / "atheme.out", cwd=self.run_dir)
        self._wait_sasl(timeout)
        return self

    def _wait_sasl(self, timeout: float) -> None:
        """Services are linked once CAP LS offers sasl=…PLAIN…."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ircd.check_alive()
            self.services.check_alive()
            try:
                with socket.create_connection(self.address, timeout=2) as s:
                    s.sendall(b"CAP LS 302\r\n")
                    data = b""
                    while b"CAP" not in data or not data.endswith(b"\n"):
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if re.search(rb"\bsasl=[^ \r\n]*PLAIN", data):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise StackError(f"services never linked (logs {self.run_dir}/atheme.log, "
                         f"{self.run_dir}/inspircd.log)")

    def stop(self) -> None:
        for proc in (self.services, self.ircd):
            if proc:
                proc.stop()

    def client(self, nick: str, **kw) -> Client:
        return Client(self.host, self.port, nick, **kw)

    def tls_client(self, nick: str, **kw) -> Client:
        """A client on the TLS port, pinning the server certificate (certfile=... to
        present a client certificate, sasl_external=True to log in with it)."""
        return Client(self.host, self.tls_port, nick, tls=True,
                      fingerprint=self.tls_fingerprint, **kw)

    def register_accounts(self, accounts: Mapping[str, str],
                          channels: Mapping[str, str] = {}) -> None:
        register_accounts(self.address, accounts, channels)

    def add_certificates(self, certificates: Mapping[str, tuple[str, str]]) -> None:
        add_certificates(self.address, certificates)


def register_accounts(address: tuple[str, int], accounts: Mapping[str, str],
                      channels: Mapping[str, str] = {}) -> None:
    """Register Atheme accounts (name → password; the name is also the nick used) in
    parallel, then each channel in `channels` (channel → founder account) with ChanServ.
    An account that exists already is fine if its password is the one given."""
    clients = connect_all(Client(*address, name, user="reg") for name in accounts)
    try:
        for c in clients:
            c.privmsg("NickServ", f"REGISTER {accounts[c.nick]} {c.nick}@threatnet.test")
        for c in clients:
            reply = _services_reply(c, "NickServ", r"is now registered|already registered")
            if "already registered" in reply:
                c.privmsg("NickServ", f"IDENTIFY {accounts[c.nick]}")
                reply = _services_reply(c, "NickServ", r"now identified|already (logged in|identified)")
        by_name = {c.nick.lower(): c for c in clients}
        for channel, founder in channels.items():
            c = by_name[founder.lower()]
            c.join(channel)
            c.privmsg("ChanServ", f"REGISTER {channel}")
            _services_reply(c, "ChanServ", r"is now registered")
    finally:
        for c in clients:
            c.close()


def add_certificates(address: tuple[str, int],
                     certificates: Mapping[str, tuple[str, str]]) -> None:
    """Register client certificates (CertFP) to existing Atheme accounts: account →
    (password, SHA-256 fingerprint). Each account logs in by SASL PLAIN and sends
    `NickServ CERT ADD <fingerprint>`; from then on SASL EXTERNAL with that certificate
    logs in to the account. A fingerprint already on the account's list is fine."""
    clients = connect_all(Client(*address, name, user="cert", sasl=(name, pw))
                          for name, (pw, _) in certificates.items())
    try:
        for c in clients:
            c.privmsg("NickServ", f"CERT ADD {certificates[c.nick][1]}")
        for c in clients:
            reply = c.wait_for(lambda l: l.command == "NOTICE" and l.nick == "NickServ"
                               and ("ingerprint" in l.text or _REFUSED.search(l.text))).text
            if not re.search(r"^Added fingerprint|already on your fingerprint list", reply):
                raise StackError(f"NickServ refused {c.nick}'s certificate: {reply}")
    finally:
        for c in clients:
            c.close()


_REFUSED = re.compile(r"invalid|not |cannot|too many|must|error|denied|insufficient", re.I)


def _services_reply(c: Client, service: str, good: str) -> str:
    """The next NOTICE from `service` matching `good` (text returned) or refusing."""
    ok = re.compile(good, re.I)
    line = c.wait_for(lambda l: l.command == "NOTICE" and l.nick == service
                      and (ok.search(l.text) or _REFUSED.search(l.text)))
    if not ok.search(line.text):
        raise StackError(f"{service} refused {c.nick}: {line.text}")
    return line.text


def make_server(kind: str, run_dir: Path, **kw) -> Union[NgIRCd, InspIRCdAtheme]:
    return {"ngircd": NgIRCd, "inspircd": InspIRCdAtheme}[kind](run_dir, **kw)


# --- Limnoria bots ------------------------------------------------------------------------
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
                 certfile: Union[str, Path] = ""):
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
        self.dir = Path(root) / nick
        self.conf_path = self.dir / "conf" / f"{nick}.conf"
        self.log_path = self.dir / "logs" / "messages.log"
        self.proc: Optional[Proc] = None
        self._log_pos = 0

    # --- configuration ----------------------------------------------------------------
    def configure(self) -> Path:
        """(Re)write the registry from the template and create the owner if needed."""
        for sub in ("conf", "data/tmp", "data/web", "backup", "logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
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
        for db in ("channels.conf", "networks.conf", "ignores.conf", "users.conf"):
            # empty databases instead of "missing file" errors at first start
            (self.dir / "conf" / db).touch()
        users = self.dir / "conf" / "users.conf"
        if self.owner and not (users.exists() and f"name {self.owner[0]}\n" in users.read_text()):
            subprocess.run([venv_script("supybot-adduser"), "-u", self.owner[0],
                            "-p", self.owner[1], "-c", "owner", str(users)],
                           check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return self.conf_path

    # --- life cycle -------------------------------------------------------------------
    def start(self, *, wait_joined: bool = True, timeout: float = 30.0,
              configure: bool = True) -> "Bot":
        """Start the bot (rendering its config unless configure=False, as after a restart)
        and wait until its join to the channel is synced."""
        if configure or not self.conf_path.exists():
            self.configure()
        argv = [venv_script("supybot"), str(self.conf_path)]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        self._log_pos = self.log_path.stat().st_size if self.log_path.exists() else 0
        # The plugins come from this checkout, so must threatnet/ and threatnet_irc/,
        # whatever an (editable) install of the package happens to contain.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = Proc(f"bot {self.nick}", argv, self.dir / "console.log", cwd=self.dir,
                         env=env)
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


# --- linked servers and bots on several networks ------------------------------------------
class LinkedNgIRCd(NgIRCd):
    """One ngIRCd of a network of linked ngIRCds (made by `ngircd_network`): ngircd.conf
    plus one conf/ircd/ngircd-link.conf block per peer."""

    def __init__(self, run_dir: Path, name: str, port: Optional[int] = None,
                 host: str = LOCALHOST):
        super().__init__(run_dir, port, host, name)
        self.links: list[tuple["LinkedNgIRCd", str, str, bool]] = []  # peer, mine, theirs, active

    def link(self, peer: "LinkedNgIRCd") -> None:
        """Link to `peer` (call before both start): this server connects, the peer waits."""
        mine, theirs = password(), password()
        self.links.append((peer, mine, theirs, True))
        peer.links.append((self, theirs, mine, False))

    def extra_config(self) -> str:
        return "\n".join(render("ircd/ngircd-link.conf", self.run_dir / f"link-{n}.conf", {
            "peer_name": peer.name, "peer_host": peer.host, "peer_port": peer.port,
            "passive": "no" if active else "yes", "my_password": mine,
            "peer_password": theirs}).read_text() for n, (peer, mine, theirs, active)
            in enumerate(self.links))


def ngircd_network(run_dir: Path, count: int = 3, timeout: float = 15.0) -> list[LinkedNgIRCd]:
    """`count` ngIRCd servers on loopback, one IRC network: servers 2..count link to
    server 1 (a star; ngIRCd links in ~1 s, retrying every 5 s). Returns them started
    and linked, server 1 first; stop each with `.stop()`."""
    servers = [LinkedNgIRCd(Path(run_dir) / f"s{n}", f"s{n}.threatnet.test")
               for n in range(1, count + 1)]
    for server in servers[1:]:
        server.link(servers[0])
    try:
        for server in servers:
            server.start()
        wait_linked(servers, timeout)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def wait_linked(servers: Sequence[NgIRCd], timeout: float = 15.0) -> None:
    """Until LUSERS on every server counts them all (251 "... on N servers")."""
    deadline = time.monotonic() + timeout
    for n, server in enumerate(servers):
        client = server.client(f"linkprobe{n}").connect()
        try:
            while True:
                client.mark()
                client.send("LUSERS")
                line = client.wait_for(command="251")
                found = re.search(r"on (\d+) servers?", line.text)
                if found and int(found.group(1)) >= len(servers):
                    break
                if time.monotonic() > deadline:
                    logs = ", ".join(str(s.run_dir / "ngircd.log") for s in servers)
                    raise StackError(f"{server.name}: {line.text!r} after {timeout} s "
                                     f"(logs {logs})")
                time.sleep(0.1)
        finally:
            client.close()


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

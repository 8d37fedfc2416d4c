"""IRC servers on loopback: ngIRCd (alone or linked), InspIRCd with Atheme services.

Each renders its configuration from conf/ircd/ (and conf/services/) into its run directory
and runs as a lab process (lab.process). Facts behind the settings: docs/IRCD.md.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from lab.config import password, private_dir, render
from lab.ircclient import Client, connect_all
from lab.process import LOCALHOST, Proc, StackError, free_port, require_binary, wait_port
from threatnet.names import fold
from threatnet_tools import tlscert


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
        # The config holds the oper password: in conf/ (0700), not in the run directory
        # that ngIRCd, as `nobody`, must be able to write its pid into.
        conf = render("ircd/ngircd.conf", self.run_dir / "conf" / "ngircd.conf", {
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


# Connect-class limits of connections without a services account (agents and bots log
# in, and get conf/ircd/inspircd.conf's "agents" class). The lab's raw test clients
# send hundreds of lines a second without one; people on `make run`'s network get
# InspIRCd's stock flood limits (docs/IRCD.md).
LAB_LIMITS = ('threshold="3000000" commandrate="3000000" recvq="1048576" '
              'softsendq="1048576" hardsendq="4194304" fakelag="no"')
PEOPLE_LIMITS = ('threshold="10" commandrate="1000" recvq="8192" softsendq="8192" '
                 'hardsendq="1048576" fakelag="yes"')


class InspIRCdAtheme:
    """InspIRCd 3 with Atheme services linked: accounts, SASL PLAIN, ChanServ.

    Also a TLS port (`tls_port`) with a self-signed certificate in run_dir/tls/, whose
    SHA-256 fingerprint is `tls_fingerprint` (what clients pin), and client certificates
    (CertFP): SASL EXTERNAL for accounts that registered theirs with NickServ CERT ADD.

    Each start makes a new network (services database, TLS key and certificate) unless
    `keep_identity`: then what run_dir holds from an earlier start is kept, so accounts,
    registered certificates and channels survive, and clients keep their pin.
    """

    kind = "inspircd"
    has_accounts = True

    def __init__(self, run_dir: Path, port: Optional[int] = None, host: str = LOCALHOST,
                 name: str = "irc.threatnet.test", services_name: str = "services.threatnet.test",
                 keep_identity: bool = False, tls_port: Optional[int] = None,
                 people: bool = False):
        self.run_dir = Path(run_dir)
        self.host, self.port, self.name = host, port or free_port(host), name
        self.tls_port = tls_port or free_port(host)
        self.tls_fingerprint = ""  # of the server certificate, once started
        self.services_name = services_name
        self.network = "threatnet"
        self.link_port = free_port()
        self.link_password = password()
        self.oper = ("oper", password())
        self.keep_identity = keep_identity
        self.people = people  # stock flood limits without an account (else the lab's)
        self.ircd: Optional[Proc] = None
        self.services: Optional[Proc] = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def tls_address(self) -> tuple[str, int]:
        return self.host, self.tls_port

    def start(self, timeout: float = 20.0) -> "InspIRCdAtheme":
        private_dir(self.run_dir)  # configs with passwords, TLS key, services database
        tls_cert, tls_key, self.tls_fingerprint = tlscert.server_certificate(
            self.run_dir / "tls", self.host, reuse=self.keep_identity)
        values = {"tls_port": self.tls_port, "tls_cert": tls_cert, "tls_key": tls_key,
                  "server_name": self.name, "services_name": self.services_name,
                  "network": self.network, "host": self.host, "port": self.port,
                  "link_port": self.link_port, "link_password": self.link_password,
                  "run_dir": self.run_dir, "oper_name": self.oper[0],
                  "oper_password": self.oper[1],
                  "people_class": "InspIRCd's stock" if self.people else "the test lab's",
                  "people_limits": PEOPLE_LIMITS if self.people else LAB_LIMITS}
        ircd_conf = render("ircd/inspircd.conf", self.run_dir / "inspircd.conf", values)
        atheme_conf = render("services/atheme.conf", self.run_dir / "atheme.conf", values)
        data = self.services_db.parent
        if data.exists() and not self.keep_identity:
            shutil.rmtree(data)
        private_dir(data)
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

    @property
    def services_db(self) -> Path:
        """Atheme's database (written when services stop, and every minute)."""
        return self.run_dir / "services" / "services.db"

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


def services_accounts(database: Path) -> dict[str, str]:
    """The accounts an Atheme database (opensex, `MU <id> <name> ...` lines) holds:
    folded name (rfc1459, as Atheme compares them) → name. None for a missing file."""
    accounts = {}
    try:
        text = database.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    for line in text.splitlines():
        words = line.split(" ")
        if words[0] == "MU" and len(words) > 2:
            accounts[fold(words[2])] = words[2]
    return accounts


def register_accounts(address: tuple[str, int], accounts: Mapping[str, str],
                      channels: Mapping[str, str] = {}) -> None:
    """Register Atheme accounts (name → password; the name is also the nick used) in
    parallel, then each channel in `channels` (channel → founder account) with ChanServ.
    An account that exists already is fine if its password is the one given, a channel
    registered already if its founder is the one given."""
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
            reply = _services_reply(c, "ChanServ", r"is now registered|is already registered")
            owner = re.search(r"already registered to (\S+?)\.?$",
                              re.sub(r"[\x00-\x1f]", "", reply))  # bold names
            if owner and fold(owner.group(1)) != fold(founder):
                raise StackError(f"ChanServ: {reply}")
    finally:
        for c in clients:
            c.close()


def grant_access(address: tuple[str, int], founder: tuple[str, str], channel: str,
                 flags: Mapping[str, str]) -> None:
    """Give accounts access to a registered channel: the founder (account, password) logs
    in by SASL PLAIN and sends `ChanServ FLAGS <channel> <account> <flags>` for each
    (account → flags, e.g. "+AOiortv": ops on join, may set the topic, invite, kick and
    ban). The founder may be online (a channel bot): this connection takes another nick."""
    (c,) = connect_all([Client(*address, f"flags{password(3)}",
                               user="flags", sasl=founder)])
    try:
        for account, granted in flags.items():
            c.privmsg("ChanServ", f"FLAGS {channel} {account} {granted}")
            _services_reply(c, "ChanServ", r"were set|already set|has been set|unchanged")
    finally:
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
        return "\n".join(render("ircd/ngircd-link.conf", self.run_dir / "conf" / f"link-{n}.conf", {
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

"""CrowdSec for tests and benchmarks: the Debian packages' daemons in the foreground,
each with a configuration of its own (docs: shared notes on CrowdSec 1.4.6).

- ``CrowdSec``: the agent and its Local API on a free port, its own SQLite database
  and acquisition (one sshd log as syslog), no central API (no ``online_client``), no
  Prometheus; the parsers and scenarios the package ships (``/etc/crowdsec``).
- ``FirewallBouncer``: crowdsec-firewall-bouncer (nftables mode) in a network
  namespace of its own, so its ``crowdsec`` tables never touch this machine's
  ruleset; a veth pair lets it reach an API on the host side (``HOST_IP``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from lab.process import Proc, StackError, free_port, wait_port

ETC = Path("/etc/crowdsec")


def require() -> None:
    """StackError unless the Debian packages are installed (make setup does)."""
    for binary in ("crowdsec", "cscli", "crowdsec-firewall-bouncer", "nft", "ip"):
        if shutil.which(binary) is None:
            raise StackError(f"{binary} not installed (apt-get install crowdsec "
                             "crowdsec-firewall-bouncer nftables iproute2)")


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


class CrowdSec:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.auth_log = root / "auth.log"
        self.config = root / "config.yaml"
        self.proc: Proc | None = None
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        for data in Path("/usr/share/crowdsec/data").glob("*"):  # the scenarios' lists
            shutil.copy(data, root / "data" / data.name)
        self.auth_log.write_text("")
        (root / "acquis.yaml").write_text(yaml.safe_dump(
            {"filenames": [str(self.auth_log)], "labels": {"type": "syslog"}}))
        (root / "local_api_credentials.yaml").write_text("")
        self.config.write_text(yaml.safe_dump({
            "common": {"daemonize": False, "log_media": "stdout", "log_level": "info"},
            "config_paths": {"config_dir": f"{ETC}/", "data_dir": f"{root}/data/",
                             "simulation_path": str(ETC / "simulation.yaml"),
                             "hub_dir": "/var/lib/crowdsec/hub/",
                             "index_path": "/var/lib/crowdsec/hub/.index.json"},
            "crowdsec_service": {"acquisition_path": str(root / "acquis.yaml"),
                                 "parser_routines": 1},
            "cscli": {"output": "human"},
            "db_config": {"type": "sqlite", "db_path": str(root / "crowdsec.db"),
                          "log_level": "warning"},
            "api": {"client": {"credentials_path": str(root / "local_api_credentials.yaml")},
                    "server": {"listen_uri": f"127.0.0.1:{self.port}",
                               "profiles_path": str(ETC / "profiles.yaml"),
                               "log_level": "warning"}},
            "prometheus": {"enabled": False}}))

    def cscli(self, *args: str, check: bool = True) -> str:
        return run("cscli", "-c", str(self.config), *args, check=check).stdout

    def start(self) -> CrowdSec:
        self.cscli("machines", "add", "threatnet-test", "--auto", "--force", "-f",
                   str(self.root / "local_api_credentials.yaml"))
        self.proc = Proc("crowdsec", ["crowdsec", "-c", str(self.config)],
                         self.root / "crowdsec.log")
        wait_port("127.0.0.1", self.port, 30, self.proc)
        # The LAPI answers before the log files are followed: lines written in between
        # are never read.
        deadline = time.monotonic() + 30
        while "Starting processing data" not in self.proc.log_tail(400):
            self.proc.check_alive()
            if time.monotonic() > deadline:
                raise StackError(f"crowdsec did not start reading its logs:\n"
                                 f"{self.proc.log_tail()}")
            time.sleep(0.05)
        return self

    def add_bouncer(self, name: str) -> str:
        """Register a bouncer (``cscli bouncers add``); its key."""
        return self.cscli("bouncers", "add", name, "-o", "raw").strip()

    def import_list(self, *ips: str, duration: str = "1h") -> str:
        """``cscli decisions import`` of ``ips`` (a CSV list, as a blocklist would be)."""
        path = self.root / "import.csv"
        path.write_text("duration,scope,value\n" + "".join(f"{duration},ip,{ip}\n"
                                                             for ip in ips))
        return self.cscli("decisions", "import", "-i", str(path))

    def active(self, key: str) -> list[dict]:
        """Every active decision, as the bouncer with ``key`` reads them at startup."""
        request = urllib.request.Request(f"{self.url}v1/decisions/stream?startup=true",
                                         headers={"X-Api-Key": key})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())["new"] or []

    def failed_logins(self, ip: str, count: int, first_pid: int) -> None:
        """sshd failures as syslog writes them, now, one PID per connection."""
        stamp = time.strftime("%b %e %H:%M:%S")
        with open(self.auth_log, "a") as f:
            for n in range(count):
                f.write(f"{stamp} gate sshd[{first_pid + n}]: Failed password for invalid "
                        f"user admin{n} from {ip} port {40000 + n} ssh2\n")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


class FirewallBouncer:
    """crowdsec-firewall-bouncer in namespace ``ns``, reaching ``api_url`` over a veth
    pair: the host side is ``HOST_IP`` (listen there), the namespace ``NS_IP``."""

    HOST_IP, NS_IP = "10.233.0.1", "10.233.0.2"

    def __init__(self, root: Path, ns: str, api_url: str, api_key: str,
                 update_frequency: str = "1s") -> None:
        self.root, self.ns = root, ns
        self.proc: Proc | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "bouncer.yaml"
        self.config.write_text(yaml.safe_dump({
            "mode": "nftables", "update_frequency": update_frequency, "daemonize": False,
            "log_mode": "stdout", "log_level": "info", "api_url": api_url,
            "api_key": api_key, "disable_ipv6": False, "deny_action": "DROP",
            "deny_log": False, "supported_decisions_types": ["ban"],
            "blacklists_ipv4": "crowdsec-blacklists", "blacklists_ipv6": "crowdsec6-blacklists",
            "nftables": {"ipv4": {"enabled": True, "set-only": False, "table": "crowdsec",
                                  "chain": "crowdsec-chain"},
                         "ipv6": {"enabled": True, "set-only": False, "table": "crowdsec6",
                                  "chain": "crowdsec6-chain"}},
            "prometheus": {"enabled": False}}))
        self.config.chmod(0o600)

    @classmethod
    def namespace(cls, ns: str) -> None:
        """Make namespace ``ns`` with a veth pair to the host (HOST_IP <-> NS_IP)."""
        run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", f"{ns}h", check=False)
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", f"{ns}h", "type", "veth", "peer", "name", f"{ns}n",
            "netns", ns)
        run("ip", "addr", "add", f"{cls.HOST_IP}/30", "dev", f"{ns}h")
        run("ip", "link", "set", f"{ns}h", "up")
        for argv in (("ip", "link", "set", "lo", "up"),
                     ("ip", "addr", "add", f"{cls.NS_IP}/30", "dev", f"{ns}n"),
                     ("ip", "link", "set", f"{ns}n", "up")):
            run("ip", "netns", "exec", ns, *argv)

    @staticmethod
    def remove_namespace(ns: str) -> None:
        run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", f"{ns}h", check=False)

    def start(self) -> FirewallBouncer:
        self.proc = Proc("crowdsec-firewall-bouncer",
                         ["ip", "netns", "exec", self.ns, "crowdsec-firewall-bouncer", "-c",
                          str(self.config)], self.root / "bouncer.log")
        return self

    def elements(self) -> dict[str, str]:
        """Element -> its timeout text, in the bouncer's IPv4 and IPv6 sets."""
        found = {}
        for family, table, name in (("ip", "crowdsec", "crowdsec-blacklists"),
                                    ("ip6", "crowdsec6", "crowdsec6-blacklists")):
            out = run("ip", "netns", "exec", self.ns, "nft", "-j", "list", "set", family,
                      table, name, check=False).stdout
            if not out:
                continue
            for item in json.loads(out)["nftables"]:
                for elem in item.get("set", {}).get("elem", []):
                    e = elem.get("elem", elem)
                    value = e["val"] if isinstance(e, dict) else e
                    found[str(value)] = str(e.get("timeout") if isinstance(e, dict) else "")
        return found

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

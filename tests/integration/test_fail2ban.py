"""fail2ban as a Threat Provider, end to end: a real fail2ban-server watching generated
sshd logs bans an address after three failed logins, and the shipped action
(conf/fail2ban/action.d/threatnet.conf) hands the ban to a real ThreatNetCache bot on
ngIRCd, once through the HTTP API (curl with the token from a file) and once through a
file the bot's fail2ban feed tails. The threat is then in the bot's cache (asked over
HTTP) and on the channel (seen by an IRC client).

Needs fail2ban-server and curl (apt: fail2ban, curl), ngIRCd; skips without them. The
bot's quiet period is skipped with a snapshot it restores as recent, so it may report
at once.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness import CACHE
from lab.bots import skip_quiet_period
from lab.fail2ban import private_config, server_command
from lab.process import Proc, free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "conf" / "fail2ban" / "action.d" / "threatnet.conf"
TOKEN = "fail2ban-test-token-0123456789"
HTTP_IP, FILE_IP = "45.0.0.9", "46.0.0.9"


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (apt-get install fail2ban curl)")
    return path


def fail2ban_backend() -> str:
    """pyinotify if fail2ban's Python has it (acts within ~0.3 s), else polling (~1 s)."""
    try:
        with open(shutil.which("fail2ban-server")) as f:
            python = f.readline()[2:].strip().split()[0]
    except (OSError, IndexError):
        return "polling"
    ok = subprocess.run([python, "-c", "import pyinotify"], capture_output=True).returncode
    return "pyinotify" if ok == 0 else "polling"


def failed_logins(path: Path, ip: str, count: int, first_pid: int) -> None:
    """sshd lines as syslog writes them: current time, one PID per connection (fail2ban's
    sshd filter tracks sessions by PID)."""
    stamp = time.strftime("%b %e %H:%M:%S")
    with open(path, "a") as f:
        for n in range(count):
            f.write(f"{stamp} gate sshd[{first_pid + n}]: Failed password for invalid user "
                    f"admin{n} from {ip} port {40000 + n} ssh2\n")


def check(port: int, ip: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/threatnet/check?ip={ip}",
                                timeout=5) as answer:
        return json.loads(answer.read())


def wait_current(port: int, ip: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = check(port, ip)
        if answer["current"]:
            return answer["threats"][0]
        assert time.monotonic() < deadline, f"{ip} never became a threat: {answer}"
        time.sleep(0.1)


def test_three_failed_logins_become_a_threat(ngircd, lab_factory, tmp_path):
    _need("fail2ban-server")
    _need("curl")
    lab = lab_factory(ngircd)
    channel = lab.channel()
    nick = lab.unique("f2b")
    port = free_port()
    bans = tmp_path / "threatnet.bans"
    bans.write_text("")
    token_file = tmp_path / "threatnet.token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)

    bot = lab.bot(nick, channel, settings={
        **CACHE,
        "supybot.plugins.ThreatNetCache.http.port": port,
        "supybot.plugins.ThreatNetCache.http.enable": True,
        "supybot.plugins.ThreatNetCache.http.token": TOKEN,
        "supybot.plugins.ThreatNetCache.feeds": f"fail2ban:{bans}",
    })
    skip_quiet_period(bot, channel)
    now = time.time()
    (watcher,) = lab.connect(lab.client(lab.unique("watch")))
    watcher.join(channel)
    bot.start()
    wait_port("127.0.0.1", port, 10)
    assert check(port, HTTP_IP) == {"ip": HTTP_IP, "current": False, "threats": []}

    # fail2ban with its own configuration directory: two jails on two sshd logs.
    conf = tmp_path / "fail2ban"
    private_config(conf, tmp_path, {"threatnet.conf": ACTION})
    logs = {"tn-http": tmp_path / "auth-http.log", "tn-file": tmp_path / "auth-file.log"}
    for log in logs.values():
        log.write_text("")
    url = f"http://127.0.0.1:{port}/threatnet/report"
    (conf / "jail.conf").write_text(f"""[DEFAULT]
backend = {fail2ban_backend()}
maxretry = 3
findtime = 600
bantime = 600
usedns = no

[tn-http]
enabled = true
filter = sshd
logpath = {logs['tn-http']}
action = threatnet[method=http, url="{url}", tokenfile="{token_file}"]

[tn-file]
enabled = true
filter = sshd
logpath = {logs['tn-file']}
action = threatnet[method=file, banfile="{bans}"]
""")
    server = Proc("fail2ban", server_command(conf, tmp_path), tmp_path / "fail2ban-server.out")
    try:
        f2b_log = tmp_path / "fail2ban.log"
        deadline = time.monotonic() + 20
        while "Jail 'tn-file' started" not in (f2b_log.read_text() if f2b_log.exists()
                                              else ""):
            server.check_alive()
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)

        watcher.mark()
        started = time.monotonic()
        failed_logins(logs["tn-http"], HTTP_IP, 3, first_pid=int(now) % 10000 * 10 + 1000)
        failed_logins(logs["tn-file"], FILE_IP, 3, first_pid=int(now) % 10000 * 10 + 2000)

        took = {}
        for ip, jail in ((HTTP_IP, "tn-http"), (FILE_IP, "tn-file")):
            threat = wait_current(port, ip)
            took[jail] = time.monotonic() - started
            assert (threat["comment"], threat["reporter"]) == (f"fail2ban {jail}", nick)
        print("\nthird failed login to threat in the cache: " + ", ".join(
            f"{jail} {seconds:.2f} s" for jail, seconds in took.items()))
        # Both lines reached the channel, in whichever order fail2ban banned.
        lines = {watcher.wait_for(lambda l: l.command == "PRIVMSG" and l.nick == nick,
                                  timeout=10).text for _ in range(2)}
        assert lines == {f"{HTTP_IP} fail2ban tn-http", f"{FILE_IP} fail2ban tn-file"}

        # Nothing went wrong on the way: fail2ban ran both actions without an error.
        text = f2b_log.read_text()
        assert f"[tn-http] Ban {HTTP_IP}" in text and f"[tn-file] Ban {FILE_IP}" in text
        assert "ERROR" not in text, text
        assert bans.read_text() == f"{FILE_IP} fail2ban tn-file\n"
        assert not [e for e in bot.errors() if "Traceback" in e]
    finally:
        server.stop()

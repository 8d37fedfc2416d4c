"""A private fail2ban-server for tests and benchmarks: a configuration directory of its
own with the stock sshd filter, its log, socket and pid file in a work directory, an
in-memory database; nothing of the machine's own fail2ban is touched."""
from __future__ import annotations

import shutil
from pathlib import Path

STOCK = Path("/etc/fail2ban")


def private_config(conf: Path, work: Path, actions: dict[str, Path]) -> None:
    """``conf`` with fail2ban.conf, the stock sshd filter and ``actions`` (name -> file to
    copy into action.d); the caller writes jail.conf."""
    for sub in ("filter.d", "action.d"):
        (conf / sub).mkdir(parents=True, exist_ok=True)
    for name in ("common.conf", "sshd.conf"):
        shutil.copy(STOCK / "filter.d" / name, conf / "filter.d" / name)
    for name, path in actions.items():
        shutil.copy(path, conf / "action.d" / name)
    (conf / "fail2ban.conf").write_text(f"""[Definition]
loglevel = INFO
logtarget = {work / 'fail2ban.log'}
socket = {work / 'fail2ban.sock'}
pidfile = {work / 'fail2ban.pid'}
dbfile = :memory:
""")


def server_command(conf: Path, work: Path) -> list[str]:
    """fail2ban-server in the foreground with ``conf`` (from private_config)."""
    return [shutil.which("fail2ban-server") or "fail2ban-server", "-f", "-x", "-c", str(conf),
            "-s", str(work / "fail2ban.sock"), "-p", str(work / "fail2ban.pid")]

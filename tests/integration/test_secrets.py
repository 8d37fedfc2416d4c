"""What `make run` and `make agent` write: every file holding a secret is private (mode
0600 in a 0700 directory, as soon as it exists), and no secret is on a command line.

The runner (scripts/threatnet_run.py) is started as `make run` starts it, into a run
directory of the test's own (THREATNET_RUN_DIR), on free ports.
"""
from __future__ import annotations

import stat
from pathlib import Path

from harness import Runner
from lab.process import free_port, require_binary


def secrets_of(run_dir: Path) -> set[str]:
    """Every password the runs wrote down (credentials and agents' SASL secrets)."""
    found = set()
    for path in run_dir.rglob("credentials.txt"):
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.endswith("password"):
                found.add(value)
    found.update(path.read_text().strip() for path in run_dir.rglob("sasl.txt"))
    return found


def leaks(run_dir: Path, secrets: set[str]) -> list[str]:
    """Files that hold a secret (or a private key) but that others could read."""
    problems = []
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if not (b"PRIVATE KEY" in data or any(s.encode() in data for s in secrets)):
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            problems.append(f"{path.relative_to(run_dir)}: mode {mode:o}")
        dmode = stat.S_IMODE(path.parent.stat().st_mode)
        if dmode & 0o077:
            problems.append(f"{path.relative_to(run_dir)}: its directory has mode {dmode:o}")
    return problems


def command_lines() -> list[str]:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return lines


def test_make_run_and_make_agent_keep_their_secrets(tmp_path):
    require_binary("inspircd")
    require_binary("atheme-services")
    run_dir = tmp_path / "run"
    run = Runner(run_dir, "run", "--port", str(free_port()), "--tls-port", str(free_port()))
    agent = None
    try:
        run.wait_for("ThreatNet is running.")
        agent = Runner(run_dir, "agent", "--name", "agent1")
        agent.wait_for("Agent agent1 joined")
        secrets = secrets_of(run_dir)
        assert len(secrets) >= 4, secrets  # owner and bot passwords, oper, agent's
        running = [line for line in command_lines() if any(s in line for s in secrets)]
        assert running == [], running  # no secret on any command line
        assert leaks(run_dir, secrets) == []
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    finally:
        if agent is not None:
            agent.stop()
        run.stop()
    assert leaks(run_dir, secrets_of(run_dir)) == []  # also what the bots wrote on exit

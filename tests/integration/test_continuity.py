"""Continuity (issue 16): restarts, kicks and quiet periods lose nothing and trust nobody new.

On the real stack: `make run` and `make agent` as the runner (scripts/threatnet_run.py)
in a run directory of the test's own (THREATNET_RUN_DIR), on free ports; the kick and
quiet-period case with Limnoria bots on the session's InspIRCd + Atheme.

- A restarted `make run` keeps the network's identity: a stranger cannot take a
  whitelisted account over, and a whitelist entry whose account is gone is removed, and
  the operator told.
- An agent left running across a `make run` restart is back and voiced within 40 s; a
  second agent of one name is refused; logs have readable timestamps; a stopped agent
  quits cleanly (no "TLS connection was non-properly terminated").
- An agent whose pinned fingerprint no longer matches says so once, loudly, and retries.
- A line a feed reads during the quiet period, and one read while the agent is kicked,
  is reported afterwards, exactly once.
- An interrupted first `make setup` recovers with plain `make run`; a clean slate
  (`make run FRESH=1`, `make clean-run`) is explicit and waits for the network to stop.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import CACHE, Runner, voice_change
from lab import ROOT
from lab.ircclient import Client
from lab.process import free_port, require_binary

VOICED_WITHIN = 40.0
BOT, CHANNEL = "threatnet", "#threatnet"


@pytest.fixture
def local(tmp_path):
    """`make run` runs (each call starts one) on ports of their own; all stopped at the end."""
    require_binary("inspircd")
    require_binary("atheme-services")
    run_dir, ports = tmp_path / "run", ("--port", str(free_port()), "--tls-port", str(free_port()))
    runners: list[Runner] = []

    def start(*args: str) -> Runner:
        runner = Runner(run_dir, *args, *(ports if args[0] == "run" else ()))
        runners.append(runner)
        return runner
    start.run_dir, start.port = run_dir, int(ports[1])
    yield start
    for runner in reversed(runners):
        runner.stop()


def credentials(run_dir: Path) -> dict[str, str]:
    text = (run_dir / "local" / "credentials.txt").read_text()
    return dict(line.partition("=")[::2] for line in text.splitlines())


def client(port: int, nick: str) -> Client:
    return Client("127.0.0.1", port, nick, caps=("account-tag", "extended-join",
                                                 "account-notify")).connect()


def whitelist(run_dir: Path, port: int, entry: str) -> None:
    """The operator whitelists ``entry``, as the owner of the channel bot."""
    owner = client(port, "operator1")
    try:
        reply = owner.ask(BOT, f"identify admin {credentials(run_dir)['owner_password']}", BOT)
        assert "operation succeeded" in reply.text, reply.raw
        reply = owner.ask(BOT, f"tn whitelist add {CHANNEL} {entry}", BOT)
        assert "operation succeeded" in reply.text or "Added" in reply.text, reply.raw
    finally:
        owner.close()


def voiced(watcher: Client, nick: str, timeout: float) -> bool:
    """Whether ``nick`` is voiced in the channel now or within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        watcher.mark()
        watcher.send(f"NAMES {CHANNEL}")
        names = watcher.wait_for(command="353").text.split()
        if f"+{nick}" in names:
            return True
        if time.monotonic() > deadline:
            return False
        watcher.wait_for(lambda l: voice_change(l, "+", nick), timeout=2, required=False)


def test_a_restart_trusts_nobody_new(local):
    """The issue's squatter: after a restart a stranger takes agent2's nick, registers it
    with NickServ and posts a threat. The account survived the restart, so NickServ
    refuses, the stranger is not voiced and no bot takes the line. Then the services
    database is lost: the whitelist entry goes with it and the operator is told why."""
    run = local("run")
    first = run.wait_for("ThreatNet is running.")
    agent = local("agent", "--name", "agent2")
    agent.wait_for("Agent agent2 joined")
    whitelist(local.run_dir, local.port, "account:agent2")
    watcher = client(local.port, "watcher1")
    watcher.join(CHANNEL)
    assert voiced(watcher, "agent2", 10)
    watcher.close()
    agent.stop()
    run.stop()

    run = local("run")
    restart = run.wait_for("ThreatNet is running.")
    squatter, watcher = client(local.port, "agent2"), client(local.port, "watcher2")
    reply = squatter.ask("NickServ", "REGISTER squatpass1 e@example.org", "NickServ")
    for c in (watcher, squatter):
        c.join(CHANNEL)
    squatter.privmsg(CHANNEL, "45.155.205.1 poisoned by squatter")
    assert not voiced(watcher, "agent2", 3)
    answer = watcher.ask(CHANNEL, "!tn check 45.155.205.1", BOT).text
    assert answer.endswith("Not a current threat in #threatnet: 45.155.205.1"), answer
    assert "already registered" in reply.text, reply.raw  # the account survived
    assert "First run: making a new local network" in first
    assert "Restart: the local network" in restart and "Whitelist: removed" not in restart
    for c in (squatter, watcher):
        c.close()
    run.stop()

    # The services database is lost (deleted, or from before it was kept): agent2's
    # account is gone, so its whitelist entry must not stay behind.
    (local.run_dir / "local" / "ircd" / "services" / "services.db").unlink()
    run = local("run")
    told = run.wait_for("ThreatNet is running.")
    assert ("Whitelist: removed account:agent2 from the whitelist of #threatnet: services have "
            "no account agent2") in told, told
    assert f"/msg {BOT} tn whitelist add #threatnet account:agent2" in told
    squatter, watcher = client(local.port, "agent2"), client(local.port, "watcher3")
    reply = squatter.ask("NickServ", "REGISTER squatpass1 e@example.org", "NickServ")
    assert "registered" in reply.text, reply.raw  # the name is free now ...
    for c in (watcher, squatter):
        c.join(CHANNEL)
    assert not voiced(watcher, "agent2", 3)  # ... but it is whitelisted no more
    for c in (squatter, watcher):
        c.close()


def test_an_agent_left_running_is_back_after_a_restart(local):
    run = local("run")
    run.wait_for("ThreatNet is running.")
    agent = local("agent", "--name", "agent1")
    agent.wait_for("Agent agent1 joined")
    whitelist(local.run_dir, local.port, "account:agent1")

    run.stop()
    run = local("run")
    run.wait_for("ThreatNet is running.")
    back = time.monotonic()
    watcher = client(local.port, "watcher1")
    watcher.join(CHANNEL)
    assert voiced(watcher, "agent1", VOICED_WITHIN)
    took = time.monotonic() - back
    print(f"\nagent1 voiced {took:.1f} s after make run was back")
    agent.wait_for("Agent agent1 lost its connection", timeout=1)  # its terminal said so
    agent.wait_for("Agent agent1 is back in #threatnet.", timeout=5)

    twin = local("agent", "--name", "Agent1")  # one agent per name (as services fold it)
    assert twin.proc.wait(30) == 1
    assert "Agent Agent1 is already running (pid" in twin.output

    log = (local.run_dir / "local" / "agents" / "agent1" / "logs" / "messages.log").read_text()
    assert re.match(r"INFO \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ", log), log[:200]
    watcher.mark()
    agent.stop()
    quit_ = watcher.wait_for(lambda l: l.command == "QUIT" and l.nick == "agent1", timeout=15)
    assert quit_.text == "Quit: ThreatNet agent stopped", quit_.raw  # not a TLS error
    watcher.close()


def test_a_pin_that_stops_matching_is_told_once(inspircd, tmp_path):
    wrong = "0" * 64
    agent = Runner(tmp_path / "run", "agent", "--name", "pinagent1", "--server",
                   f"{inspircd.host}:{inspircd.tls_port}", "--server-fingerprint", wrong,
                   "--channel", "#tnpin")
    try:
        told = agent.wait_for("!!! Agent pinagent1: the server at", timeout=30)
        assert f"presented: {inspircd.tls_fingerprint}" in agent.wait_for("presented:")
        assert "SERVER_FP=" + inspircd.tls_fingerprint in agent.wait_for("SERVER_FP=")
        time.sleep(20)  # retries every 10 s at most (2, 6, 14 s ...)
        assert agent.proc.poll() is None, agent.output  # still retrying
        assert agent.output.count("!!! Agent pinagent1") == 1, told
        log = (tmp_path / "run" / "local" / "agents" / "pinagent1" / "logs" /
               "messages.log").read_text()
        # Every 2-10 s an attempt fails; the log has it once: the attempt made before the
        # plugins loaded (no filter yet), then the first one after (threatnet_irc.reconnects).
        assert log.count("Certificate validation failed") <= 2, log
        assert len(re.findall(r"^INFO .* Connecting to ", log, re.M)) <= 2, log
    finally:
        agent.stop()


class FeedAgent:
    """An agent with a plain feed in a channel of its own, whose op (a raw client that
    made the channel) sets the topic's block period and can kick it."""

    def __init__(self, lab, tmp_path: Path, block: int):
        self.channel = lab.channel()
        self.feed = tmp_path / "threats.log"
        self.feed.write_text("")
        (self.op,) = lab.connect(lab.client(lab.unique("op")))
        self.op.join(self.channel)  # it made the channel: op
        self.op.send(f"TOPIC {self.channel} :threatnet://threatnet.invalid/datn2004 "
                     f"block={block}")
        self.agent = lab.bot(lab.unique("agent"), self.channel, settings={
            **CACHE, "supybot.plugins.ThreatNetCache.feeds": f"plain:{self.feed}",
            "supybot.plugins.Channel.rejoinDelay": 3})

    def append(self, line: str) -> None:
        with open(self.feed, "a") as f:
            f.write(line + "\n")

    def reported_once(self, ip: str, within: float) -> None:
        """The agent says ``ip`` within ``within`` seconds, and not again for 3 s."""
        mark = len(self.op.lines)
        self.op.wait_for(lambda l: l.nick == self.agent.nick and l.text.startswith(ip + " "),
                         timeout=within)
        time.sleep(3)
        said = [l for l in self.op.lines[mark:] if l.command == "PRIVMSG"
                and l.nick == self.agent.nick and l.text.startswith(ip + " ")]
        assert len(said) == 1, [l.raw for l in said]


def test_a_line_read_in_the_quiet_period_is_reported_once(inspircd, lab_factory, tmp_path):
    t = FeedAgent(lab_factory(inspircd), tmp_path, block=10)
    t.agent.start()
    assert "quiet period" in t.agent.read_log()
    t.append("45.155.205.11 found in the quiet period")
    t.reported_once("45.155.205.11", within=30)  # the quiet period is 12 s


def test_a_line_read_while_kicked_is_reported_once(inspircd, lab_factory, tmp_path):
    t = FeedAgent(lab_factory(inspircd), tmp_path, block=5)
    t.agent.start()
    time.sleep(8)  # synced: block 5 s + 2
    t.op.send(f"KICK {t.channel} {t.agent.nick} :out for a moment")
    # Feeds are read as they are written: a line written before the agent has the KICK
    # would be said at once (and refused by the server, 404), so wait for it.
    t.agent.wait_log(r"Kicked from ")
    t.append("45.155.205.12 found while kicked")
    t.op.wait_for(lambda l: l.command == "JOIN" and l.nick == t.agent.nick, timeout=15)
    t.reported_once("45.155.205.12", within=15)
    assert re.search(r"Listening to \S+ on \S+ \(\d+ threats restored, synced, 1 reports of "
                     r"its feeds held\)", t.agent.read_log())


def test_an_interrupted_setup_recovers_with_make_run(tmp_path):
    """Ctrl-C while the first `make run` made the venv leaves a python without pip; the
    next plain `make run` makes the venv again and runs (pip needs the package index)."""
    require_binary("inspircd")
    require_binary("atheme-services")
    copy = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(copy / ".venv")],
                   check=True)  # what an interrupted `python3 -m venv` leaves
    assert (copy / ".venv" / "bin" / "python").exists()
    run = Runner(tmp_path / "run", argv=["make", "run", f"PORT={free_port()}",
                                         f"TLS_PORT={free_port()}"], cwd=copy)
    try:
        out = run.wait_for("ThreatNet is running.", timeout=900)
        assert ".venv is incomplete (an interrupted setup?): making it again" in out, out
    finally:
        run.stop()


def test_a_clean_slate_is_explicit_and_waits_for_the_network_to_stop(local):
    run = local("run")
    run.wait_for("ThreatNet is running.")
    whitelist(local.run_dir, local.port, "127.0.0.9")
    clean = local("clean")
    assert clean.proc.wait(30) == 1 and "stop it first" in clean.output, clean.output
    run.stop()
    run = local("run", "--fresh")  # make run FRESH=1
    out = run.wait_for("ThreatNet is running.")
    assert "Forgot the local network" in out and "First run: making a new local network" in out
    path = local.run_dir / "local" / "bots" / BOT / "data" / "ThreatNetGuard.whitelist.yaml"
    assert not path.exists() or "127.0.0.9" not in path.read_text()

"""Crash safety: kill -9 in the middle of whitelist edits and cache snapshots, and a real
bot started on a broken whitelist.

The writers run in forked children (the parent has threatnet imported already, so a
fork costs a millisecond and a run fits hundreds of kills in a few seconds); each child
acknowledges every completed write on a pipe, the parent SIGKILLs it after a random
delay and checks the file: it must parse, and be the last acknowledged version or the
one being written when the signal landed (never empty, never a mix). Kills that land
inside atomic_write leave its temp file behind; they are counted (proof that the kill
hit the write) and reported.
"""
from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from harness import AGENT_IP, GUARD, OWNER, identify
from threatnet.address import parse_ip
from threatnet.atomic import remove_stale
from threatnet.cache import ThreatCache
from threatnet.language import parse_message
from threatnet.whitelist import WhitelistStore

SECONDS = float(os.environ.get("THREATNET_CRASH_SECONDS", "5"))  # per writer
CHANNEL = "#crash"
CYCLE = 60  # whitelist ops: 30 adds, then 30 removes, again and again


def _entry(i: int) -> str:
    return f"10.{i // 256}.{i % 256}.0/24"


def _whitelist_op(store: WhitelistStore, j: int) -> None:
    k = j % CYCLE
    if k < CYCLE // 2:
        store.add(CHANNEL, _entry(k))
    else:
        store.remove(CHANNEL, _entry(k - CYCLE // 2))


def _whitelist_after(j: int) -> list[str]:
    """The channel's entries after ops 0..j (j = -1: none yet)."""
    if j < 0:
        return []
    k = j % CYCLE
    half = CYCLE // 2
    if k < half:
        return [_entry(i) for i in range(k + 1)]
    return [_entry(i) for i in range(k - half + 1, half)]


def _run_child(body) -> int:
    """Fork a child running body(write_ack); returns (pid, read end of the ack pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(r)
            body(lambda n: os.write(w, f"{n}\n".encode()))
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _kill_and_acks(pid: int, r: int, delay: float) -> list[int]:
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    return [int(x) for x in data.split()]  # a torn last ack cannot happen: writes < PIPE_BUF


def _temp_files(directory: Path, name: str) -> list[Path]:
    return list(directory.glob(f".{name}.*.tmp"))


def test_whitelist_edits_survive_kill_9(tmp_path):
    path = tmp_path / "ThreatNetGuard.whitelist.yaml"
    path.write_text("# operator's comment, kept by line edits\nchannels:\n"
                    f'  "{CHANNEL}":\n')
    rng = random.Random(2004)
    done = -1  # ops completed and verified in the file
    kills = mid_write = 0
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        start = done + 1

        def body(ack, start=start):
            store = WhitelistStore(path)
            j = start
            while True:
                _whitelist_op(store, j)
                ack(j)
                j += 1

        pid, r = _run_child(body)
        acks = _kill_and_acks(pid, r, rng.uniform(0, 0.02))
        kills += 1
        last = acks[-1] if acks else done
        leftovers = remove_stale(path)  # as the restarted Guard does
        mid_write += bool(leftovers)
        assert not _temp_files(tmp_path, path.name)
        entries = WhitelistStore(path).load().entries(CHANNEL)  # raises if corrupt
        assert path.stat().st_size > 0
        assert path.read_text().startswith("# operator's comment"), "the comment was lost"
        if entries == _whitelist_after(last):
            done = last
        elif entries == _whitelist_after(last + 1):
            done = last + 1  # killed after the rename, before the acknowledgement
        else:
            pytest.fail(f"after kill {kills}: file has {entries}, expected the state after "
                        f"op {last} or {last + 1}")
    print(f"\nwhitelist: {kills} kills, {done + 1} edits, {mid_write} kills inside "
          f"atomic_write (temp file left behind)")
    assert kills >= 50 and done >= 50 and mid_write > 0


def _ip(i: int) -> str:
    return f"11.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"


def test_cache_snapshots_survive_kill_9(tmp_path):
    path = tmp_path / "cache.json"
    rng = random.Random(1984)
    size = 0  # entries in the last verified snapshot
    kills = mid_write = 0
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        start = size

        def body(ack, start=start):
            cache = ThreatCache()
            cache.load(path)
            n = start
            while True:
                if n >= 3000:  # keep snapshots small enough for many rounds
                    cache, n = ThreatCache(), 0
                cache.keep(parse_message(f"{_ip(n)} ssh"))
                n += 1
                cache.snapshot(path)
                ack(n)

        pid, r = _run_child(body)
        acks = _kill_and_acks(pid, r, rng.uniform(0, 0.02))
        kills += 1
        leftovers = remove_stale(path)  # as the restarted listener does
        mid_write += bool(leftovers)
        assert not _temp_files(tmp_path, path.name)
        last = acks[-1] if acks else size
        if not path.exists():
            assert last == 0, "a snapshot was acknowledged but the file is missing"
            continue
        check = ThreatCache()
        loaded = check.load(path)
        assert loaded.error is None, loaded.error
        keys = {e.key for e in check}
        candidates = {last, last + 1, 1}  # the next snapshot, or the first after a reset
        assert len(keys) in candidates, f"{len(keys)} entries, acknowledged {last}"
        assert keys == {parse_ip(_ip(i)) for i in range(len(keys))}
        size = len(keys)
    print(f"\ncache: {kills} kills, last snapshot {size} entries, {mid_write} kills inside "
          f"atomic_write (temp file left behind)")
    assert kills >= 50 and mid_write > 0


BAD_WHITELISTS = {
    # A valid entry before the broken one: fail closed means it is not used either.
    "bad entry": ('channels:\n  "{channel}":\n    - {ip}\n    - 999.1.1.1\n',
                  "'999.1.1.1': octet 999 > 255"),
    "bad YAML": ('channels:\n  "{channel}":\n    - {ip}\n   - [oops\n', "invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_WHITELISTS))
def test_bot_started_with_a_bad_whitelist_fails_closed(case, ngircd, lab_factory):
    lab = lab_factory(ngircd)
    channel = lab.channel()
    text, reason = BAD_WHITELISTS[case]
    bot = lab.bot(lab.unique("guard"), channel, plugins=["ThreatNetGuard"], owner=OWNER,
                  settings=GUARD)
    path = bot.dir / "data" / "ThreatNetGuard.whitelist.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.format(channel=channel, ip=AGENT_IP))
    stale = path.parent / f".{path.name}.k9x2q1ab.tmp"  # what a kill -9 mid-edit leaves
    stale.write_text("channels: {}\n")
    bot.start()
    assert not stale.exists(), "the temp file of an interrupted write was left"
    errors = [l for l in bot.read_log().splitlines()
              if l.startswith("ERROR") and "whitelist not loaded" in l]  # logged at load
    assert errors and reason in errors[0] and str(path) in errors[0], bot.read_log()[-2000:]
    agent, owner = lab.connect(lab.client(lab.unique("agent"), source=AGENT_IP),
                               lab.client(lab.unique("boss")))
    agent.join(channel)
    assert agent.wait_for(lambda l: l.command == "MODE" and agent.nick in l.params,
                          timeout=1.5, required=False) is None, "voiced from a broken whitelist"
    identify(owner, bot)
    listed = owner.ask(bot.nick, f"tn whitelist list {channel}", bot.nick).text
    assert listed.startswith(f"nobody is whitelisted in {channel}"), listed
    assert "whitelist file invalid" in listed and reason in listed, listed
    reply = owner.ask(bot.nick, "tn whitelist reload", bot.nick).text
    assert "whitelist not loaded" in reply and reason in reply, reply
    # The operator repairs the file: picked up within the housekeeping tick.
    path.write_text(f'channels:\n  "{channel}":\n    - {AGENT_IP}\n')
    agent.wait_for(lambda l: l.command == "MODE" and l.params[1:] == ["+v", agent.nick],
                   timeout=8)

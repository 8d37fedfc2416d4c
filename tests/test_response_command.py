"""Command responder: argv (never a shell), concurrency bound, timeout kill, exit status."""
from __future__ import annotations

import logging
import time

import pytest

from threatnet.response import CommandResponder, ResponderError, Threat

NOW = time.time()


def t(ip, ttl=3600.0, comment="ssh brute force", reporter="alice"):
    return Threat.make(ip, comment, reporter, NOW + ttl)


def script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def recorder(tmp_path):
    """A program writing each of its arguments on its own line, one file per run."""
    return script(tmp_path, "record", f'f=$(mktemp {tmp_path}/run.XXXXXX)\n'
                  'for a in "$@"; do printf "%s\\n" "$a" >> "$f"; done\n')


def runs(tmp_path):
    return sorted(p.read_text().splitlines() for p in tmp_path.glob("run.*"))


def test_arguments_are_appended_not_shell_parsed(tmp_path, recorder):
    cmd = CommandResponder([str(recorder), "--zone", "x y"])
    hostile = "$(touch pwned); rm -rf / `id` 'quote\" \\back"
    cmd.update([t("203.0.113.7", ttl=99.5, comment=hostile, reporter="bob; ls")], [], NOW)
    cmd.close()
    assert runs(tmp_path) == [["--zone", "x y", "203.0.113.7", hostile, "bob; ls", "100"]]
    assert not (tmp_path / "pwned").exists()


def test_comment_is_one_line_without_control_characters(tmp_path, recorder):
    cmd = CommandResponder([str(recorder)])
    cmd.update([t("192.0.2.1", comment="a\nb\x00c\x0304red")], [], NOW)
    cmd.close()
    assert runs(tmp_path)[0][1] == "a b c red"


def test_expire_command(tmp_path, recorder):
    cmd = CommandResponder([str(recorder), "add"], expire_argv=[str(recorder), "del"])
    cmd.update([t("192.0.2.1")], [t("2001:db8::/64")], NOW)
    cmd.close()
    assert runs(tmp_path) == [["add", "192.0.2.1", "ssh brute force", "alice", "3600"],
                              ["del", "2001:db8::/64"]]


def test_without_expire_command_removals_run_nothing(tmp_path, recorder):
    cmd = CommandResponder([str(recorder)])
    cmd.update([], [t("192.0.2.1")], NOW)
    cmd.close()
    assert runs(tmp_path) == []


def test_concurrency_is_bounded(tmp_path):
    prog = script(tmp_path, "slow", f"""\
        echo start >> {tmp_path}/log
        sleep 0.2
        echo end >> {tmp_path}/log
        """.replace("        ", ""))
    cmd = CommandResponder([str(prog)], max_procs=2)
    start = time.monotonic()
    cmd.update([t(f"192.0.2.{i}") for i in range(4)], [], NOW)
    elapsed = time.monotonic() - start
    cmd.close()
    depth = peak = 0
    for line in (tmp_path / "log").read_text().split():
        depth += 1 if line == "start" else -1
        peak = max(peak, depth)
    assert peak == 2
    assert 0.4 <= elapsed < 3.0  # two rounds of two, not four at once nor one by one


def test_timeout_kills_the_process_group(tmp_path, caplog):
    prog = script(tmp_path, "hang", f"sleep 30 &\necho $! > {tmp_path}/child\nwait\n")
    cmd = CommandResponder([str(prog)], timeout=0.3)
    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="threatnet.response.command"):
        cmd.update([t("192.0.2.1")], [], NOW)
    assert time.monotonic() - start < 3
    cmd.close()
    assert "killed after 0.3 s timeout" in caplog.text
    child = int((tmp_path / "child").read_text())

    def dead():  # gone, or a zombie waiting for whoever inherited it
        try:
            with open(f"/proc/{child}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 5
    while not dead():
        if time.monotonic() > deadline:
            pytest.fail("the program's child survived the timeout")
        time.sleep(0.02)


def test_exit_status_is_logged(tmp_path, caplog):
    prog = script(tmp_path, "fails", 'echo "no route to $1" >&2\nexit 3\n')
    cmd = CommandResponder([str(prog)])
    with caplog.at_level(logging.DEBUG, logger="threatnet.response.command"):
        cmd.update([t("192.0.2.1")], [], NOW)
    cmd.close()
    assert "exited with status 3: no route to 192.0.2.1" in caplog.text


def test_success_is_logged_at_debug(tmp_path, caplog, recorder):
    cmd = CommandResponder([str(recorder)])
    with caplog.at_level(logging.DEBUG, logger="threatnet.response.command"):
        cmd.update([t("192.0.2.1")], [], NOW)
    cmd.close()
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "exited 0" in caplog.text


def test_missing_program_is_an_error_to_retry(tmp_path):
    cmd = CommandResponder([str(tmp_path / "nope")])
    with pytest.raises(ResponderError, match="nope: command not found"):
        cmd.update([t("192.0.2.1")], [], NOW)
    with pytest.raises(ResponderError, match="command not found"):
        CommandResponder(["no-such-program-threatnet"]).update([t("192.0.2.1")], [], NOW)
    cmd.close()


def test_not_executable_is_an_error(tmp_path):
    path = tmp_path / "plain"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o644)
    with pytest.raises(ResponderError, match="permission denied"):
        CommandResponder([str(path)]).update([t("192.0.2.1")], [], NOW)


def test_resync_runs_only_for_threats_not_yet_run(tmp_path, recorder):
    cmd = CommandResponder([str(recorder)])
    a, b = t("192.0.2.1"), t("192.0.2.2")
    cmd.update([a], [], NOW)
    cmd.resync([a, b, t("192.0.2.3", ttl=-1)], NOW)
    renewed_a = t("192.0.2.1", ttl=7200)
    cmd.resync([renewed_a, b], NOW)
    cmd.close()
    assert [r[0] for r in runs(tmp_path)] == ["192.0.2.1", "192.0.2.1", "192.0.2.2"]


@pytest.mark.parametrize("argv", ["/bin/echo $IP", [], ()])
def test_argv_must_be_a_list(argv):
    with pytest.raises(ValueError):
        CommandResponder(argv)

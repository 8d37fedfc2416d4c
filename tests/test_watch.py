"""Feed watch (inotify): a write to a feed's file makes the watch readable and counts
as a change, with no poll; other files in the directory do not; rotation and
truncation still reach the LogFeed; without inotify the feeds are polled."""
from __future__ import annotations

import os
import select

import pytest

import threatnet.watch as watch_module
from threatnet.feed import LogFeed
from threatnet.watch import FeedWatch

SSH_FAIL = "Nov 22 03:04:05 gw sshd[{pid}]: Failed password for root from {ip} port 52144 ssh2\n"


@pytest.fixture
def watch():
    w = FeedWatch.open()
    if isinstance(w, str):
        pytest.skip(w)
    yield w
    w.close()


def readable(w: FeedWatch) -> bool:
    """Whether the watch's descriptor is readable (waiting for it, as select does)."""
    return bool(select.select([w], [], [], 5)[0])


def append(path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def test_a_write_is_seen_without_polling(tmp_path, watch):
    log = tmp_path / "auth.log"
    log.write_text("")
    feed = LogFeed(log, "sshd", maxretry=1)
    watch.watch([str(log)])
    assert not watch.changed()
    append(log, SSH_FAIL.format(pid=1, ip="203.0.113.7"))
    assert readable(watch)
    assert watch.changed()
    assert [t.ip for t in feed.poll()] == ["203.0.113.7"]
    assert not watch.changed()  # every event was read


def test_other_files_in_the_directory_are_ignored(tmp_path, watch):
    log = tmp_path / "auth.log"
    log.write_text("")
    watch.watch([str(log)])
    append(tmp_path / "syslog", "something else\n")
    assert readable(watch)
    assert not watch.changed()


def test_rotation_and_truncation_are_changes(tmp_path, watch):
    log = tmp_path / "auth.log"
    log.write_text("")
    feed = LogFeed(log, "sshd", maxretry=1)
    watch.watch([str(log)])
    os.rename(log, tmp_path / "auth.log.1")  # logrotate: the writer still has the old file
    append(tmp_path / "auth.log.1", SSH_FAIL.format(pid=1, ip="203.0.113.7"))
    assert readable(watch) and watch.changed()
    append(log, SSH_FAIL.format(pid=2, ip="203.0.113.8"))  # the new file
    assert readable(watch) and watch.changed()
    assert [t.ip for t in feed.poll()] == ["203.0.113.7", "203.0.113.8"]
    with open(log, "r+") as f:  # copytruncate
        f.truncate(0)
    assert readable(watch) and watch.changed()
    assert feed.poll() == []  # what the agent does on the change
    append(log, SSH_FAIL.format(pid=3, ip="203.0.113.9"))
    assert watch.changed()
    assert [t.ip for t in feed.poll()] == ["203.0.113.9"]


def test_a_missing_directory_is_tried_again(tmp_path, watch):
    log = tmp_path / "later" / "auth.log"
    watch.watch([str(log)])
    assert str(log) in watch.errors
    log.parent.mkdir()
    watch.watch([str(log)])
    assert watch.errors == {}
    append(log, "x\n")
    assert readable(watch) and watch.changed()


def test_unwatched_directories_are_dropped(tmp_path, watch):
    log = tmp_path / "auth.log"
    watch.watch([str(log)])
    assert watch.errors == {}
    watch.watch([])
    assert not watch.changed()  # the kernel confirms the removal: not a change
    append(log, "x\n")
    assert not select.select([watch], [], [], 0.05)[0]


def test_without_inotify_the_feeds_are_polled(monkeypatch):
    monkeypatch.setattr(watch_module, "INotify", None)
    assert "inotify is not available" in FeedWatch.open()


def test_one_directory_spelt_two_ways_keeps_both_files(tmp_path, watch):
    """The kernel gives a directory one watch however its path is spelt (a symlink, a
    trailing slash): both feeds' files stay watched."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "logs")
    a, b = tmp_path / "logs" / "auth.log", tmp_path / "link" / "mail.log"
    for log in (a, b):
        log.write_text("")
    watch.watch([str(a), str(b)])
    for log in (a, b):
        append(log, "x\n")
        assert readable(watch)
        assert watch.changed(), log

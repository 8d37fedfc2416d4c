"""Event-driven feeds on a real bot: with Limnoria's driver poll at its default (1 s) and
the plugin's poll timer out of the way (pollInterval 300 s), a line appended to a feed
still reaches the channel, and a burst leaves at the outbox's own pace, all of it: only
the feed watch (inotify) and the outbox's wake-up timer can have sent them.

The agent is a lean one, as `make agent` runs it (Owner, User, ThreatNetCache); its quiet
period is skipped with a recent snapshot.
"""
from __future__ import annotations

import pytest

from harness import CACHE
from lab.bots import LEAN_AGENT, skip_quiet_period
from threatnet.watch import FeedWatch


def test_feed_lines_reach_the_channel_without_polls(ngircd, lab_factory, tmp_path):
    watch = FeedWatch.open()
    if isinstance(watch, str):
        pytest.skip(watch)
    watch.close()
    lab = lab_factory(ngircd)
    channel = lab.channel()
    log = tmp_path / "threats.log"
    log.write_text("")
    bot = lab.bot(lab.unique("ev"), channel, settings={
        **CACHE, **LEAN_AGENT,
        "supybot.plugins.ThreatNetCache.pollInterval": 300,
        "supybot.plugins.ThreatNetCache.outbox.rate": 200,
        "supybot.plugins.ThreatNetCache.outbox.burst": 10,
        "supybot.plugins.ThreatNetCache.outbox.size": 1000,
        "supybot.plugins.ThreatNetCache.feeds": f"plain:{log}"})
    skip_quiet_period(bot, channel)
    (watcher,) = lab.connect(lab.client(lab.unique("watch")))
    watcher.join(channel)
    bot.start()
    assert "Feeds read as they are written (inotify)" in bot.read_log()  # at the join
    assert "supybot.drivers.poll" not in bot.conf_path.read_text().split("###")[0]

    def said(count: int) -> list[str]:
        return [watcher.wait_for(lambda l: l.command == "PRIVMSG" and l.nick == bot.nick,
                                 timeout=20).text for _ in range(count)]

    with open(log, "a") as f:
        f.write("45.51.100.1 written once\n")
    assert said(1) == ["45.51.100.1 written once"]

    lines = [f"45.51.{n // 200}.{n % 200 + 2} burst" for n in range(300)]
    with open(log, "a") as f:
        f.write("".join(line + "\n" for line in lines))
    assert said(300) == lines  # burst 10, then 200/s: none waited for a poll
    assert not [e for e in bot.errors() if "Traceback" in e]

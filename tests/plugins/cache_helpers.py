"""Shared fixture for the ThreatNetCache plugin tests: a joined ThreatNet channel."""
import re
import threading

import supybot.conf as conf
import supybot.ircmsgs as ircmsgs
import supybot.schedule as schedule
from supybot.test import ChannelPluginTestCase, timeFastForward

from threatnet.response import Responder, ResponderError

SERVER = "irc.example.net"


def setting(name):
    """A ThreatNetCache registry value (registered once the plugin is loaded); change
    it only with ``.context()`` so the next test sees the default again."""
    value = conf.supybot.plugins.ThreatNetCache
    for part in name.split("."):
        value = value.get(part)
    return value


class CacheTestCase(ChannelPluginTestCase):
    """#test joined and enabled; the bot is 'test', alice is voiced, mallory is not."""

    plugins = ("ThreatNetCache",)
    # A topic counts at once here (topicHold 0); TopicHoldTestCase tests the hold.
    config = {"supybot.plugins.ThreatNetCache.enable": True,
              "supybot.plugins.ThreatNetCache.topicHold": 0}

    def setUp(self):
        super().setUp()
        self.cb = self.irc.getCallback("ThreatNetCache")
        self.server("366", self.nick, self.channel, "End of /NAMES list.")
        self.join("alice", "+v")
        self.join("mallory")

    def server(self, command, *args, tags=None):
        self.irc.feedMsg(ircmsgs.IrcMsg(prefix=SERVER, command=command, args=args,
                                        server_tags=tags))

    def join(self, nick, mode=None):
        self.irc.feedMsg(ircmsgs.join(self.channel, prefix=f"{nick}!{nick}@198.51.100.9"))
        if mode:
            self.server("MODE", self.channel, mode, nick)

    def hear(self, line, nick="alice", tags=None, channel=None):
        """A channel line from nick; the listener never answers it."""
        self.irc.feedMsg(ircmsgs.IrcMsg(prefix=f"{nick}!{nick}@198.51.100.9", command="PRIVMSG",
                                        args=(channel or self.channel, line), server_tags=tags))
        self.assertIsNone(self.irc.takeMsg())

    def status(self, channel=""):
        return self.getMsg(f"tn status {channel}").args[1]

    def assertStatus(self, *parts):
        status = self.status()
        for part in parts:
            self.assertIn(part, status)

    def tick(self, seconds=1.01):
        """Let the plugin's timers run as if ``seconds`` had passed."""
        timeFastForward(seconds)
        schedule.run()

    def synced(self):
        """Listen until the quiet period is over."""
        left = re.search(r"quiet period: (\d+) s left", self.status())
        if left:
            self.tick(int(left.group(1)) + 1)
        self.assertIn("synced", self.status())

    def sent(self):
        """Every message the bot sends right now."""
        out = []
        while (msg := self.irc.takeMsg()) is not None:
            out.append(msg)
        return out

    def say(self, command, frm=None):
        """Run a command; the text of everything the bot sends, in order."""
        self.feedMsg("@" + command, frm=frm)
        return [msg.args[1] for msg in self.sent()]


KEY = ("test", "#test")


class Fake(Responder):
    """Collects what the host tells it; ``fail`` makes every apply raise, ``block``
    (an Event) makes every apply wait for it."""

    name = "fake"

    def __init__(self, fail=None, block=None):
        super().__init__()
        self.fail = fail
        self.block = block
        self.lock = threading.Lock()
        self.added, self.removed, self.resyncs = [], [], []
        self.closed = False

    def update(self, added, removed, now):
        self._apply()
        with self.lock:
            self.added += added
            self.removed += removed

    def resync(self, threats, now):
        self._apply()
        with self.lock:
            self.resyncs.append(sorted(threats))

    def _apply(self):
        if self.block is not None:
            self.block.wait(10)
        if self.fail:
            raise ResponderError(self.fail)

    def close(self):
        self.closed = True


class ResponderTestCase(CacheTestCase):
    """CacheTestCase with the channel's responders replaced by a Fake (``fake()``)."""

    def fake(self, **kw):
        """Replace the channel's responders by one Fake, started with the cache now."""
        fake = Fake(**kw)
        responses = self.cb._responses[KEY]
        responses.builder = lambda spec: ([fake], [])
        responses.spec = None  # rebuild on the next sync
        self.cb._sync()
        return fake

    def idle(self):
        self.assertTrue(self.cb._responses[KEY].host.wait_idle(5))

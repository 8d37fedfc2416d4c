"""Shared fixture for the ThreatNetGuard plugin tests: a channel where the bot is op.

The bot is ``test`` (also the nick PluginTestCase sends commands as); agents are
other nicks fed as raw IRC lines. ``out()`` runs the schedule (the coalesced voice
flush, the housekeeping tick when due) and drains everything the bot sent; in test
mode takeMsg applies the bot's own MODE/KICK/TOPIC to irc.state.
"""
import contextlib
import os

import re

import supybot.conf as conf
import supybot.ircdb as ircdb
import supybot.ircutils as ircutils
import supybot.ircmsgs as ircmsgs
import supybot.schedule as schedule
from supybot.test import ChannelPluginTestCase

from lab.limnoria import WHITELIST

GUARD = "supybot.plugins.ThreatNetGuard."


def reset_topic():
    """Topic values set by a command (`tn topic --block`) outlive the test: reset them."""
    topic = conf.supybot.plugins.ThreatNetGuard.topic
    for name in ("uri", "block", "flags", "quorum"):
        value = topic.get(name)
        network = value.get(":test")
        for parent, child in ((network, network.get("#test")), (value, value.get("#test"))):
            child._setValue(parent.value, inherited=True)  # what `config reset channel` does


class GuardTestCase(ChannelPluginTestCase):
    plugins = ("ThreatNetGuard",)
    # The test server shows real IPs as hosts (realHosts); tests of the other rule
    # switch it off.
    config = {GUARD + "enable": True, GUARD + "flood.lines": 100, GUARD + "topic.flags": [],
              GUARD + "ban.kicks": 3, GUARD + "realHosts": True}
    isupport = "MODES=4 EXTBAN=,RU WHOX"
    opped = True

    def setUp(self):
        super().setUp()
        self.guard = self.irc.getCallback("ThreatNetGuard")
        self.write_whitelist(WHITELIST)
        self.assertIsNone(self.guard._load_whitelist())
        self.feed(f":irc.test 005 test {self.isupport} :are supported by this server")
        # The WHO Limnoria sends on join has been answered: the join is synced; and so
        # has its ban list query.
        self.feed(":irc.test 315 test #test :End of /WHO list.")
        self.feed(":irc.test 368 test #test :End of channel ban list")
        if self.opped:
            self.op_bot()

    def tearDown(self):
        schedule.run()  # nothing of ours may be left for the next test
        super().tearDown()
        with contextlib.suppress(FileNotFoundError):  # nor bans to restore
            os.remove(self.guard._bans_path())

    def restart_guard(self):
        """A new plugin instance on the same Irc and data directory, as after a restart."""
        self.irc.removeCallback(self.guard.name())
        self.guard.die()
        self.guard = type(self.guard)(self.irc)
        self.irc.addCallback(self.guard)

    # -- helpers

    @property
    def whitelist_path(self):
        return os.path.join(conf.supybot.directories.data(), "ThreatNetGuard.whitelist.yaml")

    def write_whitelist(self, text):
        with open(self.whitelist_path, "w") as f:
            f.write(text)

    def feed(self, line):
        self.irc.feedMsg(ircmsgs.IrcMsg(line))

    def out(self):
        """Everything the bot sends now, after the scheduled flush."""
        schedule.run()
        msgs = []
        msg = self.irc.takeMsg()
        while msg is not None:
            msgs.append(msg)
            msg = self.irc.takeMsg()
        return msgs

    def lines(self):
        return [" ".join((m.command,) + m.args) for m in self.out()]

    def op_bot(self):
        self.feed(":irc.test MODE #test +o test")
        sent = self.lines()
        self.assertIn("MODE #test +nt", sent)
        self.assertIn("TOPIC #test " + self.guard._wanted_topic(self.irc, "#test"), sent)
        return sent

    def join(self, nick, host, account=None):
        extended = f" {account or '*'} :real" if account is not None else ""
        self.feed(f":{nick}!u@{host} JOIN #test{extended}")

    def say(self, nick, host, text, command="PRIVMSG", tags=""):
        self.feed(f"{tags}:{nick}!u@{host} {command} #test :{text}")

    def offend(self, nick, host, tags=""):
        """``nick`` joins and says something that gets it kicked; what the bot sent."""
        self.join(nick, host)
        self.say(nick, host, "spam", tags=tags)
        return self.lines()

    @contextlib.contextmanager
    def config_value(self, name, value):
        group = conf.supybot.plugins.ThreatNetGuard
        for part in name.split("."):
            group = group.get(part)
        old = group()
        group.setValue(value)
        self.guard._settings.clear()  # the plugin caches settings for a second
        try:
            yield
        finally:
            group.setValue(old)
            self.guard._settings.clear()

    @property
    def chan(self):
        return self.irc.state.channels["#test"]

    def command(self, text, frm=None):
        """Feed a command as PRIVMSG to the channel; returns the bot's replies (text only)."""
        self.irc.feedMsg(ircmsgs.privmsg("#test", "@" + text, prefix=frm or self.prefix))
        return [m.args[1] for m in self.out() if m.command in ("PRIVMSG", "NOTICE")]


CACHE = "supybot.plugins.ThreatNetCache."


class BothTestCase(GuardTestCase):
    """The Guard's #test, where ThreatNetCache listens too."""

    plugins = ("ThreatNetGuard", "ThreatNetCache", "Plugin", "Misc")
    config = dict(GuardTestCase.config, **{CACHE + "enable": True, CACHE + "topicHold": 0,
                                           "supybot.reply.mores.instant": 10,
                                           "supybot.abuse.flood.command": False})

    def setUp(self):
        super().setUp()
        self.feed(":irc.test 366 test #test :End of /NAMES list.")
        self.out()
        self.users = []

    def tearDown(self):
        for user in self.users:
            ircdb.users.delUser(user.id)
        reset_topic()
        super().tearDown()

    def user(self, name, *capabilities):
        """A registered user (capabilities really checked: __no_testcap__); its prefix."""
        user = ircdb.users.newUser()
        user.name = name
        prefix = f"{name}!u@__no_testcap__.example"
        user.addHostmask(prefix)
        for capability in capabilities:
            user.addCapability(capability)
        ircdb.users.setUser(user)
        self.users.append(user)
        return prefix

    def reply(self, command, frm=None):
        """The bot's whole answer to ``command``, without formatting."""
        return " ".join(" ".join(ircutils.stripFormatting(r) for r in self.command(
            command, frm=frm)).split())

    def helps(self):
        """(command, help text) of every ThreatNet command of both plugins."""
        names = re.search(r"ThreatNet commands: (.*?)\. help", self.command("tn help")[0])
        for name in names.group(1).split(", "):
            yield name, self.reply(f"help {name}")

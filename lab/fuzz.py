"""Both plugins in one bot, fed random and structured raw IRC lines.

The bot runs ThreatNetCache and ThreatNetGuard together (as `make run` does) in
#test, opped, with a whitelist. Lines go in the way the socket driver feeds them:
raw bytes, decoded by Limnoria's decode_raw_line, parsed by IrcMsg (lines it
refuses are counted, not fed), then Irc.feedMsg, which updates irc.state and runs
every plugin hook. Limnoria catches what a hook raises and logs it, so the log is
captured: any record with a traceback through threatnet/, threatnet_irc/ or a
ThreatNet plugin is a failure. After each line the invariants below are checked.

Only OWNER has capabilities (PluginTestCase grants every capability to every
hostmask; the test narrows it), so fuzzed `tn whitelist ...` commands from anyone
else exercise the refusal path and the whitelist file changes only by the owner.

tests/plugins/test_fuzz_plugins.py feeds a few thousand lines; bench/fuzz.py a million.
"""
from __future__ import annotations

import collections
import logging
import os
import random
import time
import traceback

from lab.limnoria import WHITELIST as GUARD_WHITELIST  # first: opens the test registry
import supybot.ircdb as ircdb
import supybot.ircmsgs as ircmsgs
import supybot.ircutils as ircutils
import supybot.schedule as schedule
import supybot.utils as supyutils
from supybot.test import ChannelPluginTestCase
from supybot.utils.str import decode_raw_line

from threatnet.whitelist import WhitelistStore

CHANNEL = "#test"
BOT = "test"
SERVER = "irc.test"
OWNER = "boss!boss@owner.example"
WHITELIST = GUARD_WHITELIST + "    - account:carol\n"  # the plugin tests' and carol
OURS = ("/plugins/ThreatNetCache/", "/plugins/ThreatNetGuard/", "/threatnet/", "/threatnet_irc/")

# (nick, user, host, account): a1/a2/n6 qualify by IP, bob/carol by account.
AGENTS = [("a1", "u", "192.0.2.5", None), ("a2", "u", "192.0.2.77", None),
          ("n6", "u", "2001:db8::1", None), ("bob", "bob", "cloak.example", "bob"),
          ("carol", "c", "198.51.100.4", "carol")]
STRANGERS = [("eve", "e", "203.0.113.9", None), ("mallory", "m", "cloak.example", "mallory"),
             ("A1", "x", "203.0.113.10", None), ("trudy", "t", "192.0.2.5.evil.example", None),
             ("Bob", "b", "cloak2.example", None), ("[n]\\^", "w", "198.51.100.200", None),
             ("zoë", "z", "2001:db9::1", None)]
NICKS = [a[0] for a in AGENTS + STRANGERS] + [BOT, "TEST", "ghost", "nobody", "*", ""]
HOSTS = ["192.0.2.5", "192.0.2.200", "2001:db8::99", "203.0.113.9", "cloak.example",
         "255.255.255.255", "0.0.0.0", "::", "::ffff:192.0.2.5", "192.0.2.5:6667", "10.1",
         "192.0.2.005", "１９２.0.2.5", "", "h" * 70]
ACCOUNTS = ["bob", "BOB", "carol", "mallory", "*", "0", "", "bob\\sx", "ƀob"]
CHANNELS = [CHANNEL, "#TEST", "#other", "#test,#other", "&local", "#", "test", "*", "0", ""]

# Threat-ish texts: valid, bogon, malformed, disguised.
IPS = ["8.8.8.8", "11.1.1.1", "203.0.113.50", "2001:4860::8888", "1.2.3.4", "10.0.0.1",
       "192.168.1.1", "127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "fe80::1", "::ffff:8.8.4.4",
       "123.123.123.456", "010.1.1.1", "1.2.3", "1.2.3.4/24", "fe80::1%eth0", "٨.٨.٨.٨",
       "８.８.８.８", "1.2.3.4\u200b", "1.2.3.4.5", "2001:db8:::1", ":::", "1.1.1.1:80"]
COMMENTS = ["", "ssh brute force", "x" * 200, "é" * 120, "\x02bold\x02 \x0304red\x03",
            "\x01ACTION\x01", "a\tb", "  spaced  ", "🦀" * 60, "\x1d\x1f\x16\x0f", "[tn topic]"]
FORMATTING = ["", "\x02", "\x03", "\x0304", "\x0304,05", "\x0f", "\x16", "\x1d", "\x1f", "\x11",
              "\x1e", "\x04ff0000"]
CMDS = ["tn status", "tn check 8.8.8.8", "tn check ::1", "tn check bogus", "tn status #other",
        "tn report 8.8.8.8 x", "tn feeds", "tn topic", "tn topic --block 60",
        "tn whitelist list", "tn whitelist add 1.2.3.4", "tn whitelist add account:eve",
        "tn whitelist remove 192.0.2.0/24", "tn whitelist remove account:bob",
        "tn whitelist reload", "echo [tn whitelist add 9.9.9.9]",
        "echo [tn whitelist remove #test account:bob]", "tn", "tn whitelist", "tn check",
        "tn check #nowhere 8.8.8.8", "echo [tn check 8.8.8.8]", "tn topic --uri x"]
OWNER_CMDS = ["tn whitelist add 198.51.100.0/24", "tn whitelist remove 198.51.100.0/24",
              "tn whitelist add account:mallory", "tn whitelist remove account:mallory",
              "tn whitelist add 203.0.113.9", "tn whitelist remove 203.0.113.9",
              "tn whitelist list", "tn whitelist reload"]
MODES = ["+v", "-v", "+o", "-o", "+h", "-h", "+b", "-b", "+vvv", "+ov-v", "-o+v", "+l", "+k",
         "-nt", "+m", "-m", "+i", "+e", "+I", "+q", "+a", "+Y", "+vv-vv", "+", "-", "v", "+z",
         "+b-b+v", "+lk"]
TAG_VALUES = ["", "x", "a\\sb", "a\\:b", "\\", "\\\\", "a\\rb\\n", "é", "x" * 300, "\\0", ";", "bob"]
TAG_KEYS = ["account", "batch", "time", "msgid", "label", "+typing", "+draft/reply", "vendor/x",
            "account", "", "=", "a/b/c"]
TIMES = ["2024-01-01T00:00:00.000Z", "bogus", "", "9999-99-99T99:99:99Z"]
ISUPPORT = ["MODES=4", "MODES=1", "MODES=0", "MODES=", "MODES=-1", "MODES=x", "WHOX",
            "EXTBAN=,RU", "EXTBAN=$,a", "EXTBAN=", "EXTBAN=~", "PREFIX=(qaohv)~&@%+",
            "PREFIX=(ov)@+", "PREFIX=", "PREFIX=(o)", "CHANMODES=beI,k,l,imnpst", "CHANMODES=",
            "CHANTYPES=#&", "CHANTYPES=", "CASEMAPPING=ascii", "CASEMAPPING=rfc1459",
            "NICKLEN=", "TOPICLEN=5", "UTF8ONLY", "-WHOX", "-MODES"]
STEP = 0.005  # seconds of the fuzz clock per line
# What the server says in its 005 lines, restored before each resync: a fuzzed
# "PREFIX=" makes Limnoria stop tracking voices at all.
ISUPPORT_STATE = "PREFIX=(qaohv)~&@%+ CHANMODES=beI,k,l,imnpst CHANTYPES=#& CASEMAPPING=rfc1459"
ISUPPORT_BASE = ISUPPORT_STATE + " MODES=4 EXTBAN=,RU WHOX"
NUMERICS = ["001", "002", "004", "005", "221", "301", "305", "315", "324", "329", "332", "333",
            "352", "353", "354", "366", "367", "368", "396", "401", "403", "404", "433", "441",
            "442", "471", "473", "474", "475", "477", "482", "900", "901", "903", "904", "999",
            "000", "1234"]


class Fuzz:
    """Raw IRC lines (bytes, no CRLF): structured ones around the plugins' hooks,
    mixed with random tokens and random bytes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent_ips: list[str] = []

    # -- pieces

    def pick(self, items):
        return self.rng.choice(items)

    def identity(self):
        r = self.rng.random()
        if r < 0.55:
            return self.pick(AGENTS)
        if r < 0.85:
            return self.pick(STRANGERS)
        nick = self.pick(NICKS + [self.word()])
        return nick, self.pick(["u", "~u", "", "u@x"]), self.pick(HOSTS), None

    def word(self):
        alphabet = "abcXYZ019[]\\^{}|-_`é😀#:@!+"
        return "".join(self.pick(alphabet) for _ in range(self.rng.randrange(1, 12)))

    def prefix(self, who=None):
        r = self.rng.random()
        if r < 0.82 or who is not None:
            nick, user, host, _ = who or self.identity()
            if self.rng.random() < 0.08:  # same nick, somebody else's host: a takeover
                host = self.pick(HOSTS)
            return f":{nick}!{user}@{host} "
        return self.pick([f":{SERVER} ", "", ":", ": ", ":!@ ", ":nick ", ":nick! ", ":@host ",
                          f":{BOT} ", f":{BOT}!user@host.domain.tld ", ":a!b!c@d@e ",
                          ":services. ", ":*!*@* "])

    def tags(self, who=None):
        if self.rng.random() < 0.55:
            return ""
        items = []
        for _ in range(self.rng.randrange(1, 4)):
            key = self.pick(TAG_KEYS)
            if key == "account":
                value = (who[3] if who and who[3] and self.rng.random() < 0.7
                         else self.pick(ACCOUNTS))
            elif key == "time":
                value = self.pick(TIMES)
            else:
                value = self.pick(TAG_VALUES)
            items.append(key if value == "" and self.rng.random() < 0.5 else f"{key}={value}")
        return "@" + ";".join(items) + " "

    def ip(self):
        if self.sent_ips and self.rng.random() < 0.25:
            return self.pick(self.sent_ips)  # a repeat: duplicate poisoning
        if self.rng.random() < 0.5:
            ip = f"{self.rng.randrange(1, 224)}.{self.rng.randrange(256)}." \
                 f"{self.rng.randrange(256)}.{self.rng.randrange(256)}"
        elif self.rng.random() < 0.3:
            ip = f"2a00:{self.rng.randrange(65536):x}::{self.rng.randrange(65536):x}"
        else:
            ip = self.pick(IPS)
        self.sent_ips = (self.sent_ips + [ip])[-50:]
        return ip

    def text(self):
        r = self.rng.random()
        if r < 0.45:
            lead = self.pick(["", "", "", " ", "\t", self.pick(FORMATTING)])
            return f"{lead}{self.ip()} {self.pick(COMMENTS)}".rstrip(" ") \
                if self.rng.random() < 0.9 else lead + self.ip()
        if r < 0.65:
            cmd = self.pick(CMDS)
            return self.pick(["@", f"{BOT}: ", f"{BOT}, ", "@@", "@ ", "!"]) + cmd
        if r < 0.72:
            return f"\x01{self.pick(['ACTION', 'VERSION', 'PING 123', 'DCC SEND x 1 2 3', ''])} " \
                   f"{self.ip()}\x01"
        if r < 0.8:
            return f"{self.pick(NICKS)}: {self.pick(['Not a current threat', 'ok', self.ip()])}"
        if r < 0.9:
            return self.pick(COMMENTS) + self.pick(FORMATTING) + self.ip()
        return self.word() * self.rng.randrange(1, 40)

    def topic(self):
        block = self.pick(["60", "3600", "0", "-1", "604801", "1e3", "", "x", "٣٦٠٠"])
        return self.pick([
            f"threatnet://threatnet.invalid/datn2004/ip-comment block={block}",
            f"threatnet://x/y block={block} tolerant", "threatnet://x/y", "threatnet://",
            "hello world", "", "threatnet://x/y block=60 block=61", "\x02threatnet://x/y",
            "threatnet://x/y " + "w " * 200])

    # -- lines

    def structured(self) -> str:
        who = self.identity()
        tags = self.tags(who)
        kind = self.rng.random()
        channel = CHANNEL if self.rng.random() < 0.8 else self.pick(CHANNELS)
        if kind < 0.34:
            command = "PRIVMSG" if self.rng.random() < 0.85 else "NOTICE"
            target = channel if self.rng.random() < 0.85 else self.pick([BOT, "TEST", "ghost"])
            return f"{tags}{self.prefix(who)}{command} {target} :{self.text()}"
        if kind < 0.44:
            if self.rng.random() < 0.5:  # extended-join
                account = who[3] or "*" if self.rng.random() < 0.8 else self.pick(ACCOUNTS)
                return f"{tags}{self.prefix(who)}JOIN {channel} {account or '*'} :real name"
            return f"{tags}{self.prefix(who)}JOIN {self.pick([channel, ':' + channel])}"
        if kind < 0.5:
            return f"{self.prefix(who)}PART {channel}" + self.pick(["", " :bye", " :" + self.ip()])
        if kind < 0.55:
            return f"{self.prefix(who)}QUIT :{self.pick(['bye', '', 'Ping timeout', '*.net *.split'])}"
        if kind < 0.6:
            target = self.pick(NICKS + [self.word()])
            return f"{self.prefix(who)}NICK {self.pick([target, ':' + target])}"
        if kind < 0.7:
            source = self.pick([f":{SERVER} ", f":{BOT}!user@host.domain.tld ", ""]) \
                if self.rng.random() < 0.4 else self.prefix(who)
            args = " ".join(self.pick(NICKS + ["", "5", "*!*@*", "R:bob", "key"])
                            for _ in range(self.rng.randrange(0, 5)))
            return f"{source}MODE {channel} {self.pick(MODES)} {args}".rstrip()
        if kind < 0.74:
            victim = self.pick(NICKS + ["a1,eve", f"{BOT},a1"])
            return f"{self.prefix()}KICK {channel} {victim} :{self.pick(['out', ''])}"
        if kind < 0.79:
            return f"{self.prefix()}TOPIC {channel} :{self.topic()}"
        if kind < 0.83:
            return f"{tags}{self.prefix(who)}ACCOUNT {self.pick(ACCOUNTS + [':*', ':bob'])}"
        if kind < 0.86:
            return f"{self.prefix(who)}CHGHOST {self.pick(['u', '~x', ''])} {self.pick(HOSTS)}"
        if kind < 0.96:
            return self.numeric()
        return self.pick([
            f"{self.prefix(who)}AWAY :gone", f"{self.prefix(who)}AWAY",
            f"{self.prefix(who)}SETNAME :new name", f"{self.prefix(who)}INVITE {BOT} {channel}",
            f"{tags}{self.prefix(who)}TAGMSG {channel}", f":{SERVER} PING :{self.word()}",
            f"{self.prefix(who)}KILL {self.pick(NICKS)} :bye", f":{SERVER} WALLOPS :hi",
            f":{SERVER} CAP {BOT} NEW :account-notify", f":{SERVER} CAP {BOT} DEL :account-tag",
            f"{self.prefix(who)}PONG :x", f":{SERVER} NOTICE * :*** Looking up your hostname",
            f"@batch=zz{self.rng.randrange(5)} {self.prefix(who)}PRIVMSG {channel} :{self.text()}",
            f":{SERVER} BATCH +b1 netsplit a b", f":{SERVER} BATCH -b1"])

    def numeric(self) -> str:
        num = self.pick(NUMERICS)
        nick = self.pick(NICKS)
        user, host = self.pick(["u", "~u"]), self.pick(HOSTS)
        channel = self.pick(CHANNELS[:4])
        head = f":{SERVER} {num} {BOT}"
        if num == "005":
            return head + " " + " ".join(self.pick(ISUPPORT) for _ in range(3)) + \
                " :are supported by this server"
        if num == "354":
            n = self.rng.randrange(4, 11)
            fields = ["1", user, self.pick(HOSTS + ["192.0.2.9", "255.255.255.255"]), host, nick,
                      self.pick(["H", "G", "H*@", "Hr"]), self.pick(ACCOUNTS + ["bob"])]
            fields = (fields + ["x"] * n)[:n - 1]
            return head + " " + " ".join(f or "0" for f in fields) + " :real"
        if num == "353":
            members = " ".join(self.pick(["", "@", "+", "@+", "%", "~"]) + self.pick(NICKS[:-2])
                               + self.pick(["", f"!{user}@{host}"]) for _ in range(4))
            return f"{head} {self.pick(['=', '@', '*'])} {channel} :{members}"
        if num in ("332", "333", "324", "329", "366", "367", "368", "482", "442", "403"):
            rest = {"332": f":{self.topic()}", "333": f"{nick} 1700000000", "324": "+ntl 5",
                    "329": "1700000000", "366": ":End of /NAMES list.", "367": "*!*@x me 1",
                    "368": ":End", "482": ":You're not a channel operator",
                    "442": ":You're not on that channel", "403": ":No such channel"}[num]
            return f"{head} {channel} {rest}"
        if num == "352":
            return f"{head} {channel} {user} {host} {SERVER} {nick} H :0 real"
        if num in ("900", "901"):
            return f"{head} {BOT}!user@host.domain.tld {self.pick(ACCOUNTS)} :logged"
        args = " ".join(self.pick(NICKS + CHANNELS + ["x"]) for _ in range(self.rng.randrange(4)))
        return f"{head} {args} :{self.word()}".replace("  ", " ")

    def noise(self) -> bytes:
        r = self.rng.random()
        if r < 0.3:  # random bytes, some not UTF-8 at all
            return bytes(self.rng.randrange(1, 256) for _ in range(self.rng.randrange(0, 80))) \
                .replace(b"\n", b"")
        if r < 0.5:  # a structured line in Latin-1 or with a broken UTF-8 sequence
            line = self.structured()
            data = line.encode("latin-1", "replace") if self.rng.random() < 0.5 \
                else line.encode() + b"\xc3 \xff\xfe"
            return data
        if r < 0.75:  # around the 512-byte limit, a multi-byte character at the edge
            line = f"{self.prefix()}PRIVMSG {CHANNEL} :{self.ip()} "
            size = self.rng.choice([508, 509, 510, 511, 512, 513, 600, 2000, 9000])
            filler = self.pick(["x", "é", "🦀"])
            data = line.encode()
            while len(data) < size:
                data += filler.encode()
            return data[:size]
        tokens = [self.pick(["@", ":", "PRIVMSG", "JOIN", "MODE", CHANNEL, BOT, " ", "  ", "\r",
                             "\x00", "\t", self.word(), "+v", "a1", "354", "005", ":x y"])
                  for _ in range(self.rng.randrange(1, 10))]
        return " ".join(tokens).encode()

    def line(self) -> bytes:
        if self.rng.random() < 0.85:
            return self.structured().encode()
        return self.noise()


def _ours(record: logging.LogRecord) -> bool:
    """Whether a log record is a failure of our code: a traceback through it, or an
    ERROR from a ThreatNet plugin's own logger."""
    if record.exc_info and record.exc_info[2] is not None:
        return any(any(p in frame.filename for p in OURS)
                   for frame in traceback.extract_tb(record.exc_info[2]))
    return record.levelno >= logging.ERROR and "ThreatNet" in record.name


class _Capture(logging.Handler):
    """Collects our failures (with tracebacks) and counts Limnoria's own complaints."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.ours: list[str] = []
        self.core: dict[str, int] = {}  # Limnoria's own exceptions, by where they were raised

    def emit(self, record):
        if record.levelno < logging.WARNING and not record.exc_info:
            return
        if _ours(record):
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.ours.append(text)
        elif record.exc_info and record.exc_info[2] is not None:
            last = traceback.extract_tb(record.exc_info[2])[-1]
            kind = (f"{record.exc_info[0].__name__} at {os.path.basename(last.filename)}:"
                    f"{last.lineno} ({last.name})")
            self.core[kind] = self.core.get(kind, 0) + 1


class FuzzHarness(ChannelPluginTestCase):
    """The bot with both plugins; ``run(n, seed)`` feeds n lines and returns a report."""

    plugins = ("ThreatNetCache", "ThreatNetGuard", "Utilities")
    config = {"supybot.plugins.ThreatNetCache.enable": True,
              "supybot.plugins.ThreatNetGuard.enable": True,
              "supybot.plugins.ThreatNetGuard.flood.lines": 20,
              "supybot.plugins.ThreatNetGuard.ban.kicks": 3,
              "supybot.plugins.ThreatNetGuard.ban.duration": 30,
              "supybot.plugins.ThreatNetGuard.topic.flags": [],
              "supybot.plugins.ThreatNetGuard.realHosts": True,  # the agents' hosts are IPs
              "supybot.reply.whenNotCommand": False}

    def setUp(self):
        super().setUp()
        self.guard = self.irc.getCallback("ThreatNetGuard")
        self.cache = self.irc.getCallback("ThreatNetCache")
        with open(self.guard._whitelist_path(), "w") as f:
            f.write(WHITELIST)
        self.assertIsNone(self.guard._load_whitelist())
        # A clock of our own, so that a run is the same every time (flood windows,
        # setting caches and timers all read time.time).
        self._time = time.time
        self.now = self._time()
        time.time = lambda: self.now
        self.capture = _Capture()
        logging.getLogger("supybot").addHandler(self.capture)
        self._check = ircdb.checkCapability
        # Limnoria logs the locals of every frame of every exception it catches (33 ms
        # each), and the test registry logs at DEBUG: keep the fuzzer fast.
        self._extra = supyutils.python.collect_extra_debug_data
        supyutils.python.collect_extra_debug_data = lambda: ""
        self._levels = [(h, h.level) for h in logging.getLogger("supybot").handlers]
        for handler, _ in self._levels:
            handler.setLevel(logging.WARNING)
        self._level = logging.getLogger("supybot").level
        logging.getLogger("supybot").setLevel(logging.INFO)

        def check(hostmask, capability, *args, **kw):
            # Only OWNER holds capabilities; everyone else is an unknown user.
            if isinstance(hostmask, str) and hostmask != OWNER and "@" in hostmask:
                hostmask = hostmask.replace("@", "@__no_testcap__.", 1)
            return self._check(hostmask, capability, *args, **kw)
        ircdb.checkCapability = check
        self.irc.state.capabilities_ack.update({"extended-join", "account-tag",
                                                "account-notify", "chghost"})
        self.rejoin()

    def tearDown(self):
        time.time = self._time
        ircdb.checkCapability = self._check
        supyutils.python.collect_extra_debug_data = self._extra
        for handler, level in self._levels:
            handler.setLevel(level)
        logging.getLogger("supybot").setLevel(self._level)
        logging.getLogger("supybot").removeHandler(self.capture)
        schedule.run()
        super().tearDown()

    # -- feeding

    def feed(self, line):
        self.irc.feedMsg(ircmsgs.IrcMsg(line))

    def out(self):
        if hasattr(self, "now"):
            self.now += 0.0001  # schedule.run() runs only events due strictly before now
        schedule.run()
        sent = []
        while (msg := self.irc.takeMsg()) is not None:
            sent.append(msg)
        return sent

    def rejoin(self):
        """(Re)join #test with the agents present and get op, as after a kick."""
        self.feed(f":{SERVER} 005 {BOT} {ISUPPORT_BASE} :are supported by this server")
        if CHANNEL not in self.irc.state.channels:
            self.feed(f":{BOT}!user@host.domain.tld JOIN {CHANNEL}")
        names = " ".join(n for n, *_ in AGENTS[:2] + STRANGERS[:1])
        self.feed(f":{SERVER} 353 {BOT} = {CHANNEL} :@{BOT} {names}")
        self.feed(f":{SERVER} 366 {BOT} {CHANNEL} :End of /NAMES list.")
        self.feed(f":{SERVER} 315 {BOT} {CHANNEL} :End of /WHO list.")
        self.irc.nick = BOT  # a fuzzed NICK or numeric may have renamed it
        self.feed(f":{SERVER} MODE {CHANNEL} +o {BOT}")
        self.out()

    def feed_raw(self, data: bytes) -> tuple[str | None, ircmsgs.IrcMsg | None]:
        """Like the socket driver: decode, parse, feed. Returns what broke (or None)
        and the message fed (None if Limnoria's parser refused the line)."""
        line = decode_raw_line(data).strip("\r\n")
        if not line:
            return None, None
        try:
            msg = ircmsgs.IrcMsg(line)
        except Exception:
            self.refused += 1  # Limnoria's parser refuses it: the driver drops it
            return None, None
        try:
            self.irc.feedMsg(msg)
        except Exception as e:  # Irc.feedMsg is firewalled: in test mode it raises
            tb = traceback.extract_tb(e.__traceback__)
            if any(any(p in f.filename for p in OURS) for f in tb):
                return (f"{e!r} raised out of feedMsg\n"
                        f"{''.join(traceback.format_tb(e.__traceback__))}"), msg
            last = tb[-1]
            kind = f"{type(e).__name__} at {os.path.basename(last.filename)}:{last.lineno} ({last.name})"
            self.core_raised[kind] = self.core_raised.get(kind, 0) + 1
        try:
            self.out()
        except Exception as e:
            return f"draining the bot's output raised {e!r}", msg
        return None, msg

    # -- invariants

    def qualifies(self, nick):
        account = self.guard._account(self.irc, nick)  # as services said, not any tag
        return self.guard._whitelist.qualifies(CHANNEL, self.guard._ip(self.irc, nick), account,
                                               self.irc.state.supported.get("casemapping"))

    def limnoria_state(self):
        """irc.state inconsistencies: Limnoria's own (a MODE about a non-member adds it to
        ops/voices); counted, not failures of ours."""
        problems = []
        for name, chan in self.irc.state.channels.items():
            for group in ("ops", "halfops", "voices"):
                if getattr(chan, group) - chan.users:
                    problems.append(f"{group} not in users")
        return problems

    def affected(self, msg):
        """The members whose voice the Guard must have re-evaluated after ``msg``."""
        command, args = msg.command, msg.args
        if command in ("PRIVMSG", "NOTICE") and "label" in msg.server_tags:
            return []  # Limnoria takes it for an echo of its own line: no plugin sees it
        if command in ("ACCOUNT", "CHGHOST") or \
                (command == "JOIN" and args and CHANNEL in args[0].split(",")) or \
                (command in ("PRIVMSG", "NOTICE") and args[:1] == (CHANNEL,)):
            return [msg.nick]
        if command == "NICK" and args:
            return [args[0]]
        if command == "MODE" and args[:1] == (CHANNEL,):
            return [str(a) for m, a in ircutils.separateModes(args[1:])
                    if m in ("+v", "-v", "-o", "-h")]
        if command == "354" and len(args) == 9 and args[1] == "1":
            return [args[5]]
        return []

    def voice_violations(self, nicks):
        """A member among ``nicks`` voiced who does not qualify, while the bot is op."""
        chan = self.irc.state.channels.get(CHANNEL)
        if chan is None or not chan.isOp(self.irc.nick) or self.guard.syncing(self.irc, CHANNEL):
            return []  # while its join syncs, the Guard does not judge (no accounts known yet)
        return [f"{nick} voiced but does not qualify" for nick in nicks
                if nick in chan.users and chan.isVoice(nick) and not chan.isHalfopPlus(nick)
                and not ircutils.strEqual(nick, self.irc.nick) and not self.qualifies(nick)]

    def violations(self):
        """What is wrong with the plugins' state right now."""
        problems = []
        state = self.irc.state
        # The Guard's WHOX IPs: only for nicks that share a channel with the bot.
        for nick in self.guard._net(self.irc).ips:
            if nick and not any(nick in c.users for c in state.channels.values()):
                problems.append("Guard keeps a WHOX IP for a nick in no channel with the bot")
                break
        # The listener: listening exactly to the joined enabled channels, caches sound.
        for key, st in self.cache._channels.items():
            if self.cache._joined.get((st.network, st.channel)) is not st:
                problems.append("cache: a channel in _channels but not in _joined")
            if st.channel not in state.channels:
                problems.append("cache listens to a channel the bot is not in")
            entries = list(st.listener.cache)
            if len(entries) != len(st.listener.cache):
                problems.append("cache: len() differs from the entries iterated")
            if len({e.key for e in entries}) != len(entries):
                problems.append("cache: an IP twice")
            if len(st.senders) > 1000:
                problems.append("cache: more than 1000 memoised senders")
        if len(self.cache._joined) != len(self.cache._channels):
            problems.append("cache: _joined and _channels differ in size")
        return problems

    def resync_and_check(self):
        """Rejoin and re-op, then every member's voice must match the whitelist exactly."""
        self.rejoin()
        problems = self.violations() + [
            "after a resync: a member voiced who does not qualify" for _ in
            self.voice_violations(list(self.irc.state.channels[CHANNEL].users))[:1]]
        chan = self.irc.state.channels[CHANNEL]
        for nick in chan.users:
            if ircutils.strEqual(nick, self.irc.nick) or chan.isHalfopPlus(nick):
                continue
            if self.qualifies(nick) and not chan.isVoice(nick):
                problems.append("after a resync: a qualifying member is not voiced")
        file_whitelist = WhitelistStore(self.guard._whitelist_path()).load()
        if file_whitelist != self.guard._whitelist:
            problems.append("the Guard's whitelist differs from the file's")
        return problems

    def next_line(self):
        """(seconds to fast-forward, an owner command or None, the raw line)."""
        r = self.rng.random()
        jump = self.rng.choice([1, 5, 30, 3700]) if r < 0.01 else 0
        command = self.rng.choice(OWNER_CMDS) if r < 0.004 else None
        return jump, command, self.fuzz.line()

    def run_fuzz(self, lines: int, seed: int, check_every: int = 1, progress=None,
                 final_check: bool = True) -> dict:
        """Feed ``lines`` fuzzed lines; failures are grouped by what went wrong, each
        with the first line that caused it."""
        self.fuzz = Fuzz(seed)
        self.rng = random.Random(seed + 1)
        self.refused = 0
        self.core_raised = {}
        self.core_state = {}
        failures: dict[str, str] = {}  # what went wrong -> the first line it happened after
        counts: dict[str, int] = {}
        started = time.perf_counter()

        recent = collections.deque(maxlen=12)

        def fail(what, data, detail=""):
            counts[what] = counts.get(what, 0) + 1
            if what not in failures:
                before = "".join(f"\n    {line!r}" for line in list(recent)[:-1])
                failures[what] = f"{what}\n  first after line {n} {data!r}{detail}" \
                                 f"\n  lines before it:{before}"

        for n in range(1, lines + 1):
            jump, command, data = self.next_line()
            self.now += STEP + jump
            if command:
                recent.append(f"(owner) {command}")
                self.irc.feedMsg(ircmsgs.privmsg(CHANNEL, "@" + command, prefix=OWNER))
                self.out()
            recent.append(data)
            problem, msg = self.feed_raw(data)
            if problem:
                fail(problem.splitlines()[0][-200:], data, "\n" + problem)
            logged, self.capture.ours = self.capture.ours, []
            for text in logged:
                fail(_where(text), data, "\n" + text)
            if self.irc.nick != BOT:
                # A numeric addressed to another nick (001-005, 353, 366, ...) renames
                # the bot in Limnoria; servers never send one. Put the name back.
                self.core_state["bot renamed by a numeric"] = \
                    self.core_state.get("bot renamed by a numeric", 0) + 1
                self.irc.nick = BOT
            if msg is not None and msg.command == "005":
                # Limnoria's state follows PREFIX, CHANTYPES and CASEMAPPING: a server
                # announces them once, at connection. Keep the fuzzed MODES, EXTBAN, WHOX.
                self.feed(f":{SERVER} 005 {BOT} {ISUPPORT_STATE} :are supported")
            if msg is not None:
                try:
                    nicks = self.affected(msg)
                except Exception:  # separateModes refuses what Limnoria refused too
                    nicks = []
                for v in self.voice_violations(nicks):
                    source = " from the bot itself" if ircutils.strEqual(msg.nick, BOT) else ""
                    fail(f"a member voiced who does not qualify, after a {msg.command} line"
                         f"{source}", data, f" ({v})")
            if check_every and n % check_every == 0:
                for v in self.violations():
                    fail(v, data)
                for v in self.limnoria_state():
                    self.core_state[v] = self.core_state.get(v, 0) + 1
            if CHANNEL not in self.irc.state.channels or self.irc.nick != BOT \
                    or not self.irc.state.channels[CHANNEL].isOp(BOT) or n % 500 == 0:
                for v in self.resync_and_check():
                    fail(v, data, " and a resync")
            if progress and n % 100000 == 0:
                progress(n, time.perf_counter() - started, len(failures))
        for v in self.resync_and_check() if final_check else ():
            fail(v, "(end)")
        elapsed = time.perf_counter() - started
        return {"lines": lines, "seconds": elapsed, "lines_per_s": lines / elapsed,
                "failures": [f"{text}\n  ({counts[what]} times)" for what, text in failures.items()],
                "refused_by_limnoria": self.refused, "limnoria_state": self.core_state, "limnoria_raised": self.core_raised,
                "limnoria_logged": dict(self.capture.core)}


def _where(text: str) -> str:
    """A logged traceback summarised as its exception and innermost frame of ours."""
    lines = text.splitlines()
    frames = [l.strip() for l in lines if l.strip().startswith("File ") and any(
        p.strip("/") in l for p in OURS)]
    return f"{lines[-1][:120] if lines else text} at {frames[-1] if frames else '?'}"

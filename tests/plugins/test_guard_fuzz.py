"""No hook raises on odd input: a few hundred malformed or unexpected raw lines."""
import random

import supybot.ircmsgs as ircmsgs
from guard_helpers import GuardTestCase

PREFIXES = ["", ":irc.test ", ":a1!u@192.0.2.5 ", ":eve!u@cloak.example ", ":x ", ":!@ ",
            ":test!user@host.domain.tld ", ":weird!u@ ", ":n6!u@2001:db8::1 ", ":123!u@1.2.3.4 "]
TAGS = ["", "@account=bob ", "@account= ", "@account=\\s ", "@account=* ", "@batch=zz "]
COMMANDS = ["JOIN", "PART", "KICK", "QUIT", "NICK", "MODE", "TOPIC", "PRIVMSG", "NOTICE",
            "ACCOUNT", "CHGHOST", "354", "366", "353", "332", "005", "315", "TAGMSG", "PING"] \
    + ["PRIVMSG", "NOTICE", "MODE", "JOIN", "354"] * 3  # the deeper hooks, more often
ARGS = ["#test", "#Test", "#other", "", "*", "0", "1", "2", "test", "a1", "eve", "n6", "+v", "-v",
        "+o", "-o", "+b", "+vvv", "+l", "-nt", "+ov-v", "-m", "255.255.255.255", "192.0.2.7",
        "10.1", "::1", "8.8.8.8", "bob", "\x01ACTION x\x01", "é", "#test,#other", "a1,eve,test",
        "123", "@test", "+#test", "@tn topic", "@tn", "@", "test: tn topic", "8.8.8.8 x y",
        "threatnet://x/y block=1", "threatnet://x/y block=0", "MODES=1", "MODES=", "MODES",
        "EXTBAN=", "EXTBAN=$", "PREFIX=(ov)@+", "%tuhnairf,1", "\x02bold", "a" * 300]


def random_line(rng):
    args = [rng.choice(ARGS) for _ in range(rng.randrange(0, 10))]
    line = rng.choice(TAGS) + rng.choice(PREFIXES) + rng.choice(COMMANDS)
    if args:
        middle = [a for a in args[:-1] if a and " " not in a and not a.startswith(":")]
        line += "".join(" " + a for a in middle) + " :" + args[-1]
    return line


class FuzzTestCase(GuardTestCase):
    def test_odd_lines_never_raise(self):
        rng = random.Random(2004)
        self.irc.state.capabilities_ack.add("extended-join")
        for nick, host in (("a1", "192.0.2.5"), ("eve", "cloak.example"), ("n6", "2001:db8::1")):
            self.join(nick, host)
        fed = 0
        for _ in range(800):
            line = random_line(rng)
            try:
                msg = ircmsgs.IrcMsg(line)
            except Exception:
                continue
            self.irc._tagMsg(msg)
            try:
                self.irc.state.addMsg(self.irc, msg)  # Limnoria's own state may choke: not ours
            except Exception:
                pass
            method = self.guard.dispatchCommand(msg.command, msg.args)
            if method is not None:
                try:
                    method(self.irc, msg)
                except Exception as e:
                    raise AssertionError(f"{line!r} raised {e!r}") from e
                fed += 1
            self.out()
        self.assertGreater(fed, 400)

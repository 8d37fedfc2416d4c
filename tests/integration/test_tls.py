"""Bots on InspIRCd's TLS port (ssl_gnutls, a self-signed certificate made per run): the bot
pins the server certificate's fingerprint (supybot.networks.<net>.ssl.serverFingerprints,
no CA and no "verify off") and refuses a server whose certificate does not match."""
from __future__ import annotations

from harness import CACHE, Lab
from lab.bots import Bot


def tls_bot(lab: Lab, nick: str, channel: str, fingerprint: str, **kw) -> Bot:
    bot = Bot(lab.root, nick, lab.server.tls_address, channel, ssl=True,
              server_fingerprints=[fingerprint], **kw)
    lab.bots.append(bot)
    return bot


def test_bot_connects_over_tls_with_the_pinned_fingerprint(inspircd, lab_factory):
    lab = lab_factory(inspircd)
    channel = lab.channel()
    bot = tls_bot(lab, lab.unique("tlsbot"), channel, inspircd.tls_fingerprint,
                  plugins=["ThreatNetCache"], settings=CACHE)
    bot.start()
    (asker,) = lab.connect(_tls_client(lab, lab.unique("asker")))
    asker.join(channel)
    reply = asker.ask(channel, "!tn check 11.9.9.9", bot.nick)
    assert reply.text == f"{asker.nick}: Not a current threat in {channel}: 11.9.9.9"
    # The server says the bot's connection is TLS (sslinfo: RPL_WHOISSECURE).
    asker.send(f"WHOIS {bot.nick}")
    whois = asker.wait_for(lambda l: l.command in ("671", "318"))
    assert whois.command == "671", whois.raw
    log = bot.read_log()
    assert "Not checking SSL certificates" not in log
    assert not [e for e in bot.errors() if "Traceback" in e]


def test_bot_refuses_a_server_whose_certificate_is_not_pinned(inspircd, lab_factory):
    lab = lab_factory(inspircd)
    channel = lab.channel()
    wrong = "ab" * 32  # a valid SHA-256 fingerprint, of some other certificate
    bot = tls_bot(lab, lab.unique("pinned"), channel, wrong, plugins=["ThreatNetCache"],
                  settings=CACHE)
    bot.start(wait_joined=False)
    bot.wait_log(r"Certificate validation failed when connecting to threatnet: "
                 r"No matching fingerprint", timeout=15)
    assert bot.alive()  # it keeps trying (and refusing), it does not fall back to plain text
    assert bot.wait_log(r"Join to", timeout=1.0, required=False) is None
    (probe,) = lab.connect(_tls_client(lab, lab.unique("probe")))
    probe.send(f"WHOIS {bot.nick}")
    assert probe.wait_for(lambda l: l.command in ("401", "311")).command == "401"


def _tls_client(lab: Lab, nick: str, **kw):
    c = lab.server.tls_client(nick, **kw)
    lab.clients.append(c)
    return c

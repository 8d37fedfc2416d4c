"""Certificate-backed agents (CertFP) on InspIRCd + Atheme: an agent's bot presents a TLS
client certificate registered to its services account (NickServ CERT ADD) and logs in by
SASL EXTERNAL, so the Guard's `account:NAME` whitelist entry means "holds a certificate
registered to NAME"."""
from __future__ import annotations

import subprocess
import sys

from harness import CACHE, GUARD, Lab, write_whitelist
from lab import ROOT
from lab.bots import Bot, start_bots
from threatnet_tools import tlscert


def is_mode(line, change, nick):
    return line.command == "MODE" and line.params[1:] == [change, nick]


def tls_bot(lab: Lab, nick: str, channel: str, **kw) -> Bot:
    bot = Bot(lab.root, nick, lab.server.tls_address, channel, ssl=True,
              server_fingerprints=[lab.server.tls_fingerprint], **kw)
    lab.bots.append(bot)
    return bot


def test_agentcert_script_prints_fingerprint_and_settings(tmp_path):
    path = tmp_path / "agent7.pem"
    out = subprocess.run([sys.executable, "-m", "threatnet_tools.agentcert",
                          str(path), "--account", "agent7", "--network", "mynet"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    fingerprint = tlscert.file_fingerprint(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"/msg NickServ CERT ADD {fingerprint}\n" in out
    for line in ("supybot.networks.mynet.ssl: True", f"supybot.networks.mynet.certfile: {path}",
                 "supybot.networks.mynet.sasl.mechanisms: EXTERNAL",
                 "/msg threatnet tn whitelist add #threatnet account:agent7"):
        assert line in out, out
    again = subprocess.run([sys.executable, "-m", "threatnet_tools.agentcert",
                            str(path), "--account", "agent7"], cwd=ROOT, capture_output=True,
                           text=True)
    assert again.returncode == 2 and "exists" in again.stderr  # never replaced silently
    assert tlscert.file_fingerprint(path) == fingerprint


def test_agent_with_registered_certificate_is_voiced_another_is_not(inspircd, lab_factory,
                                                                   tmp_path):
    lab = lab_factory(inspircd)
    channel = lab.channel()
    guard_nick, account = lab.unique("cfguard"), lab.unique("cfagent")
    passwords = {guard_nick: "guard-pass-9", account: "agent-pass-9"}
    inspircd.register_accounts(passwords, {channel: guard_nick})
    registered = tlscert.client_certificate(tmp_path / "registered.pem", account)
    tlscert.client_certificate(tmp_path / "other.pem", account)  # same name, not registered
    inspircd.add_certificates({account: (passwords[account], registered)})

    guard = tls_bot(lab, guard_nick, channel, plugins=["ThreatNetCache", "ThreatNetGuard"],
                    sasl=(guard_nick, passwords[guard_nick]), settings={**CACHE, **GUARD})
    write_whitelist(guard, {channel: [f"account:{account}"]})
    watcher = lab.server.tls_client(lab.unique("watch"), caps=("account-tag", "extended-join"))
    lab.clients.append(watcher)
    lab.connect(watcher)
    watcher.join(channel)
    guard.start()
    watcher.wait_for(lambda l: is_mode(l, "+o", guard.nick))  # ChanServ: founder's auto-op

    # Nicks unlike the account: the account comes from the certificate, not the nick.
    holder = tls_bot(lab, lab.unique("holder"), channel, plugins=["ThreatNetCache"],
                     certfile=tmp_path / "registered.pem", settings=CACHE)
    impostor = tls_bot(lab, lab.unique("impostor"), channel, plugins=["ThreatNetCache"],
                       certfile=tmp_path / "other.pem",
                       settings={**CACHE, "supybot.networks.threatnet.sasl.required": False})
    start_bots([holder, impostor])
    assert "SASL authentication successful" in holder.read_log()
    assert "SASL authentication failed (mechanism: external)" in impostor.read_log()

    join = watcher.wait_for(lambda l: l.command == "JOIN" and l.nick == holder.nick)
    assert join.tags.get("account") == account
    watcher.wait_for(lambda l: is_mode(l, "+v", holder.nick))
    watcher.mark()
    assert watcher.wait_for(lambda l: l.command == "MODE" and impostor.nick in l.params,
                            timeout=1.5, required=False) is None
    # The voiced holder's threat lines count for the guard's listener; the impostor's do not.
    watcher.send(f"WHOIS {impostor.nick}")
    whois = watcher.wait_for(lambda l: l.command in ("330", "318"))
    assert whois.command == "318", whois.raw  # 330 would be "is logged in as"

"""Adversaries against the channel bot on ngIRCd (no accounts: agents known by IP).

One guard bot whitelisting AGENT_IP and FLOOD_IP, configured so that a bogon is only
counted (kick.bogons False) while any repeat of a current threat is kicked (repeatGrace
0), 5 lines in 10 s is a flood and 2 kicks a 3 s ban; one more agent (ThreatNetCache
only) listens from AGENT_IP and counts what it hears.
"""
from __future__ import annotations

import re
import time

import pytest

from harness import (AGENT_IP, CACHE, GUARD, OWNER, STRANGER_IP, Lab, never_voiced,
                     voice_change, write_whitelist)

G = "supybot.plugins.ThreatNetGuard."
CHANNEL = "#tnadvip"
FLOOD_IP = "127.0.0.40"


@pytest.fixture(scope="module")
def adv(ngircd, stack_dir):
    lab = Lab(ngircd, stack_dir / "bots" / "adversary-ip", "ai")
    guard = lab.bot("guardip", CHANNEL, plugins=["ThreatNetCache", "ThreatNetGuard"],
                    owner=OWNER, settings={**CACHE, **GUARD, G + "kick.bogons": False,
                                           G + "kick.repeatGrace": 0, G + "flood.lines": 5,
                                           G + "flood.seconds": 10, G + "ban.kicks": 2,
                                           G + "ban.duration": 3})
    write_whitelist(guard, {CHANNEL: [AGENT_IP, FLOOD_IP]})
    guard.start()
    listener = lab.bot("listenip", CHANNEL, plugins=["ThreatNetCache"], vhost=AGENT_IP,
                       settings=CACHE)
    (watcher,) = lab.connect(lab.client("watchip"))
    watcher.join(CHANNEL)
    listener.start()
    watcher.wait_for(lambda l: voice_change(l, "+", listener.nick))
    yield lab, guard, listener, watcher
    errors = [e for b in (guard, listener) for e in b.errors() if "Traceback" in e
              or "Uncaught" in e]
    lab.close()
    assert not errors, errors


def test_impostor_with_an_offline_agents_nick_gets_no_voice(adv):
    lab, guard, _, watcher = adv
    (impostor,) = lab.connect(lab.client("agentip1", source=STRANGER_IP))
    watcher.mark()
    impostor.join(CHANNEL)
    assert never_voiced(watcher, "agentip1")
    impostor.privmsg(CHANNEL, "17.0.0.1 pretending")
    kick = watcher.wait_for(lambda l: l.command == "KICK" and l.params[1] == "agentip1")
    assert kick.text.startswith("only whitelisted")
    impostor.close()


def test_impostor_taking_an_online_agents_nick_by_nick_change_gets_no_voice(adv):
    lab, guard, _, watcher = adv
    real, impostor = lab.connect(lab.client("agentip2", source=AGENT_IP),
                                 lab.client("impip", source=STRANGER_IP))
    watcher.mark()
    real.join(CHANNEL)
    watcher.wait_for(lambda l: voice_change(l, "+", "agentip2"))
    impostor.join(CHANNEL)
    real.send("NICK agentip2away")
    real.wait_for(lambda l: l.command == "NICK")
    impostor.send("NICK agentip2")
    watcher.wait_for(lambda l: l.command == "NICK" and l.text == "agentip2")
    assert never_voiced(watcher, "agentip2")
    watcher.send(f"NAMES {CHANNEL}")
    names = watcher.wait_for(command="353").text.split()
    assert "+agentip2away" in names and "agentip2" in names, names
    real.close()
    impostor.close()


def status_counts(text):
    return {k: int(v) for k, v in re.findall(r"(kept|duplicate|filtered|untrusted) (\d+)", text)}


def test_bogons_are_counted_not_kicked_and_repeats_are_kicked_as_configured(adv):
    lab, guard, listener, watcher = adv
    (a,) = lab.connect(lab.client("agentip3", source=AGENT_IP))
    watcher.mark()
    a.join(CHANNEL)
    watcher.wait_for(lambda l: voice_change(l, "+", "agentip3"))
    watcher.privmsg(CHANNEL, "!tn status")
    before = {n: status_counts(t) for n, t in
              _answers(watcher, [guard.nick, listener.nick]).items()}
    a.privmsg(CHANNEL, "192.168.7.7 a bogon")
    a.privmsg(CHANNEL, "18.0.0.1 first report")
    a.privmsg(CHANNEL, "18.0.0.1 the same again")
    kick = watcher.wait_for(lambda l: l.command == "KICK" and l.params[1] == "agentip3")
    assert kick.text.startswith("18.0.0.1 is still current"), kick.text  # not the bogon
    watcher.privmsg(CHANNEL, "!tn status")
    after = {n: status_counts(t) for n, t in
             _answers(watcher, [guard.nick, listener.nick]).items()}
    for nick in (guard.nick, listener.nick):
        assert after[nick]["filtered"] == before[nick]["filtered"] + 1, (nick, before, after)
        assert after[nick]["duplicate"] == before[nick]["duplicate"] + 1, (nick, before, after)
        assert after[nick]["kept"] == before[nick]["kept"] + 1, (nick, before, after)
    a.close()


def _answers(client, nicks, timeout=10.0):
    got = {}
    while len(got) < len(nicks):
        line = client.wait_for(lambda l: l.command == "PRIVMSG" and l.nick in nicks
                               and l.nick not in got, timeout=timeout)
        got[line.nick] = line.text
    return got


def test_flooding_agent_is_kicked_then_banned_by_host_for_a_while(adv):
    lab, guard, _, watcher = adv
    (a,) = lab.connect(lab.client("floodip", source=FLOOD_IP))
    watcher.mark()
    for round_ in range(2):
        a.join(CHANNEL)
        watcher.wait_for(lambda l: voice_change(l, "+", "floodip"))
        a.send_many(f"PRIVMSG {CHANNEL} :19.0.{round_}.{i} flood" for i in range(1, 8))
        kick = watcher.wait_for(lambda l: l.command == "KICK" and l.params[1] == "floodip")
        assert kick.text.startswith("flood: more than 5 lines in 10 s"), kick.text
    assert kick.text.endswith("(banned for 3 s)")
    ban = next(l for l in watcher.lines if l.command == "MODE" and l.params[1] == "+b")
    assert ban.params[2] == f"*!*@{FLOOD_IP}"
    a.mark()
    a.send(f"JOIN {CHANNEL}")
    assert a.wait_for(lambda l: l.command in ("474", "JOIN")).command == "474"
    watcher.wait_for(lambda l: l.command == "MODE" and l.params[1:] == ["-b", f"*!*@{FLOOD_IP}"],
                     timeout=15)
    a.join(CHANNEL)
    watcher.wait_for(lambda l: voice_change(l, "+", "floodip"))
    a.close()


def test_listener_ignores_a_flood_of_untrusted_lines_without_falling_behind(adv):
    """A stranger (never voiced) floods the channel with threat lines until kicked; the
    listener drops them all as untrusted and still answers at once."""
    lab, guard, listener, watcher = adv
    (s,) = lab.connect(lab.client("spamip", source="127.0.0.41"))
    s.join(CHANNEL)
    watcher.mark()
    started = time.monotonic()
    s.send_many(f"PRIVMSG {CHANNEL} :20.0.{i // 256}.{i % 256} spam" for i in range(300))
    watcher.wait_for(lambda l: l.command == "KICK" and l.params[1] == "spamip")
    reply = watcher.ask(CHANNEL, "!tn check 20.0.0.1", listener.nick).text
    assert "Not a current threat" in reply
    print(f"\nuntrusted flood: kicked and listener answering {time.monotonic() - started:.2f} s "
          "after the first line")
    s.close()

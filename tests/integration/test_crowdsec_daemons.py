"""CrowdSec both ways, with the real programs (Debian's crowdsec 1.4.6 and
crowdsec-firewall-bouncer 0.0.25, in the foreground with configurations of their own;
lab/crowdsec.py):

- the firewall bouncer, in a network namespace of its own, reads a real ThreatNetCache
  bot's bouncer API: a threat said on IRC is in its nftables set within its
  update_frequency plus a second, with the time left as its timeout, and leaves the set
  when it is withdrawn on IRC, forgotten by the operator, or expires;
- a real crowdsec detects an sshd brute force (and takes a `cscli decisions add`), and
  the bot, reading its LAPI as a registered bouncer, says the threat in the channel; a
  list imported with `cscli decisions import` is never said.
"""
from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from urllib.parse import quote

import pytest

from harness import CACHE, OWNER, identify
from lab.crowdsec import CrowdSec, FirewallBouncer, require
from lab.process import StackError, free_port, wait_port

NS = "crowdsecfw"  # the firewall bouncer's network namespace
UPDATE = 1.0  # the bouncer's update_frequency, seconds


@pytest.fixture
def crowdsec_installed():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, nftables)")
    try:
        require()
    except StackError as e:
        pytest.skip(str(e))


def poll(check, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def synced_snapshot(bot, channel: str) -> None:
    """A snapshot saved just now by an agent listening for two hours: restored within
    restartGrace, the bot is synced at once (no quiet period) and may report."""
    now = time.time()
    path = bot.dir / "data" / "ThreatNetCache" / "threatnet" / (
        quote(channel.lower(), safe="") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "saved_at": now, "listening_since": now - 7200,
                                "entries": []}))


def test_firewall_bouncer_enforces_threatnet(ngircd, lab_factory, tmp_path,
                                             crowdsec_installed):
    FirewallBouncer.namespace(NS)
    bouncer = None
    try:
        lab = lab_factory(ngircd)
        channel = lab.channel()
        port = free_port(FirewallBouncer.HOST_IP)
        bot = lab.bot(lab.unique("cs"), channel, owner=OWNER, settings={
            **CACHE,
            "supybot.plugins.ThreatNetCache.trust": "all",
            "supybot.plugins.ThreatNetCache.blockPeriod": 3600,
            "supybot.plugins.ThreatNetCache.http.enable": True,
            "supybot.plugins.ThreatNetCache.http.host": FirewallBouncer.HOST_IP,
            "supybot.plugins.ThreatNetCache.http.port": port,
            "supybot.plugins.ThreatNetCache.http.clients": "10.233.0.0/30",
        })
        (alice,) = lab.connect(lab.client(lab.unique("alice")))
        alice.join(channel)
        bot.start()
        wait_port(FirewallBouncer.HOST_IP, port, 10)
        identify(alice, bot)
        reply = alice.ask(bot.nick, f"tn bouncer add {channel} fw", bot.nick)
        assert reply.command == "NOTICE", reply.raw
        key = reply.text.rsplit("api_key: ", 1)[1]
        api_url = f"http://{FirewallBouncer.HOST_IP}:{port}/threatnet/crowdsec/"
        assert f"api_url: {api_url}" in reply.text

        # A bad key: 403, and this bouncer version gives up at once (exit 0).
        wrong = FirewallBouncer(tmp_path / "wrong", NS, api_url, "0" * 64).start()
        assert poll(lambda: not wrong.proc.alive(), 15), wrong.proc.log_tail()
        assert "stream api init failed" in wrong.proc.log_tail(50), wrong.proc.log_tail()

        bouncer = FirewallBouncer(tmp_path / "fw", NS, api_url, key,
                                  update_frequency=f"{UPDATE:g}s").start()
        assert poll(lambda: "nftables initiated" in bouncer.proc.log_tail(50), 15), \
            bouncer.proc.log_tail()
        time.sleep(0.5)  # its first pull (startup=true) is done
        bouncer.proc.check_alive()

        took = {}
        for ip in ("45.6.0.1", "2a01:4f8:6::1"):
            sent = time.monotonic()
            alice.privmsg(channel, f"{ip} crowdsec bouncer test")
            assert poll(lambda ip=ip: ip in bouncer.elements(), UPDATE + 1.0), \
                (ip, bouncer.elements(), bouncer.proc.log_tail())
            took[ip] = time.monotonic() - sent
        print("\nIRC line to element in the firewall bouncer's set (update_frequency "
              f"{UPDATE:g} s): " + ", ".join(f"{ip} {t * 1000:.0f} ms" for ip, t in took.items()))
        timeout = bouncer.elements()["45.6.0.1"]  # the time left in the block period
        assert 3500 <= int(timeout) <= 3600, timeout

        # Withdrawn on IRC by its reporter, and forgotten by the operator: both go.
        alice.privmsg(channel, "withdraw 45.6.0.1 a mistake")
        assert poll(lambda: "45.6.0.1" not in bouncer.elements(), UPDATE + 1.0), \
            bouncer.elements()
        reply = alice.ask(bot.nick, f"tn forget {channel} 2a01:4f8:6::1", bot.nick)
        assert reply.text.startswith("Forgotten"), reply.raw
        assert poll(lambda: "2a01:4f8:6::1" not in bouncer.elements(), UPDATE + 1.0), \
            bouncer.elements()

        # A threat that expires: a block period of 3 s, from a topic-less channel's
        # setting (read within pollInterval).
        reply = alice.ask(bot.nick, f"config channel {channel} plugins.ThreatNetCache."
                                    "blockPeriod 3", bot.nick)
        assert "operation succeeded" in reply.text, reply.raw
        time.sleep(1.5)
        # nft drops the element at its own timeout (the duration), whatever the bot
        # says: a second key shows the bot itself puts the expired threat in `deleted`.
        reply = alice.ask(bot.nick, f"tn bouncer add {channel} probe", bot.nick)
        probe = reply.text.rsplit("api_key: ", 1)[1]

        def pull(query=""):
            request = urllib.request.Request(f"{api_url}v1/decisions/stream{query}",
                                             headers={"X-Api-Key": probe})
            with urllib.request.urlopen(request, timeout=5) as answer:
                return json.load(answer)
        pull("?startup=true")
        alice.privmsg(channel, "45.6.0.3 short-lived")
        assert poll(lambda: "45.6.0.3" in bouncer.elements(), UPDATE + 1.0), \
            bouncer.elements()
        assert [d["value"] for d in pull()["new"] or ()] == ["45.6.0.3"]
        assert poll(lambda: "45.6.0.3" not in bouncer.elements(), 3 + UPDATE + 1.0), \
            bouncer.elements()
        assert poll(lambda: "45.6.0.3" in [d["value"] for d in pull()["deleted"] or ()], 5)

        reply = alice.ask(bot.nick, "tn bouncer list", bot.nick)
        assert f"fw ({channel} on threatnet; " in reply.text, reply.raw
        assert f"from {FirewallBouncer.NS_IP})" in reply.text, reply.raw
        bouncer.proc.check_alive()
        assert "level=error" not in bouncer.proc.log_tail(200), bouncer.proc.log_tail(200)
        assert not [e for e in bot.errors() if "Traceback" in e]
        assert key not in bot.read_log()  # sent in private, never logged
    finally:
        if bouncer is not None:
            bouncer.stop()
        FirewallBouncer.remove_namespace(NS)


def test_crowdsec_detections_are_shared(ngircd, lab_factory, tmp_path, crowdsec_installed):
    cs = CrowdSec(tmp_path / "crowdsec").start()
    try:
        creds = tmp_path / "lapi.yaml"
        creds.write_text(f"api_url: {cs.url}\napi_key: {cs.add_bouncer('threatnet')}\n"
                         "update_frequency: 500ms\n")
        os.chmod(creds, 0o600)
        lab = lab_factory(ngircd)
        channel = lab.channel()
        nick = lab.unique("csf")
        port = free_port()
        bot = lab.bot(nick, channel, owner=OWNER, settings={
            **CACHE,
            "supybot.plugins.ThreatNetCache.http.enable": True,
            "supybot.plugins.ThreatNetCache.http.port": port,
            "supybot.plugins.ThreatNetCache.feeds": f"crowdsec:{creds}",
        })
        synced_snapshot(bot, channel)
        (watcher,) = lab.connect(lab.client(lab.unique("watch")))
        watcher.join(channel)
        bot.start()
        wait_port("127.0.0.1", port, 10)
        time.sleep(1.0)  # the feed's first pull (startup): what is active then is old news

        def said(timeout):
            return watcher.wait_for(lambda l: l.command == "PRIVMSG" and l.nick == nick,
                                    timeout=timeout).text

        watcher.mark()
        started = time.monotonic()
        cs.failed_logins("45.7.0.7", 8, first_pid=int(time.time()) % 10000 * 10 + 1000)
        # ssh-bf or ssh-bf_user-enum, whichever overflows first (the other is a duplicate)
        line = said(20)
        assert re.fullmatch(r"45\.7\.0\.7 crowdsec: crowdsecurity/ssh-bf(_user-enum)?", line), \
            line
        print(f"\nsshd burst to the threat line on IRC: {time.monotonic() - started:.2f} s")

        # Imported as a list: not detected here, never shared. Then a manual ban is.
        cs.import_list("45.7.0.9")
        time.sleep(1.5)  # three pulls
        cs.cscli("decisions", "add", "-i", "45.7.0.8", "-d", "1h")
        assert said(10) == "45.7.0.8 crowdsec: manual ban (cscli)"
        origins = {d["origin"] for d in cs.active(cs.add_bouncer("check"))}
        assert origins == {"crowdsec", "cscli", "cscli-import"}, origins
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/threatnet/check?ip=45.7.0.9",
                                    timeout=5) as answer:
            assert json.loads(answer.read())["current"] is False

        # The CrowdSec operator deletes the ban: the bot withdraws its report.
        cs.cscli("decisions", "delete", "-i", "45.7.0.8")
        assert said(10) == "withdraw 45.7.0.8 crowdsec: decision deleted"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/threatnet/check?ip=45.7.0.8",
                                    timeout=5) as answer:
            assert json.loads(answer.read())["current"] is False

        identify(watcher, bot)
        reply = watcher.ask(bot.nick, f"tn feeds {channel}", bot.nick).text
        assert f"crowdsec:{creds}" in reply and re.search(r"threats [23],", reply), reply
        assert "skipped 1" in reply, reply  # the imported one
        assert not [e for e in bot.errors() if "Traceback" in e]
    finally:
        cs.stop()

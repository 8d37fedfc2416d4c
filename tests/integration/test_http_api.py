"""The HTTP API and the responders of a real ThreatNetCache bot on ngIRCd: a follower
long-polls /threatnet/events while the server keeps answering other requests, a threat
said on the channel reaches the follower, a DNSBL zone file and the metrics; a
responder whose program is missing fails with a clear error in the bot's log, in
/threatnet/metrics and in `tn responders`, while the bot carries on."""
from __future__ import annotations

import json
import platform
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from harness import CACHE, OWNER, identify
from lab.process import free_port, wait_port

MISSING = "/nonexistent/threatnet-hook"


def get(port: int, path: str, timeout: float = 10):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/threatnet{path}",
                                timeout=timeout) as answer:
        body = answer.read()
    return json.loads(body) if path not in ("/metrics", "/status") else body.decode()


def metric(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"{name}{labels} not in metrics")


def test_follow_metrics_and_responders(ngircd, lab_factory, tmp_path):
    lab = lab_factory(ngircd)
    channel = lab.channel()
    nick = lab.unique("api")
    port = free_port()
    zone = tmp_path / "threatnet.v4"
    bot = lab.bot(nick, channel, owner=OWNER, settings={
        **CACHE,
        "supybot.plugins.ThreatNetCache.trust": "all",
        "supybot.plugins.ThreatNetCache.http.port": port,
        "supybot.plugins.ThreatNetCache.http.enable": True,
        "supybot.plugins.ThreatNetCache.responders.dnsbl.ip4file": zone,
        "supybot.plugins.ThreatNetCache.responders.dnsbl.zone": "bl.example.net",
        "supybot.plugins.ThreatNetCache.responders.command.argv": f"{MISSING} --",
    })
    (alice,) = lab.connect(lab.client(lab.unique("alice")))
    alice.join(channel)
    bot.start()
    wait_port("127.0.0.1", port, 10)

    start = get(port, "/threats")
    assert (start["count"], start["threats"]) == (0, [])
    result = {}

    def follow():
        result["answer"] = get(port, f"/events?stream={start['stream']}&since={start['next']}"
                                     f"&timeout=30", timeout=40)
        result["at"] = time.monotonic()
    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    time.sleep(0.2)  # let it park

    began = time.monotonic()
    text = get(port, "/metrics")  # the parked long-poll holds up nothing
    assert time.monotonic() - began < 1
    assert metric(text, "threatnet_http_waiting") == 1
    assert follower.is_alive()

    sent = time.monotonic()
    alice.privmsg(channel, "47.0.0.1 port scan")
    follower.join(10)
    assert not follower.is_alive()
    events = result["answer"]["events"]
    assert [(e["event"], e["ip"], e["comment"], e["reporter"]) for e in events] == \
        [("added", "47.0.0.1", "port scan", alice.nick)]
    print(f"IRC line to long-poll answer: {1000 * (result['at'] - sent):.0f} ms")

    deadline = time.monotonic() + 5
    while "47.0.0.1 :127.0.0.2:port scan" not in (zone.read_text() if zone.exists() else ""):
        assert time.monotonic() < deadline, zone.read_text() if zone.exists() else "no zone"
        time.sleep(0.02)
    assert get(port, "/threats")["threats"][0]["ip"] == "47.0.0.1"

    # The command responder's program is missing: a clear error, retried with backoff.
    bot.wait_log(rf"ERROR .*command: failed \(attempt 1, retrying in 1\.0 s\): {MISSING}: "
                 r"command not found", timeout=10)
    text = get(port, "/metrics")
    labels = {"network": "threatnet", "channel": channel}
    assert metric(text, "threatnet_responder_up", responder="command", **labels) == 0
    assert metric(text, "threatnet_responder_errors_total", responder="command", **labels) >= 1
    assert metric(text, "threatnet_responder_up", responder="dnsbl", **labels) == 1
    assert metric(text, "threatnet_lines_kept_total", **labels) == 1
    assert metric(text, "threatnet_cache_threats", **labels) == 1
    # the line's way from the server to the cache (ngIRCd sends no server-time: from when
    # the bot read it), the build, the process
    latency = "threatnet_report_to_cache_seconds"
    assert metric(text, latency + "_count", **labels) == 1
    assert metric(text, latency + "_bucket", le="+Inf", **labels) == 1
    print(f"report -> cached on the bot: {1000 * metric(text, latency + '_sum', **labels):.2f} ms")
    assert metric(text, "threatnet_build_info", python=platform.python_version()) == 1
    assert metric(text, "process_resident_memory_bytes") > 1e6
    page = get(port, "/status")  # the status page of the real bot
    assert "47.0.0.1" in page and "port scan" in page and alice.nick in page
    assert "FAILING" in page and "command not found" in page

    identify(alice, bot)
    reply = alice.ask(bot.nick, f"tn responders {channel}", bot.nick).text
    assert "dnsbl: 1 threats" in reply and "errors, ok" in reply, reply
    assert "command: 1 threats, 1 applies" in reply, reply  # the start, with no threats
    assert "FAILING" in reply and f"{MISSING}: command not found" in reply, reply
    assert "http: 1 threats" in reply, reply
    assert alice.ask(channel, "!tn check 47.0.0.1", bot.nick).text.startswith(
        f"{alice.nick}: Current threat in {channel}: 47.0.0.1")

"""GET /threatnet/metrics: the agent's numbers in the Prometheus text format (or
OpenMetrics, if the scraper asks), from snapshots the plugin took on the main loop:
every channel's, the Guard's when ThreatNetGuard runs on the same bot (it has no
HTTP server of its own), ``threatnet_build_info`` and the standard ``process_*``.

Lines seen are ``threatnet_lines_kept_total`` plus the sum of
``threatnet_lines_discarded_total`` (no separate total to drift from them).
``threatnet_report_to_cache_seconds`` is the time from a threat's report to this
agent's Threat Cache keeping it: for a line heard in the channel, from its time at the
IRC server (the IRCv3 server-time tag; without it, when the bot read the line, so only
the bot's own delay counts) to the listener keeping it; for this agent's own report,
from its submission (tn report, a feed, POST /report) to its line going out (servers
do not echo it back), so the outbox wait counts. Clocks of the server and the bot must
agree (NTP) for the first to mean anything.
"""
from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

import supybot.version
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from plugins.ThreatNetGuard.plugin import GuardStatus, WhitelistState

    from .plugin import ChannelStatus


def _version() -> str:
    try:
        return metadata.version("threatnet")
    except metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown"


BUILD = (_version(), supybot.version.version, platform.python_version())


def render(channels: Sequence[ChannelStatus], outboxes: Mapping[str, Mapping[str, int]],
           changes: int, waiting: int, accept: str | None,
           guard: tuple[Sequence[GuardStatus], WhitelistState] | None = None,
           ) -> tuple[bytes, str]:
    """(body, content type) for a scraper that sent ``accept``; ``guard``: the Guard's
    channels and whitelist file, if it runs on this bot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector({"channels": channels, "outboxes": outboxes,
                                  "http": {"changes": changes, "waiting": waiting}}))
    if guard is not None:
        registry.register(_GuardCollector(*guard))
    ProcessCollector(registry=registry)
    encode, ctype = choose_encoder(accept)
    return encode(registry), ctype


class _GuardCollector:
    """ThreatNetGuard's numbers: what it voiced, kicked and banned, what servers refused
    it, and its whitelist file."""

    def __init__(self, channels: Sequence[GuardStatus], whitelist: WhitelistState) -> None:
        self.channels = channels
        self.whitelist = whitelist

    def collect(self) -> Iterator[Metric]:
        chan = ["network", "channel"]
        opped = GaugeMetricFamily("threatnet_guard_opped", "1 while the Guard is a channel "
                                  "operator (it guards).", labels=chan)
        voiced = GaugeMetricFamily("threatnet_guard_voiced", "Members voiced now.", labels=chan)
        voices = CounterMetricFamily("threatnet_guard_voice_changes",
                                     "Voice changes sent (+v, -v).", labels=chan + ["change"])
        kicks = CounterMetricFamily("threatnet_guard_kicks", "Kicks, by kind of offence.",
                                    labels=chan + ["reason"])
        bans = CounterMetricFamily("threatnet_guard_bans", "Temporary bans set.", labels=chan)
        warnings = CounterMetricFamily("threatnet_guard_warnings",
                                       "Warnings (tolerant channels) instead of a kick.",
                                       labels=chan)
        held = GaugeMetricFamily("threatnet_guard_bans_held",
                                 "Temporary bans held now, to be lifted in time.", labels=chan)
        refusals = CounterMetricFamily("threatnet_guard_refusals",
                                       "The server refused a command (topic, mode, ban), by "
                                       "numeric.", labels=chan + ["numeric"])
        entries = GaugeMetricFamily("threatnet_guard_whitelist_entries",
                                    "Whitelist entries of the channel.", labels=chan)
        for s in self.channels:
            labels = [s.network, s.channel]
            opped.add_metric(labels, 1 if s.opped else 0)
            voiced.add_metric(labels, len(s.voiced))
            for change in ("+v", "-v"):
                voices.add_metric(labels + [change], s.voices.get(change, 0))
            for key, n in sorted(s.counts.items()):
                if key.startswith("kick "):
                    kicks.add_metric(labels + [key[5:]], n)
            bans.add_metric(labels, s.counts.get("ban", 0))
            warnings.add_metric(labels, s.counts.get("warn", 0))
            held.add_metric(labels, len(s.bans))
            for numeric, n in sorted(s.refusals.items()):
                refusals.add_metric(labels + [numeric], n)
            entries.add_metric(labels, s.entries)
        wl = self.whitelist
        loaded = GaugeMetricFamily("threatnet_guard_whitelist_ok",
                                   "1 if the whitelist file was read at the last change; 0: "
                                   "it is invalid, the last good whitelist is in use.")
        loaded.add_metric([], 0 if wl.error else 1)
        errors = CounterMetricFamily("threatnet_guard_whitelist_reload_errors",
                                     "Reads of the whitelist file that failed.")
        errors.add_metric([], wl.reload_errors)
        yield from (opped, voiced, voices, kicks, bans, warnings, held, refusals, entries,
                    loaded, errors)


class _Collector:
    """Metric families over the numbers _gather took on the main loop."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def collect(self) -> Iterator[Metric]:
        chan = ["network", "channel"]

        def family(kind, name, doc, labels):
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            return cls(name, doc, labels=labels)

        f = {
            "kept": family("counter", "threatnet_lines_kept",
                           "Threat lines kept (new threats).", chan),
            "discarded": family("counter", "threatnet_lines_discarded",
                                "Threat lines discarded, by reason.", chan + ["reason"]),
            "size": family("gauge", "threatnet_cache_threats",
                           "Current threats in the cache.", chan),
            "expired": family("counter", "threatnet_cache_expired",
                              "Threats expired from the cache.", chan),
            "block": family("gauge", "threatnet_block_period_seconds",
                            "The block period.", chan),
            "synced": family("gauge", "threatnet_synced",
                             "1 once the quiet period is over.", chan),
            "reported": family("counter", "threatnet_reports_sent",
                               "Threats this agent posted.", chan),
            "refused": family("counter", "threatnet_reports_refused",
                              "Reports from feeds refused, by reason.", chan + ["reason"]),
            "pending": family("gauge", "threatnet_reports_queued",
                              "Reports waiting in the outbox.", chan),
            "held": family("gauge", "threatnet_reports_held",
                           "Finds of the feeds held until the agent may report, by the "
                           "refusal they wait out.", chan + ["reason"]),
            "holds": family("counter", "threatnet_reports_held_outcomes",
                            "Finds of the feeds that had to wait (held), and what became "
                            "of them (released, current, expired, overflow).",
                            chan + ["outcome"]),
            "feed": family("counter", "threatnet_feed_lines",
                           "Log lines read by a feed, by result (found, ignored, rejected).",
                           chan + ["feed", "result"]),
            "feed_threats": family("counter", "threatnet_feed_threats",
                                   "Threats a feed reported (a threshold reached).",
                                   chan + ["feed"]),
            "feed_below": family("gauge", "threatnet_feed_below_threshold",
                                 "Addresses a feed counts below its threshold now.",
                                 chan + ["feed"]),
            "feed_evicted": family("counter", "threatnet_feed_evicted",
                                   "Addresses forgotten below the threshold: too many.",
                                   chan + ["feed"]),
            "withdrawals": family("counter", "threatnet_withdrawals",
                                  "Withdrawal lines heard, by outcome (withdrawn, refused).",
                                  chan + ["outcome"]),
            "feed_error": family("gauge", "threatnet_feed_error",
                                 "1 while a feed cannot be read.", chan + ["feed"]),
            "r_up": family("gauge", "threatnet_responder_up",
                           "1 if the responder is applying without errors.",
                           chan + ["responder"]),
            "r_threats": family("gauge", "threatnet_responder_threats",
                                "Threats the responder holds.", chan + ["responder"]),
            "r_applies": family("counter", "threatnet_responder_applies",
                                "Successful applies.", chan + ["responder"]),
            "r_errors": family("counter", "threatnet_responder_errors",
                               "Failed applies.", chan + ["responder"]),
            "r_failing": family("gauge", "threatnet_responder_consecutive_failures",
                                "Failed applies since the last success.",
                                chan + ["responder"]),
            "r_lag": family("gauge", "threatnet_responder_lag_seconds",
                            "Age of the oldest change not yet applied.",
                            chan + ["responder"]),
        }
        outbox = {
            "waiting": family("gauge", "threatnet_outbox_waiting",
                              "Reports waiting to be sent.", ["network"]),
            "sent": family("counter", "threatnet_outbox_sent", "Reports sent.", ["network"]),
            "dropped": family("counter", "threatnet_outbox_dropped",
                              "Reports dropped from a full outbox.", ["network"]),
        }
        build = GaugeMetricFamily("threatnet_build_info", "The running ThreatNet: its "
                                  "version, Limnoria's and Python's; always 1.",
                                  labels=["version", "limnoria", "python"])
        build.add_metric(list(BUILD), 1)
        latency = HistogramMetricFamily(
            "threatnet_report_to_cache_seconds", "Seconds from a threat's report to this "
            "agent's cache keeping it (see the module doc of metrics.py).", labels=chan)
        for c in self.data["channels"]:
            labels = [c.network, c.channel]
            latency.add_metric(labels, c.latency, c.latency_sum)
            heard = c.heard
            f["kept"].add_metric(labels, heard.get("kept", 0))
            for reason, n in sorted(heard.items()):
                if reason != "kept":
                    f["discarded"].add_metric(labels + [reason], n)
            f["size"].add_metric(labels, c.cache.size)
            f["expired"].add_metric(labels, c.cache.expired)
            f["block"].add_metric(labels, c.block)
            f["synced"].add_metric(labels, 0 if c.quiet_left else 1)
            f["reported"].add_metric(labels, c.reported)
            for reason, n in sorted(c.refused.items()):
                f["refused"].add_metric(labels + [reason], n)
            f["pending"].add_metric(labels, c.pending)
            for reason, n in sorted(c.held.items()):
                f["held"].add_metric(labels + [reason], n)
            for outcome, n in c.holds.items():
                f["holds"].add_metric(labels + [outcome], n)
            for outcome, n in sorted(c.withdrawals.items()):
                f["withdrawals"].add_metric(labels + [outcome], n)
            for spec, stats, error in c.feeds:
                for result in ("found", "ignored", "rejected"):
                    f["feed"].add_metric(labels + [spec, result], stats.get(result, 0))
                f["feed_threats"].add_metric(labels + [spec], stats.get("threats", 0))
                f["feed_below"].add_metric(labels + [spec], stats.get("below_threshold", 0))
                f["feed_evicted"].add_metric(labels + [spec], stats.get("evicted", 0))
                f["feed_error"].add_metric(labels + [spec], 1 if error else 0)
            for s in c.responders:
                rl = labels + [s.name]
                f["r_up"].add_metric(rl, 0 if s.failures else 1)
                f["r_threats"].add_metric(rl, s.threats)
                f["r_applies"].add_metric(rl, s.applies)
                f["r_errors"].add_metric(rl, s.errors)
                f["r_failing"].add_metric(rl, s.failures)
                f["r_lag"].add_metric(rl, s.lag)
            for name, _reason in c.problems:
                f["r_up"].add_metric(labels + [name], 0)
        for network, stats in sorted(self.data["outboxes"].items()):
            for key, fam in outbox.items():
                fam.add_metric([network], stats.get(key, 0))
        http = self.data["http"]
        changes = CounterMetricFamily("threatnet_http_changes",
                                      "Threat changes published to followers.")
        changes.add_metric([], http["changes"])
        waiting = GaugeMetricFamily("threatnet_http_waiting", "Long-polls waiting now.")
        waiting.add_metric([], http["waiting"])
        yield build
        yield from f.values()
        yield latency
        yield from outbox.values()
        yield changes
        yield waiting

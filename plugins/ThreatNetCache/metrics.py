"""GET /threatnet/metrics: the agent's numbers in the Prometheus text format (or
OpenMetrics, if the scraper asks), from snapshots the plugin took on the main loop."""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from .plugin import ChannelStatus


def render(channels: Sequence[ChannelStatus], outboxes: Mapping[str, Mapping[str, int]],
           changes: int, waiting: int, accept: str | None) -> tuple[bytes, str]:
    """(body, content type) for a scraper that sent ``accept``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector({"channels": channels, "outboxes": outboxes,
                                  "http": {"changes": changes, "waiting": waiting}}))
    encode, ctype = choose_encoder(accept)
    return encode(registry), ctype


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
            "seen": family("counter", "threatnet_lines_seen", "Threat lines heard.", chan),
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
        for c in self.data["channels"]:
            labels = [c.network, c.channel]
            heard = c.heard
            f["seen"].add_metric(labels, sum(heard.values()))
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
        yield from f.values()
        yield from outbox.values()
        yield changes
        yield waiting

"""Registry settings of the ThreatNetCache plugin (documented example: conf/ThreatNetCache.conf).

Channel settings can be set per channel and per network+channel; none is
settable by channel ops, because they decide which files the bot reads and
what it tells a whole ThreatNet. Channel settings take effect within
pollInterval (the poll timer re-reads them; the hot path never reads the
registry); the timer intervals and the outbox settings when the plugin is
reloaded.
"""
import supybot.conf as conf
import supybot.registry as registry

from threatnet.feed import EXTRACTORS
from threatnet.filter import NetworkFilter


def configure(advanced):
    conf.registerPlugin("ThreatNetCache", True)


class TrustMode(registry.OnlySomeStrings):
    """Must be one of: voiced, all, accounts."""
    validStrings = ("voiced", "all", "accounts")


class Networks(registry.SpaceSeparatedListOfStrings):
    """Space-separated CIDR networks, single IPs, or the keywords BOGONS, RFC1918,
    RFC3330, LOCAL."""
    errormsg = "%s"

    def setValue(self, v):
        if v:
            try:
                NetworkFilter("discard", v)
            except ValueError as e:
                self.error(str(e))
        super().setValue(v)


class Feeds(registry.SpaceSeparatedListOfStrings):
    """Space-separated extractor:/absolute/path entries; extractors: plain, sshd,
    postfix, fail2ban."""
    errormsg = "%s"

    def setValue(self, v):
        for entry in v:
            extractor, _, path = entry.partition(":")
            if extractor not in EXTRACTORS or not path.startswith("/"):
                self.error(f"bad feed {entry!r}: use extractor:/absolute/path, "
                           f"extractor one of {', '.join(EXTRACTORS)}")
        super().setValue(v)


ThreatNetCache = conf.registerPlugin("ThreatNetCache")


def _channel(name, value):
    conf.registerChannelValue(ThreatNetCache, name, value, opSettable=False)


_channel("enable", registry.Boolean(False, """Whether this channel is a
    ThreatNet channel: its threat lines are cached, and the bot may report to it."""))
_channel("blockPeriod", registry.PositiveInteger(3600, """Seconds a threat stays
    current (the block period) when the channel topic is not a threatnet:// topic
    that sets one with block=."""))
_channel("trust", TrustMode("voiced", """Whose threat lines count: "voiced" (voiced,
    halfopped or opped senders, plus trustedAccounts: the ThreatNet security
    model), "accounts" (only senders logged in to one of trustedAccounts) or
    "all" (everyone: an open channel)."""))
_channel("trustedAccounts", registry.SpaceSeparatedListOfStrings([], """Services
    accounts whose threat lines count even when they are not voiced."""))
_channel("discard", Networks(["BOGONS"], """Networks whose threats are dropped,
    heard or reported: CIDRs, IPs, or the keywords BOGONS, RFC1918, RFC3330,
    LOCAL."""))
_channel("ownNetworks", Networks([], """Networks this agent never reports (its own
    addresses), same syntax as discard."""))
_channel("feeds", Feeds([], """Log files this agent tails and reports from, as
    extractor:/absolute/path (extractors: plain, sshd, postfix, fail2ban). Each
    extracted threat goes through the same rules as the report command. Paths
    cannot contain spaces."""))

conf.registerGlobalValue(ThreatNetCache, "restartGrace", registry.NonNegativeInteger(60,
    """After a restart, rejoin or reconnect, the quiet period is skipped if the
    saved cache is younger than this many seconds (the agent missed at most that
    long of the channel). 0 always applies the quiet period."""))
conf.registerGlobalValue(ThreatNetCache, "snapshotInterval", registry.PositiveInteger(300,
    """Seconds between periodic cache snapshots to the data directory (the cache
    is also saved on shutdown, part and disconnect)."""))
conf.registerGlobalValue(ThreatNetCache, "expireInterval", registry.PositiveInteger(30,
    """Seconds between runs of cache expiry (lookups are correct in between;
    expiry releases memory)."""))
conf.registerGlobalValue(ThreatNetCache, "pollInterval", registry.PositiveFloat(1.0,
    """Seconds between polls of the feeds and drains of the outbox. Limnoria
    runs timers at most every supybot.drivers.poll seconds."""))

conf.registerGroup(ThreatNetCache, "outbox")
conf.registerNetworkValue(ThreatNetCache.outbox, "rate", registry.PositiveFloat(1.0,
    """Reports sent per second on this network, on average. Raise it only as far
    as the server's flood limits allow."""))
conf.registerNetworkValue(ThreatNetCache.outbox, "burst", registry.PositiveInteger(5,
    """Reports that may be sent at once after a quiet spell."""))
conf.registerNetworkValue(ThreatNetCache.outbox, "size", registry.PositiveInteger(1000,
    """Reports waiting at most; when full, the oldest waiting report is dropped
    (and counted)."""))

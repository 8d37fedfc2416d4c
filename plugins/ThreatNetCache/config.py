"""Registry settings of the ThreatNetCache plugin (documented example: conf/ThreatNetCache.conf).

Channel settings can be set per channel and per network+channel; none is
settable by channel ops, because they decide which files the bot reads and
what it tells a whole ThreatNet. Channel settings take effect within
pollInterval (the poll timer re-reads them; the hot path never reads the
registry); the timer intervals and the outbox settings when the plugin is
reloaded.
"""
import ipaddress
import re
import shlex

import supybot.conf as conf
import supybot.registry as registry

from threatnet.feed import parse_spec
from threatnet.filter import NetworkFilter
from threatnet.topic import MAX_QUORUM

from .bridging import DIRECTIONS, LOOKUP_TIMEOUT, parse_dnsbl, parse_side, parse_trust


def configure(advanced):
    conf.registerPlugin("ThreatNetCache", True)


class TrustMode(registry.OnlySomeStrings):
    """Must be one of: voiced, all, accounts, signed."""
    validStrings = ("voiced", "all", "accounts", "signed")


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


class ListenAddress(registry.String):
    """Must be an IPv4 or IPv6 address: 127.0.0.1, ::1, 0.0.0.0 or :: (every
    interface) or one of this host's."""
    errormsg = "Value must be an IPv4 or IPv6 address, not %r."

    def setValue(self, v):
        try:
            ipaddress.ip_address(v)
        except ValueError:
            self.error(v)
        super().setValue(v)


class Port(registry.NonNegativeInteger):
    """Must be a TCP port, 1 to 65535 (0: any free one, for tests)."""
    errormsg = "Value must be a TCP port from 0 to 65535, not %r."

    def setValue(self, v):
        if not 0 <= v <= 65535:
            self.error(v)
        super().setValue(v)


class Seconds(registry.PositiveFloat):
    """Must be a number of seconds from 0.1 to 300."""
    errormsg = "Value must be a number of seconds from 0.1 to 300, not %r."

    def setValue(self, v):
        if not 0.1 <= float(v) <= 300:  # NaN fails too
            self.error(v)
        super().setValue(v)


class Feeds(registry.SpaceSeparatedListOfStrings):
    """Space-separated extractor:/absolute/path or
    extractor(maxretry=N,findtime=SECONDS):/absolute/path entries; extractors:
    plain, sshd, postfix, fail2ban, crowdsec."""
    errormsg = "%s"

    def setValue(self, v):
        for entry in v:
            try:
                parse_spec(entry)
            except ValueError as e:
                self.error(f"bad feed {entry!r}: {e}")
        super().setValue(v)


ThreatNetCache = conf.registerPlugin("ThreatNetCache")


def _channel(name, value):
    group = ThreatNetCache
    *path, name = name.split(".")
    for part in path:
        group = group.get(part)
    conf.registerChannelValue(group, name, value, opSettable=False)


_channel("enable", registry.Boolean(False, """Whether this channel is a
    ThreatNet channel: its threat lines are cached, and the bot may report to it."""))
_channel("blockPeriod", registry.PositiveInteger(3600, """Seconds a threat stays
    current (the block period) when the channel topic is not a threatnet:// topic
    that sets one with block=."""))
_channel("trust", TrustMode("voiced", """Whose threat lines count: "voiced" (voiced,
    halfopped or opped senders, plus trustedAccounts: the ThreatNet security
    model), "accounts" (only senders logged in to one of trustedAccounts) or
    "all" (everyone: an open channel) or "signed" (no IRC-level trust: only lines
    validly signed by a key in signatures.keyring, see signatures.require)."""))
_channel("trustedAccounts", registry.SpaceSeparatedListOfStrings([], """Services
    accounts whose threat lines count even when they are not voiced."""))
_channel("discard", Networks(["BOGONS"], """Networks whose threats are dropped,
    heard or reported: CIDRs, IPs, or the keywords BOGONS, RFC1918, RFC3330,
    LOCAL."""))
_channel("ownNetworks", Networks([], """Networks this agent never reports (its own
    addresses), same syntax as discard."""))
_channel("protect", Networks(["127.0.0.0/8", "::1", "169.254.0.0/16", "fe80::/10"],
    """Networks whose threats this listener never caches nor responds to, whoever
    reports them (counted as "protected"); same syntax as discard. The IRC server's
    and this host's own addresses and its resolvers are protected without being
    listed, and on a bot that also runs ThreatNetGuard, the whitelisted networks.
    A change takes current threats in these networks back at once."""))
_channel("maxThreats", registry.PositiveInteger(100000, """Current threats this
    listener keeps at most (about 130 bytes each). When full, new threats are refused
    and counted ("full"); current ones stay until they expire, so a flood can neither
    push real threats out nor exhaust memory."""))


class Quorum(registry.NonNegativeInteger):
    """Must be 0 (the topic's quorum=) or a number of reporters, 1 to 16."""

    def setValue(self, v):
        if not 0 <= v <= MAX_QUORUM:
            self.error(v)
        super().setValue(v)


_channel("quorum", Quorum(0, """Distinct reporters (services accounts, else hosts)
    that must report a threat within its block period before this listener acts on it
    (responders, bridges). 0: the channel topic's quorum= word (1 without one)."""))
_channel("topicHold", registry.NonNegativeInteger(30, """Seconds a new channel
    topic must stand before its block=, quorum= and other words count here (a topic
    seen on joining counts from when it was set). The channel bot reverts a topic that
    nobody may set within about a second, retrying while the server refuses, so such a
    topic never counts; a real change (tn topic --block on the channel bot) counts
    after this long. 0: every topic counts at once."""))
_channel("feeds", Feeds([], """Log files this agent tails and reports from, as
    extractor:/absolute/path (extractors: plain, sshd, postfix, fail2ban), and
    CrowdSec Local APIs it reads as a bouncer, as crowdsec:/path/to/bouncer.yaml
    (api_url, api_key, update_frequency; mode 0600): the bans that CrowdSec
    made itself, never its lists or the central API's. An
    address is reported once its failures reach the feed's threshold: maxretry
    within findtime seconds, by default 5 in 600 for sshd and postfix (fail2ban's
    defaults) and 1 for plain and fail2ban (lines that are decisions already); set
    it as extractor(maxretry=N,findtime=SECONDS):/absolute/path (findtime may be
    10m, 1h). Comments name the attack and the count, never usernames. Each report
    goes through the same rules as the report command. Paths cannot contain
    spaces."""))

conf.registerGlobalValue(ThreatNetCache, "restartGrace", registry.NonNegativeInteger(60,
    """After a restart, rejoin (after a kick or part) or reconnect, the quiet
    period is skipped if the saved cache is younger than this many seconds (the
    agent missed at most that long of the channel). 0 always applies the quiet
    period."""))
conf.registerGlobalValue(ThreatNetCache, "snapshotInterval", registry.PositiveInteger(300,
    """Seconds between periodic cache snapshots to the data directory (the cache
    is also saved on shutdown, part and disconnect)."""))
conf.registerGlobalValue(ThreatNetCache, "expireInterval", registry.PositiveInteger(30,
    """Seconds between runs of cache expiry (lookups are correct in between;
    expiry releases memory)."""))
conf.registerGlobalValue(ThreatNetCache, "pollInterval", registry.PositiveFloat(1.0,
    """Seconds between polls of the feeds and drains of the outbox, as a safety
    net: feeds are read as they are written (inotify) and the outbox is drained
    when due. Without inotify, how often feeds are read."""))

conf.registerGroup(ThreatNetCache, "outbox")
conf.registerNetworkValue(ThreatNetCache.outbox, "rate", registry.PositiveFloat(1.0,
    """Reports sent per second on this network, on average. Raise it only as far
    as the server's flood limits allow."""))
conf.registerNetworkValue(ThreatNetCache.outbox, "burst", registry.PositiveInteger(5,
    """Reports that may be sent at once after a quiet spell."""))
conf.registerNetworkValue(ThreatNetCache.outbox, "size", registry.PositiveInteger(1000,
    """Reports waiting at most; when full, the oldest waiting report is dropped
    (and counted)."""))

# -- Threat Response (plugins/ThreatNetCache/responders.py builds them): per channel,
# live (rebuilt within pollInterval of a change, without blocking the bot).

class AbsolutePath(registry.String):
    """An absolute file path, or empty for none."""
    errormsg = "%s"

    def setValue(self, v):
        if v and not v.startswith("/"):
            self.error(f"{v!r} is not an absolute path")
        super().setValue(v)


class Argv(registry.String):
    """A command and its arguments, split like a shell would (quotes and
    backslashes), but never run through a shell; empty for none."""
    errormsg = "%s"

    def setValue(self, v):
        try:
            shlex.split(v)
        except ValueError as e:
            self.error(f"cannot split {v!r} into arguments: {e}")
        super().setValue(v)


class NftFamily(registry.OnlySomeStrings):
    """Must be one of: inet, ip, ip6, bridge, netdev."""
    validStrings = ("inet", "ip", "ip6", "bridge", "netdev")


conf.registerGroup(ThreatNetCache, "responders")


def _responder_filters(group, what):
    conf.registerChannelValue(group, "keep", Networks([], f"""Networks {what} acts
        on, e.g. only your own customer ranges (empty: all). Same syntax as discard."""),
        opSettable=False)
    conf.registerChannelValue(group, "discard", Networks([], f"""Networks {what}
        never acts on, e.g. your own servers. Same syntax as discard."""), opSettable=False)


_dnsbl = conf.registerGroup(ThreatNetCache.responders, "dnsbl")
conf.registerChannelValue(_dnsbl, "ip4file", AbsolutePath("", """rbldnsd ip4set file
    listing the channel's current IPv4 threats (empty: none). The DNSBL is on when
    ip4file or ip6file is set."""), opSettable=False)
conf.registerChannelValue(_dnsbl, "ip6file", AbsolutePath("", """rbldnsd ip6trie file
    listing the channel's current IPv6 threats (empty: none)."""), opSettable=False)
conf.registerChannelValue(_dnsbl, "zone", registry.String("", """The DNSBL zone name,
    as rbldnsd serves the files (header and TXT text only)."""), opSettable=False)
conf.registerChannelValue(_dnsbl, "ttl", registry.PositiveInteger(3600, """Largest
    $TTL served; it is lowered as the nearest expiry comes closer."""), opSettable=False)
_responder_filters(_dnsbl, "the DNSBL")

_firewall = conf.registerGroup(ThreatNetCache.responders, "firewall")
conf.registerChannelValue(_firewall, "enable", registry.Boolean(False, """Whether to
    add the channel's current threats to nftables sets (needs root or CAP_NET_ADMIN;
    load DIR/nftables/threatnet.nft from `threatnet-examples DIR`)."""), opSettable=False)
conf.registerChannelValue(_firewall, "family", NftFamily("inet", """nftables family of
    the table."""), opSettable=False)
conf.registerChannelValue(_firewall, "table", registry.String("threatnet", """nftables
    table holding the sets."""), opSettable=False)
conf.registerChannelValue(_firewall, "set4", registry.String("tn_v4", """Set of IPv4
    threat addresses."""), opSettable=False)
conf.registerChannelValue(_firewall, "set6", registry.String("tn_v6", """Set of IPv6
    threat addresses."""), opSettable=False)
conf.registerChannelValue(_firewall, "set6net", registry.String("tn_v6net", """Set of
    IPv6 /64 threat networks (first address of each)."""), opSettable=False)
conf.registerChannelValue(_firewall, "nft", Argv("nft", """The nft command (e.g.
    "ip netns exec fw nft")."""), opSettable=False)
conf.registerChannelValue(_firewall, "ruleset", AbsolutePath("", """nft file loaded at
    the head of every resync, e.g. DIR/nftables/threatnet.nft from `threatnet-examples DIR`
    (empty: missing sets
    are created, but no chain drops their traffic)."""), opSettable=False)
conf.registerChannelValue(_firewall, "conntrack", registry.Boolean(False, """Whether
    to also end the established connections of each new threat (conntrack -D)."""),
    opSettable=False)
_responder_filters(_firewall, "the firewall")

_command = conf.registerGroup(ThreatNetCache.responders, "command")
conf.registerChannelValue(_command, "argv", Argv("", """A program run for each new
    threat as ARGV IP COMMENT REPORTER TTL (never through a shell; end it with -- if
    the program parses options). Empty: none."""), opSettable=False)
conf.registerChannelValue(_command, "expireArgv", Argv("", """A program run as
    EXPIREARGV IP when a threat expires. Empty: none."""), opSettable=False)
conf.registerChannelValue(_command, "timeout", registry.PositiveFloat(30.0, """Seconds
    a program may run before it is killed."""), opSettable=False)
_responder_filters(_command, "the command")


# -- The HTTP API (plugins/ThreatNetCache/http.py) on a server of its own (server.py)

conf.registerGroup(ThreatNetCache, "http")
conf.registerGlobalValue(ThreatNetCache.http, "enable", registry.Boolean(False, """Whether
    to serve the HTTP API, /threatnet/ on http.host port http.port. Off by default.
    (live)"""))
conf.registerGlobalValue(ThreatNetCache.http, "host", ListenAddress("127.0.0.1", """The
    address the HTTP API listens on: an IPv4 or IPv6 address of this host, 0.0.0.0 or
    :: for every interface (then narrow http.clients, and think of a firewall). The
    server restarts on a change. (live)"""))
conf.registerGlobalValue(ThreatNetCache.http, "port", Port(8780, """The TCP port the
    HTTP API listens on (0: any free one, for tests). The server restarts on a
    change. (live)"""))
conf.registerGlobalValue(ThreatNetCache.http, "clients", Networks(
    ["127.0.0.0/8", "::1"], """Client addresses allowed to use the HTTP API; any other
    gets 403 as it connects, before it can send anything. Same syntax as discard.
    (live)"""))
conf.registerGlobalValue(ThreatNetCache.http, "token", registry.String("", """Bearer
    token POST /threatnet/report requires (Authorization: Bearer TOKEN). Empty: the
    report endpoint is disabled. (live)""", private=True))
conf.registerGlobalValue(ThreatNetCache.http, "maxWait", registry.PositiveInteger(60,
    """Longest wait, in seconds, a GET /threatnet/events long-poll may ask for. (live)"""))
conf.registerGlobalValue(ThreatNetCache.http, "timeout", Seconds(5.0, """Seconds a
    client has to send a whole request (request line, headers and body, counted from
    the connection): a slower one gets 408 and is disconnected. The server restarts
    on a change. (live)"""))
conf.registerGlobalValue(ThreatNetCache.http, "connections", registry.PositiveInteger(32,
    """Requests served at once: one more connection gets 503 at once. A long-poll
    waiting for changes does not count (see maxFollowers). The server restarts on a
    change. (live)"""))
conf.registerGlobalValue(ThreatNetCache.http, "maxFollowers", registry.PositiveInteger(
    64, """GET /threatnet/events long-polls that may wait for changes at once; one more
    gets 503. (live)"""))

# -- Signed threat lines (signing.py loads the files; threatnet/listener.py checks)

conf.registerGroup(ThreatNetCache, "signatures")
_channel("signatures.require", registry.Boolean(False, """Whether threat lines in this
    channel count only when validly signed by a key in signatures.keyring, made within
    the block period. Unsigned and badly signed lines are counted by reason (tn status)
    and ignored. Trust mode "signed" implies it."""))
_channel("signatures.keyring", registry.String("", """The key ring file: one "key-id
    public-key [comment]" line per trusted provider (threatnet-keygen
    prints them). A relative path is in the bot's data directory. Re-read when it
    changes; a missing or bad file trusts no key."""))
_channel("signatures.key", registry.String("", """This agent's private signing key file
    (threatnet-keygen; mode 0600). When set, the agent's reports to
    this channel are signed; if it cannot be loaded, reports are refused, never sent
    unsigned. A relative path is in the bot's data directory."""))


# -- The Network Bridge (bridging.py): plugins.ThreatNetCache.bridges names them, each
# configured under plugins.ThreatNetCache.bridge.<name> (registered as it is named).

class SideValue(registry.String):
    """A network and a channel on it, e.g. "libera #threatnet"; the network name as
    in supybot.networks."""
    errormsg = "%s"

    def setValue(self, v):
        if v.strip():
            try:
                parse_side(v)
            except ValueError as e:
                self.error(str(e))
        super().setValue(v.strip())


class Direction(registry.OnlySomeStrings):
    validStrings = DIRECTIONS


class TrustRule(registry.String):
    """Empty (the channel's own trust and trustedAccounts settings), or "voiced
    [account ...]", "accounts account ...", "all"."""
    errormsg = "%s"

    def setValue(self, v):
        try:
            parse_trust(v)
        except ValueError as e:
            self.error(str(e))
        super().setValue(" ".join(v.split()))


class DnsblZone(registry.String):
    """Empty (no lookup), or a DNSBL zone such as bl.example.net, asked through the
    system's resolvers, or zone@address[:port] to ask that DNS server
    (zone@[IPv6]:port)."""
    errormsg = "%s"

    def setValue(self, v):
        text = str(v).strip()
        if text.lower() == "false":  # dropListed was a boolean: False meant off
            text = ""
        if text.lower() == "true":
            self.error("dropListed now names the DNSBL zone to ask, e.g. bl.example.net "
                       "(or bl.example.net@127.0.0.1:5353 for a server of its own); "
                       "empty for none")
        try:
            spec = parse_dnsbl(text)
        except ValueError as e:
            self.error(str(e))
        super().setValue("" if spec is None else str(spec))


class BridgeNames(registry.SpaceSeparatedListOfStrings):
    """Space-separated bridge names (a letter, then letters, digits, - or _); each
    has its settings under plugins.ThreatNetCache.bridge.<name>."""
    errormsg = "%s"

    def setValue(self, v):
        seen = set()
        for name in v:
            if not _BRIDGE_NAME.match(name):
                self.error(f"bad bridge name {name!r}: a letter, then up to 31 letters, "
                           "digits, - or _")
            if name.lower() in seen:
                self.error(f"bridge {name!r} is named twice")
            seen.add(name.lower())
        super().setValue(v)
        for name in v:
            register_bridge(name)


_BRIDGE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}\Z")


def register_bridge(name):
    """The settings group of one bridge (idempotent: registering again keeps values)."""
    try:
        parent = conf.supybot.plugins.ThreatNetCache.bridge
    except registry.NonExistentRegistryEntry:
        return  # bridges set before the group exists: registered below
    group = conf.registerGroup(parent, name)
    conf.registerGlobalValue(group, "a", SideValue("", """Side a: "<network> <#channel>",
        the network named as in supybot.networks."""))
    conf.registerGlobalValue(group, "b", SideValue("", """Side b: "<network>
        <#channel>"."""))
    conf.registerGlobalValue(group, "direction", Direction("both", """Which way threats
        cross: a->b, b->a or both."""))
    for side in ("A", "B"):
        conf.registerGlobalValue(group, "trust" + side, TrustRule("", f"""Which lines on
            side {side.lower()} are Verified Threats, to relay and to count as current
            there: empty for the channel's own trust and trustedAccounts settings, or
            "voiced [account ...]", "accounts <account> ...", "all"."""))
    for way in ("aToB", "bToA"):
        sub = conf.registerGroup(group, way)
        conf.registerGlobalValue(sub, "keep", Networks([], """Relay only threats in these
            networks (CIDRs, IPs, keywords); empty: every network."""))
        conf.registerGlobalValue(sub, "discard", Networks(["BOGONS"], """Never relay
            threats in these networks (CIDRs, IPs, keywords BOGONS, RFC1918, RFC3330,
            LOCAL)."""))
        conf.registerGlobalValue(sub, "dropListed", DnsblZone("", f"""A DNSBL zone
            (e.g. bl.example.net, or bl.example.net@10.0.0.53:5353 to ask that DNS
            server instead of the system's resolvers): threats it lists are not
            relayed (dropped as "listed"). Relays wait up to {LOOKUP_TIMEOUT:g} s for
            the answer; a lookup that fails lets the threat through, counted in tn
            bridge status. Empty: no lookup."""))
    return group


conf.registerGlobalValue(ThreatNetCache, "bridges", BridgeNames([], """Names of the
    Network Bridges this agent runs; each is configured under
    plugins.ThreatNetCache.bridge.<name> (a, b, direction, trustA, trustB,
    aToB/bToA.keep, .discard, .dropListed: a DNSBL zone). The bot must be in both
    channels of each bridge, with plugins.ThreatNetCache.enable on there. (live)"""))
conf.registerGroup(ThreatNetCache, "bridge")
for _name in ThreatNetCache.bridges():
    register_bridge(_name)

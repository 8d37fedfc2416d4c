"""Registry settings of the ThreatNetGuard plugin (most are channel-specific)."""
import supybot.conf as conf
import supybot.registry as registry

from threatnet.topic import MAX_BLOCK, MAX_QUORUM, TopicError, parse_topic


def configure(advanced):
    conf.registerPlugin("ThreatNetGuard", True)


class KeptModes(registry.String):
    """Value must be channel mode letters without parameters, such as "nt" or "mnt"."""

    def setValue(self, v):
        if not all(c.isascii() and c.isalpha() for c in v):
            self.error(v)
        super().setValue(v)


class TopicUri(registry.String):
    """Value must be one threatnet://<host>/<path> URI."""

    def setValue(self, v):
        try:
            if parse_topic(v).config:
                self.error(v)
        except TopicError:
            self.error(v)
        super().setValue(v)


class BlockPeriod(registry.PositiveInteger):
    """Value must be a block period in whole seconds, at most a week."""

    def setValue(self, v):
        if not 0 < v <= MAX_BLOCK:
            self.error(v)
        super().setValue(v)


class Quorum(registry.PositiveInteger):
    """Value must be a number of reporters, 1 to 16."""

    def setValue(self, v):
        if not 0 < v <= MAX_QUORUM:
            self.error(v)
        super().setValue(v)


class TopicFlags(registry.SpaceSeparatedListOfStrings):
    """Value must be topic flags: single words without "=" or ","."""

    def setValue(self, v):
        try:
            parse_topic("threatnet://x/y").replace(flags=v)
        except TopicError:
            self.error(v)
        super().setValue(v)


ThreatNetGuard = conf.registerPlugin("ThreatNetGuard")
G = ThreatNetGuard


def _channel(group, name, value):
    """A channel value only admins may set: a channel op of the bot must not be able
    to switch the security model off (Limnoria lets #chan,op set opSettable values)."""
    conf.registerChannelValue(group, name, value, opSettable=False)


_channel(G, "enable", registry.Boolean(False, """Whether the bot guards
    this channel: voices whitelisted agents, kicks other senders and keeps the topic. It
    must be a channel operator to act; without op it only logs."""))
conf.registerGlobalValue(G, "whitelist", registry.String("ThreatNetGuard.whitelist.yaml",
    """The whitelist file (YAML; `threatnet-examples DIR` writes a documented
    example, DIR/whitelist.yaml); a relative path is in the bot's data directory. Edits made by hand are picked up within a few seconds."""))
_channel(G, "modes", KeptModes("nt", """Channel modes the bot keeps
    set, without parameters: "nt" (no outside messages, ops set the topic), "mnt" to also
    let the server drop unvoiced lines (then unvoiced users cannot use the bot's commands
    in the channel either). Empty: leave modes alone."""))
conf.registerNetworkValue(G, "realHosts", registry.Boolean(False, """Whether this
    network's server shows every client's real IP as its host (no vhosts, cloaks,
    CHGHOST or spoofed hosts), so that a host that is an IP literal counts as the
    client's IP for the whitelist. Off (the default), IP entries match only the IPs
    WHOX shows, which servers show to IRC operators: make the bot an IRC operator, or
    whitelist services accounts. The rule in force is logged when the bot joins."""))
_channel(G, "whoxJoins", registry.Boolean(False, """Whether to send a
    WHOX query for each joining user whose host is not an IP address, to learn the real IP.
    Useful only when the bot is an IRC operator: others see 255.255.255.255."""))

conf.registerGroup(G, "commands")
_channel(G.commands, "fromAnyone", registry.Boolean(True, """Whether
    users who are not voiced may ask questions in the channel without being kicked: a
    command to the bots (e.g. !tn status, !tn help) or a line addressed to a voiced agent
    ("agent1: status"), and answer a command as Limnoria does ("asker: ..."). Voiced
    agents and ops always may."""))
_channel(G.commands, "replyWindow", registry.NonNegativeInteger(10, """Seconds
    after a question in which answers pass: the lines of the agent it addressed, or for a
    command to the bots, of every voiced agent (an unvoiced one's only as "asker: ...").
    A line that parses as a threat is never an answer. 0 lets no answers through (agents
    must then reply in private)."""))
_channel(G.commands, "answerLines", registry.PositiveInteger(3, """Lines
    each agent may answer one question with (an unvoiced one: 1)."""))
_channel(G.commands, "questions", registry.PositiveInteger(5, """Questions
    an unvoiced member may ask within commands.questionWindow seconds; one more is a
    kick."""))
_channel(G.commands, "questionWindow", registry.PositiveInteger(60, """The
    window for counting an unvoiced member's questions, in seconds."""))

conf.registerGroup(G, "flood")
_channel(G.flood, "lines", registry.NonNegativeInteger(100, """A sender
    of more than this many lines within flood.seconds is kicked; 0 disables the limit."""))
_channel(G.flood, "seconds", registry.PositiveInteger(10, """The flood
    window, in seconds."""))

conf.registerGroup(G, "kick")
_channel(G.kick, "bogons", registry.Boolean(True, """Whether to kick a
    voiced agent who reports a bogon address (private, reserved, documentation ranges)."""))
_channel(G.kick, "repeats", registry.Boolean(True, """Whether to kick a
    voiced agent who repeats a threat that is still current (it ignored its Threat Cache)."""))
_channel(G.kick, "repeatGrace", registry.NonNegativeInteger(10, """A
    repeat within this many seconds of the first report is a race between honest agents,
    not poisoning: it is not kicked."""))
_channel(G.kick, "unsigned", registry.Boolean(False, """Whether to
    kick a voiced agent whose threat line carries no signature, or a malformed one (the
    channel's listeners require signed lines: ThreatNetCache signatures.require). Only
    the form is checked here; whose key signed is the listeners' business."""))
_channel(G.kick, "tolerantWindow", registry.PositiveInteger(600, """When
    the topic has the "tolerant" flag, a malformed line gets a warning by notice, and a second
    one within this many seconds gets a kick."""))

conf.registerGroup(G, "ban")
_channel(G.ban, "kicks", registry.NonNegativeInteger(3, """This many kicks
    within ban.window seconds get a temporary ban; 0 never bans."""))
_channel(G.ban, "window", registry.PositiveInteger(3600, """The window for
    counting kicks, in seconds."""))
_channel(G.ban, "duration", registry.PositiveInteger(3600, """How long a
    temporary ban lasts, in seconds. The bot lifts it itself."""))

conf.registerGroup(G, "topic")
_channel(G.topic, "uri", TopicUri(
    "threatnet://threatnet.invalid/datn2004/ip-comment", """The protocol URI at the start
    of the channel topic: threatnet://<host>/<path>."""))
_channel(G.topic, "block", BlockPeriod(3600, """The block
    period in seconds advertised in the topic: how long a threat stays current."""))
_channel(G.topic, "quorum", Quorum(1, """Distinct reporters (services accounts,
    else hosts) a threat needs before listeners act on it, advertised in the topic as
    quorum=N (not written when 1). Up to this many reporters may each say a current
    threat once without being kicked for repeating it."""))
_channel(G.topic, "flags", TopicFlags([], """Flags
    advertised in the topic, e.g. "tolerant" (warn before kicking for a malformed line)."""))
_channel(G.topic, "keep", registry.Boolean(True, """Whether to set the
    topic and restore it when someone who is not allowed changes it. A refused change
    (InspIRCd's 437 "Retry topic change later", 482, ...) is retried with backoff until
    the topic holds. Change the topic for real with tn topic --uri/--block/--quorum/--flags."""))
_channel(G.topic, "opsMayChange", registry.Boolean(False, """Whether a
    topic set by a channel operator stands; the block period and flags are then read from
    it (agents adopt a topic once it held for their topicHold)."""))

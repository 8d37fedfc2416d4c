"""Strict `wrap` converters for both plugins (Limnoria's built-in `ip` accepts inet_aton
forms like `10.1`). Each passes on the canonical text of what it parsed, or fails the
command with the parser's own short reason. `servedChannel` is Limnoria's `channel` that
needs no channel named when the plugin serves one; `channelAdmin`, after it, checks the
ThreatNet capability of that channel."""
import supybot.conf as conf
import supybot.ircdb as ircdb
from supybot.commands import addConverter, getChannel

from threatnet.address import AddressError, format_ip, parse_ip
from threatnet.whitelist import WhitelistError, parse_entry


def _converter(parse, error, what):
    def convert(irc, msg, args, state):
        try:
            state.args.append(parse(args[0]))
        except error as e:
            state.error(f"{args[0]!r} is not {what}: {getattr(e, 'reason', e)}", Raise=True)
        del args[0]
    return convert


addConverter("threatIp", _converter(lambda text: format_ip(parse_ip(text)), AddressError,
                                    "a valid IP address"))
addConverter("whitelistEntry", _converter(lambda text: parse_entry(text).text, WhitelistError,
                                          "a whitelist entry"))


def _served_channel(irc, msg, args, state, plugin):
    """Limnoria's ``channel``, and without one (a private message) the one channel where
    ``plugin`` is enabled, if there is exactly one: a bot that serves one channel needs
    no channel named."""
    if args and irc.isChannel(args[0]) or msg.channel:
        getChannel(irc, msg, args, state)
        return
    served = [channel for channel in irc.state.channels
              if conf.get(conf.supybot.plugins.get(plugin).get("enable"),
                          channel=channel, network=irc.network)]
    if len(served) != 1:
        state.error(f"name the channel: {plugin} serves {', '.join(sorted(served))}" if served
                    else f"{plugin} serves no channel on {irc.network}", Raise=True)
    state.channel = served[0]
    state.args.append(served[0])


addConverter("servedChannel", _served_channel)


# The per-channel capability of ThreatNet administration (`#channel,threatnet`): what a
# channel's agent reports, forgets and whitelists reaches every agent's firewall, so it
# is granted only explicitly (`admin capability add <user> #channel,threatnet`), never by
# Limnoria's channel defaults (which allow any channel capability not taken away) nor
# by a bot-side `#channel,op` alone. The global `admin` capability covers every channel.
CAPABILITY = "threatnet"


def refuse(proxy, channel: str) -> None:
    """Fail the command (``proxy``: the command's irc or its converter state; not named
    ``irc``, which Limnoria's dynamic scope looks up): the caller may not administer
    ``channel``."""
    proxy.errorNoCapability(ircdb.makeChannelCapability(channel, CAPABILITY),
                          "(The global admin capability also does.)", Raise=True)


def may_administer(prefix: str, channel: str) -> bool:
    """Whether ``prefix`` holds the global admin capability or ``channel``'s ThreatNet one."""
    return ircdb.checkCapability(prefix, "admin") or ircdb.checkCapability(
        prefix, ircdb.makeChannelCapability(channel, CAPABILITY), ignoreChannelOp=True,
        ignoreDefaultAllow=True)


def _channel_admin(irc, msg, args, state):
    """After a channel converter: the caller may administer that channel."""
    if not may_administer(msg.prefix, state.channel):
        refuse(state, state.channel)


addConverter("channelAdmin", _channel_admin)

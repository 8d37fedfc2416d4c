"""Whether a channel line can address the bot at all, answered cheaply.

Limnoria's ``callbacks.addressed`` reads six channel-specific registry values per
call; Owner calls it for every channel line, which a real bot measured at ~140 µs of
its ~800 µs per line. Threat lines never address the bot, so the plugins answer
"cannot" from settings cached for a second and tag the message as ``addressed``
itself would (``""``): Owner and every other plugin then skip the work. Anything
that might address the bot is left to ``addressed``, so its rules stay the only ones.
"""
import supybot.conf as conf
import supybot.ircutils as ircutils

from threatnet_irc.clock import cached


def _settings(irc, channel):
    by = conf.supybot.reply.whenAddressedBy
    strings, chars, nicks, by_nick, at_end, always = (
        v.getSpecific(network=irc.network, channel=channel)()
        for v in (by.strings, by.chars, by.nicks, by.nick, by.nick.atEnd,
                  conf.supybot.reply.whenNotAddressed))
    lowered = tuple(ircutils.toLower(n) for n in [irc.nick, *nicks])
    return tuple(strings), chars, lowered, max(map(len, lowered)), by_nick, at_end, always


def may_address(irc, msg, cache):
    """False if the channel line ``msg`` cannot address the bot by any of Limnoria's
    rules (a prefix string or character, the bot's nick or one of
    reply.whenAddressedBy.nicks at the start, or with nick.atEnd at the end,
    reply.whenNotAddressed); it is then tagged ``addressed`` = "". ``cache`` (a dict
    the caller owns and may clear) keeps the settings per channel (clock.cached)."""
    done = msg.tagged("addressed")
    if done is not None:  # already worked out for this message
        return bool(done)
    strings, chars, nicks, longest, by_nick, at_end, always = cached(
        cache, (irc.network, msg.channel, irc.nick, "addressing"),
        lambda: _settings(irc, msg.channel))
    text = msg.args[1]
    if always or not text or text[0] in chars or (strings and text.startswith(strings)):
        return True
    # ASCII lowers character by character; other text (final sigma, ...) may not
    head = text[:longest] if text.isascii() else text
    if by_nick and ircutils.toLower(head).startswith(nicks):
        return True
    if at_end and ircutils.toLower(text).rstrip().endswith(nicks):
        return True
    msg.tag("addressed", "")
    return False

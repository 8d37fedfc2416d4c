"""Strict `wrap` converters for both plugins (Limnoria's built-in `ip` accepts inet_aton
forms like `10.1`). Each passes on the canonical text of what it parsed, or fails the
command with the parser's own short reason."""
from supybot.commands import addConverter

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

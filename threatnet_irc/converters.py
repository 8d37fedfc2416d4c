"""Strict `wrap` converters: Limnoria's built-in `ip` accepts inet_aton forms like `10.1`."""
from supybot.commands import addConverter

from threatnet.address import AddressError, format_ip, parse_ip, parse_network


def getThreatIp(irc, msg, args, state):
    """One strict IPv4/IPv6 address, passed on as its canonical text."""
    try:
        state.args.append(format_ip(parse_ip(args[0])))
    except AddressError as e:
        state.error(f"{args[0]!r} is not a valid IP address: {e}", Raise=True)
    del args[0]


def getThreatNetwork(irc, msg, args, state):
    """One strict CIDR network or single IP, passed on as its canonical text."""
    try:
        state.args.append(parse_network(args[0]).text)
    except AddressError as e:
        state.error(f"{args[0]!r} is not a valid network: {e}", Raise=True)
    del args[0]


addConverter("threatIp", getThreatIp)
addConverter("threatNetwork", getThreatNetwork)

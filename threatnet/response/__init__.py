"""Threat Response: what a host does about Verified Threats.

A ``ThreatResponse`` host feeds ``Threat`` values to responders, each on its own
worker thread (host.py). Responders, one module each:

- ``DnsblResponder`` (dnsbl.py): rbldnsd ``ip4set`` / ``ip6trie`` zone files.
- ``FirewallResponder`` (firewall.py): nftables sets with per-element timeouts.
- ``CommandResponder`` (command.py): an operator's program per threat.
- ``ChangesResponder`` (changes.py): a numbered ``ChangeLog`` that followers read
  (the HTTP API's stream).

Each takes ``filters`` (threatnet.filter.NetworkFilter) to act only on some
networks, e.g. an ISP's own customer ranges.
"""
from threatnet.response.changes import ChangeLog, ChangesResponder
from threatnet.response.command import CommandResponder
from threatnet.response.dnsbl import DnsblResponder
from threatnet.response.firewall import FirewallResponder
from threatnet.response.host import ResponderStatus, ThreatResponse
from threatnet.response.responder import Responder, ResponderError, Threat

__all__ = ["ChangeLog", "ChangesResponder", "CommandResponder", "DnsblResponder",
           "FirewallResponder", "Responder", "ResponderError", "ResponderStatus", "Threat",
           "ThreatResponse"]

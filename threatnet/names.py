"""IRC names (channels, services accounts) compared the way the server compares them.

A server announces its rule in ISUPPORT ``CASEMAPPING``; services fold account names
by the same rule. ``rfc1459`` (the IRC default, and what InspIRCd, Atheme and ngIRCd
use) also folds ``[]\\~`` to ``{}|^``, so the account ``[Bot]`` is ``{bot}``;
``strict-rfc1459`` leaves ``~`` and ``^`` apart; ``ascii`` folds letters only;
``rfc7613`` folds Unicode (its PRECIS profile, approximated by NFC and casefold).
An unknown rule is treated as ``rfc1459``. Every comparison of a channel or an
account name in ThreatNet goes through ``fold``: trust rules, the whitelist,
offenders and the Guard must never disagree on who someone is.
"""
from __future__ import annotations

import string
import unicodedata

RFC1459 = "rfc1459"

_TABLES = {
    "ascii": str.maketrans(string.ascii_uppercase, string.ascii_lowercase),
    "rfc1459": str.maketrans(string.ascii_uppercase + "[]\\~", string.ascii_lowercase + "{}|^"),
    "strict-rfc1459": str.maketrans(string.ascii_uppercase + "[]\\",
                                    string.ascii_lowercase + "{}|"),
}


def fold(name: str, casemapping: str | None = RFC1459) -> str:
    """The case-insensitive form of a channel or account name under ``casemapping``
    (a server's ISUPPORT CASEMAPPING value; None or unknown: rfc1459)."""
    table = _TABLES.get(casemapping or RFC1459)
    if table is not None:
        return name.translate(table)
    if casemapping == "rfc7613":
        return unicodedata.normalize("NFC", name).casefold()
    return name.translate(_TABLES[RFC1459])

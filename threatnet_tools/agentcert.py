"""Make a ThreatNet agent's TLS client certificate, for SASL EXTERNAL (CertFP).

    threatnet-agentcert CERTFILE --account NAME [--network NET]
        [--channel CHAN] [--bot NICK] [--server-fingerprint FP] [--days N] [--force]
    threatnet-agentcert CERTFILE --show   (the fingerprint of an existing file)

Writes a new ECDSA P-256 key and a self-signed certificate to CERTFILE, both in one PEM
file (mode 0600; an existing file is kept unless --force), then prints what the operator
does next: register the certificate's SHA-256 fingerprint to the agent's services
account (NickServ CERT ADD), give the agent's Limnoria bot the certificate (TLS + SASL
EXTERNAL), and whitelist the account on the channel bot. The Guard's `account:NAME`
whitelist entry then means "holds a certificate registered to NAME": no password is
stored on the agent.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from threatnet_tools import tlscert


def instructions(path: Path, fingerprint: str, account: str, network: str, channel: str,
                 bot: str, server_fingerprint: str = "") -> str:
    """The operator's next steps for the certificate at ``path``."""
    net = f"supybot.networks.{network}"
    pin = (f"{net}.ssl.serverFingerprints: {server_fingerprint}" if server_fingerprint else
           f"{net}.ssl.serverFingerprints: <SHA-256 of the server's certificate>   (or a CA: "
           f"{net}.ssl.authorityCertificate)")
    return f"""\
fingerprint (SHA-256): {fingerprint}

1. Register it to the services account {account} (once, logged in as {account}):
     /msg NickServ CERT ADD {fingerprint}

2. Give the agent's Limnoria bot the certificate (in its registry, with the bot stopped,
   or with the Config plugin and a reconnect):
     {net}.ssl: True
     {pin}
     {net}.certfile: {path}
     {net}.sasl.mechanisms: EXTERNAL
     {net}.sasl.required: True
   The bot then connects over TLS and is logged in to {account} by its certificate
   (SASL EXTERNAL): no password on the agent.

3. Whitelist the account on the channel bot (as its owner):
     /msg {bot} tn whitelist add {channel} account:{account}
   Only a client holding this certificate (or another one registered to {account}) is
   voiced. To revoke it: /msg NickServ CERT DEL {fingerprint}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="threatnet-agentcert",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("certfile", type=Path, help="where to write the certificate and key "
                        "(PEM, mode 0600)")
    parser.add_argument("--account", default="", help="the agent's services account")
    parser.add_argument("--name", help="the certificate's common name (default: the account)")
    parser.add_argument("--network", default="threatnet",
                        help="the network's name in the bot's registry (default threatnet)")
    parser.add_argument("--channel", default="#threatnet")
    parser.add_argument("--bot", default="threatnet", help="the channel bot's nick")
    parser.add_argument("--server-fingerprint", default="",
                        help="the server certificate's SHA-256 fingerprint to pin")
    parser.add_argument("--days", type=int, default=825, help="validity (default 825 days)")
    parser.add_argument("--force", action="store_true", help="replace an existing CERTFILE")
    parser.add_argument("--show", action="store_true",
                        help="print the fingerprint of an existing CERTFILE, make nothing")
    args = parser.parse_args(argv)

    path = args.certfile.resolve()
    account = args.account
    server_fp = args.server_fingerprint.replace(":", "").lower()
    if server_fp and not tlscert.is_fingerprint(server_fp):
        parser.error("--server-fingerprint: expected 64 hex digits (SHA-256)")
    if args.show:
        try:
            fingerprint = tlscert.file_fingerprint(path)
        except (OSError, ValueError) as e:
            parser.error(f"{path}: {e}")
    else:
        if not account:
            parser.error("--account NAME is required (the agent's services account)")
        if path.exists() and not args.force:
            parser.error(f"{path} exists; --force replaces it (the old fingerprint then "
                         "no longer logs in: CERT ADD the new one), --show prints it")
        if not 1 <= args.days <= 3650:
            parser.error("--days must be 1-3650")
        fingerprint = tlscert.client_certificate(path, args.name or account, days=args.days)
        print(f"certificate and key written to {path} (mode 0600)")
    print(instructions(path, fingerprint, account or "<account>", args.network, args.channel,
                       args.bot, server_fp), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

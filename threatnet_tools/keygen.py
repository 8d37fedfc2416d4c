"""Generate a ThreatNet agent's signing key (Ed25519) for signed threat lines.

    threatnet-keygen KEYFILE [--key-id ID] [--comment TEXT] [--force]

Writes the private key to KEYFILE (mode 0600; an existing file is kept unless
--force), then prints the key id and the key ring line that the operators of
listening agents add to their key ring file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from threatnet.signature import (check_key_id, derive_key_id, generate_key, public_line,
                                 write_private_key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="threatnet-keygen",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("keyfile", type=Path, help="where to write the private key")
    parser.add_argument("--key-id", help="1-16 characters A-Z a-z 0-9 _ - "
                        "(default: derived from the public key)")
    parser.add_argument("--comment", default="", help="note for the key ring line, "
                        "e.g. the agent's nick and network")
    parser.add_argument("--force", action="store_true", help="replace an existing KEYFILE")
    args = parser.parse_args(argv)

    if args.keyfile.exists() and not args.force:
        parser.error(f"{args.keyfile} exists; --force replaces it (and its key)")
    key = generate_key()
    try:
        key_id = check_key_id(args.key_id) if args.key_id else derive_key_id(key.public_key())
    except ValueError as e:
        parser.error(str(e))
    if "\n" in args.comment or "\r" in args.comment:
        parser.error("--comment must be one line")
    write_private_key(args.keyfile, key_id, key)
    print(f"key id: {key_id}")
    print(f"private key written to {args.keyfile} (mode 0600)")
    print("add this line to the key ring of every listening agent:")
    print(public_line(key_id, key.public_key(), args.comment))
    return 0


if __name__ == "__main__":
    sys.exit(main())

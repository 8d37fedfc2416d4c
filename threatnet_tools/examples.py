"""Write the example configuration an operator starts from.

    threatnet-examples DIR [--force]

Copies the documented examples (the plugins' registry settings, the whitelist, the
fail2ban action, the nftables ruleset, rbldnsd's defaults) into DIR, in the layout of the
source tree's conf/ that the documentation names (DIR/fail2ban/action.d/threatnet.conf).
Existing files are kept unless --force: then nothing is written at all.
"""
from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from threatnet.atomic import atomic_write

# The operator's examples in conf/ (setup.cfg installs the same list as the
# threatnet_examples package; conf/'s other files are the lab's templates).
EXAMPLES = (
    "ThreatNetCache.conf",
    "ThreatNetGuard.conf",
    "whitelist.yaml",
    "fail2ban/action.d/threatnet.conf",
    "nftables/threatnet.nft",
    "rbldnsd/rbldnsd.default",
)
_CHECKOUT = Path(__file__).resolve().parent.parent / "conf"


def read(name: str) -> str:
    """An example's text: the checkout's conf/ when run from one, else the installed copy."""
    if (_CHECKOUT / EXAMPLES[0]).is_file():
        return (_CHECKOUT / name).read_text(encoding="utf-8")
    return resources.files("threatnet_examples").joinpath(name).read_text(encoding="utf-8")


def write(directory: Path, force: bool = False) -> list[Path]:
    """Write every example under ``directory``; FileExistsError (nothing written) if any
    is there already and not ``force``."""
    targets = [directory / name for name in EXAMPLES]
    present = [str(path) for path in targets if path.exists()]
    if present and not force:
        raise FileExistsError(f"{', '.join(present)} exist(s); --force replaces them")
    texts = [read(name) for name in EXAMPLES]  # all read before anything is written
    for path, text in zip(targets, texts):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="threatnet-examples",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="where to write them (created if missing)")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    if args.directory.exists() and not args.directory.is_dir():
        parser.error(f"{args.directory} is not a directory")
    try:
        written = write(args.directory, args.force)
    except FileExistsError as e:
        parser.error(str(e))
    except OSError as e:
        parser.error(f"cannot write to {args.directory}: {e.strerror or e}")
    for path in written:
        print(path)
    print("See ThreatNetCache.conf and ThreatNetGuard.conf for the bot's registry settings; "
          "each file says where it goes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

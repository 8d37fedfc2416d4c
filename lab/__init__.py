"""The lab: real IRC servers, services and Limnoria bots on this machine, and a raw IRC client.

Used by the integration tests (tests/integration/), the benchmarks (bench/) and `make run` /
`make agent` (scripts/threatnet_run.py). Not part of the installed package: import it from
the repository root (pytest's ``pythonpath``, ``python -m bench.NAME``).

- ``lab.process``: child processes in their own process groups, stopped together; ports.
- ``lab.config``: conf/ templates rendered into a run directory, fresh secrets.
- ``lab.servers``: ngIRCd (alone or linked), InspIRCd + Atheme services (accounts, TLS).
- ``lab.bots``: Limnoria bots (real ``supybot`` processes) and their registry settings.
- ``lab.ircclient``: a small IRC client that registers, negotiates SASL and waits for lines.
- ``lab.limnoria``: Limnoria in test mode in this process (importing it opens a throw-away
  registry), for the plugin tests and the fuzz harness.
- ``lab.fuzz``: the fuzz harness, both plugins in one in-process bot fed fuzzed raw lines.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: conf/, plugins/, run/

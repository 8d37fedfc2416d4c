"""The lab: real IRC servers, services and Limnoria bots on this machine, and a raw IRC client.

Used by the integration tests (tests/integration/), the benchmarks (bench/) and `make run` /
`make agent` (scripts/threatnet_run.py). Not part of the installed package: import it from
the repository root (pytest's ``pythonpath``, ``python -m bench.NAME``).

- ``lab.stack``: servers, services and bots as child processes, stopped together.
- ``lab.ircclient``: a small IRC client that registers, negotiates SASL and waits for lines.
"""

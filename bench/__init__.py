"""Benchmarks: each prints figures and asserts nothing.

Run one from the repository root as a module, e.g. ``.venv/bin/python -m bench.core``;
its docstring gives its options. They import ``threatnet``, the lab and each other as
packages from there.
"""

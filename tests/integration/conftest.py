"""Fixtures for the integration tests: real IRC servers, real supybot processes, raw clients.

Servers start once per session; every bot and client a test makes is stopped when the
test ends, and atexit (plus a parent-death signal) stops anything left over. Helpers are
in harness.py, the stack itself in the lab (lab/).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import Lab
from lab.process import StackError, require_binary, stop_all
from lab.servers import InspIRCdAtheme, NgIRCd


def _need(binary: str) -> None:
    try:
        require_binary(binary)
    except StackError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stack")
    yield path
    stop_all()


@pytest.fixture(scope="session")
def ngircd(stack_dir):
    _need("ngircd")
    server = NgIRCd(stack_dir / "ngircd").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def inspircd(stack_dir):
    _need("inspircd")
    _need("atheme-services")
    server = InspIRCdAtheme(stack_dir / "inspircd").start()
    yield server
    server.stop()


@pytest.fixture
def lab_factory(request, stack_dir):
    labs = []
    tag = "".join(ch for ch in request.node.name if ch.isalnum())[-10:].lower()

    def make(server) -> Lab:
        root = stack_dir / "bots" / f"{request.node.name[:60]}-{len(labs)}"
        if root.exists():
            shutil.rmtree(root)
        lab = Lab(server, root, f"{tag}{len(labs)}")
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.close()

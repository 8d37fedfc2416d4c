"""The lab's child processes, and the loopback ports they listen on.

Every process runs in its own process group, is remembered in `LIVE`, and is stopped by
`stop_all()` (registered with atexit; callers also stop what they start), the last
started first, each with its own signal: clients (bots) say goodbye while their
servers still listen. A parent-death signal stops them even when the lab is killed.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence

LOCALHOST = "127.0.0.1"


class StackError(RuntimeError):
    """A process failed to start or to become ready; the message tells where its log is."""


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """Whether a server could listen on the port (connections in TIME-WAIT do not count:
    servers set SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    with socket.socket() as s:  # a listener on another address of the port still answers
        s.settimeout(0.2)
        return s.connect_ex((host, port)) != 0


def wait_port(host: str, port: int, timeout: float, proc: Optional["Proc"] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise StackError(f"nothing listens on {host}:{port} after {timeout} s"
                     + (f" (log: {proc.log_path})" if proc else ""))


def venv_script(name: str) -> str:
    """A console script next to the running interpreter (the venv's), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise StackError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def require_binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()),
        None)
    if not found:
        raise StackError(f"{name} is not installed (run `make setup`)")
    return found


LIVE: dict["Proc", None] = {}  # in the order they started
_PR_SET_PDEATHSIG = 1
try:  # looked up here: the child between fork and exec must not import anything
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started us dies, even by
    SIGKILL (Linux; a server that then changes user, like ngIRCd as root, loses it)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Proc:
    """A child process in its own process group, output appended to `log_path`."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *,
                 cwd: Optional[Path] = None, env: Optional[Mapping[str, str]] = None,
                 umask: int = -1, stop_signal: int = signal.SIGTERM,
                 stop_timeout: float = 2.0):
        self.name = name
        self.log_path = log_path
        # What stop_all() sends, and how long it waits before SIGKILL.
        self.stop_signal, self.stop_timeout = stop_signal, stop_timeout
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                list(argv), cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent if _prctl and sys.platform == "linux" else None,
                env=dict(env) if env is not None else None, umask=umask)
        LIVE[self] = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            tail = self.log_tail()
            raise StackError(f"{self.name} exited with {self.popen.returncode}; "
                             f"log {self.log_path}:\n{tail}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> Optional[int]:
        """Send `sig` to the process group, wait, then SIGKILL the group."""
        try:
            if self.alive():
                try:
                    os.killpg(self.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:  # children left in the group, or a process that ignored `sig`
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.popen.wait(5)
            return self.popen.returncode
        finally:
            LIVE.pop(self, None)


def stop_all() -> None:
    """Stop every live process, the last started first, with its own signal."""
    for proc in reversed(list(LIVE)):
        proc.stop(proc.stop_signal, proc.stop_timeout)


atexit.register(stop_all)

"""Command responder: run an operator's program for each threat.

The command is an argv list; the threat is appended as separate arguments
(``IP COMMENT REPORTER TTL``), never pasted into a shell string, so channel text
cannot become shell syntax. End the argv with ``--`` if the program parses
options, since a comment may start with ``-``. Programs run at most
``max_procs`` at a time, each killed (with its process group) after
``timeout`` seconds; every exit status is logged. A program that fails is not
run again for that threat (it may have done part of its work); a missing
program is an error the host retries with backoff.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from threatnet.response.responder import KeyFilter, Responder, ResponderError, Threat
from threatnet.text import clean_text

log = logging.getLogger("threatnet.response.command")

_OUTPUT_SHOWN = 300  # characters of a failing program's stderr put in the log


class CommandResponder(Responder):
    """Runs ``argv + [ip, comment, reporter, ttl]`` for each added threat and, if
    ``expire_argv`` is given, ``expire_argv + [ip]`` for each expired one.

    ``ttl`` is the whole seconds of block time left. A resync runs the command for
    threats it has not run for yet (so after a restart, for each restored threat
    once) and forgets the rest; it never runs ``expire_argv``.
    """

    name = "command"

    def __init__(self, argv: Sequence[str], *, expire_argv: Sequence[str] | None = None,
                 max_procs: int = 4, timeout: float = 30.0, env: dict[str, str] | None = None,
                 interval: float = 0.0, name: str | None = None,
                 filters: Iterable[KeyFilter] = ()) -> None:
        super().__init__(name=name, filters=filters, interval=interval)
        if isinstance(argv, str) or not argv:
            raise ValueError("command must be a non-empty list of arguments, not a string")
        if expire_argv is not None and (isinstance(expire_argv, str) or not expire_argv):
            raise ValueError("expire command must be a non-empty list of arguments")
        if max_procs < 1:
            raise ValueError("max_procs must be at least 1")
        self.argv = list(argv)
        self.expire_argv = list(expire_argv) if expire_argv is not None else None
        self.timeout = timeout
        self.env = env
        self._pool = ThreadPoolExecutor(max_workers=max_procs,
                                        thread_name_prefix=f"threatnet-{self.name}")
        self._done: dict[int, float] = {}  # key -> expires_at the command last ran for

    def update(self, added: Sequence[Threat], removed: Sequence[Threat], now: float) -> None:
        jobs = [self._add_args(t, now) for t in added if t.expires_at > now]
        if self.expire_argv is not None:
            jobs += [self.expire_argv + [t.ip] for t in removed]
        self._run_all(jobs)
        for threat in removed:
            self._done.pop(threat.key, None)
        for threat in added:
            self._done[threat.key] = threat.expires_at

    def resync(self, threats: Sequence[Threat], now: float) -> None:
        new = [t for t in threats if self._done.get(t.key) != t.expires_at and t.expires_at > now]
        self._run_all([self._add_args(t, now) for t in new])
        self._done = {t.key: t.expires_at for t in threats}

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- running

    def _add_args(self, threat: Threat, now: float) -> list[str]:
        ttl = max(1, math.ceil(threat.expires_at - now))
        return self.argv + [threat.ip, clean_text(threat.comment), clean_text(threat.reporter),
                            str(ttl)]

    def _run_all(self, jobs: list[list[str]]) -> None:
        if not jobs:
            return
        for program in {job[0] for job in jobs}:
            _check_program(program)
        list(self._pool.map(self._run, jobs))

    def _run(self, argv: list[str]) -> None:
        """Run one program to completion or timeout; log how it ended."""
        shown = " ".join(argv[:len(self.argv) + 1])
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=self.env, start_new_session=True)
        except OSError as e:
            log.error("%s: cannot run %s: %s", self.name, argv[0], e.strerror or e)
            return
        try:
            _, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.communicate(timeout=5)  # a daemonised grandchild may hold the pipe
            except subprocess.TimeoutExpired:
                pass
            log.error("%s: %s killed after %s s timeout", self.name, shown, f"{self.timeout:g}")
            return
        if proc.returncode == 0:
            log.debug("%s: %s exited 0", self.name, shown)
        else:
            tail = err.decode(errors="replace").strip()[-_OUTPUT_SHOWN:]
            log.warning("%s: %s exited with status %s%s", self.name, shown, proc.returncode,
                        f": {tail}" if tail else "")


def _check_program(program: str) -> None:
    """Raise ResponderError unless ``program`` can be run (found and executable)."""
    path = shutil.which(program) if os.sep not in program else program
    if path is None or not os.path.exists(path):
        raise ResponderError(f"{program}: command not found")
    if not os.access(path, os.X_OK) or os.path.isdir(path):
        raise ResponderError(f"{program}: permission denied (not an executable file)")

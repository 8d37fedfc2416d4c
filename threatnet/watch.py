"""Feed watch: know the moment a feed's log file is written, instead of polling for it.

Linux inotify, through ``inotify_simple`` (a thin ctypes wrapper, maintained, in
Debian as python3-inotify-simple): it has no thread of its own and hands out the
inotify file descriptor, so the agent puts that descriptor in the select() of the
loop it already runs and reads a line within milliseconds of its write, on the same
thread as everything else (the core is not thread-safe). ``watchdog`` would add an
observer thread per watch and an event object per write; ``pyinotify`` is
unmaintained.

Each feed's *directory* is watched, not the file: a rotated file is renamed and a
new one created under the old name (``tail -F``), and a directory watch sees both
the writes to the renamed file and the new one, where a watch on the file would
follow the old inode only. A change to a name that starts with a watched file's
name (``auth.log``, ``auth.log.1``, ``auth.log-20261204``) counts as a change to the
feed; every other name in the directory is ignored.

Where inotify cannot be had (not Linux, ``inotify_simple`` missing, the per-user
instance or watch limit reached) ``FeedWatch.open()`` says why and the feeds are
polled as before (``pollInterval``). The poll also stays as a safety net while
watching: a file rotated into another directory, or a directory created after
the watch was tried, is still read within a poll interval.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

try:
    from inotify_simple import INotify, flags
except ImportError:  # not Linux, or the library is not installed: polling only
    INotify = None  # type: ignore[assignment,misc]

MASK = 0
if INotify is not None:
    MASK = (flags.MODIFY | flags.CREATE | flags.MOVED_TO | flags.MOVED_FROM | flags.DELETE
            | flags.CLOSE_WRITE)


class FeedWatch:
    """Watches the directories of some files; ``fileno()`` becomes readable when one
    of them may have changed, and ``changed()`` then says which."""

    def __init__(self, inotify: INotify) -> None:
        self._inotify = inotify
        self._dirs: dict[str, int] = {}  # directory -> watch descriptor
        self._names: dict[int, set[str]] = {}  # watch descriptor -> file names in it
        self.errors: dict[str, str] = {}  # path -> why its directory is not watched

    @classmethod
    def open(cls) -> FeedWatch | str:
        """A FeedWatch, or why there can be none (then poll)."""
        if INotify is None:
            return "inotify is not available (not Linux, or inotify_simple not installed)"
        try:
            return cls(INotify(nonblocking=True))
        except OSError as e:
            return f"cannot use inotify: {e.strerror or e}"

    def fileno(self) -> int:
        return self._inotify.fileno()

    def watch(self, paths: Iterable[str]) -> None:
        """Watch exactly the directories of ``paths`` from now on. A directory that
        cannot be watched (missing, the watch limit) is tried again on the next call;
        why is in ``errors``."""
        wanted: dict[str, set[str]] = {}
        for path in paths:
            directory, name = os.path.split(path)
            # one key per directory however it is spelt: the kernel gives one watch
            directory = os.path.realpath(directory)
            wanted.setdefault(directory, set()).add(name)
        for directory in set(self._dirs) - set(wanted):
            wd = self._dirs.pop(directory)
            self._names.pop(wd, None)
            try:
                self._inotify.rm_watch(wd)
            except OSError:  # the directory is gone: the kernel dropped the watch
                pass
        self.errors = {}
        for directory, names in wanted.items():
            wd = self._dirs.get(directory)
            if wd is None:
                try:
                    wd = self._inotify.add_watch(directory, MASK)
                except OSError as e:
                    for name in names:
                        self.errors[os.path.join(directory, name)] = e.strerror or str(e)
                    continue
                self._dirs[directory] = wd
            self._names[wd] = names

    def changed(self) -> bool:
        """Read every pending event (never blocks): whether a watched file, or one
        rotated from it, changed; also True when the kernel's queue overflowed or a
        watched directory went away, as something may have been missed."""
        hit = False
        for event in self._inotify.read(timeout=0):
            if event.mask & flags.Q_OVERFLOW:
                hit = True
                continue
            if event.mask & flags.IGNORED:  # a watch we dropped, or its directory went
                hit |= self._forget(event.wd)
                continue
            names = self._names.get(event.wd, ())
            if any(event.name.startswith(name) for name in names):
                hit = True
        return hit

    def _forget(self, wd: int) -> bool:
        """Drop a watch the kernel dropped; whether it was still ours."""
        ours = self._names.pop(wd, None) is not None
        for directory, known in list(self._dirs.items()):
            if known == wd:
                del self._dirs[directory]
        return ours

    def close(self) -> None:
        self._inotify.close()
        self._dirs.clear()
        self._names.clear()

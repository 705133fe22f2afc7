"""One daemon per database: an OS file lock beside the SQLite file, held for the daemon's whole life.

SQLite lets two processes write the same file, so two `prober run` on one database would both probe
every check, both open incidents and both page. `flock` on `<db>.lock` makes the second one stop at
start with the first one's pid. The kernel releases the lock when the holder dies, even by `kill -9`, so a
crash never leaves a stale lock behind (the file itself stays; its content is only informative).

This module never deletes the lock file: deleting it would let a third process lock a new inode while
the second still holds the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from prober.store.schema import StoreError

__all__ = ["DatabaseInUse", "DatabaseLock", "lock_database"]


class DatabaseInUse(StoreError):
    """Another live prober holds this database."""


class DatabaseLock:
    """A held lock; `release()` (or process exit) gives it up."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def lock_path(db: Path) -> Path:
    resolved = db.resolve()
    return resolved.with_name(resolved.name + ".lock")


def lock_database(db: Path) -> DatabaseLock:
    """Take the database's lock or raise DatabaseInUse naming the holder's pid."""
    path = lock_path(db)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        who = f"pid {holder}" if holder else "pid unknown"
        raise DatabaseInUse(f"database {db} is in use by another prober ({who})") from None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock {path}: {exc.strerror or exc}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DatabaseLock(fd, path)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

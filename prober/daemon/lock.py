"""One daemon per database: an OS file lock on `<db>.lock`, beside the database file.

`DatabaseLock(db).acquire()` takes an exclusive `flock` on the lock file without waiting and writes the
holder's pid into it. The kernel releases the lock when the process exits, however it exits (`kill -9`
included), so a crash never leaves a stale lock behind; the file itself stays and is reused. A second
prober on the same database gets DatabaseInUseError naming the holder's pid.

It must never delete the lock file (another process may be about to lock it) and never wait for a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from prober.store.schema import StoreError

__all__ = ["DatabaseInUseError", "DatabaseLock", "lock_path"]


class DatabaseInUseError(StoreError):
    """Another prober holds the lock of this database."""


def lock_path(db: Path) -> Path:
    """`<db>.lock` beside the real file: symlinks are resolved, so `--db link.db` (a symlink to prober.db,
    or a path through a symlinked directory) takes the same lock as `--db prober.db`. (Hard links are two
    names for one file that nothing can map back to one lock; do not hard-link a database.)"""
    real = db.resolve()
    return real.with_name(real.name + ".lock")


class DatabaseLock:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = lock_path(db)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise DatabaseInUseError (another prober) / StoreError (cannot create the file)."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {self.path} for the database {self.db}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DatabaseInUseError(
                f"database {self.db} is in use by another prober (pid {holder or 'unknown'})"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.path} for the database {self.db}: {exc}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the file stays). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None

"""The write lock of one SQLite file, shared by the threads of a process and by every server process.

SQLite's own lock answers a second writer with SQLITE_BUSY, and its busy handler then retries with
sleeps of up to 100 ms: under `serve --processes 2` a writer of one process would sleep long after the
other process's writer had committed (measured: a second process made the server slower, not faster).
Here writers queue instead: first on a thread lock (the threads of one process), then on an exclusive
`flock` of `<database>-writer.lock` (the processes), both of which wake a waiter as soon as the holder
lets go. BEGIN IMMEDIATE then finds the database's write lock free, so SQLite's busy handler only runs
for a writer that does not take this lock (another program on the same file), as before.

`flock` locks belong to an open file description, which a forked child shares with its parent: each
process therefore opens the lock file itself, on its first write after the fork. Re-entrant within a
thread (a nested write still meets SQLite's busy timeout, as with a plain RLock), so the file lock is
taken only by the outermost acquisition. Where `fcntl` does not exist (Windows) it is the thread lock
alone.
"""

from __future__ import annotations

import os
import threading

try:
    import fcntl
except ImportError:  # Windows: one process per file
    fcntl = None


class WriterLock:
    """Exclusive writer of a SQLite file across threads and processes (a context manager)."""

    def __init__(self, db_path: str | None):
        self.path = db_path + "-writer.lock" if db_path and fcntl is not None else None
        self._thread_lock = threading.RLock()
        self._depth = 0  # changed only by the thread holding _thread_lock
        self._fd: int | None = None
        self._pid: int | None = None

    def __enter__(self) -> "WriterLock":
        self._thread_lock.acquire()
        if self._depth == 0 and self.path is not None:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self.path is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _file(self) -> int:
        if self._pid != os.getpid():
            # The parent's descriptor (if any) is left alone: closing it would not drop the parent's lock
            # anyway, and the parent may still be using it.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = self._pid = None

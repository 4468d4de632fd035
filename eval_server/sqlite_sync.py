"""Group commit for a SQLite file in WAL mode: every acknowledged write is on disk, with one fsync
shared by the writers that committed while the previous one ran.

With `synchronous=FULL` SQLite fsyncs the WAL inside every COMMIT, while the transaction still holds
the database's write lock (and `Database._write_lock`): writers then queue behind each other's fsyncs,
so one file takes at most 1/fsync-time writes per second whatever the CPU (3-8 ms per fsync on a
shared virtual disk: 120-300 writes/s). Instead the connection runs `synchronous=NORMAL`, under which
a COMMIT writes the WAL into the OS's page cache without an fsync (enough for a killed process, not
for a power cut), and `Database.write` calls `WalSync.sync()` after the commit and after releasing
the write lock, before returning to its caller: that waits for an fsync of the WAL file that started
after this commit, starting one if none is running. Writers that commit during one fsync share the
next, so the fsync no longer caps the write rate, and nothing is acknowledged before its fsync: the
same promise as FULL (an acknowledged answer survives a power cut or a kernel crash).

What NORMAL still syncs itself (SQLite's documentation of PRAGMA synchronous, WAL mode): the WAL
before each checkpoint, the database file after each completed checkpoint, the WAL header when the
WAL is reused after a checkpoint. A WAL file that is gone was checkpointed into the database file
and removed, so its commits are already on disk. A WAL newly created also has its directory entry
synced, as SQLite does on the first sync of a new WAL.

SQLite holds no POSIX lock on the `-wal` file (its locks are on the database and `-shm` files), so
opening and closing a descriptor of it here cannot drop one of SQLite's locks.
"""

from __future__ import annotations

import os
import threading


class WalSync:
    """fsync of `<database>-wal`, shared by the writers waiting for it."""

    def __init__(self, db_path: str):
        self.path = db_path + "-wal"
        self._dir = os.path.dirname(os.path.abspath(db_path)) or "."
        self._cv = threading.Condition()
        self._started = 0  # number of fsyncs started
        self._done = 0  # the latest started fsync that has finished
        self._running = False
        self._inode: int | None = None

    def sync(self) -> None:
        """Return once an fsync of the WAL that started after this call has finished."""
        with self._cv:
            # Whatever was committed before this call is in the page cache; an fsync that starts
            # from here on covers it (one already running may have started before the commit).
            wanted = self._started + 1
            while self._done < wanted:
                if self._running:
                    self._cv.wait()
                    continue
                self._running = True
                self._started += 1
                mine = self._started
                self._cv.release()
                ok = False
                try:
                    self._fsync()
                    ok = True
                finally:
                    self._cv.acquire()
                    self._running = False
                    if ok:
                        self._done = mine
                    # On failure, waiters try again (and the caller's error propagates).
                    self._cv.notify_all()

    def _fsync(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed into the database file (synced by SQLite) and removed
        try:
            os.fsync(fd)
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        if inode != self._inode:
            # A WAL this process has not synced before (new, or recreated): make its name durable too.
            self._fsync_dir()
            self._inode = inode

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self._dir, os.O_RDONLY)
        except OSError:
            return  # a directory cannot be opened for fsync here (Windows): the file's fsync is all
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

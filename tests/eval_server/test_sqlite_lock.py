"""Writers of several server processes on one SQLite file queue on the writer lock
(eval_server/sqlite_lock.py), not on SQLite's sleep-polling busy handler."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading

import pytest
from sqlalchemy import event, select

from eval_server.db import Database, Meta
from eval_server.sqlite_lock import WriterLock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")


def _hold_a_write(db_file: str, held, release) -> None:
    db = Database(db_file)
    with db.write() as s:
        s.add(Meta(key="from-child", value="1"))
        s.flush()  # the database's write lock is now held by this process's open transaction
        held.set()
        release.wait(30)
    db.dispose()


def test_a_writer_of_another_process_waits_for_the_lock_instead_of_failing(tmp_path):
    """Another process holds a write transaction; this process's write, with SQLite's busy handler
    switched off (busy_timeout 0: SQLite alone answers 'database is locked' at once), still goes
    through once the other commits, because it queued on the writer lock first."""
    db_file = str(tmp_path / "two.sqlite")
    Database(db_file).setup()
    ctx = mp.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_a_write, args=(db_file, held, release))
    child.start()
    db = Database(db_file)
    event.listen(db.engine, "connect", lambda conn, _r: conn.execute("PRAGMA busy_timeout=0"))
    try:
        assert held.wait(60), "the child never opened its write"
        # Let the child commit a moment after this write has started waiting.
        threading.Timer(0.3, release.set).start()
        with db.write() as s:
            s.add(Meta(key="from-parent", value="2"))
        with db.read() as s:
            keys = set(s.scalars(select(Meta.key).where(Meta.key.like("from-%"))))
        assert keys == {"from-child", "from-parent"}
    finally:
        release.set()
        child.join(30)
        db.dispose()
    assert child.exitcode == 0


def test_a_forked_child_does_not_share_its_parents_file_lock(tmp_path):
    """flock belongs to an open file description, which fork shares: the child must open its own,
    or it would 'hold' the lock while the parent does."""
    import fcntl

    lock = WriterLock(str(tmp_path / "f.sqlite"))
    with lock:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: is the lock free for it? (it must not be)
            os.close(r)
            fd = os.open(lock.path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(w, b"free")
            except BlockingIOError:
                os.write(w, b"held")
            # And the lock's own path after the fork: a fresh descriptor, not the parent's.
            own = lock._file()
            os.write(w, b" own" if lock._pid == os.getpid() and own is not None else b" shared")
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        answer = os.read(r, 64).decode()
        os.close(r)
    assert answer == "held own"
    lock.close()


def test_the_lock_is_reentrant_and_released_only_by_the_outermost_exit(tmp_path):
    import fcntl

    lock = WriterLock(str(tmp_path / "r.sqlite"))

    def free_for_another_description() -> bool:
        fd = os.open(lock.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
    with lock:
        with lock:
            pass
        assert not free_for_another_description()  # the inner exit kept the outer's lock
    assert free_for_another_description()
    lock.close()


def test_writes_of_one_process_are_unchanged_without_fcntl(tmp_path, monkeypatch):
    """Where fcntl does not exist (Windows) the lock is the thread lock alone and writes work."""
    from eval_server import sqlite_lock

    monkeypatch.setattr(sqlite_lock, "fcntl", None)
    lock = WriterLock(str(tmp_path / "w.sqlite"))
    assert lock.path is None
    with lock:
        with lock:
            pass
    assert not (tmp_path / "w.sqlite-writer.lock").exists()

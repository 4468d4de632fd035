"""Statements that are each a transaction of their own (eval_server/one_statement.py, `Database.single`):
on SQLite the write lock covers exactly one driver call, the write is committed before the fsync that
acknowledges it, a failure releases everything, and both backends read and write alike."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading

import pytest
from sqlalchemy import bindparam, event, insert, select, update

from eval_server import sqlite_sync
from eval_server.db import Database, Meta
from eval_server.one_statement import SqliteOneStatement, StatementCache
from tests.helpers.server import db_url  # noqa: F401  (fixture: both backends)

_M = Meta.__table__
INSERT = insert(_M).values(key=bindparam("k"), value=bindparam("v"))
# A guarded update with a literal of its own in the WHERE clause, as a submit's store has.
GUARDED = update(_M).where(_M.c.key == bindparam("k"), _M.c.value == "1").values(value=bindparam("v"))
READ = select(_M.c.key, _M.c.value).where(_M.c.key == bindparam("k"))


class _RecordingLock:
    """Wraps a Database's write lock and says whether it is held."""

    def __init__(self, inner):
        self.inner = inner
        self.held = False

    def __enter__(self):
        self.inner.__enter__()
        self.held = True
        return self

    def __exit__(self, *exc):
        self.held = False
        return self.inner.__exit__(*exc)


def _free(lock) -> bool:
    """Whether another thread can take the write lock now (nobody holds it)."""
    got: list[bool] = []

    def probe():
        got.append(lock._thread_lock.acquire(blocking=False))
        if got[0]:
            lock._thread_lock.release()
    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return got[0]


@pytest.fixture
def traced(tmp_path):
    """A SQLite Database whose connections report each statement they run, and whether the write lock
    was held while it ran."""
    db = Database(str(tmp_path / "one.sqlite"))
    lock = _RecordingLock(db._write_lock)
    db._write_lock = lock
    ran: list[tuple[str, bool]] = []
    event.listen(db.engine, "connect",
                 lambda conn, _r: conn.set_trace_callback(lambda sql: ran.append((sql.strip(), lock.held))))
    db.setup()
    yield db, ran
    db.dispose()


def test_a_sqlite_write_holds_the_write_lock_for_its_one_statement_only(traced):
    db, ran = traced
    with db.single() as one:
        ran.clear()
        assert one.write(INSERT, {"k": "a", "v": "1"}) == 1
        assert one.write(GUARDED, {"k": "a", "v": "2"}) == 1
        assert one.write(GUARDED, {"k": "a", "v": "3"}) == 0  # the guard no longer matches
        assert one.first(READ, {"k": "a"}) == ("a", "2")
    under_lock = [sql.split()[0] for sql, held in ran if held]
    assert under_lock == ["INSERT", "UPDATE", "UPDATE"]  # no BEGIN, no COMMIT: one call each
    assert not any(sql.split()[0] in ("BEGIN", "COMMIT") for sql, _ in ran)
    assert [sql.split()[0] for sql, held in ran if not held] == ["SELECT"]  # reads take no lock


def _one_statement(db: Database) -> None:
    with db.single() as one:
        assert one.write(INSERT, {"k": "x", "v": "1"}) == 1


def _core_transaction(db: Database) -> None:
    with db.engine.connect() as conn:
        with db.write_on(conn):
            conn.execute(INSERT, {"k": "x", "v": "1"})


@pytest.mark.parametrize("write", [_one_statement, _core_transaction], ids=["single", "write_on"])
def test_a_sqlite_write_is_committed_before_the_fsync_that_acknowledges_it_and_that_runs_unlocked(
        tmp_path, monkeypatch, write):
    """Both kinds of Core write keep Database.write's promises: committed before the fsync that
    acknowledges them, that fsync outside the write lock, and the call returns only after it."""
    db_file = tmp_path / "ack.sqlite"
    db = Database(str(db_file))
    db.setup()
    seen: list[tuple[bool, bool]] = []
    real_fsync = os.fsync

    def checking_fsync(fd):
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(db_file) + "-wal":
            with sqlite3.connect(db_file) as other:
                visible = other.execute("SELECT value FROM rb_meta WHERE key = 'x'").fetchone() == ("1",)
            seen.append((visible, _free(db._write_lock)))
        return real_fsync(fd)
    monkeypatch.setattr(sqlite_sync.os, "fsync", checking_fsync)
    write(db)
    assert seen == [(True, True)]  # returned after one fsync, which ran committed and unlocked
    db.dispose()


def test_a_failed_sqlite_write_releases_the_lock_acknowledges_nothing_and_leaves_the_connection_clean(traced):
    db, ran = traced
    with db.single() as one:
        one.write(INSERT, {"k": "dup", "v": "1"})
    synced: list[int] = []
    real = db._wal_sync.sync
    db._wal_sync.sync = lambda: (synced.append(1), real())[1]
    with db.single() as one:
        with pytest.raises(sqlite3.IntegrityError):
            one.write(INSERT, {"k": "dup", "v": "2"})
    assert synced == []  # nothing was acknowledged
    assert _free(db._write_lock.inner)  # released
    with db.single() as one:  # the pooled connection is usable and outside any transaction
        assert one.write(INSERT, {"k": "next", "v": "1"}) == 1
        assert one.first(READ, {"k": "dup"}) == ("dup", "1")


def test_a_sqlite_write_on_a_connection_inside_a_transaction_is_refused(tmp_path):
    db = Database(str(tmp_path / "tx.sqlite"))
    db.setup()
    conn = sqlite3.connect(tmp_path / "tx.sqlite", isolation_level=None)
    one = SqliteOneStatement(conn, StatementCache(db.engine.dialect), contextlib.nullcontext)
    conn.execute("BEGIN")
    with pytest.raises(RuntimeError, match="open transaction"):
        one.write(INSERT, {"k": "t", "v": "1"})
    conn.execute("ROLLBACK")
    assert one.write(INSERT, {"k": "t", "v": "1"}) == 1
    conn.close()
    db.dispose()


def test_a_missing_parameter_is_named(tmp_path):
    db = Database(str(tmp_path / "p.sqlite"))
    db.setup()
    with db.single() as one:
        with pytest.raises(KeyError, match="'v'"):
            one.write(INSERT, {"k": "a"})
    db.dispose()


def test_both_backends_read_and_write_alike(db_url):  # noqa: F811
    db = Database(db_url)
    db.setup()
    try:
        with db.single() as one:
            assert one.first(READ, {"k": "b"}) is None
            assert one.write(INSERT, {"k": "b", "v": "1"}) == 1
            assert one.write(GUARDED, {"k": "b", "v": "2"}) == 1
            assert one.write(GUARDED, {"k": "b", "v": "3"}) == 0
            row = one.first(READ, {"k": "b"})
            assert (row.key, row.value) == ("b", "2")
        with db.read() as s:  # committed: another connection sees it
            assert s.get(Meta, "b").value == "2"
    finally:
        db.dispose()

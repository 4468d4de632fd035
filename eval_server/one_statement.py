"""Statements that are each a transaction of their own, for the hottest write there is: a submit's store.

SQLite takes one writer at a time for the whole file, in every server process (eval_server/sqlite_lock.py),
so what a writer does while it holds that lock sets how many submits per second the file takes. Through
SQLAlchemy a write transaction is BEGIN IMMEDIATE, the statement, COMMIT: three driver calls, each of
which lets go of the GIL and must win it back from the process's other request threads (up to the
interpreter's 5 ms switch interval each, while the other serve processes' writers wait on the lock), plus
SQLAlchemy's own work per call. A single UPDATE needs none of that: SQLite runs a statement outside a
transaction as one atomic transaction of its own (autocommit), so `SqliteOneStatement.write` holds the
lock for exactly one driver call. It is still acknowledged only once durable: the caller's `durable`
context waits for the WAL's group fsync after the lock is released (eval_server/sqlite_sync.py).

Statements are SQLAlchemy Core objects built once by their callers; on SQLite each is compiled once, to
the SQL, its parameter order and its literal values, and run on the sqlite3 connection directly. Values
come back as the driver gives them (no SQLAlchemy type processing: booleans as 0/1), which is why this
is for short rows of text and numbers only. Other backends run the same statements through SQLAlchemy
(`CoreOneStatement`), where row locks, not one file lock, order the writers.
"""

from __future__ import annotations

import contextlib
import threading
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Executable


class OneStatement(Protocol):
    def first(self, stmt: Executable, params: Mapping[str, Any]) -> Any | None:
        """The first row of a read, or None; the read is a transaction of its own."""

    def write(self, stmt: Executable, params: Mapping[str, Any]) -> int:
        """Run one INSERT/UPDATE/DELETE as a durable transaction of its own; the rows it changed."""


@dataclass(frozen=True)
class Compiled:
    sql: str
    names: tuple[str, ...]  # the bound parameters in the order of the SQL's placeholders
    literals: dict[str, Any]  # values the statement binds itself (`status == "Accepted"`)
    row: type | None  # a named tuple of the selected columns, for a SELECT

    def args(self, params: Mapping[str, Any]) -> tuple:
        try:
            return tuple(params[n] if n in params else self.literals[n] for n in self.names)
        except KeyError as e:
            raise KeyError(f"no value for the statement's parameter {e.args[0]!r}") from None


class StatementCache:
    """Each Core statement compiled once for a dialect with positional parameters (SQLite's qmark)."""

    def __init__(self, dialect: Dialect):
        self._dialect = dialect
        self._lock = threading.Lock()
        self._done: dict[int, tuple[Executable, Compiled]] = {}  # the statement is kept: ids stay unique

    def get(self, stmt: Executable) -> Compiled:
        got = self._done.get(id(stmt))
        if got is not None:
            return got[1]
        comp = stmt.compile(dialect=self._dialect)
        if comp.positiontup is None:
            raise ValueError(f"{self._dialect.name}: not a positional parameter style")
        keys = list(stmt.selected_columns.keys()) if hasattr(stmt, "selected_columns") else None
        # A parameter the caller must give (`bindparam("aid")`) has no literal: left out, it is an error, not NULL.
        required = {comp.bind_names[b] for b in comp.binds.values() if b.required}
        literals = {name: value for name, value in comp.params.items() if name not in required}
        compiled = Compiled(sql=str(comp), names=tuple(comp.positiontup), literals=literals,
                            row=namedtuple("Row", keys, rename=True) if keys else None)
        with self._lock:
            self._done.setdefault(id(stmt), (stmt, compiled))
        return compiled


class SqliteOneStatement:
    """`OneStatement` on a sqlite3 connection in autocommit mode (isolation_level None, set when the
    engine connects: eval_server/db.py)."""

    def __init__(self, conn, cache: StatementCache, durable: Callable[[], contextlib.AbstractContextManager]):
        self._conn = conn
        self._cache = cache
        self._durable = durable

    def first(self, stmt: Executable, params: Mapping[str, Any]) -> Any | None:
        c = self._cache.get(stmt)
        row = self._conn.execute(c.sql, c.args(params)).fetchone()
        return None if row is None else c.row._make(row)

    def write(self, stmt: Executable, params: Mapping[str, Any]) -> int:
        c = self._cache.get(stmt)
        args = c.args(params)
        if self._conn.in_transaction:
            # The statement would join that transaction and be acknowledged without being committed.
            raise RuntimeError("a pooled SQLite connection was handed out inside an open transaction")
        with self._durable():
            return self._conn.execute(c.sql, args).rowcount


class CoreOneStatement:
    """`OneStatement` through SQLAlchemy Core on `conn` (PostgreSQL, or any other backend)."""

    def __init__(self, conn: Connection, write_on: Callable[[Connection], contextlib.AbstractContextManager]):
        self._conn = conn
        self._write_on = write_on

    def first(self, stmt: Executable, params: Mapping[str, Any]) -> Any | None:
        with self._conn.begin():
            return self._conn.execute(stmt, dict(params)).first()

    def write(self, stmt: Executable, params: Mapping[str, Any]) -> int:
        with self._write_on(self._conn):
            return self._conn.execute(stmt, dict(params)).rowcount

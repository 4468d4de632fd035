"""Tables, the engine (SQLite in WAL mode or any SQLAlchemy URL), and schema versions.

Times are stored as epoch seconds (float) so SQLite and PostgreSQL compare them alike. Two unique
constraints carry the assignment rules so they hold with any number of server processes: a HIT has
`MaxAssignments` numbered slots and an assignment holds one (`UNIQUE(hit_id, slot)`), and a worker holds
at most one live assignment per HIT (`UNIQUE(hit_id, active_worker)`); an abandoned assignment sets both
to NULL, which frees them (NULLs never collide, on either backend).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import (Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, TypeDecorator,
                        UniqueConstraint, create_engine, event, select, text)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from eval_server.one_statement import CoreOneStatement, OneStatement, SqliteOneStatement, StatementCache
from eval_server.sqlite_lock import WriterLock
from eval_server.sqlite_sync import WalSync
from regnet.errors import UserError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class Key(TypeDecorator):
    """A short key column (ids, worker ids, statuses, types): VARCHAR(n) on every backend. No key ever
    holds NUL (ids are A-Z0-9, worker ids and API values are checked), and PostgreSQL's driver refuses to
    send a NUL at all, so a lookup by a value holding one (`?hitId=a%00b`) is made to find nothing, as it
    does on SQLite, instead of failing the request."""
    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts of this database: schema version, generated keys, admin token."""
    __tablename__ = "rb_meta"
    key: Mapped[str] = mapped_column(Key(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class HITType(Base):
    __tablename__ = "rb_hit_types"
    id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(Text, default="")
    reward: Mapped[str] = mapped_column(Key(32))
    assignment_duration: Mapped[int] = mapped_column(Integer)
    auto_approval_delay: Mapped[int] = mapped_column(Integer)
    qual_requirements: Mapped[str] = mapped_column(Text, default="[]")  # JSON, as the API takes it
    created_at: Mapped[float] = mapped_column(Float)
    notification: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON NotificationSpecification
    notification_active: Mapped[bool] = mapped_column(Boolean, default=False)


class Layout(Base):
    """An MTurk "project" layout: HTML with ${name} placeholders."""
    __tablename__ = "rb_layouts"
    id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class HIT(Base):
    __tablename__ = "rb_hits"
    # A group's HITs in id order (accept-next starts at a random id) and in creation order (the list).
    __table_args__ = (Index("ix_hit_type_id", "hit_type_id", "id"),
                      Index("ix_hit_type_created", "hit_type_id", "created_at", "id"))
    id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    hit_type_id: Mapped[str] = mapped_column(ForeignKey("rb_hit_types.id"), index=True)
    layout_id: Mapped[str | None] = mapped_column(Key(64), nullable=True)
    layout_params: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON {name: value}
    question: Mapped[str] = mapped_column(Text)
    max_assignments: Mapped[int] = mapped_column(Integer)
    lifetime: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    expiration: Mapped[float] = mapped_column(Float)
    annotation: Mapped[str] = mapped_column(Text, default="")
    review_status: Mapped[str] = mapped_column(Key(32), default="NotReviewed")
    reviewing: Mapped[bool] = mapped_column(Boolean, default=False)  # UpdateHITReviewStatus
    assignment_policy: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON ReviewPolicy
    hit_policy: Mapped[str | None] = mapped_column(Text, nullable=True)
    hit_policy_done: Mapped[bool] = mapped_column(Boolean, default=False)
    disposed: Mapped[bool] = mapped_column(Boolean, default=False)  # DeleteHIT


class Assignment(Base):
    __tablename__ = "rb_assignments"
    __table_args__ = (UniqueConstraint("hit_id", "slot", name="uq_assignment_slot"),
                      UniqueConstraint("hit_id", "active_worker", name="uq_assignment_worker"),
                      Index("ix_assignment_worker", "worker_id"),
                      # A HIT's live slots (accept-next, the HIT list) and counts_for, read from the
                      # index alone, without the assignments' rows.
                      Index("ix_assignment_live", "hit_id", "slot", "status", "deadline"))
    id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    hit_id: Mapped[str] = mapped_column(ForeignKey("rb_hits.id"), index=True)
    worker_id: Mapped[str] = mapped_column(Key(64))
    slot: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active_worker: Mapped[str | None] = mapped_column(Key(64), nullable=True)
    # Accepted (in progress), Submitted, Approved, Rejected; Abandoned when the deadline passed.
    status: Mapped[str] = mapped_column(Key(16), index=True)
    accept_time: Mapped[float] = mapped_column(Float)
    deadline: Mapped[float] = mapped_column(Float)
    submit_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    auto_approval_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    approval_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    rejection_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    answer_xml: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer_fields: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON [[name, value], ...]
    feedback: Mapped[str | None] = mapped_column(Text, nullable=True)


class RequestToken(Base):
    """A UniqueRequestToken already used, by operation family, with the entity it made."""
    __tablename__ = "rb_request_tokens"
    kind: Mapped[str] = mapped_column(Key(32), primary_key=True)
    token: Mapped[str] = mapped_column(Key(64), primary_key=True)
    entity_id: Mapped[str] = mapped_column(Key(64))
    created_at: Mapped[float] = mapped_column(Float)


class QualificationType(Base):
    __tablename__ = "rb_qualification_types"
    id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(Key(16))
    retry_delay: Mapped[int | None] = mapped_column(Integer, nullable=True)
    test: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    test_duration: Mapped[int | None] = mapped_column(Integer, nullable=True)
    auto_granted: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_granted_value: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Float)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Qualification(Base):
    """A qualification held by (granted to) a worker."""
    __tablename__ = "rb_qualifications"
    type_id: Mapped[str] = mapped_column(ForeignKey("rb_qualification_types.id"), primary_key=True)
    worker_id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=1)
    locale: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON {Country, Subdivision}
    status: Mapped[str] = mapped_column(Key(16), default="Granted")
    granted_at: Mapped[float] = mapped_column(Float)


class QualificationRequest(Base):
    __tablename__ = "rb_qualification_requests"
    id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    type_id: Mapped[str] = mapped_column(ForeignKey("rb_qualification_types.id"), index=True)
    worker_id: Mapped[str] = mapped_column(Key(64))
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)  # QuestionFormAnswers XML
    submit_time: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(Key(16), default="Pending")  # Pending, Accepted, Rejected
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class WorkerBlock(Base):
    __tablename__ = "rb_worker_blocks"
    worker_id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class Notification(Base):
    """A NotifyWorkers message, shown to the worker on their page (nothing is sent anywhere)."""
    __tablename__ = "rb_notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    worker_id: Mapped[str] = mapped_column(Key(64), index=True)
    subject: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class Bonus(Base):
    __tablename__ = "rb_bonuses"
    id: Mapped[str] = mapped_column(Key(64), primary_key=True)
    worker_id: Mapped[str] = mapped_column(Key(64), index=True)
    assignment_id: Mapped[str] = mapped_column(ForeignKey("rb_assignments.id"), index=True)
    amount: Mapped[str] = mapped_column(Key(32))
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[float] = mapped_column(Float)


class ReviewRecord(Base):
    """One review-policy result or action (ListReviewPolicyResultsForHIT)."""
    __tablename__ = "rb_review_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hit_id: Mapped[str] = mapped_column(ForeignKey("rb_hits.id"), index=True)
    level: Mapped[str] = mapped_column(Key(16))  # Assignment | HIT
    kind: Mapped[str] = mapped_column(Key(16))  # result | action
    data: Mapped[str] = mapped_column(Text)  # JSON ReviewResultDetail / ReviewActionDetail
    created_at: Mapped[float] = mapped_column(Float)


class Event(Base):
    """Stored notification events and SendTestEventNotification calls (nothing leaves the machine)."""
    __tablename__ = "rb_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hit_type_id: Mapped[str | None] = mapped_column(Key(64), nullable=True)
    event_type: Mapped[str] = mapped_column(Key(64))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class Upload(Base):
    """A file a worker uploaded with their answers (FileUploadAnswer); fetched via GetFileUploadURL."""
    __tablename__ = "rb_uploads"
    assignment_id: Mapped[str] = mapped_column(ForeignKey("rb_assignments.id"), primary_key=True)
    question_id: Mapped[str] = mapped_column(Key(255), primary_key=True)
    filename: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Key(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)


# Ordered migrations: MIGRATIONS[v] brings a database at version v-1 to version v. A fresh database is
# created at SCHEMA_VERSION directly; these only run for databases made by an older release.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def normalize_url(db: str) -> str:
    """A bare path means a SQLite file; anything with '://' is an SQLAlchemy URL. An in-memory SQLite
    database is refused: every answer would be gone when the server stops, and each pooled connection
    (each server process) would see a database of its own."""
    memory = (f"--db: {db} is an in-memory SQLite database, which would lose every answer when the server "
              "stops; give a file path")
    if "://" in db:
        try:
            url = make_url(db)
        except ArgumentError as e:
            raise UserError(f"--db: not a database URL ({e})") from None
        if url.get_backend_name() == "sqlite" and (
                url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"):
            raise UserError(memory)
        return db
    if db == ":memory:":
        raise UserError(memory)
    path = Path(db).expanduser().resolve()
    if not path.parent.is_dir():
        raise UserError(f"--db: folder {path.parent} does not exist")
    return f"sqlite:///{path}"


class Database:
    """The engine plus two kinds of transaction: `read()` and `write()`.

    On SQLite a write transaction starts with BEGIN IMMEDIATE, so it takes the write lock before it
    reads: two writers can then never both read "a slot is free" and race to upgrade their locks (which
    SQLite answers with an immediate 'database is locked' instead of waiting). Writers of one process
    queue on `WriterLock` before BEGIN (eval_server/sqlite_lock.py: a thread lock, then a `flock` shared
    by every server process on the file): SQLite's own busy handler polls with sleeps of up to 100 ms,
    so under 32 concurrent submits a waiting writer would sleep long after the lock was free (the
    submit tail); a writer waiting on the lock wakes as soon as it is released.
    """

    def __init__(self, url: str):
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        # A SQLite file commits with group fsyncs (eval_server/sqlite_sync.py); in memory, or where a
        # directory cannot be fsynced (Windows), every commit syncs itself (synchronous=FULL).
        path = make_url(self.url).database if self.is_sqlite else None
        is_file = bool(path) and path != ":memory:" and not path.startswith("file:")
        self._write_lock = (WriterLock(path if is_file else None) if self.is_sqlite
                            else contextlib.nullcontext())
        self._wal_sync = WalSync(path) if is_file and os.name == "posix" else None
        if self.is_sqlite:
            self.engine = create_engine(self.url, connect_args={"timeout": 60, "check_same_thread": False},
                                        pool_size=16, max_overflow=16)
            group = self._wal_sync is not None
            event.listen(self.engine, "connect", lambda conn, record: _sqlite_on_connect(conn, record, group))
            event.listen(self.engine, "begin", _sqlite_on_begin)
            self._statements = StatementCache(self.engine.dialect)
        else:
            try:
                self.engine = create_engine(self.url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            except (ModuleNotFoundError, ArgumentError) as e:
                raise UserError(f"--db: cannot use {self.url.split('://')[0]} ({e})") from None

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self.engine.connect() as conn, Session(bind=conn, expire_on_commit=False) as s:
            with s.begin():
                yield s

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction (an ORM session), committed on leaving, acknowledged once durable."""
        with self.engine.connect() as conn, self._writing(conn):
            with Session(bind=conn, expire_on_commit=False) as s, s.begin():
                yield s

    @contextlib.contextmanager
    def write_on(self, conn: Connection) -> Iterator[Connection]:
        """A write transaction on `conn` (Core), committed on leaving, acknowledged once durable."""
        with self._writing(conn), conn.begin():
            yield conn

    @contextlib.contextmanager
    def single(self) -> Iterator[OneStatement]:
        """A pooled connection whose statements are each a transaction of their own, writes acknowledged
        once durable (eval_server/one_statement.py: on SQLite the write lock is held for one driver call)."""
        if self.is_sqlite:
            raw = self.engine.raw_connection()
            try:
                yield SqliteOneStatement(raw.driver_connection, self._statements, self._durable)
            finally:
                raw.close()
        else:
            with self.engine.connect() as conn:
                yield CoreOneStatement(conn, self.write_on)

    @contextlib.contextmanager
    def _writing(self, conn: Connection) -> Iterator[None]:
        """The write lock around one transaction on `conn` (which the block begins and commits), then the
        wait for its durability."""
        with self._durable():
            conn.execution_options(regnet_write=True)
            yield

    @contextlib.contextmanager
    def _durable(self) -> Iterator[None]:
        """The write lock around the block, then the wait for its durability. The lock is held for the
        transaction alone, not for a pool checkout or a connection's reset: every writer of the file, in
        every serve process, waits for it (at 32 raters in benchmarks/server_load.py the submit latency
        was almost all that wait)."""
        with self._write_lock:
            yield
        # Committed, the write lock released: acknowledged only once the WAL is on disk (group fsync).
        if self._wal_sync is not None:
            self._wal_sync.sync()

    def dispose(self) -> None:
        self.engine.dispose()
        if isinstance(self._write_lock, WriterLock):
            self._write_lock.close()

    def setup(self) -> None:
        """Create the schema on first start, run pending migrations after; safe with many processes."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(regnet_write=True)
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        # Two processes starting at once on a fresh database must not both create it
                        # (SQLite's BEGIN IMMEDIATE already serialises them).
                        conn.execute(text("SELECT pg_advisory_xact_lock(724031)"))
                    Meta.__table__.create(conn, checkfirst=True)
                    row = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).first()
                    if row is None:
                        Base.metadata.create_all(conn)
                        conn.execute(Meta.__table__.insert().values(key="schema_version",
                                                                    value=str(SCHEMA_VERSION)))
                        log.info("created database schema version %d", SCHEMA_VERSION)
                        return
                    version = int(row[0])
                    if version > SCHEMA_VERSION:
                        raise UserError(f"--db: database schema version {version} is newer than this "
                                        f"regnet-bench understands ({SCHEMA_VERSION}); upgrade regnet-bench")
                    for v in range(version + 1, SCHEMA_VERSION + 1):
                        log.info("migrating database schema to version %d", v)
                        MIGRATIONS[v](conn)
                    if version < SCHEMA_VERSION:
                        conn.execute(Meta.__table__.update().where(Meta.key == "schema_version")
                                     .values(value=str(SCHEMA_VERSION)))
                    # Indexes added since the database was made (they change no data, so they need no
                    # schema version): created if missing.
                    for table in Base.metadata.sorted_tables:
                        for index in table.indexes:
                            index.create(conn, checkfirst=True)
        except DatabaseError as e:
            # OperationalError (cannot open, locked, refused) and a file that is not a database alike.
            raise UserError(f"--db: cannot open {self.url}: {str(e.orig).splitlines()[0]}") from None

    def get_meta(self, key: str) -> str | None:
        with self.read() as s:
            row = s.get(Meta, key)
            return row.value if row else None

    def meta_default(self, key: str, make: Callable[[], str]) -> tuple[str, bool]:
        """The stored value of `key`, or a new one from `make()` stored now; (value, created)."""
        with self.write() as s:
            row = s.get(Meta, key)
            if row is not None:
                return row.value, False
            value = make()
            s.add(Meta(key=key, value=value))
            return value, True


def _sqlite_on_connect(dbapi_conn, _record, group_sync: bool = False) -> None:
    # The driver's own transaction handling is switched off so "begin" below decides how to BEGIN.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL: readers (HIT lists, HIT pages) never wait for a writer and a commit appends to one file.
    mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    # Every acknowledged answer must survive the server being killed and a power cut or kernel crash.
    # WAL with NORMAL already survives a killed process (the WAL is in the OS's page cache); a power
    # cut needs the WAL fsynced before the answer is acknowledged. FULL does that inside each COMMIT,
    # under the write lock, so writers queue behind each other's fsyncs (3-8 ms each on a shared
    # virtual disk: at most 120-300 writes/s). With group_sync the connection runs NORMAL and
    # Database.write fsyncs the WAL after the commit, outside the lock, one fsync for every writer
    # that committed meanwhile (eval_server/sqlite_sync.py): the same promise, without the cap.
    # Where WAL mode is refused (some network file systems) every commit syncs itself.
    cur.execute("PRAGMA synchronous=NORMAL" if group_sync and str(mode).lower() == "wal" else "PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    # A writer that does not take WriterLock (another program on the file) waits up to 60 s for the
    # lock instead of failing at once; the server's own writers already queue on WriterLock.
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("regnet_write") else "BEGIN")


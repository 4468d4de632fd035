"""The SQLite ledger ``DIR/ledger.sqlite``: what was created where, so a re-run never creates a
HIT twice and `collect` knows where to look.

A HIT row is written as ``pending`` *before* the create call and turned ``created`` after it, so a
crash in between leaves a row that says the outcome is unknown (the next publish resolves it with
the same UniqueRequestToken).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS hits (
    study TEXT NOT NULL, local_hit TEXT NOT NULL, hit_id TEXT, hit_type_id TEXT,
    unique_request_token TEXT NOT NULL, endpoint TEXT NOT NULL, created_at TEXT,
    status TEXT NOT NULL,  -- pending | created | expired
    PRIMARY KEY (endpoint, unique_request_token));
CREATE TABLE IF NOT EXISTS settings (
    endpoint TEXT NOT NULL, study TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (endpoint, study, key));
CREATE TABLE IF NOT EXISTS assignments (
    assignment_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, hit_id TEXT NOT NULL,
    worker_id TEXT NOT NULL, status TEXT NOT NULL, collected_at TEXT NOT NULL,
    reviewed_at TEXT, feedback TEXT);
CREATE TABLE IF NOT EXISTS marked_workers (
    endpoint TEXT NOT NULL, qualification_type_id TEXT NOT NULL, worker_id TEXT NOT NULL,
    PRIMARY KEY (endpoint, qualification_type_id, worker_id));
"""


@dataclass
class HitRow:
    study: str
    local_hit: str
    hit_id: str | None
    hit_type_id: str | None
    unique_request_token: str
    endpoint: str
    created_at: str | None
    status: str


@dataclass
class AssignmentRow:
    assignment_id: str
    endpoint: str
    hit_id: str
    worker_id: str
    status: str
    collected_at: str
    reviewed_at: str | None = None
    feedback: str | None = None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Ledger:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        with self.db:
            self.db.executescript(SCHEMA)

    @classmethod
    def for_study(cls, study_dir: str | Path) -> "Ledger":
        return cls(Path(study_dir) / "ledger.sqlite")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- HITs --------------------------------------------------------------------------------
    def hits(self, study: str, endpoint: str | None = None, status: str | None = None) -> list[HitRow]:
        q, args = "SELECT * FROM hits WHERE study = ?", [study]
        if endpoint:
            q, args = q + " AND endpoint = ?", args + [endpoint]
        if status:
            q, args = q + " AND status = ?", args + [status]
        with closing(self.db.execute(q + " ORDER BY local_hit", args)) as cur:
            return [HitRow(*r) for r in cur.fetchall()]

    def hit_by_token(self, endpoint: str, token: str) -> HitRow | None:
        with closing(self.db.execute("SELECT * FROM hits WHERE endpoint = ? AND unique_request_token = ?",
                                     (endpoint, token))) as cur:
            r = cur.fetchone()
        return HitRow(*r) if r else None

    def mark_pending(self, study: str, local_hit: str, token: str, endpoint: str, hit_type_id: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO hits VALUES (?, ?, NULL, ?, ?, ?, NULL, 'pending')",
                            (study, local_hit, hit_type_id, token, endpoint))

    def mark_created(self, endpoint: str, token: str, hit_id: str, hit_type_id: str) -> None:
        with self.db:
            self.db.execute("UPDATE hits SET hit_id = ?, hit_type_id = ?, created_at = ?, status = 'created' "
                            "WHERE endpoint = ? AND unique_request_token = ?",
                            (hit_id, hit_type_id, now(), endpoint, token))

    def mark_expired(self, endpoint: str, hit_id: str) -> None:
        with self.db:
            self.db.execute("UPDATE hits SET status = 'expired' WHERE endpoint = ? AND hit_id = ?", (endpoint, hit_id))

    def endpoints(self, study: str) -> list[str]:
        with closing(self.db.execute("SELECT DISTINCT endpoint FROM hits WHERE study = ? AND hit_id IS NOT NULL",
                                     (study,))) as cur:
            return [r[0] for r in cur.fetchall()]

    # -- settings (hit type, qualification ids) ------------------------------------------------
    def get(self, endpoint: str, study: str, key: str) -> str | None:
        with closing(self.db.execute("SELECT value FROM settings WHERE endpoint = ? AND study = ? AND key = ?",
                                     (endpoint, study, key))) as cur:
            r = cur.fetchone()
        return r[0] if r else None

    def put(self, endpoint: str, study: str, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?, ?, ?)", (endpoint, study, key, value))

    # -- assignments -------------------------------------------------------------------------
    def assignment(self, assignment_id: str) -> AssignmentRow | None:
        with closing(self.db.execute("SELECT * FROM assignments WHERE assignment_id = ?", (assignment_id,))) as cur:
            r = cur.fetchone()
        return AssignmentRow(*r) if r else None

    def assignments(self, endpoint: str | None = None) -> list[AssignmentRow]:
        q, args = "SELECT * FROM assignments", []
        if endpoint:
            q, args = q + " WHERE endpoint = ?", [endpoint]
        with closing(self.db.execute(q + " ORDER BY collected_at, assignment_id", args)) as cur:
            return [AssignmentRow(*r) for r in cur.fetchall()]

    def record_assignment(self, endpoint: str, hit_id: str, assignment_id: str, worker_id: str, status: str) -> None:
        with self.db:
            self.db.execute("INSERT INTO assignments VALUES (?, ?, ?, ?, ?, ?, NULL, NULL) "
                            "ON CONFLICT(assignment_id) DO UPDATE SET status = excluded.status",
                            (assignment_id, endpoint, hit_id, worker_id, status, now()))

    def record_review(self, assignment_id: str, status: str, feedback: str) -> None:
        with self.db:
            self.db.execute("UPDATE assignments SET status = ?, reviewed_at = ?, feedback = ? WHERE assignment_id = ?",
                            (status, now(), feedback, assignment_id))

    # -- participants ------------------------------------------------------------------------
    def is_marked(self, endpoint: str, qual_id: str, worker_id: str) -> bool:
        with closing(self.db.execute("SELECT 1 FROM marked_workers WHERE endpoint = ? AND qualification_type_id = ? "
                                     "AND worker_id = ?", (endpoint, qual_id, worker_id))) as cur:
            return cur.fetchone() is not None

    def mark_worker(self, endpoint: str, qual_id: str, worker_id: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO marked_workers VALUES (?, ?, ?)", (endpoint, qual_id, worker_id))

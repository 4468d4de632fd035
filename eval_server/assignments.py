"""The life of an assignment, shared by the worker pages and the requester API: HIT counts and status,
qualification checks, accept (slot-limited), submit (one transaction), expiry and auto-approval."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eval_server import exposure, question_cache, review_policies, xml_answers
from eval_server.ids import new_id
from eval_server.db import HIT, Assignment, Database, HITType, Qualification, QualificationType, Upload, WorkerBlock

log = logging.getLogger(__name__)

PREVIEW_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"
DONE_STATUSES = ("Submitted", "Approved", "Rejected")

# MTurk's system qualification types. Two are computed from this server's own records; the others
# (locale, adult, Masters) describe facts about a worker this server does not know and count as met.
PERCENT_APPROVED = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"
ASSUMED_MET = {"00000000000000000071", "00000000000000000060", "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH",
               "2NDP2L92HECWY8NS8H3CK0CP5L9GHO", "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6", "21VZU98JHSTLZ5BPP4A9NOBJEK3DPG"}


class WorkerError(Exception):
    """A refused worker action: HTTP status and a message for the rater (or their script)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Counts:
    pending: int = 0
    submitted: int = 0
    completed: int = 0  # approved or rejected

    def available(self, max_assignments: int) -> int:
        return max(0, max_assignments - self.pending - self.submitted - self.completed)


@dataclass(frozen=True)
class Submitted:
    """What a stored submit tells its caller (the row itself is written; building an ORM object just to
    hand back two ids cost a measurable share of every submit)."""
    id: str
    hit_id: str
    worker_id: str
    submit_time: float


COUNTS_CHUNK = 500


def counts_for(s: Session, hit_ids: Iterable[str], at: float) -> dict[str, Counts]:
    """Live assignment counts of each HIT. Read from the ix_assignment_live index alone, in
    chunks of ids, so any number of ids stays within a statement's bound-parameter limit."""
    ids = list(dict.fromkeys(hit_ids))
    acc: dict[str, dict[str, int]] = {h: {} for h in ids}
    for i in range(0, len(ids), COUNTS_CHUNK):
        rows = s.execute(
            select(Assignment.hit_id, Assignment.status, func.count())
            .where(Assignment.hit_id.in_(ids[i:i + COUNTS_CHUNK]))
            .where((Assignment.status != "Accepted") | (Assignment.deadline > at))
            .where(Assignment.status != "Abandoned")
            .group_by(Assignment.hit_id, Assignment.status))
        for hit_id, status, n in rows:
            acc[hit_id][status] = n
    return {h: Counts(pending=c.get("Accepted", 0), submitted=c.get("Submitted", 0),
                      completed=c.get("Approved", 0) + c.get("Rejected", 0)) for h, c in acc.items()}


def hit_status(hit: HIT, c: Counts, at: float) -> str:
    if hit.disposed:
        return "Disposed"
    if hit.reviewing:
        return "Reviewing"
    available = c.available(hit.max_assignments)
    if at >= hit.expiration or (available == 0 and c.pending == 0):
        return "Reviewable"
    if available == 0:
        return "Unassignable"
    return "Assignable"


# ---- qualifications --------------------------------------------------------------------------------

def worker_value(s: Session, worker_id: str, type_id: str) -> int | None:
    """The worker's integer value for a qualification type, or None when they do not hold it."""
    if type_id in (PERCENT_APPROVED, NUMBER_APPROVED):
        rows = dict(s.execute(select(Assignment.status, func.count()).where(Assignment.worker_id == worker_id)
                              .where(Assignment.status.in_(("Approved", "Rejected")))
                              .group_by(Assignment.status)).all())
        approved, rejected = rows.get("Approved", 0), rows.get("Rejected", 0)
        if type_id == NUMBER_APPROVED:
            return approved
        # MTurk reports 100% for a worker with fewer than 100 decided assignments.
        total = approved + rejected
        return 100 if total < 100 else round(100 * approved / total)
    q = s.get(Qualification, (type_id, worker_id))
    if q is None or q.status != "Granted":
        return None
    return q.value


def _meets(req: dict, value: int | None) -> bool:
    comp = req["Comparator"]
    if comp == "Exists":
        return value is not None
    if comp == "DoesNotExist":
        return value is None
    if value is None:
        return False
    wanted = req.get("IntegerValues") or []
    if comp == "In":
        return value in wanted
    if comp == "NotIn":
        return value not in wanted
    if not wanted:
        return False
    ref = wanted[0]
    return {"LessThan": value < ref, "LessThanOrEqualTo": value <= ref, "GreaterThan": value > ref,
            "GreaterThanOrEqualTo": value >= ref, "EqualTo": value == ref,
            "NotEqualTo": value != ref}[comp]


def unmet_requirements(s: Session, worker_id: str, requirements: list[dict], action: str,
                       *, grant_auto: bool = False, at: float = 0.0) -> list[str]:
    """Names of the requirements guarding `action` (Discover | Preview | Accept) the worker fails.
    With grant_auto, an AutoGranted qualification the worker lacks is granted first, as MTurk does
    when a worker requests one."""
    guards = {"Discover": ("DiscoverPreviewAndAccept",),
              "Preview": ("DiscoverPreviewAndAccept", "PreviewAndAccept"),
              "Accept": ("DiscoverPreviewAndAccept", "PreviewAndAccept", "Accept")}[action]
    failed = []
    for req in requirements:
        guarded = req.get("ActionsGuarded") or ("PreviewAndAccept" if req.get("RequiredToPreview") else "Accept")
        if guarded not in guards:
            continue
        type_id = req["QualificationTypeId"]
        if type_id in ASSUMED_MET:
            continue
        value = worker_value(s, worker_id, type_id)
        if value is None and grant_auto:
            qt = s.get(QualificationType, type_id)
            if qt is not None and qt.auto_granted and qt.status == "Active" and not qt.deleted:
                s.add(Qualification(type_id=type_id, worker_id=worker_id, value=qt.auto_granted_value,
                                    status="Granted", granted_at=at))
                s.flush()
                value = qt.auto_granted_value
        if not _meets(req, value):
            qt = s.get(QualificationType, type_id)
            failed.append(qt.name if qt is not None else type_id)
    return failed


def is_blocked(s: Session, worker_id: str) -> bool:
    return s.get(WorkerBlock, worker_id) is not None


# ---- accept / submit ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def requirements(qual_requirements: str) -> tuple[dict, ...]:
    """A HIT type's QualificationRequirements JSON, parsed once per distinct text (read-only: the
    dicts are shared between requests)."""
    return tuple(json.loads(qual_requirements))


_A = Assignment.__table__
_EXPIRE = (update(_A).where(_A.c.hit_id == bindparam("hid"), _A.c.status == "Accepted",
                            _A.c.deadline <= bindparam("at"))
           .values(status="Abandoned", slot=None, active_worker=None))


def expire_stale(s: Session, hit_id: str, at: float) -> None:
    """Accepted assignments past their deadline go back to the pool (their slot is freed).

    A Core UPDATE, built once, on the session's connection: it runs on every accept, and the ORM
    form spent more CPU matching the update against objects in the session than SQLite spends on
    it. Pending changes are flushed first; no caller keeps an affected assignment loaded (an
    assignment it holds is one it has just decided on itself)."""
    s.flush()
    s.connection().execute(_EXPIRE, {"hid": hit_id, "at": at})


def accept(db: Database, hit_id: str, worker_id: str, at: float) -> Assignment:
    """Give `worker_id` an assignment on the HIT, or the one they already hold and have not submitted."""
    for attempt in range(5):
        try:
            with db.write() as s:
                return _accept_in(s, hit_id, worker_id, at)
        except IntegrityError:
            # Another process took the same slot between our read and insert (possible only where the
            # row lock is not exclusive): the constraint refused it; look again.
            log.debug("accept %s/%s: slot taken concurrently (attempt %d)", hit_id, worker_id, attempt + 1)
    raise WorkerError(503, "the server is busy; try again")


@functools.lru_cache(maxsize=None)
def _accept_stmts(postgres: bool):
    """The statements of an accept, built once (bound parameters hid, w): the HIT with its type and
    whether the worker is blocked, row-locked on PostgreSQL (SQLite's BEGIN IMMEDIATE already holds
    the write lock); and the HIT's assignments that hold a slot or are the worker's own."""
    h, t, b = HIT.__table__.c, HITType.__table__.c, WorkerBlock.__table__.c
    hit = (select(h.id, h.disposed, h.reviewing, h.expiration, h.max_assignments, h.annotation,
                  t.assignment_duration, t.qual_requirements,
                  exists().where(b.worker_id == bindparam("w")).label("blocked"))
           .select_from(HIT.__table__.join(HITType.__table__, t.id == h.hit_type_id))
           .where(h.id == bindparam("hid")))
    if postgres:
        hit = hit.with_for_update(of=HIT.__table__)
    held = (select(_A.c.id, _A.c.slot, _A.c.active_worker, _A.c.status)
            .where(_A.c.hit_id == bindparam("hid"),
                   _A.c.slot.is_not(None) | (_A.c.active_worker == bindparam("w"))))
    return hit, held


def _accept_in(s: Session, hit_id: str, worker_id: str, at: float) -> Assignment:
    """Take a slot of the HIT for the worker inside the caller's write transaction. Core statements
    on the session's connection (this runs on every accept; the checks and their order are those of
    the ORM form it replaced): no such HIT 404, blocked 403, the worker's own live assignment
    (returned if still open, else 409), closed 410, qualifications 403, no free slot 409."""
    conn = s.connection()
    hit_q, held_q = _accept_stmts(conn.dialect.name == "postgresql")
    params = {"hid": hit_id, "w": worker_id}
    hit = conn.execute(hit_q, params).first()
    if hit is None or hit.disposed:
        raise WorkerError(404, f"HIT {hit_id} does not exist")
    if hit.blocked:
        raise WorkerError(403, "you are blocked from working for this requester")
    expire_stale(s, hit_id, at)
    held = conn.execute(held_q, params).all()
    mine = next((r for r in held if r.active_worker == worker_id), None)
    if mine is not None:
        if mine.status == "Accepted":
            return s.get(Assignment, mine.id)
        raise WorkerError(409, f"you have already submitted HIT {hit_id}; one assignment per worker")
    if hit.reviewing or at >= hit.expiration:
        raise WorkerError(410, f"HIT {hit_id} is no longer available")
    reqs = requirements(hit.qual_requirements)
    if reqs:
        failed = unmet_requirements(s, worker_id, reqs, "Accept", grant_auto=True, at=at)
        if failed:
            raise WorkerError(403, "you do not meet this HIT's qualification requirements: " + ", ".join(failed))
    used = {r.slot for r in held if r.slot is not None}
    free = next((i for i in range(hit.max_assignments) if i not in used), None)
    if free is None:
        raise WorkerError(409, f"HIT {hit_id} has no assignments left")
    values = dict(id=new_id(), hit_id=hit_id, worker_id=worker_id, slot=free, active_worker=worker_id,
                  status="Accepted", accept_time=at, deadline=at + hit.assignment_duration)
    conn.execute(_A.insert(), values)
    # Exposure control: the HIT may ask that its rater group's qualification be granted now, in the
    # same transaction, so the other groups' HITs (which require it absent) close to this worker.
    if exposure.grants_in(hit.annotation):
        exposure.grant_on_accept(s, s.get(HIT, hit_id), worker_id, at)
    # What callers read (id, hit_id, deadline...); not attached to the session, the row is written.
    return Assignment(**values)


_H, _T = HIT.__table__, HITType.__table__


@functools.lru_cache(maxsize=None)
def _submit_stmts(postgres: bool):
    """The statements of a submit, built once (bound parameter aid): the assignment with its HIT's
    question, policies and type's auto-approval delay (the assignment row locked on PostgreSQL;
    SQLite's BEGIN IMMEDIATE holds the write lock), and the two updates it can end in."""
    row = (select(_A.c.id, _A.c.hit_id, _A.c.worker_id, _A.c.status, _A.c.deadline, _H.c.question,
                  _H.c.assignment_policy, _H.c.hit_policy, _H.c.hit_policy_done, _T.c.auto_approval_delay)
           .select_from(_A.join(_H, _H.c.id == _A.c.hit_id).join(_T, _T.c.id == _H.c.hit_type_id))
           .where(_A.c.id == bindparam("aid")))
    if postgres:
        row = row.with_for_update(of=_A)
    expire = update(_A).where(_A.c.id == bindparam("aid")).values(status="Abandoned", slot=None, active_worker=None)
    store = (update(_A).where(_A.c.id == bindparam("aid"))
             .values(answer_fields=bindparam("fields"), answer_xml=bindparam("xml"), status="Submitted",
                     submit_time=bindparam("at"), auto_approval_time=bindparam("auto")))
    return row, expire, store


@functools.lru_cache(maxsize=None)
def _fast_stmts():
    """The pre-read (no row lock: it only decides whether the fast path may try) and the guarded store:
    it changes the row only while it is still this rater's, accepted and within its deadline."""
    pre = _submit_stmts(False)[0]
    store = (update(_A).where(_A.c.id == bindparam("aid"), _A.c.worker_id == bindparam("worker"),
                              _A.c.status == "Accepted", _A.c.deadline >= bindparam("at"))
             .values(answer_fields=bindparam("fields"), answer_xml=bindparam("xml"), status="Submitted",
                     submit_time=bindparam("at"), auto_approval_time=bindparam("auto")))
    return pre, store


def _submit_fast(db: Database, assignment_id: str, fields: list[tuple[str, str]], at: float,
                 worker_id: str) -> Submitted | None:
    """The common submit (the rater's own accepted assignment, in time, no uploads, no review policy to
    run) with the least work under the write lock, which every writer of the database queues on: the
    answers' JSON and XML are built from a read before it, and under it one guarded UPDATE, a transaction
    of its own, decides (on SQLite one driver call: eval_server/one_statement.py). None when the read or
    the UPDATE finds anything else; `submit`'s full path then decides (and says why it refuses) under
    the lock. The auto-approval delay is the HIT type's as read just before (a concurrent
    UpdateHITTypeOfHIT orders after this submit)."""
    pre, store = _fast_stmts()
    with db.single() as one:
        a = one.first(pre, {"aid": assignment_id})
        if (a is None or a.worker_id != worker_id or a.status != "Accepted" or at > a.deadline
                or a.assignment_policy or (a.hit_policy and not a.hit_policy_done)):
            return None
        params = {"aid": assignment_id, "worker": worker_id, "at": at, "auto": at + a.auto_approval_delay,
                  "fields": json.dumps(fields),
                  "xml": xml_answers.build(fields, question_cache.parse(a.question).selection_ids)}
        if one.write(store, params) != 1:
            return None
    return Submitted(id=a.id, hit_id=a.hit_id, worker_id=a.worker_id, submit_time=at)


def submit(db: Database, assignment_id: str, fields: list[tuple[str, str]], at: float,
           worker_id: str | None = None,
           uploads: list[tuple[str, str, str, bytes]] = ()) -> Submitted:
    """Store the answers of an accepted assignment; refuses unknown, foreign, late or repeated submits.
    Core statements on the session's connection (this runs on every submit); the ORM only for
    uploads and for a HIT with a review policy left to run."""
    if worker_id is not None and not uploads:
        done = _submit_fast(db, assignment_id, fields, at, worker_id)
        if done is not None:
            return done
    expired = False
    with db.write() as s:
        conn = s.connection()
        row_q, expire_q, store_q = _submit_stmts(conn.dialect.name == "postgresql")
        a = conn.execute(row_q, {"aid": assignment_id}).first()
        if a is None:
            raise WorkerError(404, f"assignment {assignment_id} does not exist")
        # No rater (None) owns nothing: a submit without a session is refused, not stored.
        if worker_id is None or worker_id != a.worker_id:
            raise WorkerError(403, f"assignment {assignment_id} is not yours; sign in as its rater")
        if a.status in DONE_STATUSES:
            raise WorkerError(409, f"assignment {assignment_id} was already submitted")
        if a.status == "Abandoned" or at > a.deadline:
            # The expiry itself is kept (the transaction commits); the answers are refused below.
            conn.execute(expire_q, {"aid": assignment_id})
            expired = True
        else:
            q = question_cache.parse(a.question)
            conn.execute(store_q, {"aid": assignment_id, "fields": json.dumps(fields),
                                   "xml": xml_answers.build(fields, q.selection_ids), "at": at,
                                   "auto": at + a.auto_approval_delay})
            for question_id, filename, content_type, data in uploads:
                s.merge(Upload(assignment_id=a.id, question_id=question_id, filename=filename,
                               content_type=content_type, data=data))
            s.flush()
            # on_submit does nothing unless the HIT has a policy left to run: the ORM objects only then.
            if a.assignment_policy or (a.hit_policy and not a.hit_policy_done):
                stored = s.get(Assignment, assignment_id)
                review_policies.on_submit(s, s.get(HIT, a.hit_id), stored, at)
                return Submitted(id=stored.id, hit_id=stored.hit_id, worker_id=stored.worker_id, submit_time=at)
    if expired:
        raise WorkerError(410, f"assignment {assignment_id} expired before it was submitted")
    # What the caller reads; the row itself is written.
    return Submitted(id=a.id, hit_id=a.hit_id, worker_id=a.worker_id, submit_time=at)


def auto_approve_due(db: Database, at: float) -> int:
    """Approve submitted assignments whose AutoApprovalTime has passed, as MTurk does on its own."""
    with db.read() as s:
        due = s.scalar(select(func.count()).select_from(Assignment).where(
            Assignment.status == "Submitted", Assignment.auto_approval_time <= at))
    if not due:
        return 0
    with db.write() as s:
        res = s.execute(update(Assignment)
                        .where(Assignment.status == "Submitted", Assignment.auto_approval_time <= at)
                        .values(status="Approved", approval_time=Assignment.auto_approval_time))
        return res.rowcount or 0

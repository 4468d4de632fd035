"""The life of an assignment, shared by the worker pages and the requester API: HIT counts and status,
qualification checks, accept (slot-limited), submit (one transaction), expiry and auto-approval."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eval_server import exposure, questions, review_policies, xml_answers
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

def expire_stale(s: Session, hit_id: str, at: float) -> None:
    """Accepted assignments past their deadline go back to the pool (their slot is freed)."""
    s.execute(update(Assignment)
              .where(Assignment.hit_id == hit_id, Assignment.status == "Accepted", Assignment.deadline <= at)
              .values(status="Abandoned", slot=None, active_worker=None))


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


def _accept_in(s: Session, hit_id: str, worker_id: str, at: float) -> Assignment:
    hit = s.get(HIT, hit_id, with_for_update=True)
    if hit is None or hit.disposed:
        raise WorkerError(404, f"HIT {hit_id} does not exist")
    if is_blocked(s, worker_id):
        raise WorkerError(403, "you are blocked from working for this requester")
    expire_stale(s, hit_id, at)
    mine = s.scalars(select(Assignment).where(Assignment.hit_id == hit_id,
                                              Assignment.active_worker == worker_id)).first()
    if mine is not None:
        if mine.status == "Accepted":
            return mine
        raise WorkerError(409, f"you have already submitted HIT {hit_id}; one assignment per worker")
    if hit.reviewing or at >= hit.expiration:
        raise WorkerError(410, f"HIT {hit_id} is no longer available")
    hit_type = s.get(HITType, hit.hit_type_id)
    failed = unmet_requirements(s, worker_id, json.loads(hit_type.qual_requirements), "Accept",
                                grant_auto=True, at=at)
    if failed:
        raise WorkerError(403, "you do not meet this HIT's qualification requirements: " + ", ".join(failed))
    used = set(s.scalars(select(Assignment.slot).where(Assignment.hit_id == hit_id,
                                                       Assignment.slot.is_not(None))))
    free = next((i for i in range(hit.max_assignments) if i not in used), None)
    if free is None:
        raise WorkerError(409, f"HIT {hit_id} has no assignments left")
    a = Assignment(id=new_id(), hit_id=hit_id, worker_id=worker_id, slot=free, active_worker=worker_id,
                   status="Accepted", accept_time=at, deadline=at + hit_type.assignment_duration)
    s.add(a)
    s.flush()
    # Exposure control: the HIT may ask that its rater group's qualification be granted now, in the
    # same transaction, so the other groups' HITs (which require it absent) close to this worker.
    exposure.grant_on_accept(s, hit, worker_id, at)
    return a


def submit(db: Database, assignment_id: str, fields: list[tuple[str, str]], at: float,
           worker_id: str | None = None,
           uploads: list[tuple[str, str, str, bytes]] = ()) -> Assignment:
    """Store the answers of an accepted assignment; refuses unknown, foreign, late or repeated submits."""
    expired = False
    with db.write() as s:
        a = s.get(Assignment, assignment_id, with_for_update=True)
        if a is None:
            raise WorkerError(404, f"assignment {assignment_id} does not exist")
        # No rater (None) owns nothing: a submit without a session is refused, not stored.
        if worker_id is None or worker_id != a.worker_id:
            raise WorkerError(403, f"assignment {assignment_id} is not yours; sign in as its rater")
        if a.status in DONE_STATUSES:
            raise WorkerError(409, f"assignment {assignment_id} was already submitted")
        if a.status == "Abandoned" or at > a.deadline:
            # The expiry itself is kept (the transaction commits); the answers are refused below.
            a.status, a.slot, a.active_worker = "Abandoned", None, None
            expired = True
        else:
            hit = s.get(HIT, a.hit_id)
            hit_type = s.get(HITType, hit.hit_type_id)
            q = questions.parse(hit.question)
            a.answer_fields = json.dumps(fields)
            a.answer_xml = xml_answers.build(fields, q.selection_ids)
            a.status = "Submitted"
            a.submit_time = at
            a.auto_approval_time = at + hit_type.auto_approval_delay
            for question_id, filename, content_type, data in uploads:
                s.merge(Upload(assignment_id=a.id, question_id=question_id, filename=filename,
                               content_type=content_type, data=data))
            s.flush()
            review_policies.on_submit(s, hit, a, at)
    if expired:
        raise WorkerError(410, f"assignment {assignment_id} expired before it was submitted")
    return a


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

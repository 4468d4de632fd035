"""Grant-on-accept, the server half of exposure control (docs/architecture.md "Exposure control").

A requester that splits a study's conditions over rater groups gives each group a qualification,
makes each group's HITs require the other groups' qualifications to be absent (DoesNotExist), and
marks each HIT with the qualification to grant when a rater accepts it, through a standard field:
the HIT's RequesterAnnotation carries ``grant-on-accept=<QualificationTypeId>[,<id>...]`` as a
space-separated word (after the request token). MTurk itself has no such hook (the requester grants
with AssociateQualificationWithWorker after the fact); this server applies it inside the accept
transaction, so a rater holds the group's qualification from the moment they hold its assignment.

Race window: two accepts by one worker on HITs of two groups in the same instant each check the
other's qualification before either grant commits. SQLite serialises write transactions, so none
there; on PostgreSQL it is two simultaneous accepts by the same worker id.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from eval_server.db import HIT, Qualification, QualificationType

log = logging.getLogger(__name__)

GRANT_MARK = "grant-on-accept="


def grants_in(annotation: str | None) -> list[str]:
    """Qualification type ids a HIT's RequesterAnnotation asks to grant on accept."""
    out: list[str] = []
    for word in (annotation or "").split():
        if word.startswith(GRANT_MARK):
            out += [q for q in word[len(GRANT_MARK):].split(",") if q]
    return out


def grant_on_accept(s: Session, hit: HIT, worker_id: str, at: float) -> list[str]:
    """Grant the HIT's grant-on-accept qualifications to the worker (value 1), in the caller's
    transaction. A qualification the worker already holds, or that was revoked, is left as it is;
    an unknown or deleted type is skipped with a log line (the HIT still works)."""
    granted = []
    for type_id in grants_in(hit.annotation):
        qt = s.get(QualificationType, type_id)
        if qt is None or qt.deleted:
            log.warning("HIT %s: grant-on-accept names qualification type %s, which does not exist", hit.id, type_id)
            continue
        if s.get(Qualification, (type_id, worker_id)) is not None:
            continue
        s.add(Qualification(type_id=type_id, worker_id=worker_id, value=1, status="Granted", granted_at=at))
        granted.append(type_id)
    if granted:
        s.flush()
    return granted

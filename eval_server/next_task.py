"""The next task at study scale: "accept & work" per HIT group and a bounded, paged, grouped HIT list.

A study is published as one HIT type (`mturk/publish.py` makes one per study; the admin page groups by
type too), so "per study" and "per HIT group" are both `hitTypeId`.

`POST /worker/accept-next?hitTypeId=G` gives the signed-in rater an assignment on some HIT of group G that
has a free slot and that the rater has not done, and redirects to its HIT page. Raters arriving together
must not all go for the same HIT (every rater of a sorted list takes its first row, and all but one are
refused), so each call starts at a random point of the group's HITs in id order (ids are random, so this
is a uniform pick) and takes the first HIT from there, wrapping round. The rules of taking an assignment
(blocks, qualification requirements, one assignment per worker, slots) are `assignments._accept_in`'s,
run in the same transaction as the pick:

- SQLite: the write transaction (BEGIN IMMEDIATE) holds the database's write lock, so the picked HIT's
  free slot cannot go to someone else before it is taken; nobody is refused while a HIT remains.
- PostgreSQL: the pick is `FOR UPDATE SKIP LOCKED` on the HIT row, so a concurrent rater passes over a
  HIT being taken instead of queueing on it. The slot count is read before the row lock is held, so a
  HIT may fill in between; `_accept_in` then refuses (409) and the pick runs again, a few times.

A rater who fails a group's qualification requirements gets `_accept_in`'s 403; without a group filter
that type is left out and the pick runs again over the others.

The list (`visible_hits`, `groups_for`): a page of at most `MAX_LIMIT` HITs (the rater's own open
assignments first, then HITs they can take, in creation order), optionally of one group, and one row per
HIT group with counts; neither grows with the number of HITs on the server.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from dataclasses import dataclass

from flask import Blueprint, Response, redirect
from flask import request as flask_request
from sqlalchemy import and_, bindparam, case, exists, func, null, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eval_server.assignments import WorkerError, _accept_in, is_blocked, requirements, unmet_requirements
from eval_server.db import HIT, Assignment, Database, HITType
from eval_server.identity import current_worker, require_same_origin
from eval_server.ids import _ID_ALPHABET, now
from eval_server.state import state

log = logging.getLogger(__name__)

bp = Blueprint("next_task", __name__)

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_GROUPS = 100
PICK_ATTEMPTS = 8
_rng = random.Random()


@dataclass(frozen=True)
class Page:
    """Paging arguments of a list request, checked."""
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    hit_type_id: str | None = None


def page_args(args) -> Page:
    """limit/offset/hitTypeId from query arguments; WorkerError(400) naming the bad one."""
    def integer(name: str, default: int, lo: int, hi: int) -> int:
        raw = args.get(name)
        if raw is None or raw == "":
            return default
        try:
            v = int(raw)
        except ValueError:
            raise WorkerError(400, f"{name} must be an integer from {lo} to {hi}") from None
        if not lo <= v <= hi:
            raise WorkerError(400, f"{name} must be an integer from {lo} to {hi}")
        return v
    limit = integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = integer("offset", 0, 0, 10**9)
    return Page(limit=limit, offset=offset, hit_type_id=args.get("hitTypeId") or None)


# ---- queries ----------------------------------------------------------------------------------------

def _live_slots(at: float):
    """Slots of a HIT held by live assignments (in progress and not past the deadline, or done)."""
    return (select(func.count()).select_from(Assignment)
            .where(Assignment.hit_id == HIT.id, Assignment.slot.is_not(None),
                   or_(Assignment.status != "Accepted", Assignment.deadline > at))
            .correlate(HIT).scalar_subquery())


def _done_or_held_by(worker_id: str, at: float):
    """The worker already holds a live assignment of this HIT (one per worker)."""
    return exists().where(Assignment.hit_id == HIT.id, Assignment.active_worker == worker_id,
                          or_(Assignment.status != "Accepted", Assignment.deadline > at)).correlate(HIT)


def _open(at: float):
    return and_(HIT.disposed.is_(False), HIT.reviewing.is_(False), HIT.expiration > at)


def _takeable(worker_id: str, at: float):
    return and_(_open(at), _live_slots(at) < HIT.max_assignments, ~_done_or_held_by(worker_id, at))


def _hidden_types(s: Session, worker_id: str) -> set[str]:
    """HIT types whose Discover-guarded requirements the worker fails (only types with requirements are
    looked at; a study has one type, so these are few)."""
    hidden = set()
    for t in s.scalars(select(HITType).where(HITType.qual_requirements != "[]")):
        if unmet_requirements(s, worker_id, requirements(t.qual_requirements), "Discover"):
            hidden.add(t.id)
    return hidden


def _hit_out(h: HIT, ht: HITType, available: int, assignment_id: str | None) -> dict:
    return {"hitId": h.id, "hitTypeId": ht.id, "title": ht.title, "description": ht.description,
            "reward": ht.reward, "available": available, "expiration": h.expiration,
            "assignmentDurationInSeconds": ht.assignment_duration, "assignmentId": assignment_id}


def visible_hits(s: Session, worker_id: str, at: float, page: Page = Page()) -> tuple[list[dict], bool]:
    """One page of what the worker may work on: their open assignments first (with their ids), then HITs
    with a free slot they have not done, in creation order. Returns (items, more_after_this_page)."""
    if is_blocked(s, worker_id):
        return [], False
    live = _live_slots(at)
    held_q = (select(HIT, live, Assignment.id).join(Assignment, HIT.id == Assignment.hit_id)
              .where(Assignment.worker_id == worker_id, Assignment.status == "Accepted",
                     Assignment.active_worker.is_not(None), Assignment.deadline > at, _open(at)))
    free_q = select(HIT, live, null()).where(_takeable(worker_id, at))
    hidden = _hidden_types(s, worker_id)
    if hidden:
        free_q = free_q.where(HIT.hit_type_id.not_in(sorted(hidden)))
    if page.hit_type_id:
        held_q = held_q.where(HIT.hit_type_id == page.hit_type_id)
        free_q = free_q.where(HIT.hit_type_id == page.hit_type_id)
    # One row more than asked tells whether another page follows.
    held = list(s.execute(held_q.order_by(Assignment.accept_time, Assignment.id).limit(page.offset + page.limit + 1)))
    rows = held[page.offset:]
    if len(rows) < page.limit + 1:
        rows += list(s.execute(free_q.order_by(HIT.created_at, HIT.id)
                               .offset(max(0, page.offset - len(held))).limit(page.limit + 1 - len(rows))))
    types = {t.id: t for t in s.scalars(select(HITType).where(HITType.id.in_({h.hit_type_id for h, _, _ in rows})))}
    out = [_hit_out(h, types[h.hit_type_id], max(0, h.max_assignments - n), aid) for h, n, aid in rows]
    return out[:page.limit], len(out) > page.limit


def groups_for(s: Session, worker_id: str, at: float, limit: int = MAX_GROUPS) -> list[dict]:
    """One row per HIT group the worker may discover: open HITs, assignments left, and how many of
    those HITs this worker can still take. One grouped pass over the open HITs (each HIT's slot count
    read from the covering index ix_assignment_live) and one over the worker's own assignments."""
    if is_blocked(s, worker_id):
        return []
    live = _live_slots(at)
    per_hit = (select(HIT.hit_type_id.label("type_id"), HIT.max_assignments.label("max"), live.label("live"),
                      HIT.created_at.label("created")).where(_open(at)))
    hidden = _hidden_types(s, worker_id)
    if hidden:
        per_hit = per_hit.where(HIT.hit_type_id.not_in(sorted(hidden)))
    h = per_hit.subquery()
    stats = s.execute(
        select(h.c.type_id, func.count(), func.sum(h.c.max - h.c.live),
               func.sum(case((h.c.live < h.c.max, 1), else_=0)))
        .group_by(h.c.type_id).order_by(func.min(h.c.created)).limit(limit)).all()
    # HITs with a free slot that this worker has already done or holds: not theirs to take.
    theirs = dict(s.execute(
        select(HIT.hit_type_id, func.count(func.distinct(HIT.id))).select_from(Assignment)
        .join(HIT, HIT.id == Assignment.hit_id)
        .where(Assignment.worker_id == worker_id, Assignment.active_worker == worker_id,
               or_(Assignment.status != "Accepted", Assignment.deadline > at), _open(at), live < HIT.max_assignments)
        .group_by(HIT.hit_type_id)).all())
    types = {t.id: t for t in s.scalars(select(HITType).where(HITType.id.in_([r[0] for r in stats])))}
    out = []
    for type_id, n_hits, left, free in stats:
        ht = types[type_id]
        out.append({"hitTypeId": ht.id, "title": ht.title, "description": ht.description, "reward": ht.reward,
                    "hits": int(n_hits), "assignmentsAvailable": max(0, int(left or 0)),
                    "hitsForYou": max(0, int(free or 0) - theirs.get(type_id, 0)),
                    "assignmentDurationInSeconds": ht.assignment_duration})
    return out


# ---- accept next -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _pick_stmt(by_group: bool, upper: bool, postgres: bool):
    """The pick, built once (bound parameters at, w, g, start): it runs on every accept-next, and
    building a statement costs more CPU than SQLite takes to run it."""
    at, w = bindparam("at"), bindparam("w")
    stmt = select(HIT.id, HIT.hit_type_id).where(_takeable(w, at))
    if by_group:
        stmt = stmt.where(HIT.hit_type_id == bindparam("g"))
    stmt = stmt.where(HIT.id < bindparam("start") if upper else HIT.id >= bindparam("start"))
    stmt = stmt.order_by(HIT.id).limit(1)
    return stmt.with_for_update(skip_locked=True, of=HIT) if postgres else stmt


def _pick(s: Session, worker_id: str, at: float, hit_type_id: str | None, excluded: set[str],
          postgres: bool) -> tuple[str, str] | None:
    """(HIT id, its type) of a HIT the worker could take, from a random point of id order (wrapping
    round); None if none. Run on the session's connection: a Core select needs no ORM layer."""
    start = "".join(_rng.choices(_ID_ALPHABET, k=6))
    params = {"at": at, "w": worker_id, "g": hit_type_id, "start": start}
    for upper in (False, True):
        stmt = _pick_stmt(bool(hit_type_id), upper, postgres)
        if excluded:
            # Rare (a type whose requirements this worker fails, without a group filter): built each time.
            stmt = stmt.where(HIT.hit_type_id.not_in(sorted(excluded)))
        found = s.connection().execute(stmt, params).first()
        if found is not None:
            return found.id, found.hit_type_id
    return None


def accept_next(db: Database, worker_id: str, at: float, hit_type_id: str | None = None) -> Assignment:
    """An assignment of a HIT (of the group, if given) the worker may take; WorkerError when none."""
    postgres = db.engine.dialect.name == "postgresql"
    excluded: set[str] = set()
    refused: WorkerError | None = None
    for attempt in range(PICK_ATTEMPTS):
        picked: list[str] = []
        try:
            with db.write() as s:
                found = _pick(s, worker_id, at, hit_type_id, excluded, postgres)
                if found is None:
                    if hit_type_id and s.get(HITType, hit_type_id) is None:
                        raise WorkerError(404, f"HIT group {hit_type_id} does not exist")
                    break
                hit_id, type_id = found
                picked.append(type_id)
                return _accept_in(s, hit_id, worker_id, at)
        except WorkerError as e:
            if not picked:
                raise
            if e.status == 403:
                # Blocked, or this group's requirements are not met: leave the group out and go on.
                refused = e
                excluded.add(picked[0])
                if hit_type_id:
                    break
                continue
            if e.status in (409, 410):
                log.debug("accept-next %s: HIT filled or closed under us (attempt %d)", worker_id, attempt + 1)
                continue
            raise
        except IntegrityError:
            log.debug("accept-next %s: slot taken concurrently (attempt %d)", worker_id, attempt + 1)
    else:
        # Every attempt lost a race or met a group this worker may not take.
        raise refused or WorkerError(503, "the server is busy; try again")
    if refused is not None:
        raise refused
    where = f"in group {hit_type_id} " if hit_type_id else ""
    raise WorkerError(404, f"no HITs left {where}that you can take")


def _text(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


@bp.post("/worker/accept-next")
def accept_next_route() -> Response:
    """MTurk's "accept & work": take the next HIT of the group and go to its page (303, so a reload of
    that page does not accept again)."""
    from eval_server.worker import _task_query

    require_same_origin("accepting a HIT")
    worker_id = current_worker()
    hit_type_id = flask_request.values.get("hitTypeId") or None
    try:
        a = accept_next(state().db, worker_id, now(), hit_type_id)
    except WorkerError as e:
        return _text(e.status, e.message)
    return redirect("/worker/hit?" + _task_query(a, a.hit_id, worker_id), code=303)


@bp.get("/worker/api/groups")
def api_groups() -> Response:
    """The HIT groups the signed-in rater may work on, with counts (JSON {"groups": [...]})."""
    worker_id = current_worker()
    with state().db.read() as s:
        groups = groups_for(s, worker_id, now())
    return Response(json.dumps({"groups": groups}), content_type="application/json")


# ---- the HIT's pages, read in one statement ---------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _page_stmt():
    """The HIT, its type and (when asked) the assignment, in one Core statement built once: the frame
    page and the HIT page run it on every load, and three ORM `Session.get`s cost several times the
    CPU of the query itself. The assignment is an outer join on its own id, so a wrong or foreign id
    still comes back as the HIT's row (with NULLs, or the other HIT's id) for the page to refuse."""
    h, t, a = HIT.__table__.c, HITType.__table__.c, Assignment.__table__.alias("a")
    return (select(h.id, h.disposed, h.question, h.max_assignments, h.hit_type_id, t.title, t.reward,
                   t.qual_requirements, a.c.id.label("a_id"), a.c.hit_id.label("a_hit_id"),
                   a.c.worker_id.label("a_worker_id"), a.c.status.label("a_status"),
                   a.c.deadline.label("a_deadline"))
            .select_from(HIT.__table__.join(HITType.__table__, t.id == h.hit_type_id)
                         .outerjoin(a, a.c.id == bindparam("aid")))
            .where(h.id == bindparam("hid")))


def page_row(conn, hit_id: str, assignment_id: str | None):
    """The row `_page_stmt` reads (None when there is no such HIT): HIT columns by their names,
    the type's title/reward/qual_requirements, the assignment's as a_id, a_hit_id, a_worker_id,
    a_status, a_deadline (NULL when assignment_id is None or unknown)."""
    return conn.execute(_page_stmt(), {"hid": hit_id, "aid": assignment_id}).first()


"""HIT types and HITs: create, read, list, expire, extend, review status, delete."""

from __future__ import annotations

import base64
import hashlib
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from eval_server import layouts, questions, review_policies
from eval_server.api.common import (ApiContext, dumps, duplicate_token, money, new_id, now, operation, page_args, paged,
                                    page_out, remember_token, run_page, token_owner)
from eval_server.api.shapes import hit_out
from eval_server.assignments import ASSUMED_MET, NUMBER_APPROVED, PERCENT_APPROVED, counts_for, hit_status
from eval_server.db import HIT, Assignment, HITType, Layout, QualificationType
from eval_server.errors import ApiError, bad_state, not_found
from regnet.mturk_xml import html_question

MAX_LIFETIME_S = 365 * 24 * 3600
MAX_AUTO_APPROVAL_S = 30 * 24 * 3600
MAX_ASSIGNMENTS = 1_000_000  # MTurk's limit, additional assignments included
SYSTEM_QUALS = ASSUMED_MET | {PERCENT_APPROVED, NUMBER_APPROVED}
_NEEDS_VALUE = {"LessThan", "LessThanOrEqualTo", "GreaterThan", "GreaterThanOrEqualTo", "EqualTo", "NotEqualTo"}


def _check_range(p: dict, key: str, lo: int, hi: int) -> None:
    if key in p and not lo <= p[key] <= hi:
        raise ApiError(f"{key} must be between {lo} and {hi} (got {p[key]}).")


def _check_requirements(s: Session, reqs: list[dict]) -> None:
    for r in reqs:
        tid, comp = r["QualificationTypeId"], r["Comparator"]
        if tid not in SYSTEM_QUALS:
            qt = s.get(QualificationType, tid)
            if qt is None or qt.deleted:
                raise ApiError(f"QualificationType {tid} does not exist.",
                               "AWS.MechanicalTurk.QualificationTypeDoesNotExist")
        ints, locs = r.get("IntegerValues") or [], r.get("LocaleValues") or []
        if comp in _NEEDS_VALUE and len(ints) + len(locs) != 1:
            raise ApiError(f"Comparator {comp} takes exactly one IntegerValue or LocaleValue.")
        if comp in ("In", "NotIn") and not (ints or locs):
            raise ApiError(f"Comparator {comp} needs at least one IntegerValue or LocaleValue.")
        if comp in ("Exists", "DoesNotExist") and (ints or locs):
            raise ApiError(f"Comparator {comp} takes no values.")


def get_or_create_type(s: Session, p: dict, at: float) -> HITType:
    """MTurk gives one HITTypeId per distinct set of properties: the id is derived from them."""
    _check_range(p, "AssignmentDurationInSeconds", 30, MAX_LIFETIME_S)
    _check_range(p, "AutoApprovalDelayInSeconds", 0, MAX_AUTO_APPROVAL_S)
    reqs = p.get("QualificationRequirements") or []
    _check_requirements(s, reqs)
    props = {"Title": p["Title"], "Description": p["Description"], "Keywords": p.get("Keywords") or "",
             "Reward": money(p["Reward"], "Reward"), "AssignmentDurationInSeconds": p["AssignmentDurationInSeconds"],
             "AutoApprovalDelayInSeconds": p.get("AutoApprovalDelayInSeconds", 2592000),
             "QualificationRequirements": reqs}
    digest = hashlib.sha256(dumps(props).encode()).digest()
    type_id = "3" + base64.b32encode(digest).decode()[:29]
    ht = s.get(HITType, type_id)
    if ht is None:
        ht = HITType(id=type_id, title=props["Title"], description=props["Description"],
                     keywords=props["Keywords"], reward=props["Reward"],
                     assignment_duration=props["AssignmentDurationInSeconds"],
                     auto_approval_delay=props["AutoApprovalDelayInSeconds"], qual_requirements=json.dumps(reqs),
                     created_at=at)
        s.add(ht)
        s.flush()
    return ht


@operation("CreateHITType")
def create_hit_type(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        return {"HITTypeId": get_or_create_type(s, p, now()).id}


def _question_for(s: Session, p: dict) -> tuple[str, str | None, str | None]:
    """(Question document, layout id, layout parameters JSON) from Question or HITLayoutId."""
    has_q, has_layout = bool(p.get("Question")), bool(p.get("HITLayoutId"))
    if has_q == has_layout:
        raise ApiError("Provide exactly one of Question and HITLayoutId.")
    if has_q:
        questions.parse(p["Question"], strict=True)
        if p.get("HITLayoutParameters"):
            raise ApiError("HITLayoutParameters can only be given with a HITLayoutId.")
        return p["Question"], None, None
    layout = s.get(Layout, p["HITLayoutId"])
    if layout is None:
        raise ApiError(f"HITLayout {p['HITLayoutId']} does not exist.", "AWS.MechanicalTurk.HITLayoutDoesNotExist")
    params = p.get("HITLayoutParameters") or []
    page = layouts.render(layout.id, layout.html, params)
    return (html_question(page), layout.id,
            json.dumps({x["Name"]: x["Value"] for x in params}))


def _create_hit(ctx: ApiContext, s: Session, ht: HITType, p: dict, at: float) -> dict:
    token = p.get("UniqueRequestToken")
    existing = token_owner(s, "hit", token, at)
    if existing:
        raise duplicate_token(token, "The HIT with ID", existing, "AWS.MechanicalTurk.HitAlreadyExists")
    _check_range(p, "LifetimeInSeconds", 30, MAX_LIFETIME_S)
    _check_range(p, "MaxAssignments", 1, MAX_ASSIGNMENTS)
    question, layout_id, layout_params = _question_for(s, p)
    hit = HIT(id=new_id(), hit_type_id=ht.id, layout_id=layout_id, layout_params=layout_params, question=question,
              max_assignments=p.get("MaxAssignments", 1), lifetime=p["LifetimeInSeconds"], created_at=at,
              expiration=at + p["LifetimeInSeconds"], annotation=p.get("RequesterAnnotation") or "",
              assignment_policy=review_policies.check(p.get("AssignmentReviewPolicy"), "Assignment"),
              hit_policy=review_policies.check(p.get("HITReviewPolicy"), "HIT"))
    s.add(hit)
    remember_token(s, "hit", token, hit.id, at)
    s.flush()
    return {"HIT": hit_out(hit, ht, counts_for(s, [hit.id], at)[hit.id], at)}


@operation("CreateHIT")
def create_hit(ctx: ApiContext, p: dict) -> dict:
    at = now()
    with ctx.db.write() as s:
        return _create_hit(ctx, s, get_or_create_type(s, p, at), p, at)


@operation("CreateHITWithHITType")
def create_hit_with_type(ctx: ApiContext, p: dict) -> dict:
    at = now()
    with ctx.db.write() as s:
        ht = s.get(HITType, p["HITTypeId"])
        if ht is None:
            raise ApiError(f"HITType {p['HITTypeId']} does not exist.", "AWS.MechanicalTurk.HITTypeDoesNotExist")
        return _create_hit(ctx, s, ht, p, at)


def load_hit(s: Session, hit_id: str, *, lock: bool = False) -> tuple[HIT, HITType]:
    hit = s.get(HIT, hit_id, with_for_update=lock)
    if hit is None:
        raise ApiError(f"Hit {hit_id} does not exist.", "AWS.MechanicalTurk.HITDoesNotExist")
    return hit, s.get(HITType, hit.hit_type_id)


@operation("GetHIT")
def get_hit(ctx: ApiContext, p: dict) -> dict:
    at = now()
    with ctx.db.read() as s:
        hit, ht = load_hit(s, p["HITId"])
        return {"HIT": hit_out(hit, ht, counts_for(s, [hit.id], at)[hit.id], at)}


def hits_page(s: Session, stmt, p: dict, at: float, key: str = "HITs") -> dict:
    offset, limit = page_args(p)
    rows, token = run_page(s, stmt.order_by(HIT.created_at, HIT.id), offset, limit)
    counts = counts_for(s, [h.id for h in rows], at)
    types = {t.id: t for t in s.scalars(select(HITType).where(HITType.id.in_({h.hit_type_id for h in rows})))}
    return page_out([hit_out(h, types[h.hit_type_id], counts[h.id], at) for h in rows], token, key)


@operation("ListHITs")
def list_hits(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.read() as s:
        return hits_page(s, select(HIT).where(HIT.disposed.is_(False)), p, now())


@operation("ListHITsForQualificationType")
def list_hits_for_qual(ctx: ApiContext, p: dict) -> dict:
    at = now()
    with ctx.db.read() as s:
        qt = s.get(QualificationType, p["QualificationTypeId"])
        if qt is None or qt.deleted:
            raise not_found("QualificationType", p["QualificationTypeId"])
        # Requirements are stored as JSON; the type id is a 30-character token, so a text match is exact.
        type_ids = [t.id for t in s.scalars(select(HITType).where(
            HITType.qual_requirements.contains(f'"{qt.id}"')))]
        return hits_page(s, select(HIT).where(HIT.disposed.is_(False), HIT.hit_type_id.in_(type_ids)), p, at)


@operation("ListReviewableHITs")
def list_reviewable(ctx: ApiContext, p: dict) -> dict:
    at = now()
    want = p.get("Status") or "Reviewable"
    with ctx.db.read() as s:
        stmt = select(HIT).where(HIT.disposed.is_(False))
        if p.get("HITTypeId"):
            stmt = stmt.where(HIT.hit_type_id == p["HITTypeId"])
        if want == "Reviewing":
            return hits_page(s, stmt.where(HIT.reviewing.is_(True)), p, at)
        # Reviewable depends on live counts: find the ids first, then page over them.
        candidates = list(s.scalars(stmt.where(HIT.reviewing.is_(False))))
        counts = counts_for(s, [h.id for h in candidates], at)
        ids = [h.id for h in candidates if hit_status(h, counts[h.id], at) == "Reviewable"]
        return hits_page(s, select(HIT).where(HIT.id.in_(ids)), p, at)


@operation("UpdateExpirationForHIT")
def update_expiration(ctx: ApiContext, p: dict) -> dict:
    at = now()
    with ctx.db.write() as s:
        hit, _ = load_hit(s, p["HITId"], lock=True)
        if hit.disposed:
            raise bad_state(f"Hit {hit.id} has been deleted.")
        expire_at = float(p["ExpireAt"])
        # A HIT lives at most a year (LifetimeInSeconds): a later time would outlast what MTurk allows
        # (and an unbounded one breaks every client that reads the HIT back).
        if expire_at > at + MAX_LIFETIME_S:
            raise ApiError(f"ExpireAt must be at most {MAX_LIFETIME_S} seconds (365 days) from now.")
        # A time in the past expires the HIT now (MTurk's way to stop a HIT early).
        hit.expiration = max(expire_at, at)
    return {}


@operation("UpdateHITReviewStatus")
def update_review_status(ctx: ApiContext, p: dict) -> dict:
    at = now()
    with ctx.db.write() as s:
        hit, _ = load_hit(s, p["HITId"], lock=True)
        status = hit_status(hit, counts_for(s, [hit.id], at)[hit.id], at)
        if p.get("Revert"):
            if status != "Reviewing":
                raise bad_state(f"This HIT is currently in the state '{status}'. This operation can be called "
                                "with Revert only for a status of: Reviewing")
            hit.reviewing = False
        else:
            if status != "Reviewable":
                raise bad_state(f"This HIT is currently in the state '{status}'. This operation can be called "
                                "with a status of: Reviewable")
            hit.reviewing = True
    return {}


@operation("UpdateHITTypeOfHIT")
def update_hit_type_of_hit(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        hit, _ = load_hit(s, p["HITId"], lock=True)
        if s.get(HITType, p["HITTypeId"]) is None:
            raise ApiError(f"HITType {p['HITTypeId']} does not exist.", "AWS.MechanicalTurk.HITTypeDoesNotExist")
        hit.hit_type_id = p["HITTypeId"]
    return {}


@operation("CreateAdditionalAssignmentsForHIT")
def create_additional_assignments(ctx: ApiContext, p: dict) -> dict:
    at = now()
    extra = p["NumberOfAdditionalAssignments"]
    with ctx.db.write() as s:
        token = p.get("UniqueRequestToken")
        if token_owner(s, "extend", token, at):
            raise duplicate_token(token, "An extension of HIT", p["HITId"], "AWS.MechanicalTurk.DuplicateRequest")
        hit, _ = load_hit(s, p["HITId"], lock=True)
        if hit.disposed:
            raise bad_state(f"Hit {hit.id} has been deleted.")
        if extra < 1:
            raise ApiError("NumberOfAdditionalAssignments must be at least 1.")
        if hit.max_assignments < 10 <= hit.max_assignments + extra:
            raise ApiError(f"HIT {hit.id} was created with fewer than 10 assignments ({hit.max_assignments}); "
                           "it cannot be extended to 10 or more.", "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease")
        if hit.max_assignments + extra > MAX_ASSIGNMENTS:
            raise ApiError(f"HIT {hit.id} has MaxAssignments {hit.max_assignments}; "
                           f"NumberOfAdditionalAssignments {extra} would take it past {MAX_ASSIGNMENTS}.",
                           "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease")
        hit.max_assignments += extra
        hit.hit_policy_done = False
        remember_token(s, "extend", token, hit.id, at)
    return {}


@operation("DeleteHIT")
def delete_hit(ctx: ApiContext, p: dict) -> dict:
    at = now()
    with ctx.db.write() as s:
        hit, _ = load_hit(s, p["HITId"], lock=True)
        if hit.disposed:
            return {}
        c = counts_for(s, [hit.id], at)[hit.id]
        status = hit_status(hit, c, at)
        if status not in ("Reviewable", "Reviewing") or c.pending:
            raise bad_state(f"This HIT is currently in the state '{status}'. This operation can be called with "
                            "a status of: Reviewable (expire it first with UpdateExpirationForHIT)")
        if c.submitted:
            raise bad_state(f"HIT {hit.id} has {c.submitted} submitted assignment(s) not yet approved or rejected.")
        hit.disposed = True
        # A deleted HIT's unfinished assignments can never be submitted now.
        for a in s.scalars(select(Assignment).where(Assignment.hit_id == hit.id, Assignment.status == "Accepted")):
            a.status, a.slot, a.active_worker = "Abandoned", None, None
    return {}


@operation("ListReviewPolicyResultsForHIT")
def list_review_results(ctx: ApiContext, p: dict) -> dict:
    levels = p.get("PolicyLevels") or ["Assignment", "HIT"]
    want_actions = p.get("RetrieveActions", True)
    want_results = p.get("RetrieveResults", True)
    with ctx.db.read() as s:
        hit, _ = load_hit(s, p["HITId"])
        offset, limit = page_args(p, default=100)
        out: dict = {"HITId": hit.id}
        if "Assignment" in levels and hit.assignment_policy:
            out["AssignmentReviewPolicy"] = json.loads(hit.assignment_policy)
            out["AssignmentReviewReport"] = review_policies.report(s, hit.id, "Assignment", want_results, want_actions)
        if "HIT" in levels and hit.hit_policy:
            out["HITReviewPolicy"] = json.loads(hit.hit_policy)
            out["HITReviewReport"] = review_policies.report(s, hit.id, "HIT", want_results, want_actions)
    # One page = the same window over every results/actions list of both reports; a token follows
    # while any list has more.
    more = False
    for report in (out.get("AssignmentReviewReport"), out.get("HITReviewReport")):
        for key in ("ReviewResults", "ReviewActions"):
            if report and report.get(key) is not None:
                more |= len(report[key]) > offset + limit
                report[key] = report[key][offset:offset + limit]
    _, token = paged([], offset, limit, more)
    if token:
        out["NextToken"] = token
    return out

"""Assignments: list, get, approve, reject; bonuses; uploaded files."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

from sqlalchemy import select

from eval_server.api.common import (ApiContext, duplicate_token, money, new_id, now, operation, page_args,
                                    page_out, remember_token, run_page, token_owner)
from eval_server.api.hits import load_hit
from eval_server.api.shapes import assignment_out, bonus_out, hit_out
from eval_server.assignments import DONE_STATUSES, auto_approve_due, counts_for
from eval_server.db import Assignment, Bonus, Upload
from eval_server.errors import ApiError

OVERRIDE_WINDOW_S = 30 * 24 * 3600
UPLOAD_URL_TTL_S = 60


def _load_assignment(s, assignment_id: str, *, lock: bool = False) -> Assignment:
    a = s.get(Assignment, assignment_id, with_for_update=lock)
    # In-progress and abandoned assignments are not visible to the requester API, as on MTurk.
    if a is None or a.status not in DONE_STATUSES:
        raise ApiError(f"Assignment {assignment_id} does not exist.", "AWS.MechanicalTurk.AssignmentDoesNotExist")
    return a


def _wrong_state(a: Assignment, allowed: str) -> ApiError:
    return ApiError(f"This operation can be called with a status of: {allowed} (assignment {a.id} is "
                    f"{a.status}).", "AWS.MechanicalTurk.InvalidAssignmentState")


@operation("ListAssignmentsForHIT")
def list_assignments(ctx: ApiContext, p: dict) -> dict:
    auto_approve_due(ctx.db, now())
    statuses = p.get("AssignmentStatuses") or list(DONE_STATUSES)
    with ctx.db.read() as s:
        load_hit(s, p["HITId"])
        offset, limit = page_args(p)
        rows, token = run_page(s, select(Assignment).where(Assignment.hit_id == p["HITId"],
                                                           Assignment.status.in_(statuses))
                               .order_by(Assignment.submit_time, Assignment.id), offset, limit)
        return page_out([assignment_out(a) for a in rows], token, "Assignments")


@operation("GetAssignment")
def get_assignment(ctx: ApiContext, p: dict) -> dict:
    at = now()
    auto_approve_due(ctx.db, at)
    with ctx.db.read() as s:
        a = _load_assignment(s, p["AssignmentId"])
        hit, ht = load_hit(s, a.hit_id)
        return {"Assignment": assignment_out(a), "HIT": hit_out(hit, ht, counts_for(s, [hit.id], at)[hit.id], at)}


@operation("ApproveAssignment")
def approve(ctx: ApiContext, p: dict) -> dict:
    at = now()
    auto_approve_due(ctx.db, at)
    with ctx.db.write() as s:
        a = _load_assignment(s, p["AssignmentId"], lock=True)
        if a.status == "Rejected" and p.get("OverrideRejection"):
            if at - (a.submit_time or at) > OVERRIDE_WINDOW_S:
                raise ApiError(f"Assignment {a.id} was submitted more than 30 days ago; its rejection can no "
                               "longer be overridden.", "AWS.MechanicalTurk.InvalidAssignmentState")
        elif a.status != "Submitted":
            raise _wrong_state(a, "Submitted")
        a.status, a.approval_time, a.rejection_time = "Approved", at, None
        if p.get("RequesterFeedback"):
            a.feedback = p["RequesterFeedback"]
    return {}


@operation("RejectAssignment")
def reject(ctx: ApiContext, p: dict) -> dict:
    at = now()
    auto_approve_due(ctx.db, at)
    with ctx.db.write() as s:
        a = _load_assignment(s, p["AssignmentId"], lock=True)
        if a.status != "Submitted":
            raise _wrong_state(a, "Submitted")
        a.status, a.rejection_time, a.feedback = "Rejected", at, p["RequesterFeedback"]
    return {}


@operation("SendBonus")
def send_bonus(ctx: ApiContext, p: dict) -> dict:
    at = now()
    amount = money(p["BonusAmount"], "BonusAmount", minimum="0.01")
    with ctx.db.write() as s:
        token = p.get("UniqueRequestToken")
        existing = token_owner(s, "bonus", token, at)
        if existing:
            raise duplicate_token(token, "The bonus payment", existing, "AWS.MechanicalTurk.DuplicateRequest")
        a = s.get(Assignment, p["AssignmentId"])
        if a is None or a.status not in DONE_STATUSES:
            raise ApiError(f"Assignment {p['AssignmentId']} does not exist or has not been submitted; a bonus can "
                           "only be paid for a submitted assignment.", "AWS.MechanicalTurk.AssignmentDoesNotExist")
        if a.worker_id != p["WorkerId"]:
            raise ApiError(f"Assignment {a.id} was not done by worker {p['WorkerId']}.",
                           "AWS.MechanicalTurk.InvalidParameterValue")
        b = Bonus(id=new_id(), worker_id=a.worker_id, assignment_id=a.id, amount=amount, reason=p["Reason"],
                  granted_at=at)
        s.add(b)
        remember_token(s, "bonus", token, b.id, at)
    return {}


@operation("ListBonusPayments")
def list_bonuses(ctx: ApiContext, p: dict) -> dict:
    if bool(p.get("HITId")) == bool(p.get("AssignmentId")):
        raise ApiError("Give exactly one of HITId and AssignmentId.")
    with ctx.db.read() as s:
        stmt = select(Bonus)
        if p.get("HITId"):
            load_hit(s, p["HITId"])
            stmt = stmt.join(Assignment, Assignment.id == Bonus.assignment_id).where(Assignment.hit_id == p["HITId"])
        else:
            stmt = stmt.where(Bonus.assignment_id == p["AssignmentId"])
        offset, limit = page_args(p)
        rows, token = run_page(s, stmt.order_by(Bonus.granted_at, Bonus.id), offset, limit)
        return page_out([bonus_out(b) for b in rows], token, "BonusPayments")


def upload_signature(secret: str, assignment_id: str, question_id: str, expires: int) -> str:
    msg = f"{assignment_id}\n{question_id}\n{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


@operation("GetFileUploadURL")
def get_file_upload_url(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.read() as s:
        a = _load_assignment(s, p["AssignmentId"])
        if s.get(Upload, (a.id, p["QuestionIdentifier"])) is None:
            raise ApiError(f"Assignment {a.id} has no uploaded file for question {p['QuestionIdentifier']}.",
                           "AWS.MechanicalTurk.FileUploadDoesNotExist")
    # A short-lived signed URL, as MTurk hands out (theirs lives 60 s).
    expires = int(time.time()) + UPLOAD_URL_TTL_S
    sig = upload_signature(ctx.config.secret_key, a.id, p["QuestionIdentifier"], expires)
    url = (f"{ctx.base_url}/files/{quote(a.id)}/{quote(p['QuestionIdentifier'], safe='')}"
           f"?expires={expires}&signature={sig}")
    return {"FileUploadURL": url}


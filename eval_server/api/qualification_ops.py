"""Qualification types, grants, requests and tests."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from eval_server import qual_tests, questions
from eval_server.api.common import ApiContext, new_id, now, operation, page_args, page_out, run_page
from eval_server.api.shapes import qual_request_out, qual_type_out, qualification_out
from eval_server.db import Qualification, QualificationRequest, QualificationType
from eval_server.errors import ApiError


def _load_type(s, type_id: str, *, lock: bool = False) -> QualificationType:
    qt = s.get(QualificationType, type_id, with_for_update=lock)
    if qt is None or qt.deleted:
        raise ApiError(f"QualificationType {type_id} does not exist.", "AWS.MechanicalTurk.QualificationTypeDoesNotExist")
    return qt


def _check_test(test: str | None, answer_key: str | None, auto_granted: bool) -> None:
    if test is not None:
        q = questions.parse(test, strict=True)
        if q.kind != "form":
            raise ApiError("Test must be a QuestionForm.")
        if auto_granted:
            raise ApiError("A QualificationType cannot have both a Test and AutoGranted.")
    if answer_key is not None:
        if test is None:
            raise ApiError("AnswerKey requires a Test.")
        qual_tests.check_answer_key(answer_key)


@operation("CreateQualificationType")
def create_qualification_type(ctx: ApiContext, p: dict) -> dict:
    _check_test(p.get("Test"), p.get("AnswerKey"), bool(p.get("AutoGranted")))
    if p.get("Test") and not p.get("TestDurationInSeconds"):
        raise ApiError("TestDurationInSeconds is required when a Test is given.")
    with ctx.db.write() as s:
        clash = s.scalars(select(QualificationType).where(QualificationType.name == p["Name"],
                                                          QualificationType.deleted.is_(False))).first()
        if clash is not None:
            raise ApiError("You have already created a QualificationType with this name. A QualificationType's name "
                           "must be unique among all of the QualificationTypes created by the same user.",
                           "AWS.MechanicalTurk.QualificationTypeAlreadyExists")
        qt = QualificationType(id=new_id(), name=p["Name"], description=p["Description"],
                               keywords=p.get("Keywords") or "", status=p["QualificationTypeStatus"],
                               retry_delay=p.get("RetryDelayInSeconds"), test=p.get("Test"),
                               answer_key=p.get("AnswerKey"), test_duration=p.get("TestDurationInSeconds"),
                               auto_granted=bool(p.get("AutoGranted")),
                               auto_granted_value=p.get("AutoGrantedValue", 1), created_at=now())
        s.add(qt)
        s.flush()
        return {"QualificationType": qual_type_out(qt)}


@operation("GetQualificationType")
def get_qualification_type(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.read() as s:
        return {"QualificationType": qual_type_out(_load_type(s, p["QualificationTypeId"]))}


@operation("UpdateQualificationType")
def update_qualification_type(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        qt = _load_type(s, p["QualificationTypeId"], lock=True)
        test = p.get("Test", qt.test)
        auto = p.get("AutoGranted", qt.auto_granted)
        _check_test(test, p.get("AnswerKey", qt.answer_key if "Test" not in p else None), bool(auto))
        for key, attr in (("Description", "description"), ("QualificationTypeStatus", "status"),
                          ("Test", "test"), ("AnswerKey", "answer_key"), ("TestDurationInSeconds", "test_duration"),
                          ("RetryDelayInSeconds", "retry_delay"), ("AutoGranted", "auto_granted"),
                          ("AutoGrantedValue", "auto_granted_value")):
            if key in p:
                setattr(qt, attr, p[key])
        if "Test" in p and "AnswerKey" not in p:
            qt.answer_key = None  # a new test invalidates the old key, as on MTurk
        return {"QualificationType": qual_type_out(qt)}


@operation("DeleteQualificationType")
def delete_qualification_type(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        qt = _load_type(s, p["QualificationTypeId"], lock=True)
        qt.deleted = True
        qt.status = "Inactive"
    return {}


@operation("ListQualificationTypes")
def list_qualification_types(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.read() as s:
        stmt = select(QualificationType).where(QualificationType.deleted.is_(False))
        if p.get("Query"):
            like = f"%{p['Query'].lower()}%"
            stmt = stmt.where(or_(func.lower(QualificationType.name).like(like),
                                  func.lower(QualificationType.description).like(like),
                                  func.lower(QualificationType.keywords).like(like)))
        # Every type here is owned by the one requester and requestable, so both filters keep them all.
        offset, limit = page_args(p)
        rows, token = run_page(s, stmt.order_by(QualificationType.created_at, QualificationType.id), offset, limit)
        return page_out([qual_type_out(q) for q in rows], token, "QualificationTypes")


@operation("AssociateQualificationWithWorker")
def associate(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        _load_type(s, p["QualificationTypeId"])
        grant(s, p["QualificationTypeId"], p["WorkerId"], p.get("IntegerValue", 1), now())
    return {}


@operation("DisassociateQualificationFromWorker")
def disassociate(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        _load_type(s, p["QualificationTypeId"])
        q = s.get(Qualification, (p["QualificationTypeId"], p["WorkerId"]), with_for_update=True)
        if q is None or q.status != "Granted":
            raise ApiError(f"Worker {p['WorkerId']} does not have qualification {p['QualificationTypeId']}.",
                           "AWS.MechanicalTurk.QualificationDoesNotExist")
        q.status = "Revoked"
    return {}


@operation("GetQualificationScore")
def get_score(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.read() as s:
        _load_type(s, p["QualificationTypeId"])
        q = s.get(Qualification, (p["QualificationTypeId"], p["WorkerId"]))
        if q is None:
            raise ApiError("You requested a Qualification that does not exist.",
                           "AWS.MechanicalTurk.QualificationDoesNotExist")
        return {"Qualification": qualification_out(q)}


@operation("ListWorkersWithQualificationType")
def list_workers_with_qual(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.read() as s:
        _load_type(s, p["QualificationTypeId"])
        stmt = select(Qualification).where(Qualification.type_id == p["QualificationTypeId"])
        if p.get("Status"):
            stmt = stmt.where(Qualification.status == p["Status"])
        offset, limit = page_args(p)
        rows, token = run_page(s, stmt.order_by(Qualification.granted_at, Qualification.worker_id), offset, limit)
        return page_out([qualification_out(q) for q in rows], token, "Qualifications")


@operation("ListQualificationRequests")
def list_requests(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.read() as s:
        stmt = select(QualificationRequest).where(QualificationRequest.status == "Pending")
        if p.get("QualificationTypeId"):
            _load_type(s, p["QualificationTypeId"])
            stmt = stmt.where(QualificationRequest.type_id == p["QualificationTypeId"])
        offset, limit = page_args(p)
        rows, token = run_page(s, stmt.order_by(QualificationRequest.submit_time, QualificationRequest.id),
                               offset, limit)
        tests = {t.id: t.test for t in s.scalars(select(QualificationType).where(
            QualificationType.id.in_({r.type_id for r in rows})))}
        return page_out([qual_request_out(r, tests.get(r.type_id)) for r in rows], token, "QualificationRequests")


def _load_request(s, request_id: str) -> QualificationRequest:
    r = s.get(QualificationRequest, request_id, with_for_update=True)
    if r is None:
        raise ApiError(f"QualificationRequest {request_id} does not exist.",
                       "AWS.MechanicalTurk.QualificationRequestDoesNotExist")
    if r.status != "Pending":
        raise ApiError(f"QualificationRequest {request_id} was already {r.status.lower()}.",
                       "AWS.MechanicalTurk.InvalidQualificationRequestState")
    return r


@operation("AcceptQualificationRequest")
def accept_request(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        r = _load_request(s, p["QualificationRequestId"])
        grant(s, r.type_id, r.worker_id, p.get("IntegerValue", 1), now())
        r.status = "Accepted"
    return {}


@operation("RejectQualificationRequest")
def reject_request(ctx: ApiContext, p: dict) -> dict:
    with ctx.db.write() as s:
        r = _load_request(s, p["QualificationRequestId"])
        r.status, r.reason = "Rejected", p.get("Reason")
    return {}


def grant(s, type_id: str, worker_id: str, value: int, at: float) -> None:
    q = s.get(Qualification, (type_id, worker_id), with_for_update=True)
    if q is None:
        s.add(Qualification(type_id=type_id, worker_id=worker_id, value=value, status="Granted", granted_at=at))
    else:
        q.value, q.status, q.granted_at = value, "Granted", at

"""Database rows as the response shapes of botocore's mturk model (timestamps as epoch seconds)."""

from __future__ import annotations

import json
from typing import Any

from eval_server.assignments import Counts, hit_status
from eval_server.db import HIT, Assignment, Bonus, HITType, Qualification, QualificationRequest, QualificationType


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def hit_out(hit: HIT, ht: HITType, c: Counts, at: float) -> dict:
    return _drop_none({
        "HITId": hit.id, "HITTypeId": ht.id, "HITGroupId": ht.id, "HITLayoutId": hit.layout_id,
        "CreationTime": hit.created_at, "Title": ht.title, "Description": ht.description,
        "Question": hit.question, "Keywords": ht.keywords or None, "HITStatus": hit_status(hit, c, at),
        "MaxAssignments": hit.max_assignments, "Reward": ht.reward,
        "AutoApprovalDelayInSeconds": ht.auto_approval_delay, "Expiration": hit.expiration,
        "AssignmentDurationInSeconds": ht.assignment_duration, "RequesterAnnotation": hit.annotation or None,
        "QualificationRequirements": json.loads(ht.qual_requirements), "HITReviewStatus": hit.review_status,
        "NumberOfAssignmentsPending": c.pending,
        "NumberOfAssignmentsAvailable": 0 if at >= hit.expiration else c.available(hit.max_assignments),
        "NumberOfAssignmentsCompleted": c.completed,
    })


def assignment_out(a: Assignment) -> dict:
    return _drop_none({
        "AssignmentId": a.id, "WorkerId": a.worker_id, "HITId": a.hit_id, "AssignmentStatus": a.status,
        "AutoApprovalTime": a.auto_approval_time, "AcceptTime": a.accept_time, "SubmitTime": a.submit_time,
        "ApprovalTime": a.approval_time, "RejectionTime": a.rejection_time, "Deadline": a.deadline,
        "Answer": a.answer_xml, "RequesterFeedback": a.feedback,
    })


def qual_type_out(q: QualificationType) -> dict:
    return _drop_none({
        "QualificationTypeId": q.id, "CreationTime": q.created_at, "Name": q.name, "Description": q.description,
        "Keywords": q.keywords or None, "QualificationTypeStatus": q.status, "Test": q.test,
        "TestDurationInSeconds": q.test_duration, "AnswerKey": q.answer_key, "RetryDelayInSeconds": q.retry_delay,
        # Every type made here can be requested by a worker (by test, auto-grant, or request).
        "IsRequestable": True, "AutoGranted": q.auto_granted,
        "AutoGrantedValue": q.auto_granted_value if q.auto_granted else None,
    })


def qualification_out(q: Qualification) -> dict:
    return _drop_none({
        "QualificationTypeId": q.type_id, "WorkerId": q.worker_id, "GrantTime": q.granted_at,
        "IntegerValue": q.value, "LocaleValue": json.loads(q.locale) if q.locale else None, "Status": q.status,
    })


def qual_request_out(r: QualificationRequest, test: str | None) -> dict:
    return _drop_none({
        "QualificationRequestId": r.id, "QualificationTypeId": r.type_id, "WorkerId": r.worker_id,
        "Test": test, "Answer": r.answer, "SubmitTime": r.submit_time,
    })


def bonus_out(b: Bonus) -> dict:
    return {"WorkerId": b.worker_id, "BonusAmount": b.amount, "AssignmentId": b.assignment_id,
            "Reason": b.reason, "GrantTime": b.granted_at}

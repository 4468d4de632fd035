"""A generated sweep of bad requester calls (issue 15, "every requester input is checked before it is
stored"): every member of every operation in botocore's mturk model gets values of the wrong type, out
of range, too long, with NUL or a lone surrogate, non-finite... Each call must get a clean 4xx in the
modelled error shape (or succeed, where the value is in fact allowed), never a 5xx; afterwards every
listing and every stored HIT still reads back through boto3, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections import Counter
from urllib.parse import parse_qs, urlparse

import botocore.session
import pytest
import requests
from tests.helpers.server import KEY, SECRET, SIMPLE_FORM, accept_hit, rater, start_inprocess

log = logging.getLogger(__name__)
T = "MTurkRequesterServiceV20170117."
# Operations that remove what later calls use go last.
LAST = ("RejectAssignment", "ApproveAssignment", "DisassociateQualificationFromWorker", "DeleteWorkerBlock",
        "DeleteHIT", "DeleteQualificationType")

BAD_STRINGS = ["", "\x00", "a\x00b", "\ud800", "t\udfffx", "\u00b2", "x" * 70_000, "\x01\x1f\r\n", "=cmd|'!A0",
               "../../etc/passwd", "'; DROP TABLE rb_hits; --", "%s%n", "Infinity"]
BAD_INTS = [-1, 0, 2**31, 2**31 - 1, -2**31 - 1, 2**63, 2**64, -2**63 - 1, 10**30, 1.5, "1", True, None, [1]]
BAD_BOOLS = ["true", 1, 0, "", {}, [True]]
BAD_TIMES = [float("inf"), float("-inf"), float("nan"), 1e300, -1e300, 2**63, "2020-01-01", True, [0]]
BAD_OTHER = ["x", 5, [], {}, {"Unknown": 1}, [None], [{"x": 1}] * 3, None]


def bad_values(shape) -> list:
    t = shape.type_name
    if t == "string":
        return BAD_STRINGS + [5, ["s"], {"s": 1}, None]
    if t in ("integer", "long"):
        return BAD_INTS
    if t == "boolean":
        return BAD_BOOLS
    if t in ("timestamp", "double", "float"):
        return BAD_TIMES
    return BAD_OTHER


class Raw:
    """Signed raw calls (bodies boto3 would refuse to send), on one keep-alive connection."""

    def __init__(self, url: str):
        from botocore.auth import SigV4Auth
        from botocore.credentials import Credentials
        self.url, self.http = url, requests.Session()
        self.auth = SigV4Auth(Credentials(KEY, SECRET), "mturk-requester", "us-east-1")

    def call(self, op: str, body: bytes) -> requests.Response:
        from botocore.awsrequest import AWSRequest
        req = AWSRequest(method="POST", url=self.url + "/", data=body, headers={
            "X-Amz-Target": T + op, "Content-Type": "application/x-amz-json-1.1"})
        self.auth.add_auth(req)
        return self.http.post(self.url + "/", data=body, headers=dict(req.headers), timeout=60)


def _fixtures(server) -> dict:
    """Real ids for the members that name things, so bad values reach past the lookups."""
    c = server.client()
    ht = c.create_hit_type(Title="t", Description="d", Reward="0.10", AssignmentDurationInSeconds=600)["HITTypeId"]
    hit = c.create_hit_with_hit_type(HITTypeId=ht, MaxAssignments=3, LifetimeInSeconds=600,
                                     Question=SIMPLE_FORM)["HIT"]["HITId"]
    qt = c.create_qualification_type(Name="q", Description="d", QualificationTypeStatus="Active")[
        "QualificationType"]["QualificationTypeId"]
    s = rater(server.url, "W1")
    r = accept_hit(s, server.url, hit)
    aid = parse_qs(urlparse(r.headers["Location"]).query)["assignmentId"][0]
    assert s.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "a"}).status_code == 200
    s.post(f"{server.url}/worker/qualification", data={"typeId": qt}, timeout=30)
    req = c.list_qualification_requests()["QualificationRequests"][0]["QualificationRequestId"]
    c.associate_qualification_with_worker(QualificationTypeId=qt, WorkerId="W1", IntegerValue=1)
    c.create_worker_block(WorkerId="W2", Reason="r")
    return {"HITId": hit, "HITTypeId": ht, "QualificationTypeId": qt, "AssignmentId": aid, "WorkerId": "W1",
            "QualificationRequestId": req}


def _valid(shape, name: str, ids: dict):
    """A plausible valid value for a member, by name first, then by type."""
    known = {"Title": "t", "Description": "d", "Reward": "0.10", "BonusAmount": "0.10", "Question": SIMPLE_FORM,
             "AssignmentDurationInSeconds": 600, "LifetimeInSeconds": 600, "MaxAssignments": 1,
             "AutoApprovalDelayInSeconds": 60, "Name": "sweep", "QualificationTypeStatus": "Active",
             "Comparator": "Exists", "Subject": "s", "MessageText": "m", "Reason": "r", "RequesterFeedback": "f",
             "NumberOfAdditionalAssignments": 1, "ExpireAt": 0, "TestEventType": "AssignmentSubmitted",
             "Transport": "Email", "Destination": "a@b.c", "Version": "2006-05-05", "QuestionIdentifier": "answer",
             "PolicyName": "ScoreMyKnownAnswers/2011-09-01", "Key": "AnswerKey", "Country": "US",
             "WorkerIds": [ids["WorkerId"]], "IntegerValue": 1, "MaxResults": 10, **ids}
    if name in known:
        return known[name]
    t = shape.type_name
    if t == "structure":
        return {k: _valid(m, k, ids) for k, m in shape.members.items() if k in shape.required_members}
    if t == "list":
        return [_valid(shape.member, name, ids)]
    if t == "string":
        return shape.enum[0] if shape.enum else "v"
    if t in ("integer", "long"):
        return 1
    if t == "boolean":
        return False
    return 0


def _cases(op_model, ids: dict):
    """(label, body bytes): the op's valid base with one member (top level, or one level into a list of
    structures) replaced by each bad value or removed; plus bodies that are not objects at all."""
    shape = op_model.input_shape
    base = {k: _valid(m, k, ids) for k, m in shape.members.items() if k in shape.required_members} if shape else {}
    for body in (b"", b"[]", b"null", b'"x"', b"{" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b"\xff\xfe",
                 b'{"MaxResults": ' + b"1" * 5000 + b"}", b'{"x": 1e999999}', b'{"x": NaN}'):
        yield "body", body
    if shape is None:
        return
    for name, member in shape.members.items():
        for v in bad_values(member):
            yield name, json.dumps({**base, name: v}).encode()
        if name in base:
            yield f"{name}=missing", json.dumps({k: v for k, v in base.items() if k != name}).encode()
        inner = member.member if member.type_name == "list" else member
        if inner.type_name == "structure":
            item = _valid(inner, name, ids) if member.type_name == "list" else _valid(member, name, ids)
            for sub, sub_shape in inner.members.items():
                for v in bad_values(sub_shape)[:8]:
                    bad_item = {**item, sub: v}
                    yield f"{name}.{sub}", json.dumps({**base, name: [bad_item] if member.type_name == "list"
                                                       else bad_item}).encode()


@pytest.fixture
def server(db_url):  # noqa: F811
    s = start_inprocess(db_url)
    yield s
    s.close()


def test_generated_bad_calls_get_4xx_and_leave_everything_readable(server):
    ids = _fixtures(server)
    model = botocore.session.get_session().get_service_model("mturk")
    ops = sorted(model.operation_names, key=lambda o: (o in LAST, LAST.index(o) if o in LAST else 0, o))
    raw = Raw(server.url)
    statuses: Counter = Counter()
    failures = []
    for op in ops:
        for label, body in _cases(model.operation_model(op), ids):
            r = raw.call(op, body)
            statuses[r.status_code // 100 * 100] += 1
            if r.status_code >= 500:
                failures.append(f"{op} {label}: {r.status_code} {r.text[:160]}")
                continue
            if r.status_code >= 400:
                err = r.json()
                ok = err.get("__type") in ("RequestError", "ServiceFault") and err.get("Message") \
                    and "\n" not in err["Message"] and len(err["Message"]) <= 1100
                if not ok:
                    failures.append(f"{op} {label}: unmodelled error {r.text[:160]}")
    total = sum(statuses.values())
    # The counts for the closing note of issue 15 (printed with -s; also in the log).
    summary = (f"bad-input sweep: {total} calls over {len(ops)} operations: "
               f"{statuses[400]} 4xx, {statuses[200]} 2xx, {statuses[500]} 5xx")
    print(summary)
    log.warning(summary)
    assert not failures, "\n".join(failures[:30])
    assert total >= 1500 and statuses[500] == 0

    # Whatever the sweep managed to store reads back through boto3 on every listing and every HIT.
    c = server.client()
    for op, key in (("list_hits", "HITs"), ("list_qualification_types", "QualificationTypes"),
                    ("list_worker_blocks", "WorkerBlocks"), ("list_qualification_requests", "QualificationRequests"),
                    ("list_reviewable_hits", "HITs")):
        kw = {"MustBeRequestable": False} if op == "list_qualification_types" else {}
        pages = c.get_paginator(op).paginate(**kw, PaginationConfig={"PageSize": 100})
        items = [x for p in pages for x in p[key]]
        if key == "HITs":
            for h in items:
                c.get_hit(HITId=h["HITId"])
                c.list_assignments_for_hit(HITId=h["HITId"])
                c.list_review_policy_results_for_hit(HITId=h["HITId"])

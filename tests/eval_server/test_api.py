"""The requester API driven by the real boto3 client against a real server on 127.0.0.1."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import botocore.exceptions
import pytest
import requests
from tests.helpers.server import SIMPLE_FORM, accept_hit, rater, start_inprocess

from eval_server import xml_answers


@pytest.fixture
def server(db_url):  # noqa: F811
    s = start_inprocess(db_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_server(sqlite_url):  # noqa: F811
    s = start_inprocess(sqlite_url)
    yield s
    s.close()


def accept(url: str, hit_id: str, worker: str) -> tuple[requests.Session, str]:
    """A session signed in as `worker` holding an assignment of the HIT (accepted by POST, with CSRF)."""
    s = rater(url, worker)
    r = accept_hit(s, url, hit_id)
    assert r.status_code in (302, 303), r.text
    return s, parse_qs(urlparse(r.headers["Location"]).query)["assignmentId"][0]


def refused_accept(url: str, hit_id: str, worker: str) -> requests.Response:
    return accept_hit(rater(url, worker), url, hit_id)


def test_requester_round_trip(server):
    """Create type and HITs, workers answer, collect the XML, approve and reject, re-create idempotently."""
    c = server.client()
    ht = c.create_hit_type(Title="Which sound fits?", Description="2AFC", Reward="0.25",
                           AssignmentDurationInSeconds=600, AutoApprovalDelayInSeconds=86400, Keywords="audio")
    assert c.create_hit_type(Title="Which sound fits?", Description="2AFC", Reward="0.25",
                             AssignmentDurationInSeconds=600, AutoApprovalDelayInSeconds=86400,
                             Keywords="audio")["HITTypeId"] == ht["HITTypeId"]
    hit = c.create_hit_with_hit_type(HITTypeId=ht["HITTypeId"], MaxAssignments=2, LifetimeInSeconds=3600,
                                     Question=SIMPLE_FORM, UniqueRequestToken="study1-hit0",
                                     RequesterAnnotation="study1")["HIT"]
    assert hit["HITStatus"] == "Assignable" and hit["NumberOfAssignmentsAvailable"] == 2
    assert hit["Reward"] == "0.25" and hit["RequesterAnnotation"] == "study1"

    with pytest.raises(c.exceptions.RequestError) as ei:
        c.create_hit_with_hit_type(HITTypeId=ht["HITTypeId"], MaxAssignments=2, LifetimeInSeconds=3600,
                                   Question=SIMPLE_FORM, UniqueRequestToken="study1-hit0")
    assert hit["HITId"] in ei.value.response["Error"]["Message"]
    assert ei.value.response["TurkErrorCode"] if "TurkErrorCode" in ei.value.response else True
    assert len(c.list_hits()["HITs"]) == 1

    (s1, a1), (s2, a2) = accept(server.url, hit["HITId"], "W1"), accept(server.url, hit["HITId"], "W2")
    assert s1.post(f"{server.url}/mturk/externalSubmit",
                   data={"assignmentId": a1, "answer": "left <&>"}).status_code == 200
    assert s2.post(f"{server.url}/mturk/externalSubmit",
                   data={"assignmentId": a2, "answer": "right"}).status_code == 200

    got = c.get_hit(HITId=hit["HITId"])["HIT"]
    assert got["HITStatus"] == "Reviewable" and got["NumberOfAssignmentsAvailable"] == 0
    page1 = c.list_assignments_for_hit(HITId=hit["HITId"], MaxResults=1)
    page2 = c.list_assignments_for_hit(HITId=hit["HITId"], MaxResults=1, NextToken=page1["NextToken"])
    assigns = page1["Assignments"] + page2["Assignments"]
    assert "NextToken" not in page2
    answers = {a["WorkerId"]: xml_answers.parse(a["Answer"]) for a in assigns}
    assert answers == {"W1": {"answer": "left <&>"}, "W2": {"answer": "right"}}
    assert all(a["AssignmentStatus"] == "Submitted" for a in assigns)

    c.approve_assignment(AssignmentId=a1, RequesterFeedback="thanks")
    c.reject_assignment(AssignmentId=a2, RequesterFeedback="did not listen")
    with pytest.raises(c.exceptions.RequestError, match="status of: Submitted"):
        c.approve_assignment(AssignmentId=a1)
    c.approve_assignment(AssignmentId=a2, OverrideRejection=True)
    statuses = {a["AssignmentId"]: a["AssignmentStatus"] for a in
                c.list_assignments_for_hit(HITId=hit["HITId"])["Assignments"]}
    assert statuses == {a1: "Approved", a2: "Approved"}
    got = c.get_assignment(AssignmentId=a1)
    assert got["Assignment"]["RequesterFeedback"] == "thanks" and got["HIT"]["HITId"] == hit["HITId"]
    c.delete_hit(HITId=hit["HITId"])
    assert c.list_hits()["HITs"] == []


def test_wrong_key_or_secret_refused(sqlite_server):
    bad_secret = sqlite_server.client(secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bad_secret.list_hits()
    assert ei.value.response["Error"]["Code"] == "InvalidSignatureException"
    bad_key = sqlite_server.client(key="AKSOMEONEELSE")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bad_key.get_account_balance()
    assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # Unsigned, or a tampered body with a valid-looking header: refused too.
    r = requests.post(sqlite_server.url + "/", data="{}", headers={
        "X-Amz-Target": "MTurkRequesterServiceV20170117.ListHITs", "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code == 400 and r.json()["__type"] == "MissingAuthenticationTokenException"


def _signed_raw(url: str, target: str, body: bytes) -> requests.Response:
    """Send a correctly signed request with an arbitrary body (what boto3 would never send)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from tests.helpers.server import KEY, SECRET
    req = AWSRequest(method="POST", url=url + "/", data=body, headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(KEY, SECRET), "mturk-requester", "us-east-1").add_auth(req)
    return requests.post(url + "/", data=body, headers=dict(req.headers))


def test_bad_requests_get_modelled_errors(sqlite_server):
    url = sqlite_server.url
    t = "MTurkRequesterServiceV20170117."
    r = _signed_raw(url, t + "ListHITs", b"{not json")
    assert r.status_code == 400 and r.json()["__type"] == "RequestError" and "JSON" in r.json()["Message"]
    r = _signed_raw(url, t + "LaunchRockets", b"{}")
    assert r.status_code == 400 and "Unknown operation" in r.json()["Message"]
    r = _signed_raw(url, t + "CreateHITType", json.dumps({"Title": 5, "Description": "d", "Reward": "0.1",
                                                          "AssignmentDurationInSeconds": 60}).encode())
    assert r.status_code == 400 and "Title" in r.json()["Message"]
    r = _signed_raw(url, t + "GetHIT", b"{}")
    assert r.status_code == 400 and "HITId" in r.json()["Message"]
    r = _signed_raw(url, t + "ListHITs", b'{"MaxResults": 1, "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}')
    assert r.status_code == 413
    c = sqlite_server.client()
    with pytest.raises(c.exceptions.RequestError, match="Reward"):
        c.create_hit_type(Title="t", Description="d", Reward="1.234", AssignmentDurationInSeconds=60)
    with pytest.raises(c.exceptions.RequestError, match="does not exist"):
        c.get_hit(HITId="NOSUCHHIT")
    with pytest.raises(c.exceptions.RequestError, match="not valid XML"):
        ht = c.create_hit_type(Title="t", Description="d", Reward="0.10", AssignmentDurationInSeconds=60)
        c.create_hit_with_hit_type(HITTypeId=ht["HITTypeId"], LifetimeInSeconds=60, Question="<HTMLQuestion>")
    with pytest.raises(c.exceptions.RequestError, match="NextToken"):
        c.list_hits(NextToken="garbage!")
    # The server is still fine, and nothing was created by the failures.
    assert c.list_hits()["NumResults"] == 0


def test_expiry_blocks_and_qualifications(sqlite_server):
    c = sqlite_server.client()
    qt = c.create_qualification_type(Name="Good ears", Description="passed the hearing screen",
                                     QualificationTypeStatus="Active")["QualificationType"]
    hit = c.create_hit(Title="q", Description="d", Reward="0.10", AssignmentDurationInSeconds=60,
                       LifetimeInSeconds=600, MaxAssignments=3, Question=SIMPLE_FORM,
                       QualificationRequirements=[{"QualificationTypeId": qt["QualificationTypeId"],
                                                   "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [50]}])["HIT"]
    url = sqlite_server.url
    r = refused_accept(url, hit["HITId"], "W1")
    assert r.status_code == 403 and "Good ears" in r.text
    c.associate_qualification_with_worker(QualificationTypeId=qt["QualificationTypeId"], WorkerId="W1",
                                          IntegerValue=70, SendNotification=False)
    accept(url, hit["HITId"], "W1")
    c.create_worker_block(WorkerId="W2", Reason="spam")
    c.associate_qualification_with_worker(QualificationTypeId=qt["QualificationTypeId"], WorkerId="W2",
                                          IntegerValue=90)
    w2 = rater(url, "W2")
    r = accept_hit(w2, url, hit["HITId"])
    assert r.status_code == 403 and "blocked" in r.text
    assert w2.get(f"{url}/worker/api/hits").json() == {"hits": []}
    assert [b["WorkerId"] for b in c.list_worker_blocks()["WorkerBlocks"]] == ["W2"]
    c.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=0)
    assert c.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"
    c.associate_qualification_with_worker(QualificationTypeId=qt["QualificationTypeId"], WorkerId="W3",
                                          IntegerValue=90)
    r = refused_accept(url, hit["HITId"], "W3")
    assert r.status_code == 410
    sent = c.notify_workers(Subject="hello", MessageText="new HITs soon", WorkerIds=["W1", "NEVERSEEN"])
    assert [f["WorkerId"] for f in sent["NotifyWorkersFailureStatuses"]] == ["NEVERSEEN"]

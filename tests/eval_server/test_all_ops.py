"""Every operation of botocore's mturk model, called through boto3 against the server; each raw response
is checked member by member against the modelled output shape (and botocore parses it)."""

from __future__ import annotations

import json
import time

import pytest
import requests
from tests.helpers.server import (ANSWER_KEY, SIMPLE_FORM, TEST_FORM, accept_hit, assignment_of, post_form,
                                  rater, start_inprocess)

UPLOAD_FORM = ('<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/'
               'HTMLQuestion.xsd"><HTMLContent><![CDATA[<html><body><form method="post" enctype="multipart/form-data" '
               'action="/mturk/externalSubmit"><input name="answer"><input type="file" name="recording"></form>'
               '</body></html>]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>')


def _strict(shape, value, path="response"):
    """Fail on any member the model does not have, or a value of the wrong wire type."""
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict), path
        for k, v in value.items():
            assert k in shape.members, f"{path}: unmodelled member {k}"
            _strict(shape.members[k], v, f"{path}.{k}")
    elif t == "list":
        assert isinstance(value, list), path
        for i, v in enumerate(value):
            _strict(shape.member, v, f"{path}[{i}]")
    elif t == "string":
        assert isinstance(value, str), path
        if shape.enum:
            assert value in shape.enum, f"{path}: {value} not in {shape.enum}"
    elif t in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif t == "boolean":
        assert isinstance(value, bool), path
    elif t == "timestamp":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: epoch seconds expected"


@pytest.fixture
def server(sqlite_url):  # noqa: F811
    s = start_inprocess(sqlite_url)
    yield s
    s.close()


def test_every_mturk_operation_answers_in_its_modelled_shape(server):
    c = server.client()
    model = c.meta.service_model
    called: dict[str, int] = {}

    def check(http_response, model, **_):
        body = http_response.content
        if http_response.status_code != 200:
            err = json.loads(body)
            assert err["__type"] in ("RequestError", "ServiceFault") and err["Message"], body
            return
        if model.output_shape is not None:
            _strict(model.output_shape, json.loads(body or b"{}"))
        called[model.name] = called.get(model.name, 0) + 1
    c.meta.events.register("after-call.mturk", check)
    url = server.url

    sessions: dict[str, requests.Session] = {}

    def as_worker(worker):
        if worker not in sessions:
            sessions[worker] = rater(url, worker)
        return sessions[worker]

    def accept(hit_id, worker):
        r = accept_hit(as_worker(worker), url, hit_id)
        assert r.status_code in (302, 303), r.text
        return assignment_of(r)

    assert float(c.get_account_balance()["AvailableBalance"]) > 0
    test_qt = c.create_qualification_type(Name="Hearing test", Description="pick the higher tone", Keywords="audio",
                                          QualificationTypeStatus="Active", Test=TEST_FORM, AnswerKey=ANSWER_KEY,
                                          TestDurationInSeconds=300)["QualificationType"]
    req_qt = c.create_qualification_type(Name="Lab member", Description="asked to join",
                                         QualificationTypeStatus="Active")["QualificationType"]
    assert c.get_qualification_type(QualificationTypeId=req_qt["QualificationTypeId"])["QualificationType"]["Name"] \
        == "Lab member"
    upd = c.update_qualification_type(QualificationTypeId=req_qt["QualificationTypeId"], Description="lab members")
    assert upd["QualificationType"]["Description"] == "lab members"
    found = c.list_qualification_types(Query="hearing", MustBeRequestable=False, MustBeOwnedByCaller=True)
    assert [q["Name"] for q in found["QualificationTypes"]] == ["Hearing test"]

    ht = c.create_hit_type(Title="Rate", Description="d", Reward="0.20", AssignmentDurationInSeconds=600)["HITTypeId"]
    ht2 = c.create_hit_type(Title="Members only", Description="d", Reward="0.20", AssignmentDurationInSeconds=600,
                            QualificationRequirements=[{"QualificationTypeId": req_qt["QualificationTypeId"],
                                                        "Comparator": "Exists"}])["HITTypeId"]
    hit = c.create_hit_with_hit_type(HITTypeId=ht, MaxAssignments=2, LifetimeInSeconds=600,
                                     Question=UPLOAD_FORM)["HIT"]["HITId"]
    members_hit = c.create_hit(Title="Members only", Description="d", Reward="0.20", AssignmentDurationInSeconds=600,
                               LifetimeInSeconds=600, Question=SIMPLE_FORM,
                               QualificationRequirements=[{"QualificationTypeId": req_qt["QualificationTypeId"],
                                                           "Comparator": "Exists"}])["HIT"]
    assert members_hit["HITTypeId"] == ht2
    assert c.get_hit(HITId=hit)["HIT"]["MaxAssignments"] == 2
    assert c.list_hits(MaxResults=1)["NumResults"] == 1
    assert [h["HITId"] for h in c.list_hits_for_qualification_type(
        QualificationTypeId=req_qt["QualificationTypeId"], MaxResults=10)["HITs"]] == [members_hit["HITId"]]

    a1, a2 = accept(hit, "AW1"), accept(hit, "AW2")
    r = as_worker("AW1").post(f"{url}/mturk/externalSubmit", data={"assignmentId": a1, "answer": "yes"},
                              files={"recording": ("take1.wav", b"RIFF....WAVE", "audio/wav")})
    assert r.status_code == 200
    assert as_worker("AW2").post(f"{url}/mturk/externalSubmit",
                                 data={"assignmentId": a2, "answer": "no"}).status_code == 200
    assert len(c.list_assignments_for_hit(HITId=hit, AssignmentStatuses=["Submitted"])["Assignments"]) == 2
    assert c.get_assignment(AssignmentId=a1)["Assignment"]["WorkerId"] == "AW1"
    upload = c.get_file_upload_url(AssignmentId=a1, QuestionIdentifier="recording")["FileUploadURL"]
    assert requests.get(upload).content == b"RIFF....WAVE"
    c.approve_assignment(AssignmentId=a1)
    c.reject_assignment(AssignmentId=a2, RequesterFeedback="no audio")
    c.send_bonus(WorkerId="AW1", BonusAmount="1.50", AssignmentId=a1, Reason="great", UniqueRequestToken="b1")
    assert c.list_bonus_payments(HITId=hit)["BonusPayments"][0]["BonusAmount"] == "1.50"
    c.create_additional_assignments_for_hit(HITId=hit, NumberOfAdditionalAssignments=1, UniqueRequestToken="x1")
    assert c.get_hit(HITId=hit)["HIT"]["NumberOfAssignmentsAvailable"] == 1
    c.update_expiration_for_hit(HITId=hit, ExpireAt=time.time() - 5)
    assert hit in [h["HITId"] for h in c.list_reviewable_hits(HITTypeId=ht, Status="Reviewable")["HITs"]]
    c.update_hit_review_status(HITId=hit, Revert=False)
    assert [h["HITId"] for h in c.list_reviewable_hits(Status="Reviewing")["HITs"]] == [hit]
    c.update_hit_review_status(HITId=hit, Revert=True)
    assert c.list_review_policy_results_for_hit(HITId=hit, PolicyLevels=["Assignment", "HIT"])["HITId"] == hit
    c.update_hit_type_of_hit(HITId=hit, HITTypeId=ht2)
    assert c.get_hit(HITId=hit)["HIT"]["HITTypeId"] == ht2

    c.associate_qualification_with_worker(QualificationTypeId=req_qt["QualificationTypeId"], WorkerId="AW1",
                                          IntegerValue=3, SendNotification=False)
    score = c.get_qualification_score(QualificationTypeId=req_qt["QualificationTypeId"], WorkerId="AW1")
    assert score["Qualification"]["IntegerValue"] == 3 and score["Qualification"]["Status"] == "Granted"
    holders = c.list_workers_with_qualification_type(QualificationTypeId=req_qt["QualificationTypeId"],
                                                     Status="Granted")["Qualifications"]
    assert [q["WorkerId"] for q in holders] == ["AW1"]
    c.disassociate_qualification_from_worker(QualificationTypeId=req_qt["QualificationTypeId"], WorkerId="AW1",
                                             Reason="left the lab")

    # Qualification requests made on the worker pages, then accepted or rejected by the requester.
    for worker in ("AW3", "AW4"):
        assert post_form(as_worker(worker), f"{url}/worker/qualification",
                         {"typeId": req_qt["QualificationTypeId"]}, url).status_code == 200
    pending = c.list_qualification_requests(QualificationTypeId=req_qt["QualificationTypeId"])["QualificationRequests"]
    assert sorted(r["WorkerId"] for r in pending) == ["AW3", "AW4"]
    by_worker = {r["WorkerId"]: r["QualificationRequestId"] for r in pending}
    c.accept_qualification_request(QualificationRequestId=by_worker["AW3"], IntegerValue=1)
    c.reject_qualification_request(QualificationRequestId=by_worker["AW4"], Reason="not in the lab")
    assert c.list_qualification_requests()["NumResults"] == 0
    assert accept(members_hit["HITId"], "AW3")
    r = accept_hit(as_worker("AW4"), url, members_hit["HITId"])
    assert r.status_code == 403

    # The test is scored against its AnswerKey at once.
    s = as_worker("AW5")
    assert "Which is higher?" in s.get(f"{url}/worker/qualification",
                                       params={"typeId": test_qt["QualificationTypeId"]}).text
    post_form(s, f"{url}/worker/qualification", {"typeId": test_qt["QualificationTypeId"], "tone": "b"}, url)
    assert c.get_qualification_score(QualificationTypeId=test_qt["QualificationTypeId"],
                                     WorkerId="AW5")["Qualification"]["IntegerValue"] == 100

    c.create_worker_block(WorkerId="AW2", Reason="no audio")
    assert c.list_worker_blocks(MaxResults=5)["WorkerBlocks"] == [{"WorkerId": "AW2", "Reason": "no audio"}]
    c.delete_worker_block(WorkerId="AW2", Reason="appealed")
    assert c.list_worker_blocks()["NumResults"] == 0
    assert c.notify_workers(Subject="Thanks", MessageText="More soon", WorkerIds=["AW1"])[
        "NotifyWorkersFailureStatuses"] == []
    assert "More soon" in as_worker("AW1").get(f"{url}/worker").text
    spec = {"Destination": "lab@example.org", "Transport": "Email", "Version": "2006-05-05",
            "EventTypes": ["AssignmentSubmitted"]}
    c.update_notification_settings(HITTypeId=ht, Notification=spec, Active=True)
    c.send_test_event_notification(Notification=spec, TestEventType="AssignmentSubmitted")
    c.update_expiration_for_hit(HITId=members_hit["HITId"], ExpireAt=time.time() - 5)
    with pytest.raises(c.exceptions.RequestError, match="state"):
        c.delete_hit(HITId=members_hit["HITId"])  # AW3 still holds an open assignment
    c.delete_hit(HITId=hit)
    assert c.get_hit(HITId=hit)["HIT"]["HITStatus"] == "Disposed"
    c.delete_qualification_type(QualificationTypeId=test_qt["QualificationTypeId"])
    with pytest.raises(c.exceptions.RequestError):
        c.get_qualification_type(QualificationTypeId=test_qt["QualificationTypeId"])

    assert sorted(set(model.operation_names) - set(called)) == []
    assert len(model.operation_names) == 39

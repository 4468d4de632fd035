"""Issue 15, findings 2-6, on SQLite and PostgreSQL: answers are kept whatever characters they hold,
requester input is checked before it is stored, submits are bounded, exports and downloads are safe."""

from __future__ import annotations

import io
import json
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
import requests
from tests.helpers.server import KEY, SECRET, SIMPLE_FORM, accept_hit, html_question, rater, start_inprocess

from eval_server import xml_answers
from mturk.answers import parse_question_form_answers

T = "MTurkRequesterServiceV20170117."
QF = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd"
AK = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/AnswerKey.xsd"
TEST_FORM = f"""<QuestionForm xmlns="{QF}"><Question><QuestionIdentifier>tone</QuestionIdentifier>
<QuestionContent><Text>Which is higher?</Text></QuestionContent><AnswerSpecification><SelectionAnswer><Selections>
<Selection><SelectionIdentifier>a</SelectionIdentifier><Text>A</Text></Selection>
<Selection><SelectionIdentifier>b</SelectionIdentifier><Text>B</Text></Selection>
</Selections></SelectionAnswer></AnswerSpecification></Question>
<Question><QuestionIdentifier>comment</QuestionIdentifier><QuestionContent><Text>Anything?</Text></QuestionContent>
<AnswerSpecification><FreeTextAnswer/></AnswerSpecification></Question></QuestionForm>"""


def answer_key(mapping: str = "<PercentageMapping><MaximumSummedScore>1</MaximumSummedScore></PercentageMapping>",
               score: str = "1") -> str:
    return (f'<AnswerKey xmlns="{AK}"><Question><QuestionIdentifier>tone</QuestionIdentifier><AnswerOption>'
            f"<SelectionIdentifier>b</SelectionIdentifier><AnswerScore>{score}</AnswerScore></AnswerOption></Question>"
            f"<QualificationValueMapping>{mapping}</QualificationValueMapping></AnswerKey>")


@pytest.fixture
def server(db_url):  # noqa: F811
    s = start_inprocess(db_url)
    yield s
    s.close()


def raw_call(url: str, op: str, body: str | bytes) -> requests.Response:
    """A correctly signed request with any body (JSON boto3 would never send: NaN, Infinity, \\ud800...)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    data = body.encode() if isinstance(body, str) else body
    req = AWSRequest(method="POST", url=url + "/", data=data, headers={
        "X-Amz-Target": T + op, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(KEY, SECRET), "mturk-requester", "us-east-1").add_auth(req)
    return requests.post(url + "/", data=data, headers=dict(req.headers), timeout=60)


def hit_type(c, **kw) -> str:
    return c.create_hit_type(Title="t", Description="d", Reward="0.10", AssignmentDurationInSeconds=600,
                             **kw)["HITTypeId"]


def take(url: str, hit_id: str, worker: str) -> tuple[requests.Session, str]:
    s = rater(url, worker)
    r = accept_hit(s, url, hit_id)
    assert r.status_code in (302, 303), r.text
    return s, parse_qs(urlparse(r.headers["Location"]).query)["assignmentId"][0]


NASTY = ["x\x01y", "a\x00b", "\x00", "cr\ronly", "crlf\r\n", "\x0b\x0c\x1f\x7f", "\ufffe\uffff", "back\\u0041slash\\",
         "<&>]]>", "\t tabs \n", "é中🎵", "\u2028\u2029", ""]


def test_control_characters_and_nul_in_answers_are_kept(server):
    """Finding 2: on a HIT with a ScoreMyKnownAnswers policy, answers holding control characters (and
    NUL, which PostgreSQL's text refuses) are stored, come back byte-exact through boto3 as well-formed
    XML, reach `collect`'s parser, and the policy scores them."""
    c = server.client()
    policy = {"PolicyName": "ScoreMyKnownAnswers/2011-09-01", "Parameters": [
        {"Key": "AnswerKey", "MapEntries": [{"Key": "answer", "Values": ["x\x01y"]}]},
        {"Key": "ApproveIfKnownAnswerScoreIsAtLeast", "Values": ["100"]}]}
    hit = c.create_hit_with_hit_type(HITTypeId=hit_type(c), MaxAssignments=1, LifetimeInSeconds=600,
                                     Question=SIMPLE_FORM, AssignmentReviewPolicy=policy)["HIT"]["HITId"]
    s, aid = take(server.url, hit, "W1")
    fields = [("answer", "x\x01y")] + [(f"f{i}", v) for i, v in enumerate(NASTY)] + [("n\x00ame\x01", "v")]
    r = s.post(f"{server.url}/mturk/externalSubmit", data=[("assignmentId", aid)] + fields, timeout=30)
    assert r.status_code == 200, r.text
    (a,) = c.list_assignments_for_hit(HITId=hit)["Assignments"]
    ET.fromstring(a["Answer"].encode("utf-8"))  # well-formed
    want = dict(fields)
    assert xml_answers.parse(a["Answer"]) == want
    assert parse_question_form_answers(a["Answer"]) == want
    assert a["AssignmentStatus"] == "Approved"  # the policy read the answer with its control character
    results = c.list_review_policy_results_for_hit(HITId=hit)["AssignmentReviewReport"]["ReviewResults"]
    assert {"KnownAnswerScore": "100"}.items() <= {r["Key"]: r["Value"] for r in results}.items()


def test_control_characters_on_the_qualification_test(server):
    """Finding 2 on POST /worker/qualification: a test with an AnswerKey is scored, the answer kept."""
    c = server.client()
    qt = c.create_qualification_type(Name="ears", Description="d", QualificationTypeStatus="Active", Test=TEST_FORM,
                                     AnswerKey=answer_key(), TestDurationInSeconds=300,
                                     RetryDelayInSeconds=0)["QualificationType"]["QualificationTypeId"]
    s = rater(server.url, "W1")
    r = s.post(f"{server.url}/worker/qualification", data={"typeId": qt, "tone": "b", "comment": "a\x00b\x01c\r"},
               timeout=30)
    assert r.status_code < 400, r.text
    got = c.get_qualification_score(QualificationTypeId=qt, WorkerId="W1")["Qualification"]
    assert got["IntegerValue"] == 100


def test_expiration_must_be_finite_and_in_range(server):
    """Finding 3: ExpireAt Infinity / 1e300 / NaN are refused with 400, and listing keeps working."""
    c = server.client()
    hit = c.create_hit_with_hit_type(HITTypeId=hit_type(c), LifetimeInSeconds=600, Question=SIMPLE_FORM)["HIT"]["HITId"]
    for bad in ("Infinity", "-Infinity", "NaN", "1e300", str(time.time() + 10 * 365 * 86400)):
        r = raw_call(server.url, "UpdateExpirationForHIT", f'{{"HITId": "{hit}", "ExpireAt": {bad}}}')
        assert r.status_code == 400, (bad, r.status_code, r.text)
        assert r.json()["__type"] == "RequestError" and "ExpireAt" in r.json()["Message"]
    assert c.get_hit(HITId=hit)["HIT"]["HITStatus"] == "Assignable"
    assert [h["HITId"] for h in c.list_hits()["HITs"]] == [hit]


INF_SCALE = "<ScaleMapping><SummedScoreMultiplier>inf</SummedScoreMultiplier></ScaleMapping>"
HUGE_RANGE = ("<RangeMapping><SummedScoreRange><InclusiveLowerBound>0</InclusiveLowerBound>"
              f"<InclusiveUpperBound>1</InclusiveUpperBound><QualificationValue>{10**29}</QualificationValue>"
              "</SummedScoreRange></RangeMapping>")


def qual_type_body(name: str, key: str) -> str:
    return json.dumps({"Name": name, "Description": "d", "QualificationTypeStatus": "Active", "Test": TEST_FORM,
                       "TestDurationInSeconds": 60, "AnswerKey": key})


def _bad_calls(c, hit: str, qt: str) -> list[tuple[str, str, str]]:
    """(operation, raw JSON body, field the error must name) for finding 4."""
    big = 2**63
    surrogate = '"t\\ud800"'
    base = '"Description": "d", "Reward": "0.10", "AssignmentDurationInSeconds": 600, "LifetimeInSeconds": 600'
    q = json.dumps(html_question("<p>x</p>").replace("<FrameHeight>600", "<FrameHeight>\u00b2"))
    smka = ('{"PolicyName": "ScoreMyKnownAnswers/2011-09-01", "Parameters": [{"Key": "AnswerKey", "MapEntries": '
            '[{"Key": "answer", "Values": ["a"]}]}, {"Key": "%s", "Values": ["%s"]}]}')
    return [
        ("CreateHIT", f'{{"Title": "t", {base}, "Question": {q}}}', "FrameHeight"),
        ("CreateHIT", f'{{"Title": {surrogate}, {base}, "Question": {json.dumps(SIMPLE_FORM)}}}', "Title"),
        ("CreateHIT", f'{{"Title": "t", {base}, "Question": "<HTMLQuestion>\\udc00"}}', "Question"),
        ("CreateHIT", f'{{"Title": "t\\u0000", {base}, "Question": {json.dumps(SIMPLE_FORM)}}}', "Title"),
        ("CreateHIT", f'{{"Title": "t", {base}, "Question": {json.dumps(SIMPLE_FORM)}, "AssignmentReviewPolicy": '
                      f'{smka % ("ExtendMaximumAssignments", "²")}}}', "ExtendMaximumAssignments"),
        ("CreateHIT", f'{{"Title": "t", {base}, "Question": {json.dumps(SIMPLE_FORM)}, "AssignmentReviewPolicy": '
                      f'{smka % ("ApproveIfKnownAnswerScoreIsAtLeast", "²")}}}', "ApproveIfKnownAnswerScoreIsAtLeast"),
        ("AssociateQualificationWithWorker", f'{{"QualificationTypeId": "{qt}", "WorkerId": "W1", '
                                             f'"IntegerValue": {big}}}', "IntegerValue"),
        ("AssociateQualificationWithWorker", f'{{"QualificationTypeId": "{qt}", "WorkerId": "W1", '
                                             f'"IntegerValue": {2**31}}}', "IntegerValue"),
        ("CreateQualificationType", f'{{"Name": "n1", "Description": "d", "QualificationTypeStatus": "Active", '
                                    f'"RetryDelayInSeconds": {2**64}}}', "RetryDelayInSeconds"),
        ("CreateQualificationType", f'{{"Name": "n2", "Description": "d", "QualificationTypeStatus": "Active", '
                                    f'"AutoGranted": true, "AutoGrantedValue": {10**20}}}', "AutoGrantedValue"),
        ("CreateQualificationType", qual_type_body("n3", answer_key(INF_SCALE)), "SummedScoreMultiplier"),
        ("CreateQualificationType", qual_type_body("n4", answer_key(HUGE_RANGE)), "QualificationValue"),
        ("CreateQualificationType", qual_type_body("n5", answer_key(score="²")), "AnswerScore"),
        ("CreateQualificationType", '{"Name": "n\\u0000", "Description": "d", "QualificationTypeStatus": "Active"}',
         "Name"),
        ("CreateWorkerBlock", '{"WorkerId": "W9", "Reason": "r\\u0000"}', "Reason"),
        ("ListHITs", '{"NextToken": "%s"}' % _token({"o": 2**70}), "NextToken"),
        ("ListHITs", '{"NextToken": "%s"}' % _token({"o": 1e400}), "NextToken"),
        ("ListHITs", '{"NextToken": "%s"}' % _token({"o": "²"}), "NextToken"),
        ("ListAssignmentsForHIT", f'{{"HITId": "{hit}", "NextToken": "{_token({"o": 2**63})}"}}', "NextToken"),
    ]


def _token(obj) -> str:
    import base64
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()


def test_bad_requester_values_are_400_and_break_nothing(server):
    """Finding 4: every one of these got a 500 (or was stored and broke later calls); each is now a 400
    RequestError naming the field, and the server keeps working for the next submit and list."""
    c = server.client()
    qt = c.create_qualification_type(Name="q", Description="d", QualificationTypeStatus="Active")[
        "QualificationType"]["QualificationTypeId"]
    hit = c.create_hit_with_hit_type(HITTypeId=hit_type(c), MaxAssignments=2, LifetimeInSeconds=600,
                                     Question=SIMPLE_FORM)["HIT"]["HITId"]
    for op, body, field in _bad_calls(c, hit, qt):
        r = raw_call(server.url, op, body)
        assert r.status_code == 400, (op, field, r.status_code, r.text[:300])
        err = r.json()
        assert err["__type"] == "RequestError" and field in err["Message"], (op, field, err)
        assert "\n" not in err["Message"]
    assert c.list_hits()["NumResults"] == 1
    assert [q["Name"] for q in c.list_qualification_types(MustBeRequestable=False)["QualificationTypes"]] == ["q"]
    s, aid = take(server.url, hit, "W1")
    assert s.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "ok"}).status_code == 200


def test_unbounded_inputs_are_refused(server):
    """Finding 5: a 200,000-field submit, MaxAssignments past 1,000,000, a negative retry delay, an empty
    or a 300,000-character Title."""
    c = server.client()
    ht = hit_type(c)
    hit = c.create_hit_with_hit_type(HITTypeId=ht, MaxAssignments=5, LifetimeInSeconds=600,
                                     Question=SIMPLE_FORM)["HIT"]["HITId"]
    s, aid = take(server.url, hit, "W1")
    body = f"assignmentId={aid}&" + "&".join(f"f{i}=" for i in range(200_000))
    r = s.post(f"{server.url}/mturk/externalSubmit", data=body, timeout=60,
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "200001 form fields" in r.text and "1000" in r.text, (r.status_code, r.text[:200])
    files = {f"file{i}": (f"{i}.txt", b"x") for i in range(3000)}
    r = s.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid}, files=files, timeout=60)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    r = s.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "x" * (11 << 20)}, timeout=60)
    assert r.status_code == 413 and "bytes" in r.text, (r.status_code, r.text[:200])
    assert c.list_assignments_for_hit(HITId=hit)["NumResults"] == 0  # nothing stored; the rater can submit again
    assert s.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "a"}).status_code == 200
    export = requests.get(f"{server.url}/admin/export.csv", params={"token": server.admin_token}, timeout=30)
    assert export.status_code == 200 and len(export.content) < 10_000
    columns = pd.read_csv(io.StringIO(export.text)).columns
    assert [col for col in columns if col.startswith("Answer.")] == ["Answer.answer"]

    big = c.create_hit_with_hit_type(HITTypeId=ht, MaxAssignments=999_990, LifetimeInSeconds=600,
                                     Question=SIMPLE_FORM)["HIT"]["HITId"]
    with pytest.raises(c.exceptions.RequestError, match="1000000"):
        c.create_additional_assignments_for_hit(HITId=big, NumberOfAdditionalAssignments=11)
    assert c.get_hit(HITId=big)["HIT"]["MaxAssignments"] == 999_990
    with pytest.raises(c.exceptions.RequestError, match="RetryDelayInSeconds"):
        c.create_qualification_type(Name="n", Description="d", QualificationTypeStatus="Active", RetryDelayInSeconds=-5)
    for title in ("", "x" * 300_000, "x" * 129):
        with pytest.raises(c.exceptions.RequestError, match="Title"):
            c.create_hit_type(Title=title, Description="d", Reward="0.10", AssignmentDurationInSeconds=600)
    assert c.create_hit_type(Title="x" * 128, Description="d" * 2000, Reward="0.10", AssignmentDurationInSeconds=600,
                             Keywords="k" * 1000)["HITTypeId"]
    for kw in ({"Description": "d" * 2001}, {"Keywords": "k" * 1001}):
        with pytest.raises(c.exceptions.RequestError, match=next(iter(kw))):
            c.create_hit_type(**{"Title": "t", "Description": "d", "Reward": "0.10",
                                 "AssignmentDurationInSeconds": 600, **kw})
    with pytest.raises(c.exceptions.RequestError, match="RequesterAnnotation"):
        c.create_hit_with_hit_type(HITTypeId=ht, LifetimeInSeconds=600, Question=SIMPLE_FORM,
                                   RequesterAnnotation="a" * 256)
    for dur in (29, 365 * 86400 + 1):
        with pytest.raises(c.exceptions.RequestError, match="AssignmentDurationInSeconds"):
            c.create_hit_type(Title="t", Description="d", Reward="0.10", AssignmentDurationInSeconds=dur)
    with pytest.raises(c.exceptions.RequestError, match="AutoApprovalDelayInSeconds"):
        c.create_hit_type(Title="t", Description="d", Reward="0.10", AssignmentDurationInSeconds=60,
                          AutoApprovalDelayInSeconds=30 * 86400 + 1)


UPLOAD_FORM = html_question('<form method="post" enctype="multipart/form-data" action="/mturk/externalSubmit">'
                            '<input name="answer"><input type="file" name="recording"></form>')


def test_exports_neutralise_formulas_and_uploads_download_safely(server):
    """Finding 6: formula prefixes in answers and worker ids are neutralised in the CSV export (OWASP);
    an uploaded file comes back as an attachment with a safe name, a safe type and nosniff."""
    c = server.client()
    hit = c.create_hit_with_hit_type(HITTypeId=hit_type(c), MaxAssignments=2, LifetimeInSeconds=600,
                                     Question=UPLOAD_FORM)["HIT"]["HITId"]
    formulas = {"a1": "=cmd|' /C calc'!A0", "a2": '=HYPERLINK("http://x","y")', "a3": "+1+1", "a4": "-1+1",
                "a5": "@SUM(1+1)", "a6": "\t=1", "a7": "'=1", "a8": "plain", "a9": "1.5"}
    s, aid = take(server.url, hit, "@SUM")
    r = s.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid, **formulas},
               files={"recording": ('x".html', b"<script>alert(1)</script>", "text/html"),
                      "take2": ("a\x00b.wav", b"RIFF....WAVE", "audio/wav")}, timeout=30)
    assert r.status_code == 200, r.text
    export = requests.get(f"{server.url}/admin/export.csv", params={"token": server.admin_token}, timeout=30)
    table = pd.read_csv(io.StringIO(export.text), dtype=str, keep_default_na=False)
    row = table.iloc[0]
    for col, value in formulas.items():
        cell = row[f"Answer.{col}"]
        assert cell[0] not in "=+-@\t\r", (col, cell)
        assert cell == (value if value in ("plain", "1.5") else "'" + value), (col, cell)
    assert row["WorkerId"] == "'@SUM"
    for col in table.columns:
        assert all(not str(v).startswith(("=", "+", "-", "@")) for v in table[col]), col

    url = c.get_file_upload_url(AssignmentId=aid, QuestionIdentifier="recording")["FileUploadURL"]
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.content == b"<script>alert(1)</script>"
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    disp = got.headers["Content-Disposition"]
    assert disp.startswith("attachment;") and disp.count('"') == 2 and "filename*=UTF-8''x%22.html" in disp
    # A name with NUL (PostgreSQL refuses NUL in text): the answer keeps it, the download a safe one.
    (a,) = c.list_assignments_for_hit(HITId=hit)["Assignments"]
    assert xml_answers.parse(a["Answer"])["take2"] == "a\x00b.wav"
    got = requests.get(c.get_file_upload_url(AssignmentId=aid, QuestionIdentifier="take2")["FileUploadURL"], timeout=30)
    assert got.content == b"RIFF....WAVE" and got.headers["Content-Type"] == "audio/wav"
    assert "\r" not in got.headers["Content-Disposition"] and 'filename="a_b.wav"' in got.headers["Content-Disposition"]


def test_integrity_error_that_is_not_a_race_is_a_400(server, monkeypatch):
    """Finding 3's second half: a value the database refuses (here NOT NULL) is the caller's 400, not a
    503 'retry' that can never succeed. The checks before storing stop NaN and the like first, so a
    stand-in operation stores a NULL to reach this last guard on each backend."""
    from eval_server.api import common
    from eval_server.db import HITType

    def store_null(ctx, p):
        with ctx.db.write() as s:
            s.add(HITType(id="3NULLTITLE", title=None, description="d", keywords="", reward="0.10",
                          assignment_duration=60, auto_approval_delay=60, qual_requirements="[]", created_at=0.0))
        return {}
    monkeypatch.setitem(common.OPERATIONS, "GetAccountBalance", store_null)
    r = raw_call(server.url, "GetAccountBalance", "{}")
    assert r.status_code == 400 and r.json()["__type"] == "RequestError", r.text
    assert "title" in r.json()["Message"]


def test_values_stored_by_an_older_release_do_not_fail_submits(server):
    """What main accepted at create time and then failed every submit on (ExtendMaximumAssignments '²',
    a QualificationValue of 10**29, FrameHeight '²'), found in an existing database: the worker's
    submit and the test are still taken."""
    from sqlalchemy import update

    from eval_server.db import HIT, Database, QualificationType
    c = server.client()
    policy = {"PolicyName": "ScoreMyKnownAnswers/2011-09-01", "Parameters": [
        {"Key": "AnswerKey", "MapEntries": [{"Key": "answer", "Values": ["a"]}]},
        {"Key": "ExtendIfKnownAnswerScoreIsLessThan", "Values": ["100"]},
        {"Key": "ExtendMaximumAssignments", "Values": ["2"]}]}
    hit = c.create_hit_with_hit_type(HITTypeId=hit_type(c), LifetimeInSeconds=600, Question=SIMPLE_FORM,
                                     AssignmentReviewPolicy=policy)["HIT"]["HITId"]
    qt = c.create_qualification_type(Name="ears", Description="d", QualificationTypeStatus="Active", Test=TEST_FORM,
                                     AnswerKey=answer_key(), TestDurationInSeconds=300)[
        "QualificationType"]["QualificationTypeId"]
    legacy_key = answer_key(HUGE_RANGE)
    db = Database(server.db_url)
    with db.write() as s:
        s.execute(update(HIT).where(HIT.id == hit).values(
            assignment_policy=json.dumps(policy).replace('"2"', '"\\u00b2"'),
            question=SIMPLE_FORM.replace("<FrameHeight>600", "<FrameHeight>\u00b2")))
        s.execute(update(QualificationType).where(QualificationType.id == qt).values(answer_key=legacy_key))
    db.dispose()
    s, aid = take(server.url, hit, "W1")
    assert s.get(f"{server.url}/worker/hit", params={"hitId": hit, "assignmentId": aid}).status_code == 200
    assert s.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "b"}).status_code == 200
    assert c.get_hit(HITId=hit)["HIT"]["MaxAssignments"] == 2  # extended; the unreadable maximum is ignored
    r = s.post(f"{server.url}/worker/qualification", data={"typeId": qt, "tone": "b", "comment": ""}, timeout=30)
    assert r.status_code < 400, r.text
    value = c.get_qualification_score(QualificationTypeId=qt, WorkerId="W1")["Qualification"]["IntegerValue"]
    assert value == 0  # the unreadable value counts as 0 rather than failing the test


def test_a_megabyte_answer_is_kept(server):
    """1 MB of text in one answer (url-encoded and multipart; werkzeug's default 500 kB cap on a
    multipart text part is lifted for submits) comes back whole through boto3."""
    c = server.client()
    ht = hit_type(c)
    text = ("é中\x00\r\n\x01abc" * 120_000)[:1_000_000]
    for multipart in (False, True):
        hit = c.create_hit_with_hit_type(HITTypeId=ht, LifetimeInSeconds=600, Question=SIMPLE_FORM)["HIT"]["HITId"]
        s, aid = take(server.url, hit, "W1")
        if multipart:
            r = s.post(f"{server.url}/mturk/externalSubmit", timeout=60,
                       files=[("assignmentId", (None, aid)), ("answer", (None, text.encode("utf-8")))])
        else:
            r = s.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": text}, timeout=60)
        assert r.status_code == 200, r.text[:200]
        (a,) = c.list_assignments_for_hit(HITId=hit)["Assignments"]
        assert parse_question_form_answers(a["Answer"])["answer"] == text


def test_ids_holding_nul_are_unknown_ids_on_every_route(server):
    """Finding 2's PostgreSQL half on the worker routes: an id holding NUL (which PostgreSQL's driver
    refuses to send) is a 404 like any unknown id, not a 500 (eval_server.db.Key)."""
    from tests.helpers.server import post_form
    c = server.client()
    c.create_hit_with_hit_type(HITTypeId=hit_type(c), LifetimeInSeconds=600, Question=SIMPLE_FORM)
    w, u = rater(server.url, "W1"), server.url
    for r in (w.post(f"{u}/mturk/externalSubmit", data={"assignmentId": "a\x00b", "answer": "x"}),
              post_form(w, f"{u}/worker/accept", {"hitId": "a\x00b"}, u, allow_redirects=False),
              w.get(f"{u}/worker/hit", params={"hitId": "a\x00b"}),
              w.get(f"{u}/worker/task", params={"hitId": "a\x00b", "assignmentId": "x\x00"}),
              post_form(w, f"{u}/worker/qualification", {"typeId": "a\x00b"}, u),
              post_form(w, f"{u}/worker/return", {"assignmentId": "a\x00b"}, u)):
        assert r.status_code == 404, (r.request.url, r.status_code, r.text[:100])

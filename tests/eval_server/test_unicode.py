"""Property test (issue 15, "no answer is lost to its content"): random Unicode, control characters and
NUL included, submitted through the worker page (POST /mturk/externalSubmit, url-encoded and multipart)
and the qualification page (POST /worker/qualification), comes back byte-exact from boto3
(`list_assignments_for_hit`, `list_qualification_requests`) and from `collect`'s votes table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers.server import SIMPLE_FORM, accept_hit, rater, start_inprocess
from tests.helpers.study import build_small_study, make_manifests

from eval_server import xml_answers
from mturk.answers import parse_question_form_answers
from mturk.collect import collect
from mturk.ledger import Ledger
from mturk.votes import read_votes

N_FIELDS = 10  # answers per qualification-test submit: 60 examples x 10 = 600 cases
MIN_CASES = 600  # per page
QF = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd"
TEST = (f'<QuestionForm xmlns="{QF}">' + "".join(
    f"<Question><QuestionIdentifier>q{i}</QuestionIdentifier><QuestionContent><Text>say {i}</Text></QuestionContent>"
    "<AnswerSpecification><FreeTextAnswer/></AnswerSpecification></Question>" for i in range(N_FIELDS))
    + "</QuestionForm>")

# Any text a browser can post: every code point but lone surrogates (a browser's UTF-8 encoder turns
# those into U+FFFD before sending), with the C0/C1 controls, NUL and XML's non-characters drawn often.
controls = st.characters(min_codepoint=0, max_codepoint=0x9F, exclude_categories=("Cs",))
nasty = st.sampled_from(["\x00", "\r", "\r\n", "\ufffe", "\uffff", "\\", "\\u0000", "]]>", "&#13;", "=1+1", "NA",
                         "\x1c", "\x85", "\u2028"])
piece = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=20), st.text(controls, max_size=8),
                  nasty)
answer = st.lists(piece, max_size=4).map("".join)


def _settings(per_example: int):
    return settings(max_examples=-(-MIN_CASES // per_example), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("unicode-study")
    clips = make_manifests(root / "clips", n_videos=4)
    return build_small_study(clips, root / "study", protocols=("mos",), questions=("missing",), trials_per_hit=2)


@pytest.fixture
def server(db_url):  # noqa: F811
    s = start_inprocess(db_url)
    yield s
    s.close()


def _post(session, url: str, fields: list[tuple[str, str]], multipart: bool):
    if multipart:  # every field as a form-data part, as a browser sends enctype="multipart/form-data"
        return session.post(url, files=[(k, (None, v.encode("utf-8"))) for k, v in fields], timeout=30)
    return session.post(url, data=fields, timeout=30)


def test_random_unicode_round_trips_from_both_pages(server, study, tmp_path, monkeypatch):
    c = server.client()
    ht = c.create_hit_type(Title="t", Description="d", Reward="0.10", AssignmentDurationInSeconds=600)["HITTypeId"]
    worker = rater(server.url, "W1")
    # The answers go to the real trials of a real study (a practice question's answer is never a vote).
    trial_ids = sorted(t.trial_id for t in study.trials if t.role != "practice")
    assert len(trial_ids) >= 4
    sent: dict[str, dict[str, str]] = {}  # assignment id -> {field: value}
    sent_qual: dict[str, dict[str, str]] = {}  # qualification type id -> {field: value}
    hits: list[str] = []

    @_settings(len(trial_ids))
    @given(values=st.lists(answer, min_size=len(trial_ids), max_size=len(trial_ids)), multipart=st.booleans())
    def worker_page(values, multipart):
        hit = c.create_hit_with_hit_type(HITTypeId=ht, LifetimeInSeconds=600, Question=SIMPLE_FORM)["HIT"]["HITId"]
        r = accept_hit(worker, server.url, hit)
        aid = parse_qs(urlparse(r.headers["Location"]).query)["assignmentId"][0]
        fields = list(zip(trial_ids, values))
        r = _post(worker, f"{server.url}/mturk/externalSubmit", [("assignmentId", aid)] + fields, multipart)
        assert r.status_code == 200, r.text[:300]
        (a,) = c.list_assignments_for_hit(HITId=hit)["Assignments"]
        ET.fromstring(a["Answer"].encode("utf-8"))
        assert xml_answers.parse(a["Answer"]) == dict(fields)
        assert parse_question_form_answers(a["Answer"]) == dict(fields)
        sent[aid] = dict(fields)
        hits.append(hit)

    @_settings(N_FIELDS)
    @given(values=st.lists(answer, min_size=N_FIELDS, max_size=N_FIELDS), multipart=st.booleans())
    def qualification_page(values, multipart):
        qt = c.create_qualification_type(Name=f"test {len(sent_qual)}", Description="d", Test=TEST,
                                         TestDurationInSeconds=600, QualificationTypeStatus="Active")[
            "QualificationType"]["QualificationTypeId"]
        fields = [(f"q{i}", v) for i, v in enumerate(values)]
        r = _post(worker, f"{server.url}/worker/qualification", [("typeId", qt)] + fields, multipart)
        assert r.status_code < 400, r.text[:300]
        (req,) = c.list_qualification_requests(QualificationTypeId=qt)["QualificationRequests"]
        assert xml_answers.parse(req["Answer"]) == dict(fields)
        assert parse_question_form_answers(req["Answer"]) == dict(fields)
        sent_qual[qt] = dict(fields)

    worker_page()
    qualification_page()
    cases = sum(map(len, sent.values())), sum(map(len, sent_qual.values()))
    assert min(cases) >= MIN_CASES, cases

    # collect reads every assignment back into the votes table, each answer exactly as it was posted.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unused")  # collect's client comes from client_for below
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unused")
    with Ledger(tmp_path / "ledger.sqlite") as led:
        for i, hit in enumerate(hits):
            led.mark_pending(study.name, f"h{i}", f"tok{i}", server.url, ht)
            led.mark_created(server.url, f"tok{i}", hit, ht)
        res = collect(study, led, lambda target: c, tmp_path / "votes.csv")
    assert res.skipped == [] and res.new_assignments == len(sent)
    votes = read_votes(tmp_path / "votes.csv")
    got = {(r.assignment_id, r.trial_id): r.answer for r in votes.itertuples()}
    # Every answer has its row, byte for byte; an empty field is no answer (a blank row, or none where
    # collect cannot tell it belongs to this HIT: mturk.votes.blank_answer_rows).
    want = {(aid, t): v for aid, fields in sent.items() for t, v in fields.items()}
    assert {k: v for k, v in got.items() if v != ""} == {k: v for k, v in want.items() if v != ""}
    assert all(want[k] == "" for k, v in got.items() if v == "")


def _valid_answer(t) -> str:
    return t.truth or {"pair": "left", "real_fake": "real", "mos": "3"}[t.kind]


def test_answers_beside_control_characters_reach_report(server, study, tmp_path, monkeypatch):
    """`collect` and `report --db` both read every vote of assignments whose other fields (a comment, a
    timing) hold NUL, CR, CR LF and other control characters, and the report accepts the table."""
    from mturk.report.inputs import load_study as report_study
    from regnet.commands.report import load_server_votes
    from mturk.report.validate import validate

    c = server.client()
    ht = c.create_hit_type(Title="t", Description="d", Reward="0.10", AssignmentDurationInSeconds=600)["HITTypeId"]
    index = study.trial_index()
    hits, expected = [], 0
    for n, worker_id in enumerate(("W1", "W2")):
        worker = rater(server.url, worker_id)
        for h in study.hits:
            hit = c.create_hit_with_hit_type(HITTypeId=ht, LifetimeInSeconds=600, Question=SIMPLE_FORM)["HIT"]["HITId"]
            r = accept_hit(worker, server.url, hit)
            aid = parse_qs(urlparse(r.headers["Location"]).query)["assignmentId"][0]
            fields = [(tid, _valid_answer(index[tid])) for tid in h.trial_ids]
            fields += [("comment", "a\x00b\rc\r\nd\x01\x1f=1+1"), ("time_on_page_s", "\r12\x00"), ("hidden_s", "\r")]
            r = _post(worker, f"{server.url}/mturk/externalSubmit", [("assignmentId", aid)] + fields, n == 1)
            assert r.status_code == 200, r.text[:200]
            hits.append(hit)
            expected += len(h.trial_ids)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unused")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unused")
    with Ledger(tmp_path / "ledger.sqlite") as led:
        for i, hit in enumerate(hits):
            led.mark_pending(study.name, f"h{i}", f"tok{i}", server.url, ht)
            led.mark_created(server.url, f"tok{i}", hit, ht)
        res = collect(study, led, lambda target: c, tmp_path / "votes.csv")
    assert res.skipped == [] and res.new_votes == expected
    info = report_study(study.directory)
    from_collect = validate(read_votes(tmp_path / "votes.csv"), "votes.csv", info)
    from_db, _ = load_server_votes(server.db_url, info)
    from_db = validate(from_db, "db", info)
    assert len(from_collect) == len(from_db) == expected
    key = ["assignment_id", "trial_id", "answer"]
    rows = [sorted(map(tuple, frame[key].astype(str).values)) for frame in (from_db, from_collect)]
    assert rows[0] == rows[1]

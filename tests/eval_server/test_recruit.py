"""Raters recruited on Prolific: after their share of HITs, after failing the screening test, or
after a timed-out HIT, each lands on the right link back to Prolific (eval_server/recruit.py)."""

from __future__ import annotations

import json
import time

import pytest
import requests
from tests.helpers.server import (ANSWER_KEY, SIMPLE_FORM, TEST_FORM, accept_hit, assignment_of, csrf_token,
                                  post_form, start_inprocess)
from sqlalchemy import update

from eval_server.db import Assignment, Database
from eval_server.recruit import read_recruit_config
from regnet.errors import UserError

DONE, SCREEN, TIMEOUT = ("https://app.prolific.com/submissions/complete?cc=" + c for c in ("DONE1", "SCRN1", "TIME1"))


@pytest.fixture
def server(sqlite_url):  # noqa: F811
    s = start_inprocess(sqlite_url, completion_url=DONE, screenout_url=SCREEN, timeout_url=TIMEOUT,
                        hits_per_recruit=1)
    yield s
    s.close()


def _participant(url: str, pid: str) -> requests.Session:
    s = requests.Session()
    r = s.get(f"{url}/worker", params={"PROLIFIC_PID": pid, "STUDY_ID": "st1", "SESSION_ID": "se1"})
    assert r.status_code == 200
    s.headers["X-CSRFToken"] = csrf_token(s, url)
    return s


def _hits(c, n=2, duration=60, quals=None):
    return [c.create_hit(Title="rate", Description="d", Reward="0.50", AssignmentDurationInSeconds=duration,
                         LifetimeInSeconds=600, MaxAssignments=1, Question=SIMPLE_FORM,
                         QualificationRequirements=quals or [])["HIT"]["HITId"] for _ in range(n)]


def test_a_participant_is_done_after_their_share_of_hits(server):
    url = server.url
    _hits(server.client(), n=2)
    s = _participant(url, "5f3a9c0e1b2d")
    page = s.get(f"{url}/worker")
    assert "Accept &amp; work" in page.text  # nothing done yet: the HIT list
    hit = page.text.split('data-hit-id="')[1].split('"')[0]
    aid = assignment_of(accept_hit(s, url, hit))
    assert s.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "ok"}).status_code == 200
    done = s.get(f"{url}/worker/done")
    assert DONE in done.text and 'id="next"' not in done.text  # another HIT is open, but their share is done
    back = s.get(f"{url}/worker", allow_redirects=False)
    assert back.status_code == 302 and back.headers["Location"].endswith("/worker/done")


def test_a_participant_who_fails_the_screening_test_gets_the_screen_out_link(server):
    url, c = server.url, server.client()
    qt = c.create_qualification_type(Name="listening", Description="d", QualificationTypeStatus="Active",
                                     Test=TEST_FORM, AnswerKey=ANSWER_KEY, TestDurationInSeconds=300)
    qid = qt["QualificationType"]["QualificationTypeId"]
    _hits(c, n=2, quals=[{"QualificationTypeId": qid, "Comparator": "GreaterThanOrEqualTo",
                          "IntegerValues": [100], "ActionsGuarded": "DiscoverPreviewAndAccept"}])
    failing, passing = _participant(url, "pFAIL"), _participant(url, "pPASS")
    # before taking the test nobody is screened out: they are sent to the test, not back to Prolific
    assert failing.get(f"{url}/worker", allow_redirects=False).status_code == 200
    for s, answer in ((failing, "a"), (passing, "b")):
        r = post_form(s, f"{url}/worker/qualification", {"typeId": qid, "tone": answer}, url, allow_redirects=False)
        assert r.status_code in (302, 303)
    r = failing.get(f"{url}/worker")
    assert r.url.endswith("/worker/done") and SCREEN in r.text and 'id="screened"' in r.text and DONE not in r.text
    ok = passing.get(f"{url}/worker", allow_redirects=False)
    assert ok.status_code == 200 and "Accept &amp; work" in ok.text


def test_a_timed_out_hit_sends_the_participant_to_the_time_out_link(server):
    url = server.url
    (hit,) = _hits(server.client(), n=1, duration=30)
    s = _participant(url, "pSLOW")
    aid = assignment_of(accept_hit(s, url, hit))
    with Database(server.db_url).write() as db:
        db.execute(update(Assignment).where(Assignment.id == aid).values(deadline=time.time() - 1))
    # the expiry frees the HIT; the next list sees nothing for them (the HIT is theirs no more, and taken)
    other = _participant(url, "pOTHER")
    assert accept_hit(other, url, hit).status_code in (302, 303)
    r = s.get(f"{url}/worker")
    assert r.url.endswith("/worker/done") and TIMEOUT in r.text and 'id="timedout"' in r.text


def test_the_recruit_config_file_is_read_with_one_line_errors(tmp_path):
    p = tmp_path / "prolific.json"
    p.write_text(json.dumps({"completion_url": DONE, "screenout_url": SCREEN, "timeout_url": TIMEOUT,
                             "hits_per_participant": 2}))
    cfg = read_recruit_config(p)
    assert cfg.hits_per_recruit == 2 and cfg.url("screened_out") == SCREEN and cfg.url("timed_out") == TIMEOUT
    with pytest.raises(UserError, match="not found"):
        read_recruit_config(tmp_path / "nope.json")
    p.write_text("[1, 2")
    with pytest.raises(UserError, match="not a recruitment file"):
        read_recruit_config(p)

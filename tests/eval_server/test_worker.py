"""Worker routes, media, admin and export against a real server (SQLite)."""

from __future__ import annotations

import io
import time

import pandas as pd
import pytest
import requests
from tests.helpers.server import SIMPLE_FORM, accept_hit, assignment_of, rater, start_inprocess

from eval_server.export import batch_results_frame


@pytest.fixture
def media(tmp_path):
    d = tmp_path / "media"
    d.mkdir()
    (d / "clip.mp4").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "secret.txt").write_text("do not serve")
    (d / "escape.mp4").symlink_to(tmp_path / "secret.txt")
    return d


@pytest.fixture
def server(sqlite_url, media):  # noqa: F811
    s = start_inprocess(sqlite_url, media_dirs=(media,), completion_code="DONE-123",
                        completion_url="https://example.org/complete?cc=DONE-123")
    yield s
    s.close()


def _hit(c, max_assignments=1, duration=60, annotation="study-a"):
    return c.create_hit(Title="rate", Description="d", Reward="0.10", AssignmentDurationInSeconds=duration,
                        LifetimeInSeconds=600, MaxAssignments=max_assignments, Question=SIMPLE_FORM,
                        RequesterAnnotation=annotation)["HIT"]["HITId"]


_RATERS: dict[tuple[str, str], requests.Session] = {}


def _rater(url, worker):
    """One signed-in session per (server, rater), as one browser per person."""
    if (url, worker) not in _RATERS:
        _RATERS[(url, worker)] = rater(url, worker)
    return _RATERS[(url, worker)]


def _accept(url, hit_id, worker, session=None):
    return accept_hit(session or _rater(url, worker), url, hit_id)


def test_media_ranges_types_and_no_escape(server, media):
    url = server.url
    data = (media / "clip.mp4").read_bytes()
    r = requests.get(f"{url}/media/clip.mp4")
    assert r.status_code == 200 and r.headers["Content-Type"] == "video/mp4" and r.content == data
    r = requests.get(f"{url}/media/clip.mp4", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    for bad in ("../secret.txt", "..%2Fsecret.txt", "%2e%2e/secret.txt", "escape.mp4", "/etc/passwd",
                "nothing.mp4"):
        r = requests.get(f"{url}/media/{bad}")
        assert r.status_code in (400, 404), bad
        assert b"do not serve" not in r.content


def test_accept_submit_rules(server):
    c = server.client()
    url = server.url
    hit = _hit(c, max_assignments=2)
    r = _accept(url, hit, "W1")
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert "assignmentId=" in loc and "turkSubmitTo=" in loc and f"hitId={hit}" in loc and "workerId=W1" in loc
    aid = loc.split("assignmentId=")[1].split("&")[0]
    # Accepting again gives back the same unfinished assignment, not a second one.
    assert _accept(url, hit, "W1").headers["Location"] == loc
    w1 = _rater(url, "W1")
    page = w1.get(url + loc)
    assert page.status_code == 200 and 'name="answer"' in page.text
    # Someone else's assignment (the session says who is posting) is refused; so is an unknown one,
    # and so is any submit without a rater session.
    s2 = _rater(url, "W2")
    assert _accept(url, hit, "W2", s2).status_code == 302
    assert s2.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "x"}).status_code == 403
    assert requests.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "x"}).status_code == 403
    assert w1.post(f"{url}/mturk/externalSubmit", data={"assignmentId": "NOPE", "a": "1"}).status_code == 404
    assert w1.post(f"{url}/mturk/externalSubmit", data={"answer": "1"}).status_code == 400
    assert w1.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "x"}).status_code == 200
    assert w1.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "y"}).status_code == 409
    r = _accept(url, hit, "W1")
    assert r.status_code == 409 and "one assignment per worker" in r.text
    r = _accept(url, hit, "W3")
    assert r.status_code == 409 and "no assignments left" in r.text
    assigns = c.list_assignments_for_hit(HITId=hit)["Assignments"]
    assert len(assigns) == 1 and "<FreeText>x</FreeText>" in assigns[0]["Answer"]
    assert _accept(url, "NOSUCHHIT", "W1").status_code == 404
    assert requests.get(f"{url}/worker", params={"workerId": "bad id!"}, allow_redirects=False).status_code == 400


def test_expired_assignment_returns_to_pool(server):
    c = server.client()
    url = server.url
    ht = c.create_hit_type(Title="short", Description="d", Reward="0.10", AssignmentDurationInSeconds=30)
    hit = c.create_hit_with_hit_type(HITTypeId=ht["HITTypeId"], LifetimeInSeconds=600, MaxAssignments=1,
                                     Question=SIMPLE_FORM)["HIT"]["HITId"]
    aid = assignment_of(_accept(url, hit, "W1"))
    assert _accept(url, hit, "W2").status_code == 409
    # Move the deadline into the past (a 30 s wait is too long for a test).
    from sqlalchemy import update

    from eval_server.db import Assignment, Database
    with Database(server.db_url).write() as s:
        s.execute(update(Assignment).where(Assignment.id == aid).values(deadline=time.time() - 1))
    assert c.get_hit(HITId=hit)["HIT"]["NumberOfAssignmentsAvailable"] == 1
    assert _accept(url, hit, "W2").status_code == 302
    r = _rater(url, "W1").post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "late"})
    assert r.status_code == 410 and "expired" in r.text


def test_recruitment_link_listing_and_completion(server):
    c = server.client()
    url = server.url
    hit = _hit(c)
    s = requests.Session()
    r = s.get(f"{url}/worker", params={"PROLIFIC_PID": "5f3a9c0e1b2d", "STUDY_ID": "s1", "SESSION_ID": "x"})
    assert r.status_code == 200 and "Worker 5f3a9c0e1b2d" in r.text and hit in r.text
    listing = s.get(f"{url}/worker/api/hits").json()["hits"]
    assert [h["hitId"] for h in listing] == [hit] and listing[0]["available"] == 1 and listing[0]["reward"] == "0.10"
    r = accept_hit(s, url, hit, ui="frame")
    assert r.status_code == 302 and r.headers["Location"].startswith("/worker/hit?")
    frame = s.get(url + r.headers["Location"])
    assert '<iframe id="task"' in frame.text and "/worker/task?" in frame.text
    aid = r.headers["Location"].split("assignmentId=")[1].split("&")[0]
    done = s.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "ok"})
    assert done.status_code == 200 and "/worker/done" in done.text
    page = s.get(f"{url}/worker/done", params={"assignmentId": aid})
    assert "DONE-123" in page.text and "https://example.org/complete?cc=DONE-123" in page.text
    assert s.get(f"{url}/worker/api/hits").json() == {"hits": []}


def test_admin_page_csv_and_export_frame(server):
    c = server.client()
    url = server.url
    hits = [_hit(c, max_assignments=2, annotation="study-a"), _hit(c, annotation="study-b")]
    for hit, worker, ans in ((hits[0], "W1", "left"), (hits[0], "W2", "right"), (hits[1], "W1", "left")):
        aid = assignment_of(_accept(url, hit, worker))
        assert _rater(url, worker).post(f"{url}/mturk/externalSubmit",
                                        data={"assignmentId": aid, "answer": ans, "t1__played": "1"}).status_code == 200
    assert requests.get(f"{url}/admin").status_code == 401
    assert requests.get(f"{url}/admin", params={"token": "wrong"}).status_code == 401
    page = requests.get(f"{url}/admin", headers={"X-Admin-Token": server.admin_token})
    assert page.status_code == 200 and "rate" in page.text and "export.csv?hitTypeId=" in page.text
    csv = requests.get(f"{url}/admin/export.csv", params={"annotation": "study-a"},
                       headers={"Authorization": f"Bearer {server.admin_token}"})
    assert csv.status_code == 200
    df = pd.read_csv(io.StringIO(csv.text), dtype=str)
    assert list(df.columns[:3]) == ["HITId", "HITTypeId", "Title"]
    assert sorted(df["Answer.answer"]) == ["left", "right"] and set(df["HITId"]) == {hits[0]}
    frame = batch_results_frame(server.db_url)
    assert len(frame) == 3
    assert len(batch_results_frame(server.db_url, annotation_prefix="study-")) == 3
    assert len(batch_results_frame(server.db_url, annotation_prefix="study-b")) == 1
    for col in ("HITId", "HITTypeId", "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime", "SubmitTime",
                "WorkTimeInSeconds", "Answer.answer", "Answer.t1__played"):
        assert col in frame.columns
    assert set(frame["AssignmentStatus"]) == {"Submitted"}
    assert frame["SubmitTime"].str.match(r"^\w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}$").all()

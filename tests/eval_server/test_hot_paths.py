"""The hot paths of a study (accept-next, frame page, HIT page, submit) keep what they kept before their
CPU was cut: the HIT's question is parsed once per distinct document (eval_server/question_cache.py),
never served stale (a rewritten question is the new one, a disposed HIT is 404), the cache is bounded,
and accept/submit keep their rules on the Core statements (eval_server/assignments.py)."""

from __future__ import annotations

import html
import re

import pytest
from tests.helpers.server import accept_hit, assignment_of, html_question, rater, start_inprocess
from sqlalchemy import update

from eval_server import question_cache, questions
from eval_server.db import HIT, Database
from eval_server.errors import ApiError

IFRAME_SRC = re.compile(r'<iframe id="task"[^>]* src="([^"]+)"')


def _page(body: str) -> str:
    return html_question(f'<form method="post" action="/mturk/externalSubmit"><input type="hidden" '
                         f'name="assignmentId"><input name="answer"></form><p>{body}</p>', height=321)


@pytest.fixture
def server(sqlite_url):  # noqa: F811
    s = start_inprocess(sqlite_url)
    yield s
    s.close()


def _hit(c, question: str, max_assignments: int = 2) -> str:
    return c.create_hit(Title="rate", Description="d", Reward="0.10", AssignmentDurationInSeconds=600,
                        LifetimeInSeconds=600, MaxAssignments=max_assignments, Question=question)["HIT"]["HITId"]


def _set_row(server, table, row_id: str, **values) -> None:
    """Change a stored row behind the server's back, through a Database of its own."""
    db = Database(server.db_url)
    try:
        with db.write() as s:
            s.execute(update(table).where(table.id == row_id).values(**values))
    finally:
        db.dispose()


def _set_hit(server, hit_id: str, **values) -> None:
    _set_row(server, HIT, hit_id, **values)


def _frame_and_task(r, url: str, hit_id: str, aid: str):
    frame = r.get(f"{url}/worker/hit", params={"hitId": hit_id, "assignmentId": aid}, timeout=30)
    src = IFRAME_SRC.search(frame.text)
    task = r.get(url + html.unescape(src.group(1)), timeout=30) if src else None
    return frame, task


def test_a_hits_question_is_parsed_once_for_all_its_page_loads_and_submit(server, monkeypatch):
    calls: list[str] = []
    real = questions.parse

    def counting(doc, **kw):
        calls.append(doc)
        return real(doc, **kw)
    c = server.client()
    doc = _page("parsed once")
    hit = _hit(c, doc, max_assignments=3)
    question_cache.clear()
    monkeypatch.setattr(questions, "parse", counting)
    for w in ("P1", "P2", "P3"):
        r = rater(server.url, w)
        aid = assignment_of(accept_hit(r, server.url, hit, ui="frame"))
        for _ in range(3):
            frame, task = _frame_and_task(r, server.url, hit, aid)
            assert frame.status_code == 200 and "height:321px" in frame.text
            assert task.status_code == 200 and "parsed once" in task.text
        sub = r.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": w}, timeout=30)
        assert sub.status_code == 200
    # 9 frame pages, 9 HIT pages and 3 submits of one document: one parse.
    assert calls.count(doc) == 1
    answers = c.list_assignments_for_hit(HITId=hit)["Assignments"]
    assert sorted(a["WorkerId"] for a in answers) == ["P1", "P2", "P3"]
    assert all(f"<FreeText>{a['WorkerId']}</FreeText>" in a["Answer"] for a in answers)


def test_a_rewritten_question_is_never_served_stale(server):
    c = server.client()
    hit = _hit(c, _page("first version"))
    r = rater(server.url, "S1")
    aid = assignment_of(accept_hit(r, server.url, hit, ui="frame"))
    frame, task = _frame_and_task(r, server.url, hit, aid)
    assert "first version" in task.text and "height:321px" in frame.text
    # HITs never change their Question through the API; if one were rewritten in the database, the
    # cache is keyed by the document, so the next load parses and shows the new one.
    _set_hit(server, hit, question=html_question("<p>second version</p>", height=654))
    frame, task = _frame_and_task(r, server.url, hit, aid)
    assert "height:654px" in frame.text
    assert "second version" in task.text and "first version" not in task.text


def test_a_disposed_hit_is_404_though_its_question_is_cached(server):
    c = server.client()
    hit = _hit(c, _page("soon gone"))
    r = rater(server.url, "D1")
    aid = assignment_of(accept_hit(r, server.url, hit, ui="frame"))
    frame, task = _frame_and_task(r, server.url, hit, aid)
    assert frame.status_code == 200 and task.status_code == 200
    _set_hit(server, hit, disposed=True)
    for path in ("/worker/hit", "/worker/task"):
        gone = r.get(f"{server.url}{path}", params={"hitId": hit, "assignmentId": aid}, timeout=30)
        assert gone.status_code == 404 and gone.text == f"HIT {hit} does not exist\n"


def test_the_cache_is_bounded_and_keeps_no_failures():
    question_cache.clear()
    for i in range(question_cache.MAX_ENTRIES + 40):
        assert question_cache.parse(html_question(f"<p>{i}</p>")).html.endswith(f"<p>{i}</p></body></html>")
    assert question_cache.info().currsize == question_cache.MAX_ENTRIES
    bad = "<HTMLQuestion><HTMLContent></HTMLContent></HTMLQuestion>"
    for _ in range(2):
        with pytest.raises(ApiError, match="non-empty HTMLContent"):
            question_cache.parse(bad)
    assert question_cache.parse(_page("x")) is question_cache.parse(_page("x"))
    assert question_cache.parse(_page("x")) == questions.parse(_page("x"))


def test_accept_and_submit_rules_on_the_core_statements(server):
    c = server.client()
    hit = _hit(c, _page("rules"), max_assignments=1)
    a, b = rater(server.url, "A1"), rater(server.url, "B1")
    first = assignment_of(accept_hit(a, server.url, hit))
    assert assignment_of(accept_hit(a, server.url, hit)) == first  # the one they hold, again
    full = accept_hit(b, server.url, hit)
    assert full.status_code == 409 and "no assignments left" in full.text
    foreign = b.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": first, "answer": "x"}, timeout=30)
    assert foreign.status_code == 403
    ok = a.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": first, "answer": "kept"}, timeout=30)
    assert ok.status_code == 200
    again = a.post(f"{server.url}/mturk/externalSubmit", data={"assignmentId": first, "answer": "y"}, timeout=30)
    assert again.status_code == 409
    again = accept_hit(a, server.url, hit)
    assert again.status_code == 409 and "already submitted" in again.text
    (stored,) = c.list_assignments_for_hit(HITId=hit)["Assignments"]
    assert stored["AssignmentId"] == first and "<FreeText>kept</FreeText>" in stored["Answer"]
    assert stored["AutoApprovalTime"] > stored["SubmitTime"]
    assert c.get_hit(HITId=hit)["HIT"]["NumberOfAssignmentsAvailable"] == 0


def test_every_sqlite_write_returns_after_an_fsync_of_the_wal_that_began_after_its_commit(tmp_path, monkeypatch):
    """Group commit (eval_server/sqlite_sync.py): a write is acknowledged only once the WAL holding it
    was fsynced, by an fsync that started after the commit; writers share fsyncs."""
    import os
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import event, func, select
    from sqlalchemy.orm import Session

    from eval_server import sqlite_sync
    from eval_server.db import Meta

    db_file = tmp_path / "g.sqlite"
    db = Database(str(db_file))
    db.setup()
    syncs: list[tuple[float, float]] = []
    real_fsync = os.fsync
    lock = threading.Lock()

    def recording_fsync(fd):
        if os.path.realpath(f"/proc/self/fd/{fd}") != str(db_file) + "-wal":
            return real_fsync(fd)
        t0 = time.perf_counter()
        real_fsync(fd)
        with lock:
            syncs.append((t0, time.perf_counter()))
    monkeypatch.setattr(sqlite_sync.os, "fsync", recording_fsync)
    committed = threading.local()

    def after_commit(session):
        committed.at = time.perf_counter()
    event.listen(Session, "after_commit", after_commit)
    spans: list[tuple[float, float]] = []
    try:
        with db.read() as s:
            assert s.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL + group fsync

        def write(i: int) -> None:
            with db.write() as s:
                s.add(Meta(key=f"k{i}", value="v"))
            with lock:
                spans.append((committed.at, time.perf_counter()))
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(write, range(160)))
    finally:
        event.remove(Session, "after_commit", after_commit)
    assert len(spans) == 160
    for commit_at, returned_at in spans:
        assert any(commit_at <= start and end <= returned_at for start, end in syncs), (commit_at, returned_at)
    assert len(syncs) <= 160
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Meta).where(Meta.key.like("k%"))) == 160
    db.dispose()


def test_a_failed_wal_fsync_acknowledges_nothing(tmp_path, monkeypatch):
    """An fsync that fails raises to its writer and counts for nobody: the next writer fsyncs again."""
    import os

    from eval_server import sqlite_sync
    from eval_server.db import Meta

    db = Database(str(tmp_path / "f.sqlite"))
    db.setup()
    calls: list[int] = []
    real_fsync = os.fsync

    def flaky(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        return real_fsync(fd)
    monkeypatch.setattr(sqlite_sync.os, "fsync", flaky)
    with pytest.raises(OSError, match="Input/output"):
        with db.write() as s:
            s.add(Meta(key="a", value="1"))
    with db.write() as s:
        s.add(Meta(key="b", value="2"))
    assert len(calls) >= 2  # the second write had an fsync of its own
    with db.read() as s:
        assert {m.key for m in s.query(Meta).filter(Meta.key.in_(["a", "b"]))} == {"a", "b"}
    db.dispose()


# ---- submit's fast path (eval_server/assignments.py _submit_fast) ---------------------------------------

@pytest.fixture
def any_server(db_url):  # noqa: F811
    s = start_inprocess(db_url)
    yield s
    s.close()


def _stored(server, aid: str):
    from eval_server.db import Assignment

    db = Database(server.db_url)
    try:
        with db.read() as s:
            a = s.get(Assignment, aid)
            delay = a.auto_approval_time - a.submit_time if a.submit_time is not None else None
            return a.status, a.answer_fields, a.answer_xml, delay
    finally:
        db.dispose()


def test_the_fast_submit_stores_what_the_full_path_stores(any_server, monkeypatch):
    from eval_server import assignments

    c = any_server.client()
    doc = _page("same answers")
    fast_hit, full_hit = _hit(c, doc, 1), _hit(c, doc, 1)
    r = rater(any_server.url, "F1")
    fast = assignment_of(accept_hit(r, any_server.url, fast_hit))
    full = assignment_of(accept_hit(r, any_server.url, full_hit))
    answer = {"answer": "a & b <c>\x01 ☃", "extra": ""}
    assert r.post(f"{any_server.url}/mturk/externalSubmit", data={"assignmentId": fast, **answer},
                  timeout=30).status_code == 200
    taken: list[str] = []
    monkeypatch.setattr(assignments, "_submit_fast", lambda db, aid, *a, **k: taken.append(aid))
    assert r.post(f"{any_server.url}/mturk/externalSubmit", data={"assignmentId": full, **answer},
                  timeout=30).status_code == 200
    assert taken == [full]  # the full path ran for the second one only
    assert _stored(any_server, fast) == _stored(any_server, full)
    status, fields, xml, delay = _stored(any_server, fast)
    assert status == "Submitted" and delay > 0 and "rb:escaped" in xml


@pytest.mark.parametrize("meanwhile", ["returned", "submitted", "expired"])
def test_a_change_between_the_fast_submits_read_and_its_write_is_decided_by_the_full_path(
        any_server, monkeypatch, meanwhile):
    """The fast path reads without the write lock; what happens to the assignment before its guarded
    UPDATE (a Return, another submit of it, the deadline passing) must end as the full path decides."""
    from eval_server.db import Assignment

    c = any_server.client()
    hit = _hit(c, _page("race"), 1)
    r = rater(any_server.url, "R1")
    aid = assignment_of(accept_hit(r, any_server.url, hit))
    change = {"returned": dict(status="Abandoned", slot=None, active_worker=None),
              "submitted": dict(status="Submitted", answer_fields='[["answer", "first"]]', submit_time=1.0,
                                auto_approval_time=2.0),
              "expired": dict(deadline=0.0)}[meanwhile]
    real = Database._durable
    fired: list[bool] = []

    def meddle(self):  # the fast path's store is the first write of the submit, on either backend
        if not fired:
            fired.append(True)
            _set_row(any_server, Assignment, aid, **change)
        return real(self)
    monkeypatch.setattr(Database, "_durable", meddle)
    resp = r.post(f"{any_server.url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "late"}, timeout=30)
    assert fired
    assert resp.status_code == {"returned": 410, "submitted": 409, "expired": 410}[meanwhile], resp.text
    status, fields, _, _ = _stored(any_server, aid)
    assert "late" not in (fields or "")
    assert status == ("Submitted" if meanwhile == "submitted" else "Abandoned")

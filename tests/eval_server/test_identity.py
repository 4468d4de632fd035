"""Rater identity and cross-site requests (issue findings 1 and 7), on SQLite and PostgreSQL.

The victim's assignment is made through the library (`assignments.accept`), so each attack below is the
only HTTP the test sends on the victim's behalf: what a caller who is not B can do to B's work.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import requests
from tests.helpers.server import (REPO, SIMPLE_FORM, accept_hit, assignment_of, post_form, rater, sign_in,
                                  start_inprocess)
from sqlalchemy import select

from eval_server.assignments import accept
from eval_server.db import Assignment, Database
from eval_server.identity import link_signature
from eval_server.ids import now

OTHER_SITE = "http://evil.example"


@pytest.fixture
def server(db_url):  # noqa: F811
    s = start_inprocess(db_url)
    yield s
    s.close()


def _hit(c, n=2):
    return c.create_hit(Title="rate", Description="d", Reward="0.10", AssignmentDurationInSeconds=600,
                        LifetimeInSeconds=600, MaxAssignments=n, Question=SIMPLE_FORM)["HIT"]["HITId"]


def _assignments(db_url, hit):  # noqa: F811
    with Database(db_url).read() as s:
        return {a.id: (a.worker_id, a.status) for a in s.scalars(select(Assignment).where(Assignment.hit_id == hit))}


def _b_holds(server, hit):
    return accept(Database(server.db_url), hit, "WORKERB", now()).id


# ---- finding 1: anyone can answer as another rater ------------------------------------------------------

def test_listing_needs_the_raters_own_session(server):
    hit = _hit(server.client())
    aid = _b_holds(server, hit)
    r = requests.get(f"{server.url}/worker/api/hits", params={"workerId": "WORKERB"})
    assert r.status_code == 403 and aid not in r.text and r.text.count("\n") == 1
    a = rater(server.url, "WORKERA")
    r = a.get(f"{server.url}/worker/api/hits", params={"workerId": "WORKERB"})
    assert aid not in r.text
    # B's own session lists it.
    b = rater(server.url, "WORKERB")
    assert aid in b.get(f"{server.url}/worker/api/hits").text
    # Nor does the HIT frame or the task page show B's assignment to anyone else.
    for path in ("/worker/hit", "/worker/task"):
        q = {"hitId": hit, "assignmentId": aid, "workerId": "WORKERB"}
        for who in (requests, a):
            r = who.get(server.url + path, params=q, allow_redirects=False)
            assert r.status_code in (403, 404), (path, r.status_code)
        assert b.get(server.url + path, params=q).status_code == 200


def test_submit_and_return_need_the_owner(server):
    url = server.url
    hit = _hit(server.client())
    aid = _b_holds(server, hit)
    # No cookie, another site's Origin: refused, nothing stored.
    r = requests.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "forged"},
                      headers={"Origin": OTHER_SITE})
    assert r.status_code == 403 and r.text.count("\n") == 1
    r = requests.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "forged"})
    assert r.status_code == 403
    r = requests.post(f"{url}/worker/return", data={"assignmentId": aid}, allow_redirects=False)
    assert r.status_code == 403
    # Another rater's session: refused too (submit and return), with a valid CSRF token.
    a = rater(url, "WORKERA")
    assert a.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "forged"}).status_code == 403
    assert post_form(a, f"{url}/worker/return", {"assignmentId": aid}, url, allow_redirects=False).status_code == 403
    assert _assignments(server.db_url, hit) == {aid: ("WORKERB", "Accepted")}
    # B can still return it, and the owner's submit works.
    b = rater(url, "WORKERB")
    assert post_form(b, f"{url}/worker/return", {"assignmentId": aid}, url, allow_redirects=False).status_code == 302
    r = accept_hit(b, url, hit)
    assert r.status_code == 302
    aid2 = assignment_of(r)
    assert b.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid2, "answer": "mine"}).status_code == 200
    got = server.client().list_assignments_for_hit(HITId=hit)["Assignments"]
    assert [(x["WorkerId"], x["AssignmentStatus"]) for x in got] == [("WORKERB", "Submitted")]
    assert "mine" in got[0]["Answer"] and "forged" not in got[0]["Answer"]


def test_accept_and_qualification_need_a_session(server):
    url = server.url
    c = server.client()
    hit = _hit(c)
    tries = [requests.get(f"{url}/worker/accept", params={"hitId": hit, "workerId": "WORKERB"}, allow_redirects=False),
             requests.post(f"{url}/worker/accept", data={"hitId": hit, "workerId": "WORKERB"})]
    assert _assignments(server.db_url, hit) == {}
    assert [r.status_code for r in tries] == [303, 403]
    qt = c.create_qualification_type(Name="lab", Description="d", QualificationTypeStatus="Active")
    r = requests.post(f"{url}/worker/qualification", data={"typeId": qt["QualificationType"]["QualificationTypeId"]})
    assert r.status_code == 403
    assert _assignments(server.db_url, hit) == {}


# ---- finding 7: cross-site ------------------------------------------------------------------------------

def _link_session(url, worker):
    """A rater signed in by following a plain link (open sign-in)."""
    s = requests.Session()
    assert s.get(f"{url}/worker", params={"workerId": worker}).status_code == 200
    return s


def _who(s, url):
    r = s.get(f"{url}/worker")
    return r.text.split('id="worker">Worker ')[1].split("<")[0] if 'id="worker">Worker ' in r.text else None


def test_accept_is_not_a_get_and_needs_the_token(server):
    url = server.url
    hit = _hit(server.client())
    a = _link_session(url, "WORKERA")
    # A link on another site (a top-level GET, which a Lax cookie accompanies) takes nothing.
    r = a.get(f"{url}/worker/accept", params={"hitId": hit, "workerId": "WORKERA"},
              headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert _assignments(server.db_url, hit) == {}
    assert r.status_code in (302, 303, 200)
    # A POST without the token (a form on another page) is refused.
    r = a.post(f"{url}/worker/accept", data={"hitId": hit}, headers={"Origin": OTHER_SITE}, allow_redirects=False)
    assert r.status_code == 403 and r.text.count("\n") == 1
    r = a.post(f"{url}/worker/accept", data={"hitId": hit}, allow_redirects=False)
    assert r.status_code == 403
    assert _assignments(server.db_url, hit) == {}
    # With the token, from our own page, it works.
    sign_in(a, url, "WORKERA")
    r = accept_hit(a, url, hit)
    assert r.status_code == 302
    assert list(_assignments(server.db_url, hit).values()) == [("WORKERA", "Accepted")]


def test_login_cannot_be_forced_cross_site(server):
    url = server.url
    a = _link_session(url, "WORKERA")
    # A cross-origin login form (no token, foreign Origin) does not switch the session.
    r = a.post(f"{url}/worker/login", data={"workerId": "ATTACKER"},
               headers={"Origin": OTHER_SITE, "Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert r.status_code == 403
    assert _who(a, url) == "WORKERA"
    # A link to /worker?workerId=ATTACKER asks for confirmation instead of switching.
    r = a.get(f"{url}/worker", params={"workerId": "ATTACKER"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and 'id="switchWorker"' in r.text
    assert _who(a, url) == "WORKERA"
    # The confirmation must be the same-origin POST with the token, not a replay from another site.
    token = r.text.split('name="csrf-token" content="')[1].split('"')[0]
    r = a.post(f"{url}/worker/login", data={"workerId": "ATTACKER", "csrf_token": token},
               headers={"Origin": OTHER_SITE}, allow_redirects=False)
    assert r.status_code == 403 and _who(a, url) == "WORKERA"
    r = a.post(f"{url}/worker/login", data={"workerId": "ATTACKER", "csrf_token": token},
               headers={"Origin": url, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200 and _who(a, url) == "ATTACKER"


def test_frame_nosniff_and_cookie_headers(server):
    url = server.url
    hit = _hit(server.client())
    s = requests.Session()
    r = s.get(f"{url}/worker", params={"workerId": "WORKERA"}, allow_redirects=False)
    cookie = r.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    # An uploaded file too (its route sets a stricter policy of its own).
    w = rater(url, "WORKERF")
    aid = assignment_of(accept_hit(w, url, hit))
    assert w.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": "a"},
                  files={"rec": ("r.wav", b"RIFF", "audio/wav")}).status_code == 200
    file_url = server.client().get_file_upload_url(AssignmentId=aid, QuestionIdentifier="rec")["FileUploadURL"]
    for path in ("/worker", f"/worker/hit?hitId={hit}", f"/worker/task?hitId={hit}", "/worker/api/hits",
                 "/nothing-here", "/admin", file_url.removeprefix(url)):
        r = s.get(url + path)
        assert r.headers.get("X-Frame-Options") == "SAMEORIGIN", path
        assert "frame-ancestors 'self'" in r.headers.get("Content-Security-Policy", ""), path
        assert r.headers.get("X-Content-Type-Options") == "nosniff", path


# ---- signed links -----------------------------------------------------------------------------------------

def test_signed_links_required(sqlite_url, tmp_path):  # noqa: F811
    srv = start_inprocess(sqlite_url, require_signed_links=True)
    try:
        url = srv.url
        from eval_server.server import prepare
        from eval_server.config import ServerConfig
        secret = prepare(ServerConfig(db_url=srv.db_url))[0].secret_key
        for params in ({"workerId": "R1"}, {"workerId": "R1", "sig": "x" * 43},
                       {"workerId": "R1", "sig": link_signature(secret, "R2")},
                       {"PROLIFIC_PID": "R1"}):
            r = requests.get(f"{url}/worker", params=params)
            assert r.status_code == 403 and r.text.count("\n") == 1, params
        s = requests.Session()
        token = s.get(f"{url}/worker").text.split('name="csrf-token" content="')[1].split('"')[0]
        r = s.post(f"{url}/worker/login", data={"workerId": "R1", "csrf_token": token})
        assert r.status_code == 403
        # The links export-links writes sign their raters in.
        out = tmp_path / "links.csv"
        res = subprocess.run([sys.executable, "-m", "regnet.cli", "export-links", "--db", srv.db_url,
                              "--base-url", url, "--count", "3", "--out", str(out)],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
        assert res.returncode == 0, res.stderr
        rows = list(csv.DictReader(out.open()))
        assert len(rows) == 3 and len({r["worker_id"] for r in rows}) == 3
        workers = tmp_path / "workers.txt"
        workers.write_text("LAB01\nLAB02\n")
        res = subprocess.run([sys.executable, "-m", "regnet.cli", "export-links", "--db", srv.db_url,
                              "--base-url", url, "--workers", str(workers), "--out", str(tmp_path / "l2.csv")],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
        assert res.returncode == 0, res.stderr
        rows += list(csv.DictReader((tmp_path / "l2.csv").open()))
        assert [r["worker_id"] for r in rows[3:]] == ["LAB01", "LAB02"]
        for row in rows:
            s = requests.Session()
            r = s.get(row["link"])
            assert r.status_code == 200 and f"Worker {row['worker_id']}" in r.text
        bad = tmp_path / "bad.txt"
        bad.write_text("ok\nnot valid!\n")
        res = subprocess.run([sys.executable, "-m", "regnet.cli", "export-links", "--db", srv.db_url,
                              "--base-url", url, "--workers", str(bad), "--out", str(tmp_path / "l3.csv")],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
        assert res.returncode != 0 and "bad.txt" in res.stderr and "Traceback" not in res.stderr
    finally:
        srv.close()


def test_open_sign_in_and_prolific(server):
    url = server.url
    s = requests.Session()
    r = s.get(f"{url}/worker", params={"PROLIFIC_PID": "5f3a9c0e1b2d", "STUDY_ID": "s1"})
    assert r.status_code == 200 and "Worker 5f3a9c0e1b2d" in r.text
    s = requests.Session()
    token = s.get(f"{url}/worker").text.split('name="csrf-token" content="')[1].split('"')[0]
    r = s.post(f"{url}/worker/login", data={"workerId": "TYPED1", "csrf_token": token})
    assert r.status_code == 200 and "Worker TYPED1" in r.text
    assert requests.get(f"{url}/worker", params={"workerId": "bad id!"}).status_code == 400


def test_simulated_rater_signs_in_by_its_personal_link(sqlite_url):  # noqa: F811
    import numpy as np
    import pandas as pd

    from eval_server.config import ServerConfig
    from eval_server.identity import sign_in_link
    from eval_server.server import prepare
    from regnet.errors import UserError
    from mturk.simulate.client import SimulatedRater
    from mturk.simulate.decide import MetricTable, RaterParams
    srv = start_inprocess(sqlite_url, require_signed_links=True)
    try:
        secret = prepare(ServerConfig(db_url=srv.db_url))[0].secret_key
        hit = _hit(srv.client())

        def bot(worker, link=None):
            return SimulatedRater(srv.url, worker, {}, MetricTable(pd.DataFrame()), RaterParams(),
                                  np.random.default_rng(0), sign_in_url=link)
        with pytest.raises(UserError, match="signing in as SIM-0-0"):
            bot("SIM-0-0").sign_in()  # an unsigned link is refused on this server
        b = bot("SIM-0-0", sign_in_link(srv.url, secret, "SIM-0-0"))
        assert b.available_hits() == [hit]
        # A session signed in as someone else: the bot confirms the switch the way the page asks.
        b2 = bot("SIM-0-1", sign_in_link(srv.url, secret, "SIM-0-1"))
        b2.http = b.http
        b2.sign_in()
        assert "Worker SIM-0-1" in b.http.get(f"{srv.url}/worker").text
    finally:
        srv.close()


def test_external_question_origin_must_be_listed(sqlite_url):  # noqa: F811
    srv = start_inprocess(sqlite_url, submit_origins=("http://tasks.lab.example",))
    try:
        url = srv.url
        hit = _hit(srv.client(), n=1)
        w = rater(url, "WORKERX")
        aid = assignment_of(accept_hit(w, url, hit))
        form = {"assignmentId": aid, "answer": "x"}
        for origin in ("http://evil.example", "null", "http://tasks.lab.example.evil.example"):
            r = w.post(f"{url}/mturk/externalSubmit", data=form, headers={"Origin": origin})
            assert r.status_code == 403, origin
        r = w.post(f"{url}/mturk/externalSubmit", data=form,
                   headers={"Origin": "http://tasks.lab.example", "Sec-Fetch-Site": "same-site"})
        assert r.status_code == 200
    finally:
        srv.close()


def test_serve_says_how_raters_sign_in(sqlite_url):  # noqa: F811
    import time

    from tests.helpers.server import start_subprocess
    for flags, expect in (((), "sign-in: open"), (("--require-signed-links",), "export-links --db")):
        srv = start_subprocess(sqlite_url, *flags)
        try:
            deadline = time.time() + 20
            while time.time() < deadline and not any(expect in line for line in srv.output):
                time.sleep(0.1)
            assert any(expect in line for line in srv.output), srv.output
        finally:
            srv.proc.terminate()
            srv.proc.wait(timeout=10)
    res = subprocess.run([sys.executable, "-m", "regnet.cli", "serve", "--db", sqlite_url, "--port", "0",
                          "--submit-origin", "tasks.example.org"], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert res.returncode != 0 and "--submit-origin" in res.stderr and "Traceback" not in res.stderr

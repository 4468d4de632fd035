"""Two raters in two headless-Chromium contexts, and a page on another origin (issue findings 1 and 7).

B (signed in, and again with no cookies) cannot see, take, submit or return A's assignment; a page served
from a second server on another 127.0.0.1 port cannot make A accept, submit, return or switch rater.
That second server is same-site with ours (only the port differs), so A's SameSite=Lax cookie does go
with its requests: what stops them is the CSRF token and the origin check, which is the point.
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from tests.helpers.browser import task_frame
from tests.helpers.server import CHROMIUM_ARGS, html_question, start_inprocess
from sqlalchemy import select

from eval_server import xml_answers
from eval_server.db import Assignment, Database

TASK = html_question(
    '<form id="f" method="post"><input type="hidden" name="assignmentId" id="aid">'
    '<input name="answer" id="answer"><button id="go">Submit</button></form>'
    '<script>var q = new URLSearchParams(location.search);'
    'document.getElementById("aid").value = q.get("assignmentId");'
    'document.getElementById("f").action = (q.get("turkSubmitTo") || "") + "/mturk/externalSubmit";</script>',
    height=200)

# What B (or anyone) runs inside a page of our own origin: a same-origin POST with the token the page
# carries, with the context's cookies ("same-origin") or none ("omit"). Returns [status, first line].
SAME_ORIGIN_POST = """async ([path, fields, credentials]) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const body = new URLSearchParams(fields);
  if (meta) body.set("csrf_token", meta.content);
  const r = await fetch(path, {method: "POST", body, redirect: "manual", credentials});
  return [r.status, (await r.text()).split("\\n")[0]];
}"""

EVIL_PAGE = """<!DOCTYPE html><html><body><h1>Win a prize</h1>
<iframe name="sink" style="width:10px;height:10px"></iframe>
<iframe id="framed" name="framed" src="{url}/worker"></iframe>
<form id="accept" method="post" action="{url}/worker/accept" target="sink">
  <input name="hitId" value="{hit2}"><input name="ui" value="frame"></form>
<form id="submit" method="post" action="{url}/mturk/externalSubmit" target="sink">
  <input name="assignmentId" value="{aid}"><input name="answer" value="forged-form"></form>
<form id="ret" method="post" action="{url}/worker/return" target="sink">
  <input name="assignmentId" value="{aid}"></form>
<form id="login" method="post" action="{url}/worker/login" target="sink">
  <input name="workerId" value="ATTACKER"></form>
<a id="switchLink" href="{url}/worker?workerId=ATTACKER">sign in</a>
<a id="acceptLink" href="{url}/worker/accept?hitId={hit2}&ui=frame">take this HIT</a>
<script>
async function run(which) {{
  if (which === "fetch") {{
    // No-CORS simple requests: the browser sends them (with the same-site cookie); we cannot read the answer.
    const opts = (f) => ({{method: "POST", mode: "no-cors", credentials: "include", body: new URLSearchParams(f)}});
    await fetch("{url}/worker/accept", opts({{hitId: "{hit2}"}}));
    await fetch("{url}/mturk/externalSubmit", opts({{assignmentId: "{aid}", answer: "forged-fetch"}}));
    await fetch("{url}/worker/return", opts({{assignmentId: "{aid}"}}));
    await fetch("{url}/worker/login", opts({{workerId: "ATTACKER"}}));
    return "sent";
  }}
  document.getElementById(which).submit();
  return "submitted";
}}
</script></body></html>"""


class _Evil(http.server.BaseHTTPRequestHandler):
    page = ""

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = self.page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _rows(db_url):
    with Database(db_url).read() as s:
        return {a.id: (a.hit_id, a.worker_id, a.status, a.answer_fields)
                for a in s.scalars(select(Assignment))}


def _sign_in(ctx, url, worker):
    page = ctx.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{url}/worker")
    page.fill("#workerId", worker)
    page.click("#signIn")
    page.wait_for_selector("#worker")
    assert page.inner_text("#worker") == f"Worker {worker}"
    return page


def _get(page, url):
    """Status and text of a GET made as this page's browser would (cookies of its context)."""
    r = page.request.get(url, max_redirects=0)
    return r.status, r.text()


@pytest.mark.browser
def test_two_raters_and_another_origin_in_chromium(chromium_path, sqlite_url):  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    srv = start_inprocess(sqlite_url)
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    evil_url = f"http://127.0.0.1:{evil.server_address[1]}"
    url = srv.url
    try:
        c = srv.client()
        hit1, hit2 = (c.create_hit(Title=f"rate {i}", Description="d", Reward="0.05", AssignmentDurationInSeconds=600,
                                   LifetimeInSeconds=600, MaxAssignments=1, Question=TASK)["HIT"]["HITId"]
                      for i in (1, 2))
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                ctx_a, ctx_b, ctx_anon = browser.new_context(), browser.new_context(), browser.new_context()
                a = _sign_in(ctx_a, url, "RATERA")
                a.goto(f"{url}/worker/hit?hitId={hit1}")
                a.click("#acceptHit")
                a.wait_for_selector("#returnHit")
                task = task_frame(a)
                aid = task.evaluate("new URLSearchParams(location.search).get('assignmentId')")
                assert _rows(srv.db_url) == {aid: (hit1, "RATERA", "Accepted", None)}

                b = _sign_in(ctx_b, url, "RATERB")
                anon = ctx_anon.new_page()
                anon.goto(f"{url}/worker")  # the sign-in page: our origin, but no rater session
                for who, page, cred in (("B", b, "same-origin"), ("no session", anon, "same-origin"),
                                        ("B without cookies", b, "omit")):
                    # See: not in B's list, not by naming A, not A's frame or task page.
                    if cred != "omit":
                        status, text = _get(page, f"{url}/worker/api/hits")
                        assert aid not in text and status in (200, 403), who
                        status, text = _get(page, f"{url}/worker/api/hits?workerId=RATERA")
                        assert status == 403 and aid not in text, who
                        for path in (f"/worker/hit?hitId={hit1}&assignmentId={aid}",
                                     f"/worker/task?hitId={hit1}&assignmentId={aid}&workerId=RATERA"):
                            status, text = _get(page, url + path)
                            assert status == 403 and "answer" not in text, (who, path)
                        page.goto(f"{url}/worker")
                        assert aid not in page.content(), who
                    # Take, submit, return: refused from our own origin, with B's token or none.
                    for path, fields in (("/worker/accept", {"hitId": hit1}),
                                         ("/mturk/externalSubmit", {"assignmentId": aid, "answer": "by " + who}),
                                         ("/worker/return", {"assignmentId": aid})):
                        status, line = page.evaluate(SAME_ORIGIN_POST, [path, fields, cred])
                        assert status in (403, 409), (who, path, status, line)
                        assert line, (who, path)
                # B again with its cookies gone.
                ctx_b.clear_cookies()
                b.goto(f"{url}/worker")
                for path, fields in (("/mturk/externalSubmit", {"assignmentId": aid, "answer": "B no cookie"}),
                                     ("/worker/return", {"assignmentId": aid}),
                                     ("/worker/accept", {"hitId": hit2})):
                    status, _ = b.evaluate(SAME_ORIGIN_POST, [path, fields, "same-origin"])
                    assert status == 403, path
                assert _rows(srv.db_url) == {aid: (hit1, "RATERA", "Accepted", None)}

                # Another origin, with A's browser: forms (top-level into a hidden frame) and no-cors fetches.
                _Evil.page = EVIL_PAGE.format(url=url, hit2=hit2, aid=aid)
                e = ctx_a.new_page()
                e.set_default_timeout(20000)
                e.goto(evil_url)
                for which in ("accept", "submit", "ret", "login"):
                    with e.expect_response(lambda r: r.url.startswith(url) and r.request.method == "POST"):
                        e.evaluate(f"run({json.dumps(which)})")
                assert e.evaluate('run("fetch")') == "sent"
                assert _rows(srv.db_url) == {aid: (hit1, "RATERA", "Accepted", None)}
                a.goto(f"{url}/worker")
                assert a.inner_text("#worker") == "Worker RATERA"
                # Framing our pages from there is refused by the browser (frame-ancestors 'self').
                framed = e.frame(name="framed")
                assert framed is None or 'id="worker"' not in (framed.content() if framed.url.startswith(url)
                                                                else "")
                # A cross-site link to sign in as someone else asks A first; an accept link takes nothing.
                e.click("#switchLink")
                e.wait_for_url(f"{url}/worker?**")
                assert e.locator("#switchWorker").count() == 1
                e.go_back()
                e.click("#acceptLink")
                e.wait_for_url(f"{url}/worker/hit?**")
                assert _rows(srv.db_url) == {aid: (hit1, "RATERA", "Accepted", None)}
                a.goto(f"{url}/worker")
                assert a.inner_text("#worker") == "Worker RATERA"

                # A's own page still works: the answer is A's, once.
                a.goto(f"{url}/worker")
                a.click(f"tr[data-hit-id='{hit1}'] a.continue")
                task = a.frame_locator("#task")
                task.locator("#answer").fill("mine")
                task.locator("#go").click()
                a.wait_for_url("**/worker/done**")
            finally:
                browser.close()
        [got] = c.list_assignments_for_hit(HITId=hit1)["Assignments"]
        assert got["WorkerId"] == "RATERA" and got["AssignmentId"] == aid
        assert xml_answers.parse(got["Answer"]) == {"answer": "mine"}
        assert c.list_assignments_for_hit(HITId=hit2)["NumResults"] == 0
    finally:
        evil.shutdown()
        srv.close()

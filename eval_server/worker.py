"""The worker side: sign-in (also from recruitment links), the HIT list, preview, accept, the HIT page in
an iframe, submit, return, qualification tests, notifications, and uploaded-file download.

Who the rater is comes from the session set at sign-in (`eval_server.identity`); state changes are
POSTs carrying the CSRF token (Flask-WTF, eval_server/app.py), except the HIT page's own submit, which
needs the session to own the assignment and the request to come from this origin."""

from __future__ import annotations

import hmac
import json
import time
from types import SimpleNamespace
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, session, url_for
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from eval_server import next_task, qual_tests, question_cache, questions, recruit, submit_limits, xml_answers
from eval_server.api.assignment_ops import upload_signature
from eval_server.api.qualification_ops import grant
from eval_server.assignments import (PREVIEW_ID, WorkerError, accept, counts_for, expire_stale, requirements,
                                     submit, unmet_requirements)
from eval_server.db import Assignment, Notification, QualificationRequest, QualificationType, Upload
from eval_server.identity import (WORKER_RE, cross_origin, current_worker, link_ok, require_same_origin,
                                  session_worker, set_worker)
from eval_server.ids import new_id, now
from eval_server.state import state

bp = Blueprint("worker", __name__, template_folder="templates")
# Recruitment platforms and the query parameter that carries their participant id.
RECRUIT_PARAMS = {"PROLIFIC_PID": "prolific", "workerId": "direct", "participant": "direct"}


def _text(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _worker_arg(value: str | None, *, required: bool = True) -> str | None:
    if not value:
        if required:
            abort(_text(400, "workerId is required"))
        return None
    if not WORKER_RE.match(value):
        abort(_text(400, "workerId must be 1-64 characters of letters, digits, _ . @ -"))
    return value


def _session_worker() -> str | None:
    return session_worker()


def _link_sign_in(worker_id: str, source: str) -> Response | str:
    """Sign in from a link (`/worker?workerId=ID[&sig=..]`, a recruitment platform's PROLIFIC_PID...)."""
    st = state()
    sig = request.args.get("sig")
    if st.config.require_signed_links and not link_ok(st.config.secret_key, worker_id, sig):
        return _text(403, "this study admits raters only by their personal link, and this link's signature "
                          "is missing or wrong; ask the study team for your link")
    current = session_worker()
    if current and current != worker_id:
        # Someone else is signed in in this browser: a link (perhaps on another site) must not switch
        # who they are; they confirm with a same-origin POST carrying the CSRF token.
        return render_template("switch.html", current=current, worker_id=worker_id, sig=sig or "",
                               source=source)
    if current != worker_id:
        set_worker(worker_id, source)
    session["recruit_info"] = {k: v for k, v in request.args.items() if k in ("STUDY_ID", "SESSION_ID")}
    return redirect(url_for("worker.home"))


def _visible_hits(s, worker_id: str, at: float) -> list[dict]:
    """The first page of what the worker may work on (their open assignments first, then HITs they can
    take); bounded, whatever the number of HITs on the server (eval_server/next_task.py)."""
    return next_task.visible_hits(s, worker_id, at)[0]


def _page_links(endpoint: str, page: next_task.Page, more: bool) -> tuple[str | None, str | None]:
    """URLs of the previous and next page of a HIT list, or None."""
    args = {"hitTypeId": page.hit_type_id} if page.hit_type_id else {}
    if page.limit != next_task.DEFAULT_LIMIT:
        args["limit"] = page.limit
    prev_url = url_for(endpoint, **args, offset=max(0, page.offset - page.limit)) if page.offset else None
    next_url = url_for(endpoint, **args, offset=page.offset + page.limit) if more else None
    return prev_url, next_url


@bp.get("/worker")
def home() -> Response | str:
    for param, source in RECRUIT_PARAMS.items():
        if request.args.get(param):
            return _link_sign_in(_worker_arg(request.args[param]), source)
    worker_id = _session_worker()
    if not worker_id:
        return render_template("login.html", signed_only=state().config.require_signed_links)
    st = state()
    at = now()
    try:
        page = next_task.page_args(request.args)
    except WorkerError as e:
        return _text(e.status, e.message)
    with st.db.read() as s:
        # A page of HITs (of one group with ?hitTypeId=) and one row per group, never every HIT.
        hits, more = next_task.visible_hits(s, worker_id, at, page)
        if session.get("recruit") == "prolific" and not page.hit_type_id \
                and _recruit_outcome(s, worker_id, hits) is not None:
            # Done (or screened out, or timed out): the platform's link back, not an empty list.
            return redirect(url_for("worker.done"))
        groups = next_task.groups_for(s, worker_id, at)
        notes = list(s.scalars(select(Notification).where(Notification.worker_id == worker_id)
                              .order_by(Notification.created_at.desc()).limit(20)))
        quals = list(s.scalars(select(QualificationType).where(
            QualificationType.deleted.is_(False), QualificationType.status == "Active",
            QualificationType.test.is_not(None))))
    prev_url, next_url = _page_links("worker.home", page, more)
    return render_template("hits.html", worker_id=worker_id, hits=hits, groups=groups, page=page,
                           prev_url=prev_url, next_url=next_url, notes=notes, quals=quals)


@bp.post("/worker/login")
def login() -> Response:
    """The sign-in form, or the confirmation of a link sign-in while someone else is signed in
    (Flask-WTF has checked the CSRF token before this runs)."""
    require_same_origin("sign-in")
    worker_id = _worker_arg(request.form.get("workerId"))
    st = state()
    if st.config.require_signed_links and not link_ok(st.config.secret_key, worker_id, request.form.get("sig")):
        return _text(403, "this study admits raters only by their personal link; open the link you were given")
    source = request.form.get("source")
    set_worker(worker_id, source if source in RECRUIT_PARAMS.values() else "direct")
    return redirect(url_for("worker.home"))


@bp.post("/worker/logout")
def logout() -> Response:
    require_same_origin("sign-out")
    session.clear()
    return redirect(url_for("worker.home"))


@bp.get("/worker/api/hits")
def api_hits() -> Response:
    """A page of the rater's HITs as JSON {"hits": [...]}: ?hitTypeId= (one group), ?limit= (1-100,
    default 25), ?offset=; the next page's URL is in the Link header (rel="next"), and
    /worker/api/groups has the counts per group."""
    worker_id = _own_worker()
    try:
        page = next_task.page_args(request.args)
    except WorkerError as e:
        return _text(e.status, e.message)
    with state().db.read() as s:
        hits, more = next_task.visible_hits(s, worker_id, now(), page)
    resp = Response(json.dumps({"hits": hits}), content_type="application/json")
    _, next_url = _page_links("worker.api_hits", page, more)
    if next_url:
        resp.headers["Link"] = f'<{next_url}>; rel="next"'
    return resp


def _own_worker() -> str:
    """The session's rater; a workerId parameter naming anyone else is refused, never believed."""
    worker_id = current_worker()
    asked = request.values.get("workerId")
    if asked and asked != worker_id:
        abort(_text(403, f"you are signed in as {worker_id}, not {asked}"))
    return worker_id


def _task_query(a: Assignment | None, hit_id: str, worker_id: str | None) -> str:
    q = {"assignmentId": a.id if a else PREVIEW_ID, "hitId": hit_id}
    if worker_id:
        q["workerId"] = worker_id
    q["turkSubmitTo"] = request.host_url.rstrip("/")
    return urlencode(q)


@bp.get("/worker/accept")
def accept_link() -> Response:
    """An old-style accept link takes nothing (a GET must not change state): it shows the HIT's
    preview, whose Accept button is the POST form."""
    hit_id = request.args.get("hitId") or abort(_text(400, "hitId is required"))
    return redirect(url_for("worker.frame", hitId=hit_id), code=303)


@bp.post("/worker/accept")
def accept_route() -> Response:
    require_same_origin("accepting a HIT")
    hit_id = request.form.get("hitId") or abort(_text(400, "hitId is required"))
    worker_id = _own_worker()
    try:
        a = accept(state().db, hit_id, worker_id, now())
    except WorkerError as e:
        return _text(e.status, e.message)
    if request.form.get("ui") == "frame":
        return redirect("/worker/hit?" + _task_query(a, hit_id, worker_id))
    return redirect("/worker/task?" + _task_query(a, hit_id, worker_id))


@bp.get("/worker/hit")
def frame() -> Response | str:
    """What the worker sees: HIT details, accept/return/submit controls, and the HIT page in an iframe."""
    hit_id = request.args.get("hitId") or abort(_text(400, "hitId is required"))
    worker_id = _session_worker()
    assignment_id = request.args.get("assignmentId") or PREVIEW_ID
    st = state()
    at = now()
    with st.db.read() as s:
        # One statement for the HIT, its type and the assignment (eval_server/next_task.py page_row).
        row = next_task.page_row(s.connection(), hit_id, None if assignment_id == PREVIEW_ID else assignment_id)
        if row is None or row.disposed:
            return _text(404, f"HIT {hit_id} does not exist")
        a = None
        if assignment_id != PREVIEW_ID:
            if row.a_id is None or row.a_hit_id != hit_id:
                return _text(404, f"assignment {assignment_id} is not an assignment of HIT {hit_id}")
            if row.a_worker_id != worker_id:
                return _text(403, f"assignment {assignment_id} is not yours; sign in as its rater")
            if row.a_status != "Accepted" or row.a_deadline <= at:
                return _text(410, f"assignment {assignment_id} is no longer open")
            a = SimpleNamespace(id=row.a_id, deadline=row.a_deadline)
        q = question_cache.parse(row.question)
        # Only the preview shows how many are left (hit.html).
        available = None if a else counts_for(s, [hit_id], at)[hit_id].available(row.max_assignments)
    hit, ht = SimpleNamespace(id=row.id), SimpleNamespace(title=row.title, reward=row.reward)
    if q.kind == "external":
        params = {"assignmentId": a.id if a else PREVIEW_ID, "hitId": hit_id,
                  "turkSubmitTo": request.host_url.rstrip("/")}
        if worker_id and a:
            params["workerId"] = worker_id
        src = q.url + ("&" if "?" in q.url else "?") + urlencode(params)
    else:
        src = "/worker/task?" + _task_query(a, hit_id, worker_id if a else None)
    return render_template("hit.html", hit=hit, ht=ht, a=a, worker_id=worker_id, src=src, can_accept=bool(worker_id),
                           height=q.frame_height or 800, available=available,
                           deadline_in=int(a.deadline - at) if a else None)


@bp.get("/worker/task")
def task() -> Response:
    """The HIT's own page (HTMLQuestion content, a rendered QuestionForm, or a redirect to the external URL)."""
    hit_id = request.args.get("hitId") or abort(_text(400, "hitId is required"))
    assignment_id = request.args.get("assignmentId") or PREVIEW_ID
    # workerId stays in the URL because MTurk pages read it; who may see the page is the session's say.
    worker_id = _session_worker()
    st = state()
    with st.db.read() as s:
        row = next_task.page_row(s.connection(), hit_id, None if assignment_id == PREVIEW_ID else assignment_id)
        if row is None or row.disposed:
            return _text(404, f"HIT {hit_id} does not exist")
        if assignment_id != PREVIEW_ID:
            if row.a_id is None or row.a_hit_id != hit_id:
                return _text(404, f"assignment {assignment_id} is not an assignment of HIT {hit_id}")
            if row.a_worker_id != worker_id:
                return _text(403, f"assignment {assignment_id} is not yours; sign in as its rater")
        elif worker_id:
            failed = unmet_requirements(s, worker_id, requirements(row.qual_requirements), "Preview")
            if failed:
                return _text(403, "you may not preview this HIT without: " + ", ".join(failed))
        q = question_cache.parse(row.question)
    if q.kind == "external":
        return redirect(q.url + ("&" if "?" in q.url else "?") + request.query_string.decode("latin-1"))
    if q.kind == "form":
        return Response(questions.render_form(q, assignment_id, request.host_url.rstrip("/")),
                        content_type="text/html; charset=utf-8")
    return Response(q.html, content_type="text/html; charset=utf-8")


def _form_fields() -> list[tuple[str, str]]:
    # csrf_token: a page of ours may send it along; it is not an answer.
    return [(k, v) for k, v in request.form.items(multi=True) if k not in ("assignmentId", "csrf_token")]


@bp.post("/mturk/externalSubmit")
def external_submit() -> Response:
    st = state()
    if cross_origin() and request.headers.get("Origin") not in st.config.submit_origins:
        return _text(403, "answers must be posted from the HIT page this server gave you, not from another site")
    worker_id = current_worker()
    refused = submit_limits.apply(request, st.config)
    if refused:
        return _text(*refused)
    assignment_id = request.form.get("assignmentId", "")
    if not assignment_id or assignment_id == PREVIEW_ID:
        return _text(400, "assignmentId is missing: accept the HIT before submitting")
    fields = _form_fields()
    files = [(name, f) for name, f in request.files.items(multi=True) if f.filename]
    for name, f in files:
        fields.append((name, f.filename))
    refused = submit_limits.check_fields(fields, files, st.config)
    if refused:
        return _text(*refused)
    uploads = [(name, submit_limits.stored_filename(f.filename), submit_limits.stored_type(f.mimetype), f.read())
               for name, f in files]
    try:
        a = submit(st.db, assignment_id, fields, now(), worker_id=worker_id, uploads=uploads)
    except WorkerError as e:
        return _text(e.status, e.message)
    done = url_for("worker.done", assignmentId=a.id, hitId=a.hit_id)
    # The form usually posts from inside the worker page's iframe: the page moves the whole window on.
    # Rendered without Flask's context processors (request, session, the CSRF token), which it does not
    # use: this runs on every submit.
    page = current_app.jinja_env.get_template("submitted.html").render(done=done, assignment_id=a.id)
    return Response(page, content_type="text/html; charset=utf-8")


def _recruit_outcome(s, worker_id: str, more: list[dict]) -> str | None:
    cfg = state().config
    return recruit.outcome(s, worker_id, now(), cfg.hits_per_recruit, recruit.takeable(s, worker_id, more))


@bp.get("/worker/done")
def done() -> str:
    worker_id = _session_worker()
    st = state()
    more, result = [], None
    if worker_id:
        with st.db.read() as s:
            more = _visible_hits(s, worker_id, now())
            result = _recruit_outcome(s, worker_id, more)
    if result is not None:
        more = []  # finished: a recruited rater who did their share is not offered more
    cfg = st.config
    urls = {"completed": cfg.completion_url, "screened_out": cfg.screenout_url or cfg.completion_url,
            "timed_out": cfg.timeout_url}
    return render_template("done.html", more=more, finished=result is not None, outcome=result or "",
                           completion_code=cfg.completion_code if result == "completed" else "",
                           completion_url=urls.get(result or "", ""),
                           recruited=session.get("recruit") == "prolific")


@bp.post("/worker/return")
def return_hit() -> Response:
    """Give an accepted assignment back (MTurk's Return): it goes back to the pool."""
    require_same_origin("returning a HIT")
    worker_id = current_worker()
    assignment_id = request.form.get("assignmentId", "")
    with state().db.write() as s:
        a = s.get(Assignment, assignment_id, with_for_update=True)
        if a is None:
            return _text(404, f"assignment {assignment_id} does not exist")
        if a.worker_id != worker_id:
            return _text(403, f"assignment {assignment_id} is not yours")
        if a.status != "Accepted":
            return _text(409, f"assignment {assignment_id} is no longer open")
        a.status, a.slot, a.active_worker = "Abandoned", None, None
        expire_stale(s, a.hit_id, now())
    return redirect(url_for("worker.home"))


@bp.route("/worker/qualification", methods=["GET", "POST"])
def qualification() -> Response | str:
    """A qualification test (scored at once when it has an AnswerKey) or a plain request."""
    type_id = request.values.get("typeId", "")
    worker_id = current_worker()
    if request.method == "POST":
        require_same_origin("a qualification answer")
    st = state()
    at = now()
    with st.db.write() as s:
        qt = s.get(QualificationType, type_id)
        if qt is None or qt.deleted or qt.status != "Active":
            return _text(404, f"qualification type {type_id} does not exist or is inactive")
        if request.method == "GET":
            if qt.test:
                page = questions.render_form(questions.parse(qt.test), "QUALIFICATION_TEST", "",
                                             action_path="/worker/qualification",
                                             extra_hidden={"typeId": qt.id, "csrf_token": generate_csrf()})
                return Response(page, content_type="text/html; charset=utf-8")
            return render_template("request_qual.html", qt=qt)
        last = s.scalars(select(QualificationRequest).where(QualificationRequest.type_id == qt.id,
                                                           QualificationRequest.worker_id == worker_id)
                         .order_by(QualificationRequest.submit_time.desc())).first()
        if last is not None and (qt.retry_delay is None or at - last.submit_time < qt.retry_delay) and qt.test:
            return _text(409, "you have already taken this test" + (
                "" if qt.retry_delay is None else f"; you may retry after {qt.retry_delay} s"))
        fields = [(k, v) for k, v in request.form.items(multi=True)
                  if k not in ("assignmentId", "typeId", "csrf_token")]
        q = questions.parse(qt.test) if qt.test else None
        answer = xml_answers.build(fields, q.selection_ids) if q else None
        req = QualificationRequest(id=new_id(), type_id=qt.id, worker_id=worker_id, answer=answer, submit_time=at)
        s.add(req)
        if qt.auto_granted:
            grant(s, qt.id, worker_id, qt.auto_granted_value, at)
            req.status = "Accepted"
        elif qt.answer_key and answer is not None:
            grant(s, qt.id, worker_id, qual_tests.score(xml_answers.parse(answer), qt.answer_key), at)
            req.status = "Accepted"
    return redirect(url_for("worker.home"))


@bp.get("/files/<assignment_id>/<question_id>")
def uploaded_file(assignment_id: str, question_id: str) -> Response:
    st = state()
    try:
        expires = int(request.args.get("expires", "0"))
    except ValueError:
        expires = 0
    want = upload_signature(st.config.secret_key, assignment_id, question_id, expires)
    if expires < time.time() or not hmac.compare_digest(want, request.args.get("signature", "")):
        return _text(403, "this file URL has expired or is not valid; ask GetFileUploadURL for a new one")
    with st.db.read() as s:
        up = s.get(Upload, (assignment_id, question_id))
        if up is None:
            return _text(404, "no such file")
        # Always a download, never a page of this origin: a safe type, nosniff, a quoted safe name.
        return Response(up.data, content_type=submit_limits.served_type(up.content_type),
                        headers={"Content-Disposition": submit_limits.content_disposition(up.filename),
                                 "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})

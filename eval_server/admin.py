"""The admin page (progress per study, per worker) and the batch-result CSV, behind the admin token."""

from __future__ import annotations

import hmac
from collections import defaultdict

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from sqlalchemy import select

from eval_server.assignments import counts_for
from eval_server.db import HIT, Assignment, HITType
from eval_server.export import batch_results_frame
from eval_server.ids import now
from eval_server.state import state
from regnet.tables import to_safe_csv

bp = Blueprint("admin", __name__, template_folder="templates")


def _authorised() -> bool:
    want = state().config.admin_token
    given = (request.headers.get("X-Admin-Token") or request.args.get("token")
             or request.headers.get("Authorization", "").removeprefix("Bearer ").strip())
    if given and hmac.compare_digest(given.encode(), want.encode()):
        session["admin"] = True
        return True
    return bool(session.get("admin"))


def _refuse() -> Response:
    return Response("401 Unauthorized: give the admin token (?token=, X-Admin-Token or Bearer header)\n",
                    status=401, content_type="text/plain; charset=utf-8")


@bp.get("/admin")
def overview() -> Response | str:
    if not _authorised():
        return _refuse()
    if request.args.get("token"):
        return redirect(url_for("admin.overview"))  # keep the token out of the address bar and history
    at = now()
    with state().db.read() as s:
        hits = list(s.scalars(select(HIT).where(HIT.disposed.is_(False))))
        types = {t.id: t for t in s.scalars(select(HITType))}
        counts = counts_for(s, [h.id for h in hits], at)
        per_worker = defaultdict(lambda: defaultdict(int))
        for a in s.scalars(select(Assignment).where(Assignment.status.in_(("Submitted", "Approved", "Rejected")))):
            per_worker[a.worker_id][a.status] += 1
    studies: dict[str, dict] = {}
    # A study is published as one HIT type (the publisher's annotations are per HIT), so group by type.
    for h in hits:
        ht = types[h.hit_type_id]
        st = studies.setdefault(ht.id, {"name": ht.title, "hit_type_id": ht.id, "hits": 0, "max": 0, "pending": 0,
                                        "submitted": 0, "completed": 0})
        c = counts[h.id]
        st["hits"] += 1
        st["max"] += h.max_assignments
        st["pending"] += c.pending
        st["submitted"] += c.submitted
        st["completed"] += c.completed
    return render_template("admin.html", studies=sorted(studies.values(), key=lambda x: x["name"]),
                           workers=sorted(per_worker.items()))


@bp.get("/admin/export.csv")
def export_csv() -> Response:
    if not _authorised():
        return _refuse()
    annotation = request.args.get("annotation")
    hit_type_id = request.args.get("hitTypeId") or None
    df = batch_results_frame(state().db, annotation=annotation, hit_type_id=hit_type_id)
    name = "batch_results" + "".join(f"_{x}" for x in (hit_type_id, annotation) if x) + ".csv"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return Response(to_safe_csv(df), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})

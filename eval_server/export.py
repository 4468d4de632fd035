"""Results in MTurk's batch-result CSV layout, read straight from the server's database.

`batch_results_frame` is the interface for other parts of regnet-bench (the report reads the database
through it); the admin page's CSV download is the same table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import pandas as pd
from sqlalchemy import func, select

from eval_server.db import HIT, Assignment, Database, HITType

FIXED_COLUMNS = [
    "HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime", "MaxAssignments",
    "RequesterAnnotation", "AssignmentDurationInSeconds", "AutoApprovalDelayInSeconds", "Expiration",
    "NumberOfSimilarHITs", "LifetimeInSeconds", "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime",
    "SubmitTime", "AutoApprovalTime", "ApprovalTime", "RejectionTime", "RequesterFeedback", "WorkTimeInSeconds",
    "LifetimeApprovalRate", "Last30DaysApprovalRate", "Last7DaysApprovalRate",
]
TRAILING_COLUMNS = ["Approve", "Reject"]


def mturk_time(t: float | None) -> str:
    """MTurk's batch-file time format, e.g. 'Wed Oct 01 12:00:00 UTC 2026' (always UTC here)."""
    return "" if t is None else time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(t))


def _rate(rows: list[Assignment], since: float | None) -> str:
    decided = [a for a in rows if a.status in ("Approved", "Rejected")
               and (since is None or (a.approval_time or a.rejection_time or 0) >= since)]
    ok = sum(a.status == "Approved" for a in decided)
    pct = 100 * ok // len(decided) if decided else 0
    return f"{pct}% ({ok}/{len(decided)})"


def batch_results_frame(db_url: str | Database, *, hit_type_id: str | None = None, annotation: str | None = None,
                        annotation_prefix: str | None = None, hit_ids: Iterable[str] | None = None,
                        statuses: Iterable[str] = ("Submitted", "Approved", "Rejected")) -> pd.DataFrame:
    """One row per assignment with MTurk's batch-result columns (`HITId ... WorkTimeInSeconds`, the
    approval rates, `Input.<layout parameter>`, `Answer.<form field>`, `Approve`, `Reject`).

    Times are strings in MTurk's batch format (UTC); `WorkTimeInSeconds` is an integer. Filters (all
    optional, combined): a HIT type, a RequesterAnnotation or its prefix (our publisher annotates each
    HIT with `rb-<study uid>-<hit>`, so `annotation_prefix="rb-<uid>-"` selects a study), HIT ids.
    """
    db = db_url if isinstance(db_url, Database) else Database(db_url)
    at = time.time()
    with db.read() as s:
        stmt = select(Assignment, HIT, HITType).join(HIT, HIT.id == Assignment.hit_id) \
            .join(HITType, HITType.id == HIT.hit_type_id).where(Assignment.status.in_(list(statuses)))
        if hit_type_id:
            stmt = stmt.where(HIT.hit_type_id == hit_type_id)
        if annotation is not None:
            stmt = stmt.where(HIT.annotation == annotation)
        if annotation_prefix:
            stmt = stmt.where(HIT.annotation.startswith(annotation_prefix, autoescape=True))
        if hit_ids is not None:
            stmt = stmt.where(HIT.id.in_(list(hit_ids)))
        rows = list(s.execute(stmt.order_by(HIT.created_at, HIT.id, Assignment.submit_time, Assignment.id)))
        workers = {a.worker_id for a, _, _ in rows}
        history: dict[str, list[Assignment]] = {w: [] for w in workers}
        if workers:
            for a in s.scalars(select(Assignment).where(Assignment.worker_id.in_(workers))):
                history[a.worker_id].append(a)
        type_ids = {ht.id for _, _, ht in rows}
        similar = dict(s.execute(select(HIT.hit_type_id, func.count()).where(HIT.hit_type_id.in_(type_ids))
                                 .group_by(HIT.hit_type_id)).all()) if type_ids else {}
    rates = {w: (_rate(h, None), _rate(h, at - 30 * 86400), _rate(h, at - 7 * 86400)) for w, h in history.items()}
    records = []
    input_cols: dict[str, None] = {}
    answer_cols: dict[str, None] = {}
    for a, hit, ht in rows:
        rec = {
            "HITId": hit.id, "HITTypeId": ht.id, "Title": ht.title, "Description": ht.description,
            "Keywords": ht.keywords, "Reward": f"${ht.reward}", "CreationTime": mturk_time(hit.created_at),
            "MaxAssignments": hit.max_assignments, "RequesterAnnotation": hit.annotation,
            "AssignmentDurationInSeconds": ht.assignment_duration,
            "AutoApprovalDelayInSeconds": ht.auto_approval_delay, "Expiration": mturk_time(hit.expiration),
            "NumberOfSimilarHITs": similar[ht.id], "LifetimeInSeconds": hit.lifetime, "AssignmentId": a.id,
            "WorkerId": a.worker_id, "AssignmentStatus": a.status, "AcceptTime": mturk_time(a.accept_time),
            "SubmitTime": mturk_time(a.submit_time), "AutoApprovalTime": mturk_time(a.auto_approval_time),
            "ApprovalTime": mturk_time(a.approval_time), "RejectionTime": mturk_time(a.rejection_time),
            "RequesterFeedback": a.feedback or "",
            "WorkTimeInSeconds": int(round((a.submit_time or a.accept_time) - a.accept_time)),
            "LifetimeApprovalRate": rates[a.worker_id][0],
            "Last30DaysApprovalRate": rates[a.worker_id][1],
            "Last7DaysApprovalRate": rates[a.worker_id][2],
        }
        for name, value in (json.loads(hit.layout_params) if hit.layout_params else {}).items():
            rec[f"Input.{name}"] = value
            input_cols[f"Input.{name}"] = None
        grouped: dict[str, list[str]] = {}
        for name, value in json.loads(a.answer_fields or "[]"):
            grouped.setdefault(name, []).append(value)
        for name, values in grouped.items():
            rec[f"Answer.{name}"] = "|".join(values)
            answer_cols[f"Answer.{name}"] = None
        rec["Approve"] = ""
        rec["Reject"] = ""
        records.append(rec)
    columns = FIXED_COLUMNS + list(input_cols) + list(answer_cols) + TRAILING_COLUMNS
    return pd.DataFrame.from_records(records, columns=columns)

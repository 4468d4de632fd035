"""MTurk batch-result CSVs (the requester web UI's "Download CSV"; Turkle exports use the same
layout): one row per assignment, assignment columns (``HITId``, ``AssignmentId``, ``WorkerId``,
``AssignmentStatus``, ``AcceptTime``, ``SubmitTime``, ``WorkTimeInSeconds``...), the HIT's inputs
as ``Input.*`` and the form fields as ``Answer.*``; ``Approve``/``Reject`` are what the web UI reads
back when the file is uploaded for review.

Trial metadata (kind, systems...) comes from the study folder when given, else from the
``Input.trials`` column (JSON) that `export-batch` writes, so an exported file stands alone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from mturk.answers import AssignmentInfo, vote_rows
from mturk.qc import QCRules, assess
from mturk.study import Trial, load_study
from mturk.votes import VOTE_COLUMNS, blank_answer_rows
from regnet.errors import UserError
from regnet.tables import as_text, read_safe_csv, write_safe_csv

log = logging.getLogger(__name__)

ASSIGNMENT_COLUMNS = ["HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime",
                      "MaxAssignments", "RequesterAnnotation", "AssignmentDurationInSeconds",
                      "AutoApprovalDelayInSeconds", "LifetimeInSeconds", "AssignmentId", "WorkerId",
                      "AssignmentStatus", "AcceptTime", "SubmitTime", "WorkTimeInSeconds"]
TRIAL_META = ("kind", "question", "role", "check", "video_id", "class_name", "left_system", "right_system", "truth")


def votes_from_batch_csv(path: str | Path, study_dir: str | Path | None = None) -> pd.DataFrame:
    """A batch-result CSV (MTurk or Turkle) -> votes table (`mturk.votes.VOTE_COLUMNS` first)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: batch CSV not found")
    return votes_from_batch_frame(read_safe_csv(path), str(path), study_dir)


def votes_from_batch_frame(df: pd.DataFrame, source: str, study_dir: str | Path | None = None) -> pd.DataFrame:
    """A batch-result table (the file's cells as text, or the server's `batch_results_frame`) ->
    votes table; ``source`` names it in errors and, without a study, in the study column."""
    df = as_text(df)
    missing = [c for c in ("AssignmentId", "WorkerId") if c not in df.columns]
    if missing:
        raise UserError(f"{source}: missing column(s) {', '.join(missing)}; not a batch-result CSV")
    answer_cols = [c for c in df.columns if c.startswith("Answer.")]
    if not answer_cols:
        raise UserError(f"{source}: no Answer.* columns")
    study = load_study(study_dir) if study_dir is not None else None
    static = study.trial_index() if study else None
    rows: list[dict] = []
    for i, r in enumerate(df.to_dict("records")):
        trials = static if static is not None else _trials_from_input(r, source, i)
        submit = pd.to_datetime(r.get("SubmitTime", ""), errors="coerce", utc=True, format="mixed")
        work = pd.to_numeric(r.get("WorkTimeInSeconds", ""), errors="coerce")
        if pd.isna(work):
            accept = pd.to_datetime(r.get("AcceptTime", ""), errors="coerce", utc=True, format="mixed")
            work = (submit - accept).total_seconds() if not (pd.isna(submit) or pd.isna(accept)) else float("nan")
        info = AssignmentInfo(
            study=study.name if study else (r.get("Input.study") or Path(source).stem),
            hit_id=r.get("HITId", ""), assignment_id=r["AssignmentId"], worker_id=r["WorkerId"],
            submit_time=submit.isoformat() if not pd.isna(submit) else r.get("SubmitTime", ""),
            work_time_s=float(work), status=r.get("AssignmentStatus", ""))
        answers = {c[len("Answer."):]: r[c] for c in answer_cols}
        got = vote_rows(info, answers, trials)
        # A blank Answer.<trial> is a trial left unanswered: kept (answer empty) for QC to count.
        rows.extend(got + blank_answer_rows(info, answers, trials, got))
    out = pd.DataFrame(rows)
    if out.empty:
        log.warning("%s: no answers to known trials", source)
        return pd.DataFrame(columns=VOTE_COLUMNS)
    return out[VOTE_COLUMNS + [c for c in out.columns if c not in VOTE_COLUMNS]]


def _trials_from_input(r: dict, path: str, i: int) -> dict[str, Trial]:
    raw = r.get("Input.trials", "")
    if not raw:
        raise UserError(f"{path}: row {i + 2} has no Input.trials column; pass the study folder (--study DIR)")
    try:
        meta = json.loads(raw)
        return {tid: Trial(trial_id=tid, left_clip="", left_media="", **{k: m.get(k, "") for k in TRIAL_META})
                for tid, m in meta.items()}
    except (json.JSONDecodeError, AttributeError, TypeError) as e:
        raise UserError(f"{path}: row {i + 2}: Input.trials is not the JSON export-batch writes ({e})") from None


def export_batch_csv(votes: pd.DataFrame, out: str | Path, study_dir: str | Path | None = None,
                     rules: QCRules | None = None) -> Path:
    """Votes table -> batch-result CSV, one row per assignment, with Approve ("x") / Reject (the
    feedback) filled from QC for assignments still awaiting review."""
    out = Path(out)
    study = load_study(study_dir) if study_dir is not None else None
    index = study.trial_index() if study else {}
    verdicts = {v.assignment_id: v for v in assess(votes, rules or QCRules.for_study(study_dir), study)}
    rows = []
    for aid, g in votes.groupby("assignment_id", sort=True):
        f = g.iloc[0]
        status = _s(f.get("assignment_status")) or "Submitted"
        submit = pd.to_datetime(f["submit_time"], errors="coerce", utc=True)
        work = pd.to_numeric(f["work_time_s"], errors="coerce")
        accept = submit - pd.Timedelta(seconds=float(work)) if not (pd.isna(submit) or pd.isna(work)) else pd.NaT
        row = {c: "" for c in ASSIGNMENT_COLUMNS}
        row.update({"HITId": f["hit_id"], "AssignmentId": aid, "WorkerId": f["worker_id"], "AssignmentStatus": status,
                    "SubmitTime": "" if pd.isna(submit) else submit.isoformat(),
                    "AcceptTime": "" if pd.isna(accept) else accept.isoformat(),
                    "WorkTimeInSeconds": "" if pd.isna(work) else str(int(round(float(work))))})
        if study:
            row.update({"Title": study.title, "Description": study.description, "Keywords": study.keywords,
                        "Reward": f"${study.reward}", "MaxAssignments": str(study.max_assignments),
                        "AssignmentDurationInSeconds": str(study.assignment_duration_s),
                        "AutoApprovalDelayInSeconds": str(study.auto_approval_delay_s),
                        "LifetimeInSeconds": str(study.lifetime_s)})
        meta = {}
        records = g.to_dict("records")
        for r in records:
            t = index.get(r["trial_id"])
            meta[r["trial_id"]] = ({k: getattr(t, k) for k in TRIAL_META} if t else
                                   {"kind": r["kind"], "question": r["question"], "role": _s(r.get("trial_role")) or "main",
                                    "check": _s(r.get("check")), "video_id": _s(r.get("video_id")),
                                    "class_name": _s(r.get("class")), "left_system": _s(r.get("left_system")),
                                    "right_system": _s(r.get("right_system")), "truth": _s(r.get("truth"))})
        row["Input.study"] = f["study"]
        row["Input.trials"] = json.dumps(meta, separators=(",", ":"), sort_keys=True)
        for r in records:
            tid = r["trial_id"]
            row[f"Answer.{tid}"] = r["answer"]
            row[f"Answer.{tid}__played"] = "1" if bool(r["played_to_end"]) else "0"
            plays = r.get("plays", pd.NA)
            row[f"Answer.{tid}__plays"] = "" if pd.isna(plays) else str(int(plays))
        for k in ("time_on_page_s", "hidden_s"):
            if k in g and not pd.isna(f[k]):
                row[f"Answer.{k}"] = str(f[k])
        if bool(f["simulated"]):
            row["Answer.simulated"] = "1"
        v = verdicts[str(aid)]
        row["Approve"] = "x" if status == "Submitted" and v.passed else ""
        row["Reject"] = v.feedback() if status == "Submitted" and not v.passed else ""
        rows.append(row)
    df = pd.DataFrame(rows)
    answer_cols = sorted(c for c in df.columns if c.startswith("Answer."))
    cols = ASSIGNMENT_COLUMNS + ["Input.study", "Input.trials"] + answer_cols + ["Approve", "Reject"]
    return write_safe_csv(df.reindex(columns=cols), out, "the batch CSV")


def _s(x) -> str:
    return "" if x is None or (not isinstance(x, str) and pd.isna(x)) else str(x)

"""One submitted assignment -> rows of the votes table. Shared by `collect` (MTurk API answers in
QuestionFormAnswers XML) and the batch-CSV import (``Answer.*`` columns): both end as a dict of
form field -> value."""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from mturk.study import Trial
from regnet.errors import UserError

log = logging.getLogger(__name__)

# Per-trial companions of an answer field, and per-page fields (docs/architecture.md "HIT pages").
PLAYED, PLAYS = "__played", "__plays"
PAGE_FIELDS = ("time_on_page_s", "hidden_s", "simulated", "assignmentId")


@dataclass
class AssignmentInfo:
    study: str
    hit_id: str
    assignment_id: str
    worker_id: str
    submit_time: str = ""
    work_time_s: float = float("nan")
    status: str = ""


# regnet-bench's server writes a value XML 1.0 cannot carry (NUL and other control characters) with
# the attribute rb:escaped="1" in this namespace, each such character as \\uXXXX and each backslash
# doubled (docs/mturk-scripts.md, "Answers that XML cannot carry"); MTurk itself never sets it.
ESCAPED_ATTR = "{urn:regnet-bench:xml-escape}escaped"
_ESCAPES = re.compile(r"\\(\\|u[0-9A-Fa-f]{4})")


def _value(el: ET.Element) -> str:
    text = el.text or ""
    if el.get(ESCAPED_ATTR) != "1":
        return text
    return _ESCAPES.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)), text)


def parse_question_form_answers(xml: str, where: str = "Answer") -> dict[str, str]:
    """MTurk's QuestionFormAnswers document -> {QuestionIdentifier: FreeText}. Namespace-agnostic:
    the schema version in the namespace has changed before."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise UserError(f"{where}: not a QuestionFormAnswers XML document ({e})") from None
    out: dict[str, str] = {}
    for ans in root.iter():
        if _local(ans.tag) != "Answer":
            continue
        qid, value = None, ""
        for child in ans:
            name = _local(child.tag)
            if name == "QuestionIdentifier":
                qid = _value(child).strip()
            elif name in ("FreeText", "SelectionIdentifier"):
                value = _value(child)
        if qid:
            out[qid] = value
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def work_seconds(accept: datetime | None, submit: datetime | None) -> float:
    if accept is None or submit is None:
        return float("nan")
    return max(0.0, (submit - accept).total_seconds())


def vote_rows(info: AssignmentInfo, answers: dict[str, str], trials: dict[str, Trial]) -> list[dict]:
    """One row per answered trial. Fields that are not trial ids (page timings, companions) are
    carried along; an answer outside the trial's vocabulary is kept but flagged in the log."""
    rows = []
    page = {k: answers.get(k, "") for k in ("time_on_page_s", "hidden_s")}
    simulated = answers.get("simulated", "") in ("1", "true", "True")
    for tid, raw in answers.items():
        t = trials.get(tid)
        if t is None or t.role == "practice":  # a practice answer (page feedback only) is never a vote
            continue
        raw = raw or ""
        if raw == "":
            continue  # the field was left empty: no answer
        # The answer is kept exactly as posted; its meaning is read without surrounding whitespace.
        value = raw.strip()
        rating = float("nan")
        chosen = ""
        if t.kind == "pair":
            chosen = t.left_system if value == "left" else t.right_system if value == "right" else ""
        elif t.kind == "mos":
            try:
                rating = float(int(value))
            except ValueError:
                pass
        if (t.kind == "pair" and not chosen) or (t.kind == "mos" and math.isnan(rating)) or (
                t.kind == "real_fake" and value not in ("real", "fake")):
            log.warning("assignment %s: trial %s has answer %r outside its vocabulary", info.assignment_id, tid, value)
        plays = answers.get(tid + PLAYS, "")
        rows.append({
            "study": info.study, "hit_id": info.hit_id, "assignment_id": info.assignment_id,
            "worker_id": info.worker_id, "trial_id": tid, "kind": t.kind, "question": t.question,
            "left_system": t.left_system, "right_system": t.right_system, "answer": raw,
            "chosen_system": chosen, "rating": rating, "is_gold": t.role == "gold",
            "submit_time": info.submit_time, "work_time_s": info.work_time_s, "class": t.class_name,
            "video_id": t.video_id, "trial_role": t.role, "truth": t.truth,
            "played_to_end": answers.get(tid + PLAYED, "") == "1", "simulated": simulated,
            "check": t.check, "plays": int(plays) if plays.isdigit() else pd.NA,
            "time_on_page_s": _float(page["time_on_page_s"]), "hidden_s": _float(page["hidden_s"]),
            "assignment_status": info.status,
        })
    return rows


def _float(x: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")

"""MTurk review policies, applied when answers arrive.

- `ScoreMyKnownAnswers/2011-09-01` (assignment level): the share of known answers (AnswerKey) the
  worker got right, as a percentage, decides approve / reject / extend the HIT by one assignment.
- `SimplePlurality/2011-09-01` (HIT level): once every assignment of the HIT is in, the plurality answer
  of each question, whether it reaches the agreement threshold, each worker's agreement with the
  plurality answers, and from those approve / reject / extend.

Every result and action is stored for `ListReviewPolicyResultsForHIT`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from eval_server import xml_answers
from eval_server.db import HIT, Assignment, ReviewRecord
from eval_server.errors import ApiError

KNOWN_ANSWERS = "ScoreMyKnownAnswers/2011-09-01"
PLURALITY = "SimplePlurality/2011-09-01"
_ASSIGNMENT_KEYS = {"AnswerKey", "ApproveIfKnownAnswerScoreIsAtLeast", "ApproveReason",
                    "RejectIfKnownAnswerScoreIsLessThan", "RejectReason", "ExtendIfKnownAnswerScoreIsLessThan",
                    "ExtendMaximumAssignments", "ExtendMinimumTimeInSeconds"}
_INTEGER = re.compile(r"^-?[0-9]{1,9}\Z")
MAX_ASSIGNMENTS = 1_000_000  # MTurk's limit for a HIT, extensions included
MAX_EXTEND_S = 365 * 24 * 3600  # a HIT lives at most a year
_HIT_KEYS = {"QuestionIds", "QuestionAgreementThreshold", "DisregardAssignmentIfRejected",
             "DisregardAssignmentIfKnownAnswerScoreIsLessThan", "ExtendIfHITAgreementScoreIsLessThan",
             "ExtendMaximumAssignments", "ExtendMinimumTimeInSeconds", "ApproveIfWorkerAgreementScoreIsAtLeast",
             "RejectIfWorkerAgreementScoreIsLessThan", "RejectReason", "ApproveReason"}


@dataclass(frozen=True)
class Policy:
    name: str
    values: dict[str, list[str]]
    maps: dict[str, dict[str, list[str]]]

    def int(self, key: str) -> int | None:
        """The parameter as an integer; None when absent, or (a policy stored before `check` held
        numbers to ASCII digits) when it is not one, so such a policy cannot fail every submit."""
        v = self.values.get(key)
        return int(v[0]) if v and _INTEGER.match(v[0]) else None

    def str(self, key: str, default: str = "") -> str:
        v = self.values.get(key)
        return v[0] if v else default


def check(policy: dict | None, level: str) -> str | None:
    """Validate a ReviewPolicy from CreateHIT and return it as stored JSON (None when absent)."""
    if policy is None:
        return None
    name = policy["PolicyName"]
    allowed = {"Assignment": (KNOWN_ANSWERS, _ASSIGNMENT_KEYS), "HIT": (PLURALITY, _HIT_KEYS)}[level]
    if name != allowed[0]:
        raise ApiError(f"{level}ReviewPolicy PolicyName must be {allowed[0]}, not {name}.")
    p = load(json.dumps(policy))
    for key in list(p.values) + list(p.maps):
        if key not in allowed[1]:
            raise ApiError(f"{name} does not take the parameter {key}.")
    for key, vals in p.values.items():
        if key.endswith(("LessThan", "AtLeast", "Threshold", "Assignments", "Seconds")):
            # ASCII digits only: str.isdigit() also takes '²', which int() then refuses (at every submit).
            if len(vals) != 1 or not _INTEGER.match(vals[0]):
                raise ApiError(f"{name} parameter {key} must be one integer.")
            lo, hi = (0, 101) if key.endswith(("LessThan", "AtLeast", "Threshold")) else \
                (1, MAX_ASSIGNMENTS) if key.endswith("Assignments") else (0, MAX_EXTEND_S)
            if not lo <= int(vals[0]) <= hi:
                what = "a percentage" if hi == 101 else "an integer"
                raise ApiError(f"{name} parameter {key} must be {what} between {lo} and {hi}.")
    if level == "Assignment" and not p.maps.get("AnswerKey"):
        raise ApiError(f"{name} needs an AnswerKey parameter with MapEntries.")
    if level == "HIT" and not p.values.get("QuestionIds"):
        raise ApiError(f"{name} needs a QuestionIds parameter.")
    return json.dumps(policy)


def load(stored: str) -> Policy:
    raw = json.loads(stored)
    values: dict[str, list[str]] = {}
    maps: dict[str, dict[str, list[str]]] = {}
    for param in raw.get("Parameters") or []:
        key = param.get("Key", "")
        if param.get("MapEntries"):
            maps[key] = {e["Key"]: list(e.get("Values") or []) for e in param["MapEntries"]}
        else:
            values[key] = list(param.get("Values") or [])
    return Policy(raw["PolicyName"], values, maps)


def _record(s: Session, hit_id: str, level: str, kind: str, at: float, **data) -> None:
    s.add(ReviewRecord(hit_id=hit_id, level=level, kind=kind, data=json.dumps(data), created_at=at))


def _action(s: Session, hit: HIT, level: str, at: float, name: str, target_id: str, target_type: str,
            result: str) -> None:
    _record(s, hit.id, level, "action", at, ActionId=f"{level[0]}{target_id[:8]}{name}{int(at * 1000)}",
            ActionName=name, TargetId=target_id, TargetType=target_type, Status="Succeeded",
            CompleteTime=at, Result=result)


def _extend(s: Session, hit: HIT, level: str, at: float, maximum: int | None, min_time: int | None) -> None:
    if maximum is not None and hit.max_assignments >= maximum or hit.max_assignments >= MAX_ASSIGNMENTS:
        return
    hit.max_assignments += 1
    if min_time:
        hit.expiration = max(hit.expiration, at + min_time)
    _action(s, hit, level, at, "extend", hit.id, "HIT", f"MaxAssignments extended to {hit.max_assignments}")


def _decide(a: Assignment, at: float, approve: bool, reason: str) -> None:
    if a.status != "Submitted":
        return
    if approve:
        a.status, a.approval_time = "Approved", at
    else:
        a.status, a.rejection_time = "Rejected", at
    a.feedback = reason or a.feedback


def known_answer_score(policy: Policy, answers: dict[str, str]) -> tuple[int, int, int]:
    key = policy.maps.get("AnswerKey", {})
    correct = sum(1 for q, vals in key.items() if answers.get(q) is not None and answers[q] in vals)
    total = len(key)
    return correct, total, round(100 * correct / total) if total else 0


def on_submit(s: Session, hit: HIT, a: Assignment, at: float) -> None:
    """Run the HIT's policies for a just-submitted assignment (inside the submit transaction)."""
    if hit.assignment_policy:
        _apply_known_answers(s, hit, a, load(hit.assignment_policy), at)
    if hit.hit_policy and not hit.hit_policy_done and _all_in(s, hit, at):
        _apply_plurality(s, hit, load(hit.hit_policy), at)


def _apply_known_answers(s: Session, hit: HIT, a: Assignment, p: Policy, at: float) -> None:
    answers = xml_answers.parse(a.answer_xml or "<QuestionFormAnswers/>")
    correct, total, score = known_answer_score(p, answers)
    for q, vals in p.maps.get("AnswerKey", {}).items():
        _record(s, hit.id, "Assignment", "result", at, SubjectId=a.id, SubjectType="Assignment", QuestionId=q,
                Key="KnownAnswerCorrect", Value=str(answers.get(q) in vals).lower())
    for key, value in (("KnownAnswerScore", score), ("KnownAnswerCorrect", correct), ("KnownAnswerTotal", total)):
        _record(s, hit.id, "Assignment", "result", at, SubjectId=a.id, SubjectType="Assignment", Key=key,
                Value=str(value))
    approve_at, reject_below = p.int("ApproveIfKnownAnswerScoreIsAtLeast"), p.int("RejectIfKnownAnswerScoreIsLessThan")
    if approve_at is not None and score >= approve_at:
        _decide(a, at, True, p.str("ApproveReason"))
        _action(s, hit, "Assignment", at, "approve", a.id, "Assignment", f"Approved: KnownAnswerScore {score}")
    elif reject_below is not None and score < reject_below:
        _decide(a, at, False, p.str("RejectReason", f"Known answer score {score} below {reject_below}"))
        _action(s, hit, "Assignment", at, "reject", a.id, "Assignment", f"Rejected: KnownAnswerScore {score}")
    extend_below = p.int("ExtendIfKnownAnswerScoreIsLessThan")
    if extend_below is not None and score < extend_below:
        _extend(s, hit, "Assignment", at, p.int("ExtendMaximumAssignments"), p.int("ExtendMinimumTimeInSeconds"))


def _all_in(s: Session, hit: HIT, at: float) -> bool:
    done = s.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.hit_id == hit.id, Assignment.status.in_(("Submitted", "Approved", "Rejected"))))
    return done >= hit.max_assignments


def _apply_plurality(s: Session, hit: HIT, p: Policy, at: float) -> None:
    hit.hit_policy_done = True
    rows = list(s.scalars(select(Assignment).where(
        Assignment.hit_id == hit.id, Assignment.status.in_(("Submitted", "Approved", "Rejected")))))
    if p.str("DisregardAssignmentIfRejected", "false").lower() == "true":
        rows = [a for a in rows if a.status != "Rejected"]
    answers = {a.id: xml_answers.parse(a.answer_xml or "<QuestionFormAnswers/>") for a in rows}
    min_known = p.int("DisregardAssignmentIfKnownAnswerScoreIsLessThan")
    if min_known is not None and hit.assignment_policy:
        known = load(hit.assignment_policy)
        rows = [a for a in rows if known_answer_score(known, answers[a.id])[2] >= min_known]
    threshold = p.int("QuestionAgreementThreshold") or 0
    agreed: dict[str, str] = {}
    qids = p.values.get("QuestionIds", [])
    for q in qids:
        votes = Counter(answers[a.id][q] for a in rows if answers[a.id].get(q) is not None)
        if not votes:
            continue
        top, n = votes.most_common(1)[0]
        support = round(100 * n / sum(votes.values()))
        _record(s, hit.id, "HIT", "result", at, SubjectId=hit.id, SubjectType="HIT", QuestionId=q,
                Key="PluralityAnswer", Value=top)
        _record(s, hit.id, "HIT", "result", at, SubjectId=hit.id, SubjectType="HIT", QuestionId=q,
                Key="AgreementScore", Value=str(support))
        if support >= threshold:
            agreed[q] = top
    hit_score = round(100 * len(agreed) / len(qids)) if qids else 0
    _record(s, hit.id, "HIT", "result", at, SubjectId=hit.id, SubjectType="HIT", Key="HITAgreementScore",
            Value=str(hit_score))
    approve_at, reject_below = p.int("ApproveIfWorkerAgreementScoreIsAtLeast"), p.int("RejectIfWorkerAgreementScoreIsLessThan")
    for a in rows:
        if not agreed:
            break
        score = round(100 * sum(answers[a.id].get(q) == v for q, v in agreed.items()) / len(agreed))
        _record(s, hit.id, "HIT", "result", at, SubjectId=a.id, SubjectType="Assignment",
                Key="WorkerAgreementScore", Value=str(score))
        if approve_at is not None and score >= approve_at and a.status == "Submitted":
            _decide(a, at, True, p.str("ApproveReason"))
            _action(s, hit, "HIT", at, "approve", a.id, "Assignment", f"Approved: WorkerAgreementScore {score}")
        elif reject_below is not None and score < reject_below and a.status == "Submitted":
            _decide(a, at, False, p.str("RejectReason", f"Agreement {score} below {reject_below}"))
            _action(s, hit, "HIT", at, "reject", a.id, "Assignment", f"Rejected: WorkerAgreementScore {score}")
    extend_below = p.int("ExtendIfHITAgreementScoreIsLessThan")
    if extend_below is not None and hit_score < extend_below:
        before = hit.max_assignments
        _extend(s, hit, "HIT", at, p.int("ExtendMaximumAssignments"), p.int("ExtendMinimumTimeInSeconds"))
        if hit.max_assignments > before:
            hit.hit_policy_done = False  # judge again when the extra assignment is in


def report(s: Session, hit_id: str, level: str, want_results: bool, want_actions: bool) -> dict:
    out: dict[str, list] = {}
    rows = list(s.scalars(select(ReviewRecord).where(ReviewRecord.hit_id == hit_id, ReviewRecord.level == level)
                          .order_by(ReviewRecord.id)))
    if want_results:
        out["ReviewResults"] = [json.loads(r.data) for r in rows if r.kind == "result"]
    if want_actions:
        out["ReviewActions"] = [json.loads(r.data) for r in rows if r.kind == "action"]
    return out

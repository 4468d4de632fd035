"""Rater screening from the votes table: failed catch trials, gold accuracy, answers given before
the videos played to the end. The same verdict drives `approve`/`reject` and the Approve/Reject
columns of an exported batch CSV, so what a requester sees is what the API does."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mturk.study import Study


@dataclass
class QCRules:
    max_failed_catch: int = 0  # catch trials are obvious; one miss is already a sign
    max_gold_error_rate: float = 0.5  # gold trials need real perception; allow honest misses
    require_played: bool = True
    mos_tolerance: int = 1  # a MOS check passes when the rating is within this of its truth


@dataclass
class AssignmentVerdict:
    assignment_id: str
    worker_id: str
    hit_id: str
    n_answers: int
    failed_catch: list[str] = field(default_factory=list)
    failed_gold: list[str] = field(default_factory=list)
    n_gold: int = 0
    unplayed: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    passed: bool = True
    reasons: list[str] = field(default_factory=list)

    def feedback(self) -> str:
        """RequesterFeedback (MTurk shows it to the worker; at most 1024 characters)."""
        if self.passed:
            return "Thank you for your careful work."
        return ("Sorry, we could not accept this work: " + "; ".join(self.reasons) +
                ". The instructions ask to play every video to the end and to answer the check "
                "questions, whose answers are clear.")[:1024]


def check_passed(kind: str, truth: str, answer: str, mos_tolerance: int = 1) -> bool | None:
    """None when the trial has no expected answer (e.g. an identical pair)."""
    if not isinstance(truth, str) or truth == "":
        return None
    if kind == "mos":
        try:
            return abs(int(float(answer)) - int(truth)) <= mos_tolerance
        except (TypeError, ValueError):
            return False
    return str(answer) == truth


def assess(votes: pd.DataFrame, rules: QCRules | None = None, study: Study | None = None) -> list[AssignmentVerdict]:
    rules = rules or QCRules()
    expected = {}
    if study is not None:
        expected = {t.trial_id: t.hit for t in study.trials}
        hit_trials = {h.local_id: h.trial_ids for h in study.hits}
    out = []
    for aid, g in votes.groupby("assignment_id", sort=True):
        first = g.iloc[0]
        v = AssignmentVerdict(str(aid), str(first["worker_id"]), str(first["hit_id"]), len(g))
        for r in g.itertuples(index=False):
            role = getattr(r, "trial_role", "main")
            if role in ("catch", "gold"):
                ok = check_passed(r.kind, r.truth, r.answer, rules.mos_tolerance)
                if role == "gold" and ok is not None:
                    v.n_gold += 1
                if ok is False:
                    (v.failed_gold if role == "gold" else v.failed_catch).append(r.trial_id)
            if not bool(r.played_to_end):
                v.unplayed.append(r.trial_id)
        if study is not None:
            local = {expected.get(t) for t in g["trial_id"]} - {None}
            want = [t for h in local for t in hit_trials.get(h, [])]
            v.unanswered = sorted(set(want) - set(g["trial_id"]))
        if len(v.failed_catch) > rules.max_failed_catch:
            v.reasons.append(f"{len(v.failed_catch)} attention check(s) answered wrongly")
        if v.n_gold and len(v.failed_gold) / v.n_gold > rules.max_gold_error_rate:
            v.reasons.append(f"{len(v.failed_gold)} of {v.n_gold} known-answer question(s) answered wrongly")
        if rules.require_played and v.unplayed:
            v.reasons.append(f"{len(v.unplayed)} answer(s) given before the videos played to the end")
        if v.unanswered:
            v.reasons.append(f"{len(v.unanswered)} question(s) left unanswered")
        v.passed = not v.reasons
        out.append(v)
    return out


def worker_summary(votes: pd.DataFrame, verdicts: list[AssignmentVerdict]) -> pd.DataFrame:
    """Per worker: assignments, how many failed QC, and the share of 'left' on identical pairs
    (no right answer there: a share far from 50% shows a side bias)."""
    rows = []
    by_worker: dict[str, list[AssignmentVerdict]] = {}
    for v in verdicts:
        by_worker.setdefault(v.worker_id, []).append(v)
    identical = votes[votes.get("check", pd.Series("", index=votes.index)) == "identical"]
    for w, vs in sorted(by_worker.items()):
        ident = identical[identical["worker_id"] == w]
        rows.append({"worker_id": w, "assignments": len(vs), "failed": sum(not v.passed for v in vs),
                     "identical_pairs": len(ident),
                     "identical_left_share": (ident["answer"] == "left").mean() if len(ident) else float("nan")})
    return pd.DataFrame(rows, columns=["worker_id", "assignments", "failed", "identical_pairs", "identical_left_share"])

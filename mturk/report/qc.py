"""Quality control for the analysis: the votes `mturk.qc.decide` keeps, and a counted reason for
every one it drops. It is the same pass `approve`/`reject` act on, so no vote of an assignment
that `reject` refuses reaches a table. Gold/catch trials screen raters and never enter the tables.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import pandas as pd

from mturk.qc import QCConfig, QCDecisions, decide

log = logging.getLogger(__name__)


# One rule set for pay and analysis (mturk.qc); the report's name for it.
QCRules = QCConfig


@dataclass
class Exclusion:
    rule: str
    reason: str
    votes: int
    raters: int
    assignments: int


@dataclass
class QCResult:
    kept: pd.DataFrame                  # main-trial votes the tables use
    exclusions: list[Exclusion]
    raters: pd.DataFrame                # one row per worker: checks, failures, excluded_by
    notes: list[str] = field(default_factory=list)
    n_input: int = 0
    n_check_votes: int = 0
    decisions: QCDecisions | None = None

    def exclusion_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(e) for e in self.exclusions],
                            columns=["rule", "reason", "votes", "raters", "assignments"])


# Rules in the order the QC table lists them.
RULE_ORDER = ["duplicate", "repeat rater", "failed checks", "playback", "no answer", "rejected",
              "rater screened", "unscreened", "too fast", "too slow"]


def apply_qc(df: pd.DataFrame, rules: QCConfig, study=None,
             paid: pd.DataFrame | None = None) -> QCResult:
    """`study`: a `mturk.study.Study` (unanswered trials of a HIT are counted); `paid`: a
    qc_decisions.csv frame: an assignment it rejected stays out even if these rules would keep it
    (what was refused payment is never analysed)."""
    dec = decide(df, rules, study)
    rule, reason = dec.vote_rule.copy(), dec.vote_reason.copy()
    if paid is not None and len(paid):
        refused = set(paid.loc[paid["pay"] == "reject", "assignment_id"].astype(str))
        m = (rule == "") & df["assignment_id"].astype(str).isin(refused)
        rule[m] = "rejected"
        reason[m] = "rejected for pay by an earlier approve/reject run (qc_decisions.csv)"
    # One line per rule in the table (the decisions file keeps each assignment's own reason).
    pay = reason.astype(str).str.startswith("rejected for pay: ")
    generic = {"failed checks": "assignment rejected for pay: more than "
               f"{rules.max_failed_catch} catch trial(s) or {rules.max_gold_error_rate:.0%} of "
               "gold trials answered wrongly",
               "playback": "assignment rejected for pay: answer(s) given before the clips played "
               "to the end",
               "no answer": f"assignment rejected for pay: more than {rules.max_unanswered} "
               "question(s) left unanswered"}
    for r, text in generic.items():
        reason[pay & (rule == r)] = text
    ex: list[Exclusion] = []
    for r in RULE_ORDER + sorted(set(rule) - set(RULE_ORDER) - {""}):
        m = rule == r
        if not m.any():
            continue
        for why in dict.fromkeys(reason[m]):
            mm = (m & (reason == why)).to_numpy()
            ex.append(Exclusion(r, why, int(mm.sum()), int(df["worker_id"][mm].nunique()),
                                int(df["assignment_id"][mm].nunique())))
            log.info("QC %s: dropped %d vote(s) (%s)", r, int(mm.sum()), why)
    keep = (rule == "").to_numpy()
    is_check = df["trial_role"].isin(["gold", "catch"]).to_numpy()
    n_check_votes = int((keep & is_check).sum())
    # Only main trials are analysed (practice questions and checks never are).
    kept = df[keep & (df["trial_role"] == "main").to_numpy()].copy()
    raters = dec.raters.set_index("worker_id")
    counts = kept.groupby("worker_id").size()
    raters["n_votes_kept"] = counts.reindex(raters.index).fillna(0).astype(int)
    res = QCResult(kept, ex, raters.reset_index(), list(dec.notes), len(df), n_check_votes)
    res.decisions = dec
    return res

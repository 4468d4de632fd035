"""Quality control: which votes the analysis keeps, and a counted reason for every one it drops.

Order matters and is fixed: duplicates first (so a doubled row cannot fail or pass a rater twice),
then rater screening on gold/catch trials, then assignment time limits, then playback, then
unanswered rows. Gold/catch trials screen raters and never enter the tables.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QCRules:
    """Defaults follow DESIGN §4: playback must reach the end; catch/gold trials screen raters."""

    # Raters whose share of failed gold/catch trials is above this are dropped (0.25 tolerates one
    # slip in four checks).
    max_check_fail_rate: float = 0.25
    # Raters with no scored gold/catch trial cannot be screened; keep them unless asked not to.
    drop_unscreened_raters: bool = False
    require_played_to_end: bool = True
    # A HIT cannot be judged faster than its clips play; per trial so HIT size does not matter.
    min_seconds_per_trial: float = 1.0
    max_work_time_s: float | None = 3600.0
    # A MOS check with a numeric truth passes within this distance (ratings are noisy by 1).
    mos_check_tolerance: float = 1.0
    # Items with fewer kept votes than this are left out of the item-level (majority) analysis.
    min_votes_per_item: int = 1

    def describe(self) -> list[tuple[str, str]]:
        return [(k, str(v)) for k, v in asdict(self).items()]


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

    def exclusion_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(e) for e in self.exclusions],
                            columns=["rule", "reason", "votes", "raters", "assignments"])


def _drop(df: pd.DataFrame, mask: pd.Series, rule: str, reason: str,
          out: list[Exclusion]) -> pd.DataFrame:
    n = int(mask.sum())
    if n:
        out.append(Exclusion(rule, reason, n, int(df.loc[mask, "worker_id"].nunique()),
                             int(df.loc[mask, "assignment_id"].nunique())))
        log.info("QC %s: dropped %d vote(s) (%s)", rule, n, reason)
    return df[~mask]


def score_checks(df: pd.DataFrame, tol: float) -> pd.Series:
    """True/False per gold/catch row when it can be scored, NA when the row has no usable truth.

    A truth may be the expected answer (left/right/real/fake/a rating) or the expected system."""
    truth = df["truth"].astype("string").str.strip().str.lower()
    ans = df["answer"].astype("string").str.lower()
    chosen = df["chosen_system"].astype("string").str.lower()
    out = pd.Series(pd.NA, index=df.index, dtype="boolean")
    mos = df["kind"] == "mos"
    t_num = pd.to_numeric(truth.where(mos), errors="coerce")
    ok = mos & t_num.notna() & df["rating"].notna()
    out[ok] = (df.loc[ok, "rating"] - t_num[ok]).abs() <= tol
    other = ~mos & truth.notna() & ans.notna()
    out[other] = ((ans[other] == truth[other]) | (chosen[other] == truth[other])).fillna(False)
    return out


def apply_qc(df: pd.DataFrame, rules: QCRules) -> QCResult:
    ex: list[Exclusion] = []
    notes: list[str] = []
    n_input = len(df)

    dup = df.duplicated(["assignment_id", "trial_id"], keep="first")
    df = _drop(df, dup, "duplicate", "same assignment_id and trial_id more than once (first kept)", ex)
    # MTurk keeps a worker from taking one HIT twice, but one trial can sit in two HITs.
    rep = df.duplicated(["worker_id", "trial_id"], keep="first")
    df = _drop(df, rep, "repeat rater", "same worker answered the same trial in another "
               "assignment (first kept)", ex)

    checks = df["trial_role"].isin(["gold", "catch"])
    scored = score_checks(df[checks], rules.mos_check_tolerance)
    unscored = int(scored.isna().sum())
    if unscored:
        notes.append(f"{unscored} gold/catch answer(s) could not be scored (no usable truth) "
                     "and do not count for or against their rater")
    per = pd.DataFrame({"worker_id": df.loc[checks, "worker_id"], "ok": scored}).dropna()
    per = per.assign(ok=per["ok"].astype(bool))
    stat = per.groupby("worker_id")["ok"].agg(n_checks="size", n_passed="sum")
    raters = pd.DataFrame(index=pd.Index(sorted(df["worker_id"].unique()), name="worker_id"))
    raters = raters.join(stat).fillna({"n_checks": 0, "n_passed": 0}).astype(
        {"n_checks": int, "n_passed": int})
    raters["n_failed"] = raters["n_checks"] - raters["n_passed"]
    raters["fail_rate"] = np.where(raters["n_checks"] > 0,
                                   raters["n_failed"] / raters["n_checks"].where(
                                       raters["n_checks"] > 0, 1), math.nan)
    raters["excluded_by"] = ""
    failing = raters.index[raters["fail_rate"] > rules.max_check_fail_rate]
    raters.loc[failing, "excluded_by"] = "checks"
    df = _drop(df, df["worker_id"].isin(failing), "failed checks",
               f"rater failed more than {rules.max_check_fail_rate:.0%} of gold/catch trials", ex)
    unscreened = raters.index[raters["n_checks"] == 0]
    if len(unscreened):
        if rules.drop_unscreened_raters:
            raters.loc[unscreened, "excluded_by"] = "unscreened"
            df = _drop(df, df["worker_id"].isin(unscreened), "unscreened",
                       "rater answered no scorable gold/catch trial", ex)
        else:
            notes.append(f"{len(unscreened)} rater(s) saw no scorable gold/catch trial and were "
                         "kept unscreened")

    per_asg = df.groupby("assignment_id").agg(t=("work_time_s", "first"), n=("trial_id", "size"))
    too_fast = per_asg.index[per_asg["t"] < rules.min_seconds_per_trial * per_asg["n"]]
    df = _drop(df, df["assignment_id"].isin(too_fast), "too fast",
               f"assignment took less than {rules.min_seconds_per_trial:g} s per trial", ex)
    if rules.max_work_time_s is not None:
        too_slow = per_asg.index[per_asg["t"] > rules.max_work_time_s]
        df = _drop(df, df["assignment_id"].isin(too_slow), "too slow",
                   f"assignment took more than {rules.max_work_time_s:g} s", ex)
    untimed = int(per_asg["t"].isna().sum())
    if untimed:
        notes.append(f"{untimed} assignment(s) carry no work_time_s; time limits not checked "
                     "for them")

    if rules.require_played_to_end:
        df = _drop(df, ~df["played_to_end"].astype(bool), "playback",
                   "answered before every clip of the trial played to its end", ex)
    df = _drop(df, df["answer"].isna(), "no answer", "trial left unanswered", ex)

    is_check = df["trial_role"].isin(["gold", "catch"])
    n_check_votes = int(is_check.sum())
    kept = df[~is_check].copy()
    counts = kept.groupby("worker_id").size()
    raters["n_votes_kept"] = counts.reindex(raters.index).fillna(0).astype(int)
    return QCResult(kept, ex, raters.reset_index(), notes, n_input, n_check_votes)

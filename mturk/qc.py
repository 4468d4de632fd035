"""One quality-control pass with two outputs per assignment, as P.808's single cleaning pass:

* **pay**: approve / reject, with the reason shown to the worker (RequesterFeedback);
* **keep**: whether the assignment's votes enter the analysis, with the reason.

`approve` / `reject` (mturk.collect), the Approve/Reject columns of an exported batch CSV and
`report` (mturk.report.qc) all call `decide` with one `QCConfig`, so a vote from an assignment
`reject` refuses can never reach a table: keep implies approve by construction. The config comes
from the study (`study.json`'s optional ``"qc"`` object), flags override single fields; `collect`,
`approve` and `reject` write the decisions they used to ``qc_decisions.csv`` (+ ``.json`` with the
config) beside the votes, and `report` reads that config back.

Pay rules (per assignment, what a worker is accountable for): a failed catch trial (more than
``max_failed_catch``), more than ``max_gold_error_rate`` of gold trials wrong, an answer given
before its clips played to the end, a trial left unanswered. Keep rules (analysis only, on top of
pay): raters failing more than ``max_check_fail_rate`` of all their checks (screened out), raters
with no scorable check when ``drop_unscreened_raters``, assignments faster than
``min_seconds_per_trial`` per trial or slower than ``max_work_time_s``, work already rejected on the
platform. Within a kept assignment, duplicate rows and a worker's repeat of a trial are dropped.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from mturk.vocabulary import VOTE_ROLES
from regnet.errors import UserError
from regnet.tables import read_table

log = logging.getLogger(__name__)

DECISIONS_NAME = "qc_decisions.csv"


@dataclass(frozen=True)
class QCConfig:
    """The study's single QC rule set (defaults follow the study design: catch trials are
    obvious, gold trials need real perception)."""

    # pay
    max_failed_catch: int = 0            # one missed catch trial is already a sign
    max_gold_error_rate: float = 0.5     # honest misses on gold trials are allowed
    require_played_to_end: bool = True
    max_unanswered: int = 0
    mos_check_tolerance: float = 1.0     # a MOS check passes within this distance of its truth
    # keep (analysis)
    max_check_fail_rate: float = 0.25    # over all of a rater's checks: one slip in four
    drop_unscreened_raters: bool = False
    min_seconds_per_trial: float = 1.0   # a HIT cannot be judged faster than its clips play
    max_work_time_s: float | None = 3600.0
    min_votes_per_item: int = 1          # item-level analysis only

    def describe(self) -> list[tuple[str, str]]:
        return [(k, str(v)) for k, v in asdict(self).items()]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "QCConfig":
        if not isinstance(d, dict):
            raise UserError(f"{where}: the qc section must be an object of rule: value")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise UserError(f"{where}: unknown QC rule(s) {', '.join(unknown)} "
                            f"(known: {', '.join(known)})")
        out = {}
        for k, v in d.items():
            default = getattr(cls(), k)
            if v is None and k == "max_work_time_s":
                out[k] = None
            elif isinstance(default, bool):
                if not isinstance(v, bool):
                    raise UserError(f"{where}: qc.{k} must be true or false, not {v!r}")
                out[k] = v
            elif isinstance(default, int) and not isinstance(default, bool):
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise UserError(f"{where}: qc.{k} must be a whole number >= 0, not {v!r}")
                out[k] = v
            else:
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                    raise UserError(f"{where}: qc.{k} must be a number >= 0, not {v!r}")
                out[k] = float(v)
        return cls(**out)

    @classmethod
    def for_study(cls, study_dir: str | Path | None) -> "QCConfig":
        """The study's ``"qc"`` section of study.json, else the defaults."""
        if study_dir is None:
            return cls()
        sj = Path(study_dir) / "study.json"
        try:
            doc = json.loads(sj.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return cls()
        qc = doc.get("qc") if isinstance(doc, dict) else None
        return cls() if qc is None else cls.from_dict(qc, f"{sj}: qc")


def add_qc_flags(p) -> None:
    """The QC flags of `approve`, `reject` and `report`: each overrides one field of the study's
    QC config (study.json "qc", else the defaults) and is recorded with the decisions."""
    d = QCConfig()
    g = p.add_argument_group("quality control: one rule set for pay (approve/reject) and "
                             "analysis (report); default the study's \"qc\" section")
    g.add_argument("--max-failed-catch", type=int, metavar="N",
                   help=f"catch trials an assignment may miss before it is rejected (default {d.max_failed_catch})")
    g.add_argument("--max-gold-error-rate", type=float, metavar="RATE",
                   help=f"share of gold trials an assignment may miss (default {d.max_gold_error_rate})")
    g.add_argument("--allow-unplayed", action="store_const", const=True,
                   help="accept answers given before the videos played to the end")
    g.add_argument("--max-unanswered", type=int, metavar="N",
                   help=f"trials an assignment may leave blank (default {d.max_unanswered})")
    g.add_argument("--mos-check-tolerance", type=float, metavar="D",
                   help=f"a MOS check passes within D of its truth (default {d.mos_check_tolerance:g})")
    g.add_argument("--max-check-fail", type=float, metavar="RATE",
                   help="analysis: leave out raters failing more than this share of all their "
                   f"checks (default {d.max_check_fail_rate})")
    g.add_argument("--drop-unscreened", action="store_const", const=True,
                   help="analysis: also leave out raters who answered no scorable check")
    g.add_argument("--min-seconds-per-trial", type=float, metavar="S",
                   help=f"analysis: leave out assignments faster than S s per trial (default {d.min_seconds_per_trial:g})")
    g.add_argument("--max-work-time", type=float, metavar="S",
                   help=f"analysis: leave out assignments longer than S s (default {d.max_work_time_s:g}; 0 = no limit)")
    g.add_argument("--min-votes-per-item", type=int, metavar="N",
                   help="analysis: leave items with fewer kept votes out of the item level (default 1)")


_FLAG_FIELDS = {"max_failed_catch": "max_failed_catch", "max_gold_error_rate": "max_gold_error_rate",
                "max_unanswered": "max_unanswered", "mos_check_tolerance": "mos_check_tolerance",
                "max_check_fail": "max_check_fail_rate", "min_seconds_per_trial": "min_seconds_per_trial",
                "min_votes_per_item": "min_votes_per_item"}


def rules_in_force(votes: str | Path | None, study_dir: str | Path | None) -> tuple[QCConfig, Path | None]:
    """(rules, decisions file): the rules approve/reject used, recorded with their decisions in
    qc_decisions.csv beside the votes (collect, approve and reject write it there) or in the study
    folder; else the study's qc section; else the defaults. One rule set for pay and for the tables."""
    cands = [Path(votes).parent / "qc_decisions.csv"] if votes else []
    cands += [Path(study_dir) / "qc_decisions.csv"] if study_dir else []
    decisions = next((c for c in cands if c.is_file()), None)
    return (read_decisions(decisions)[1] if decisions else QCConfig.for_study(study_dir)), decisions


def config_from_flags(args, base: QCConfig) -> QCConfig:
    """`base` with every flag the user gave applied (flags left out keep the base's value)."""
    from dataclasses import replace

    changes = {}
    for flag, name in _FLAG_FIELDS.items():
        v = getattr(args, flag, None)
        if v is not None:
            if v < 0:
                raise UserError(f"--{flag.replace('_', '-')}: must be >= 0, not {v:g}")
            changes[name] = v
    if getattr(args, "allow_unplayed", None):
        changes["require_played_to_end"] = False
    if getattr(args, "drop_unscreened", None):
        changes["drop_unscreened_raters"] = True
    mw = getattr(args, "max_work_time", None)
    if mw is not None:
        changes["max_work_time_s"] = mw or None
    return replace(base, **changes)


# The report and older callers know the rule set under this name.
QCRules = QCConfig


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
    keep: bool = True
    keep_reason: str = ""

    def feedback(self) -> str:
        """RequesterFeedback (MTurk shows it to the worker; at most 1024 characters)."""
        if self.passed:
            return "Thank you for your careful work."
        return ("Sorry, we could not accept this work: " + "; ".join(self.reasons) +
                ". The instructions ask to play every video to the end and to answer the check "
                "questions, whose answers are clear.")[:1024]


def check_passed(kind: str, truth: str, answer: str, mos_tolerance: float = 1) -> bool | None:
    """None when the trial has no expected answer (e.g. an identical pair); a blank answer to a
    check is a failed check."""
    if not isinstance(truth, str) or truth.strip() == "":
        return None
    truth = truth.strip().lower()
    if answer is None or (not isinstance(answer, str) and pd.isna(answer)):
        return False
    answer = str(answer).strip().lower()
    if kind == "mos":
        try:
            return abs(float(answer) - float(truth)) <= mos_tolerance
        except (TypeError, ValueError):
            return False
    return answer == truth


@dataclass
class QCDecisions:
    """`assignments`: one row per assignment (DECISION_COLUMNS). `vote_keep` / `vote_rule` /
    `vote_reason`: per row of the votes frame given to `decide` (same index)."""

    assignments: pd.DataFrame
    vote_keep: pd.Series
    vote_rule: pd.Series
    vote_reason: pd.Series
    raters: pd.DataFrame
    config: QCConfig
    notes: list[str] = field(default_factory=list)

    def verdicts(self) -> list[AssignmentVerdict]:
        out = []
        for r in self.assignments.itertuples(index=False):
            v = AssignmentVerdict(r.assignment_id, r.worker_id, r.hit_id, int(r.n_answers),
                                  _split(r.failed_catch), _split(r.failed_gold), int(r.n_gold),
                                  _split(r.unplayed), _split(r.unanswered),
                                  r.pay == "approve", _split(r.pay_reason, "; "), bool(r.keep),
                                  r.keep_reason)
            out.append(v)
        return out


DECISION_COLUMNS = ["assignment_id", "worker_id", "hit_id", "n_answers", "n_checks",
                    "n_failed_catch", "n_gold", "n_failed_gold", "n_unplayed", "n_unanswered",
                    "work_time_s", "pay", "pay_reason", "keep", "keep_reason", "failed_catch",
                    "failed_gold", "unplayed", "unanswered"]


def _split(s, sep: str = " ") -> list[str]:
    if s is None or (not isinstance(s, str) and pd.isna(s)) or s == "":
        return []
    return str(s).split(sep)


def _role(votes: pd.DataFrame) -> pd.Series:
    if "trial_role" in votes.columns:
        role = votes["trial_role"].astype("string").str.strip().str.lower()
    else:
        role = pd.Series(pd.NA, index=votes.index, dtype="string")
    if "is_gold" in votes.columns:
        gold = votes["is_gold"].map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))
        role = role.where(role.notna(), np.where(gold, "gold", "main"))
    return role.fillna("main")


def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | (s.astype("string").str.strip() == "")


def decide(votes: pd.DataFrame, config: QCConfig | None = None, study=None) -> QCDecisions:
    """The one QC pass (see the module docstring). `votes`: the votes table (`mturk.votes`
    columns); `study`: a `mturk.study.Study`, when known, to count trials of a HIT that came back
    without any row as unanswered."""
    cfg = config or QCConfig()
    orig_index = votes.index
    v = votes.reset_index(drop=True)
    idx = v.index
    role = _role(v)
    aid = v["assignment_id"].astype(str)
    wid = v["worker_id"].astype(str)
    tid = v["trial_id"].astype(str)
    blank = _blank(v["answer"])
    played = v["played_to_end"].map(lambda x: True if pd.isna(x) else
                                    str(x).strip().lower() in ("true", "1", "yes")) \
        if "played_to_end" in v.columns else pd.Series(True, index=idx)
    is_check = role.isin(["gold", "catch"])

    vote_rule = pd.Series("", index=idx, dtype=object)
    vote_reason = pd.Series("", index=idx, dtype=object)
    dup = pd.DataFrame({"a": aid, "t": tid}).duplicated(keep="first")
    vote_rule[dup] = "duplicate"
    vote_reason[dup] = "same assignment_id and trial_id more than once (first kept)"
    live = ~dup
    # MTurk keeps a worker from taking one HIT twice, but one trial can sit in two HITs.
    rep = pd.DataFrame({"w": wid, "t": tid})[live].duplicated(keep="first").reindex(idx, fill_value=False)
    vote_rule[rep] = "repeat rater"
    vote_reason[rep] = "same worker answered the same trial in another assignment (first kept)"

    # Score every check row once.
    kind = v["kind"].astype("string").str.lower()
    truth = v["truth"] if "truth" in v.columns else pd.Series(pd.NA, index=idx)
    scored = pd.Series(pd.NA, index=idx, dtype="boolean")
    answer = v["answer"].to_numpy(object)
    for i in np.flatnonzero((is_check & live).to_numpy()):
        t = truth.iat[i]
        ok = check_passed(kind.iat[i], t if isinstance(t, str) else "",
                          None if blank.iat[i] else answer[i], cfg.mos_check_tolerance)
        scored.iat[i] = pd.NA if ok is None else ok
    notes = []
    unscored = int((is_check & live & scored.isna()).sum())
    if unscored:
        notes.append(f"{unscored} gold/catch answer(s) could not be scored (no usable truth) "
                     "and do not count for or against their rater")

    hit_trials, trial_hit = {}, {}
    if study is not None:
        hit_trials = {h.local_id: list(h.trial_ids) for h in study.hits}
        trial_hit = {t.trial_id: t.hit for t in study.trials}

    work = pd.to_numeric(v["work_time_s"], errors="coerce") if "work_time_s" in v.columns \
        else pd.Series(np.nan, index=idx)
    status = v["assignment_status"].astype("string") if "assignment_status" in v.columns \
        else pd.Series(pd.NA, index=idx, dtype="string")
    hit = v["hit_id"].astype("string").fillna("") if "hit_id" in v.columns \
        else pd.Series("", index=idx)

    rows = []
    counted = role.isin(VOTE_ROLES)  # practice questions are not votes
    frame = pd.DataFrame({"aid": aid, "wid": wid, "tid": tid, "role": role, "blank": blank,
                          "played": played, "scored": scored, "live": live & ~rep & counted,
                          "work": work, "status": status, "hit": hit})
    # Per-assignment lists built once with plain Python over numpy arrays: a pandas operation per
    # assignment took a minute at 100,000 votes.
    A = frame["aid"].to_numpy(object)
    T = frame["tid"].to_numpy(object)
    R = frame["role"].to_numpy(object)
    L = frame["live"].to_numpy(bool)
    B = frame["blank"].to_numpy(bool)
    P = frame["played"].to_numpy(bool)
    S = frame["scored"].to_numpy(object)
    lists: dict[str, dict[str, list]] = {}
    first_row: dict[str, int] = {}
    for j in range(len(A)):
        a = A[j]
        if a not in first_row:
            first_row[a] = j
            lists[a] = {"all": [], "catch_bad": [], "gold": [], "gold_bad": [], "unplayed": [],
                        "blank": [], "live": 0, "answered": 0, "checks": 0}
        d = lists[a]
        d["all"].append(T[j])
        d["answered"] += not B[j]
        if not L[j]:
            continue
        d["live"] += 1
        sc = S[j]
        has = sc is not pd.NA and sc is not None
        d["checks"] += has and R[j] in ("catch", "gold")
        if R[j] == "catch" and has and not sc:
            d["catch_bad"].append(T[j])
        elif R[j] == "gold" and has:
            d["gold"].append(T[j])
            if not sc:
                d["gold_bad"].append(T[j])
        if B[j]:
            d["blank"].append(T[j])
        elif not P[j]:
            d["unplayed"].append(T[j])
    for a in sorted(lists):
        d = lists[a]
        first = frame.iloc[first_row[a]]
        failed_catch, failed_gold = d["catch_bad"], d["gold_bad"]
        gold_scored = d["gold"]
        unplayed, unanswered = d["unplayed"], d["blank"]
        if study is not None:
            local = {trial_hit.get(t) for t in d["all"]} - {None, ""}
            want = {t for h in local for t in hit_trials.get(h, [])}
            unanswered = sorted(set(unanswered) | (want - set(d["all"])))
        reasons, rules = [], []
        if len(failed_catch) > cfg.max_failed_catch:
            rules.append("failed checks")
            reasons.append(f"{len(failed_catch)} attention check(s) answered wrongly")
        if len(gold_scored) and len(failed_gold) / len(gold_scored) > cfg.max_gold_error_rate:
            rules.append("failed checks")
            reasons.append(f"{len(failed_gold)} of {len(gold_scored)} known-answer question(s) "
                           "answered wrongly")
        if cfg.require_played_to_end and unplayed:
            rules.append("playback")
            reasons.append(f"{len(unplayed)} answer(s) given before the videos played to the end")
        if len(unanswered) > cfg.max_unanswered:
            rules.append("no answer")
            reasons.append(f"{len(unanswered)} question(s) left unanswered")
        rows.append({
            "assignment_id": a, "worker_id": first["wid"], "hit_id": str(first["hit"]),
            "n_answers": d["answered"], "n_checks": d["checks"],
            "n_failed_catch": len(failed_catch), "n_gold": len(gold_scored),
            "n_failed_gold": len(failed_gold), "n_unplayed": len(unplayed),
            "n_unanswered": len(unanswered), "work_time_s": float(first["work"]),
            "n_trials": d["live"], "status": first["status"],
            "pay": "reject" if reasons else "approve", "pay_reason": "; ".join(reasons),
            "pay_rule": rules[0] if rules else "",
            "failed_catch": " ".join(failed_catch), "failed_gold": " ".join(failed_gold),
            "unplayed": " ".join(unplayed), "unanswered": " ".join(unanswered),
        })
    asg = pd.DataFrame(rows)

    # Rater screening over all of a rater's scored checks (every assignment).
    chk = frame[frame["live"] & frame["scored"].notna()]
    stat = chk.assign(ok=chk["scored"].astype(bool)).groupby("wid")["ok"].agg(
        n_checks="size", n_passed="sum")
    raters = pd.DataFrame(index=pd.Index(sorted(frame["wid"].unique()), name="worker_id"))
    raters = raters.join(stat.rename_axis("worker_id")).fillna(
        {"n_checks": 0, "n_passed": 0}).astype({"n_checks": int, "n_passed": int})
    raters["n_failed"] = raters["n_checks"] - raters["n_passed"]
    with np.errstate(invalid="ignore", divide="ignore"):
        raters["fail_rate"] = np.where(raters["n_checks"] > 0,
                                       raters["n_failed"] / raters["n_checks"].clip(lower=1),
                                       math.nan)
    raters["excluded_by"] = ""
    failing = set(raters.index[raters["fail_rate"] > cfg.max_check_fail_rate])
    unscreened = set(raters.index[raters["n_checks"] == 0])
    raters.loc[list(failing), "excluded_by"] = "checks"
    if cfg.drop_unscreened_raters:
        raters.loc[list(unscreened), "excluded_by"] = "unscreened"
    elif unscreened:
        notes.append(f"{len(unscreened)} rater(s) saw no scorable gold/catch trial and were "
                     "kept unscreened")

    keep, keep_reason, keep_rule = [], [], []
    for r in asg.itertuples(index=False):
        n_tr = max(int(r.n_trials), 1)
        if r.pay == "reject":
            keep_rule.append(r.pay_rule)
            keep_reason.append("rejected for pay: " + r.pay_reason)
        elif isinstance(r.status, str) and r.status == "Rejected":
            keep_rule.append("rejected")
            keep_reason.append("rejected on the platform")
        elif r.worker_id in failing:
            keep_rule.append("rater screened")
            keep_reason.append(f"rater failed more than {cfg.max_check_fail_rate:.0%} of all "
                               "their gold/catch trials")
        elif cfg.drop_unscreened_raters and r.worker_id in unscreened:
            keep_rule.append("unscreened")
            keep_reason.append("rater answered no scorable gold/catch trial")
        elif not math.isnan(r.work_time_s) and r.work_time_s < cfg.min_seconds_per_trial * n_tr:
            keep_rule.append("too fast")
            keep_reason.append(f"assignment took less than {cfg.min_seconds_per_trial:g} s "
                               "per trial")
        elif cfg.max_work_time_s is not None and not math.isnan(r.work_time_s) \
                and r.work_time_s > cfg.max_work_time_s:
            keep_rule.append("too slow")
            keep_reason.append(f"assignment took more than {cfg.max_work_time_s:g} s")
        else:
            keep_rule.append("")
            keep_reason.append("")
        keep.append(keep_rule[-1] == "")
    if len(asg):
        asg["keep"] = keep
        asg["keep_reason"] = keep_reason
        asg["keep_rule"] = keep_rule
    else:
        asg = pd.DataFrame(columns=DECISION_COLUMNS + ["keep_rule", "n_trials", "status"])
    untimed = int(asg["work_time_s"].isna().sum()) if len(asg) else 0
    if untimed:
        notes.append(f"{untimed} assignment(s) carry no work_time_s; time limits not checked "
                     "for them")

    # Per vote: the assignment's verdict, then vote-level rules inside kept assignments.
    by_a = asg.set_index("assignment_id") if len(asg) else None
    a_rule = aid.map(by_a["keep_rule"]) if by_a is not None else pd.Series("", index=idx)
    a_reason = aid.map(by_a["keep_reason"]) if by_a is not None else pd.Series("", index=idx)
    todo = vote_rule == ""
    m = todo & (a_rule != "")
    vote_rule[m] = a_rule[m]
    vote_reason[m] = a_reason[m]
    todo = vote_rule == ""
    m = todo & ~played.astype(bool) & ~blank & cfg.require_played_to_end
    vote_rule[m] = "playback"
    vote_reason[m] = "answered before every clip of the trial played to its end"
    todo = vote_rule == ""
    m = todo & blank
    vote_rule[m] = "no answer"
    vote_reason[m] = "trial left unanswered"
    vote_keep = vote_rule == ""
    for ser in (vote_keep, vote_rule, vote_reason):
        ser.index = orig_index
    asg = asg[[c for c in DECISION_COLUMNS] + ["keep_rule"]]
    return QCDecisions(asg.reset_index(drop=True), vote_keep, vote_rule, vote_reason,
                       raters.reset_index(), cfg, notes)


def assess(votes: pd.DataFrame, rules: QCConfig | None = None, study=None) -> list[AssignmentVerdict]:
    """Per-assignment verdicts of `decide` (pay: `passed`, `reasons`; keep: `keep`, `keep_reason`)."""
    return decide(votes, rules, study).verdicts()


def write_decisions(decisions: QCDecisions, votes_path: str | Path) -> Path:
    """``qc_decisions.csv`` (+ ``qc_decisions.json``: the config and counts) beside the votes."""
    from regnet.atomic import atomic_path

    out = Path(votes_path).parent / DECISIONS_NAME
    doc = {"config": decisions.config.to_dict(), "votes": Path(votes_path).name,
           "assignments": int(len(decisions.assignments)),
           "approve": int((decisions.assignments["pay"] == "approve").sum()),
           "keep": int(decisions.assignments["keep"].astype(bool).sum())}
    try:
        with atomic_path(out, ".tmp") as tmp:
            decisions.assignments.to_csv(tmp, index=False)
        with atomic_path(out.with_suffix(".json"), ".tmp") as tmp:
            Path(tmp).write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as e:
        raise UserError(f"{out}: cannot write the QC decisions ({e.strerror or e})") from None
    return out


def read_decisions(path: str | Path) -> tuple[pd.DataFrame, QCConfig]:
    path = Path(path)
    side = path.with_suffix(".json")
    df = read_table(path, "QC decisions", required=("assignment_id", "pay", "keep"),
                    dtype={"assignment_id": str, "worker_id": str, "hit_id": str}, keep_default_na=False)
    try:
        doc = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{side}: not readable QC decisions ({str(e).splitlines()[0]})") from None
    return df, QCConfig.from_dict(doc.get("config", {}), f"{side}: config")


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

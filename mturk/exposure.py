"""Exposure control: no rater judges two conditions (systems' sounds) of one video.

Real-or-fake leaks its answer when one rater hears a video with its real sound and again with a
generated one; the paper shows a video with the real *or* a generated sound. So the conditions of
each video are split over rater groups by a Latin square: with K conditions (systems) there are K
groups and group g sees the i-th video (sorted ids) with condition (i + g) mod K, so every group
sees every video once and every (video, condition) is judged by exactly one group. Each HIT holds
trials of one group only (mturk/trials.py).

Enforcement uses MTurk's own primitives, so MTurk and our server behave alike:
- one qualification type per group ("regnet-bench exposure <study> (<uid>) <protocol> group g");
- each group's HITs (a HIT type per group) require the *other* groups' qualifications to be absent
  (Comparator DoesNotExist, guarding discover, preview and accept);
- the group's qualification is granted to a rater who takes one of its HITs. Our server does it in
  the accept transaction itself, reading the rule from the HIT's RequesterAnnotation
  (``<token> grant-on-accept=<qualification type id>``, docs/architecture.md; eval_server/exposure.py).
  MTurk has no such hook: `sync-exposure` (also run by `collect`) grants it with
  AssociateQualificationWithWorker to the workers of every submitted assignment. MTurk's API does
  not list assignments that are accepted but not yet submitted, so on MTurk a rater can take HITs
  of two groups between their first accept and the next sync after their first submit: run
  `sync-exposure` often while a study runs. `report` finds and drops what slips through.

`check_votes` is that check: a violation is a worker with main votes on two or more conditions of
one video in a controlled protocol; the votes of the condition they judged first are kept (that
judgement was made unexposed), the later ones are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from regnet.errors import UserError

log = logging.getLogger(__name__)

EXPOSURE_PROTOCOLS = ("real_fake", "mos")
# RequesterAnnotation convention shared with eval_server/exposure.py (which must not import us).
GRANT_MARK = "grant-on-accept="
RULE = "group g sees the i-th video (sorted ids) with condition (i + g) mod K"


def latin_square(videos: list[str], conditions: list[str]) -> list[list[str]]:
    """square[g][i]: the condition group g sees video i with."""
    k = len(conditions)
    return [[conditions[(i + g) % k] for i in range(len(videos))] for g in range(k)]


@dataclass
class ExposureDesign:
    protocol: str
    conditions: list[str]
    videos: list[str]
    square: list[list[str]]
    hits: dict[str, list[str]] = field(default_factory=dict)  # group -> local HIT ids
    trials: dict[str, list[str]] = field(default_factory=dict)  # group -> main trial ids

    @property
    def n_groups(self) -> int:
        return len(self.square)

    def to_json(self) -> dict:
        return {"protocol": self.protocol, "rule": RULE, "conditions": self.conditions,
                "groups": self.n_groups, "videos": self.videos, "square": self.square, "hits": self.hits,
                "trials": self.trials,
                "enforced_by": "one qualification per group, granted on accept; each group's HITs require "
                               "the other groups' qualifications DoesNotExist"}

    @classmethod
    def from_json(cls, d: dict) -> "ExposureDesign":
        return cls(d["protocol"], list(d["conditions"]), list(d["videos"]), [list(r) for r in d["square"]],
                   {str(k): list(v) for k, v in d.get("hits", {}).items()},
                   {str(k): list(v) for k, v in d.get("trials", {}).items()})


def designs_of(study) -> dict[str, ExposureDesign]:
    return {p: ExposureDesign.from_json(d) for p, d in (study.exposure or {}).items()}


# ---- publishing -------------------------------------------------------------------------------------

def qual_name(study, protocol: str, group: int) -> str:
    return f"regnet-bench exposure {study.name} ({study.uid}) {protocol} group {group}"


def annotation(token: str, grant_qual_id: str | None) -> str:
    """RequesterAnnotation of a HIT: its request token, then the grant rule (MTurk allows 255 chars)."""
    return token if not grant_qual_id else f"{token} {GRANT_MARK}{grant_qual_id}"


def token_of(annotation_text: str | None) -> str:
    return (annotation_text or "").split(" ", 1)[0]


def group_requirements(quals: dict[tuple[str, int], str], protocol: str, group: int) -> list[dict]:
    """The other groups' qualifications must be absent to see, preview or accept this group's HITs."""
    return [{"QualificationTypeId": qid, "Comparator": "DoesNotExist", "ActionsGuarded": "DiscoverPreviewAndAccept"}
            for (p, g), qid in sorted(quals.items()) if p == protocol and g != group]


def ledger_key(protocol: str, group: int) -> str:
    return f"exposure_qual:{protocol}:{group}"


@dataclass
class SyncResult:
    granted: int = 0
    already: int = 0
    hits: int = 0


def sync_exposure(study, ledger, client_for, target=None) -> SyncResult:
    """Grant each group's qualification to the workers of its submitted assignments (MTurk has no
    grant-on-accept). Idempotent: the ledger remembers who was granted what."""
    from mturk.client import api_errors
    from mturk.collect import _targets, list_assignments

    res = SyncResult()
    group_of = {h.local_id: (h.kind, h.group) for h in study.hits if h.group is not None}
    if not group_of:
        return res
    for tgt in _targets(study, ledger, target):
        client = None
        for row in ledger.hits(study.name, tgt.endpoint):
            if not row.hit_id or row.local_hit not in group_of:
                continue
            protocol, g = group_of[row.local_hit]
            qid = ledger.get(tgt.endpoint, study.name, ledger_key(protocol, g))
            if not qid:
                continue
            client = client or client_for(tgt)
            res.hits += 1
            for a in list_assignments(client, tgt, row.hit_id):
                w = a["WorkerId"]
                if ledger.is_marked(tgt.endpoint, qid, w):
                    res.already += 1
                    continue
                with api_errors(tgt, "AssociateQualificationWithWorker"):
                    client.associate_qualification_with_worker(QualificationTypeId=qid, WorkerId=w,
                                                               IntegerValue=1, SendNotification=False)
                ledger.mark_worker(tgt.endpoint, qid, w)
                res.granted += 1
    return res


# ---- checking votes against the design ----------------------------------------------------------------

@dataclass
class ExposureCheck:
    summary: pd.DataFrame  # one row per protocol
    violations: pd.DataFrame  # worker_id, kind, video_id, conditions (in the order judged), votes_dropped
    drop: pd.Index  # index labels of the votes to drop (empty when only flagging)
    notes: list[str] = field(default_factory=list)


SUMMARY_COLUMNS = ["Protocol", "Design", "Conditions", "Rater groups", "Workers",
                   "Workers with 2+ conditions of a video", "Votes dropped"]


def check_votes(votes: pd.DataFrame, exposure: dict | None, drop: bool = True) -> ExposureCheck:
    """Compare main votes with the design. ``exposure``: study.json's ``exposure`` section (may be
    empty: then real-or-fake is still checked and violations are flagged, not dropped)."""
    exposure = exposure or {}
    need = {"worker_id", "video_id", "left_system", "kind"}
    rows, viol, to_drop, notes = [], [], [], []
    if not need <= set(votes.columns):
        return ExposureCheck(pd.DataFrame(columns=SUMMARY_COLUMNS), pd.DataFrame(), pd.Index([]),
                             ["exposure not checked: the votes have no video_id/left_system columns"])
    role = votes["trial_role"].fillna("main") if "trial_role" in votes.columns else pd.Series("main", index=votes.index)
    protocols = list(exposure) or (["real_fake"] if (votes["kind"] == "real_fake").any() else [])
    for p in protocols:
        d = exposure.get(p)
        m = votes[(votes["kind"] == p) & (role == "main") & votes["video_id"].notna()]
        if m.empty:
            continue
        order_cols = [c for c in ("submit_time", "assignment_id") if c in m.columns]
        m = m.sort_values(order_cols, kind="stable") if order_cols else m
        n_bad_workers, n_dropped = set(), 0
        # Only (worker, video) groups with 2+ conditions can break the design: looping over every
        # group took ~30 s at 100,000 votes (benchmarks/report.py).
        several = m.groupby(["worker_id", "video_id"])["left_system"].transform("nunique") > 1
        for (w, v), g in m[several].groupby(["worker_id", "video_id"], sort=True):
            conds = list(dict.fromkeys(g["left_system"].astype(str)))
            if len(conds) < 2:
                continue
            n_bad_workers.add(w)
            later = g[g["left_system"].astype(str) != conds[0]]
            dropping = bool(d) and drop
            if dropping:
                to_drop.extend(later.index)
                n_dropped += len(later)
            viol.append({"worker_id": w, "kind": p, "video_id": v, "conditions": " > ".join(conds),
                         "votes_dropped": len(later) if dropping else 0})
        design = f"Latin square over rater groups ({RULE})" if d else "none recorded"
        rows.append({"Protocol": p, "Design": design,
                     "Conditions": ", ".join(d["conditions"]) if d else ", ".join(sorted(m["left_system"].astype(str).unique())),
                     "Rater groups": d["groups"] if d else "–", "Workers": m["worker_id"].nunique(),
                     "Workers with 2+ conditions of a video": len(n_bad_workers), "Votes dropped": n_dropped})
        if d and n_bad_workers:
            notes.append(f"{p}: {len(n_bad_workers)} worker(s) judged two or more conditions of one video "
                         f"(the exposure control leaked); their votes after the first condition "
                         f"({n_dropped}) are dropped.")
        elif not d and n_bad_workers:
            notes.append(f"{p}: no exposure control in this study, and {len(n_bad_workers)} worker(s) judged two "
                         "or more conditions of one video: these judgements are not independent (flagged, "
                         "not dropped; build the study with exposure control).")
        elif d:
            notes.append(f"{p}: every worker judged each video in one condition only.")
    return ExposureCheck(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), pd.DataFrame(viol), pd.Index(to_drop), notes)


def exposure_section(study_json: str | Path | None) -> dict:
    """study.json's ``exposure`` section, {} when there is none or no study."""
    import json

    if study_json is None:
        return {}
    p = Path(study_json)
    p = p / "study.json" if p.is_dir() else p
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{p}: cannot read the study's exposure design ({e})") from None
    section = doc.get("exposure") if isinstance(doc, dict) else None
    return section if isinstance(section, dict) else {}


def for_report(df: pd.DataFrame, study_dir: str | Path | None):
    """(votes without the dropped ones, a report table stating the design) — the table is None
    when there is nothing to say (no controlled protocol and no real-or-fake vote)."""
    from mturk.report.tables import Table

    chk = check_votes(df, exposure_section(study_dir))
    if chk.summary.empty:
        return df, None
    if len(chk.drop):
        log.warning("exposure: %d vote(s) dropped (a worker judged two conditions of one video)", len(chk.drop))
    notes = list(chk.notes)
    if not chk.violations.empty:
        ex = chk.violations.head(5)
        notes.append("e.g. " + "; ".join(f"worker {r.worker_id}, video {r.video_id}: {r.conditions}"
                                         for r in ex.itertuples()))
    table = Table("design_exposure", "Design: exposure control (no rater judges two conditions of a video)",
                  chk.summary, chk.summary.astype(str), notes)
    return df.drop(index=chk.drop), table

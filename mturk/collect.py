"""Collect submitted work from every HIT in the ledger into the votes table, and act on it:
approve / reject by the QC verdict (with the RequesterFeedback MTurk requires to reject), expire a
study early. Re-running `collect` adds only assignments the votes table does not hold yet."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from mturk.answers import AssignmentInfo, parse_question_form_answers, vote_rows, work_seconds
from mturk.client import Target, api_errors
from mturk.ledger import Ledger
from mturk.qc import AssignmentVerdict, QCConfig, QCRules, assess, decide, write_decisions
from mturk.study import Study
from mturk.votes import VOTE_COLUMNS, blank_answer_rows, read_votes, write_votes
from regnet.errors import UserError

log = logging.getLogger(__name__)

STATUSES = ["Submitted", "Approved", "Rejected"]
ClientFor = Callable[[Target], object]


@dataclass
class CollectResult:
    new_assignments: int = 0
    new_votes: int = 0
    seen_assignments: int = 0
    marked_workers: int = 0
    exposure_granted: int = 0  # rater-group qualifications granted (exposure control)
    hits: int = 0
    skipped: list[str] = field(default_factory=list)
    votes_path: Path | None = None


def _targets(study: Study, ledger: Ledger, target: Target | None) -> list[Target]:
    endpoints = ledger.endpoints(study.name)
    if target is not None:
        if target.endpoint not in endpoints:
            raise UserError(f"{ledger.path}: no HIT of study {study.name} was created on {target.endpoint} "
                            f"(the ledger knows: {', '.join(endpoints) or 'none'})")
        return [target]
    if not endpoints:
        raise UserError(f"{ledger.path}: no HITs published for study {study.name}; run publish-hits first")
    from mturk.client import resolve_target

    return [resolve_target(endpoint_url=e) for e in endpoints]


def list_assignments(client, target: Target, hit_id: str) -> list[dict]:
    out, kwargs = [], {"HITId": hit_id, "MaxResults": 100, "AssignmentStatuses": STATUSES}
    with api_errors(target, f"ListAssignmentsForHIT {hit_id}"):
        while True:
            page = client.list_assignments_for_hit(**kwargs)
            out.extend(page.get("Assignments", []))
            # An empty page with a token would loop forever on a misbehaving server.
            if not page.get("NextToken") or not page.get("Assignments"):
                return out
            kwargs["NextToken"] = page["NextToken"]


def collect(study: Study, ledger: Ledger, client_for: ClientFor, votes_path: str | Path,
            target: Target | None = None) -> CollectResult:
    votes_path = Path(votes_path)
    old = read_votes(votes_path) if votes_path.is_file() else pd.DataFrame(columns=VOTE_COLUMNS)
    known = set(old["assignment_id"].astype(str))
    trials = study.trial_index()
    res = CollectResult(votes_path=votes_path)
    rows: list[dict] = []
    new_workers: dict[str, set[str]] = {}
    for tgt in _targets(study, ledger, target):
        client = client_for(tgt)
        for hit in ledger.hits(study.name, tgt.endpoint):
            if not hit.hit_id:
                continue
            res.hits += 1
            for a in list_assignments(client, tgt, hit.hit_id):
                aid = a["AssignmentId"]
                res.seen_assignments += 1
                ledger.record_assignment(tgt.endpoint, hit.hit_id, aid, a["WorkerId"], a["AssignmentStatus"])
                new_workers.setdefault(tgt.endpoint, set()).add(a["WorkerId"])
                if aid in known:
                    continue
                submit, accept = a.get("SubmitTime"), a.get("AcceptTime")
                info = AssignmentInfo(study=study.name, hit_id=hit.hit_id, assignment_id=aid, worker_id=a["WorkerId"],
                                      submit_time=_iso(submit), work_time_s=work_seconds(accept, submit),
                                      status=a["AssignmentStatus"])
                try:
                    answers = parse_question_form_answers(a.get("Answer", ""), f"assignment {aid}")
                except UserError as e:
                    res.skipped.append(str(e))  # not marked known: the next collect tries again
                    continue
                got = vote_rows(info, answers, trials)
                got += blank_answer_rows(info, answers, trials, got)
                if not got:
                    log.warning("assignment %s (HIT %s) holds no answer to a trial of this study", aid, hit.hit_id)
                rows.extend(got)
                known.add(aid)
                res.new_assignments += 1
    if res.skipped:
        log.warning("%d assignment(s) skipped:\n  %s", len(res.skipped), "\n  ".join(res.skipped))
    if rows:
        new = pd.DataFrame(rows)
        merged = new if old.empty else pd.concat([old, new], ignore_index=True)
        write_votes(votes_path, merged)
        res.new_votes = len(new)
        # The one QC pass (mturk.qc.decide), beside the votes: what approve/reject will do and
        # what report will keep, under the study's rules.
        write_decisions(decide(read_votes(votes_path), QCConfig.for_study(study.directory), study),
                        votes_path)
    # Marking participants comes after the votes are safe on disk: a failure here loses nothing.
    if study.qualifications.mark_participants and new_workers:
        by_endpoint = {t.endpoint: t for t in _targets(study, ledger, None)}
        for endpoint, workers in new_workers.items():
            qid = ledger.get(endpoint, study.name, "participant_qual_id")
            if not qid:
                continue
            tgt = by_endpoint[endpoint]
            client = client_for(tgt)
            for w in sorted(workers):
                if ledger.is_marked(endpoint, qid, w):
                    continue
                with api_errors(tgt, "AssociateQualificationWithWorker"):
                    client.associate_qualification_with_worker(QualificationTypeId=qid, WorkerId=w,
                                                               IntegerValue=1, SendNotification=False)
                ledger.mark_worker(endpoint, qid, w)
                res.marked_workers += 1
    if study.exposure:
        # MTurk has no grant-on-accept: give each rater group's qualification to the workers seen
        # (mturk/exposure.py), closing the other groups' HITs to them.
        from mturk.exposure import sync_exposure

        res.exposure_granted = sync_exposure(study, ledger, client_for, target).granted
    return res


def _iso(t) -> str:
    if isinstance(t, datetime):
        return t.astimezone(timezone.utc).isoformat(timespec="seconds")
    return str(t or "")


@dataclass
class ReviewPlan:
    approve: list[AssignmentVerdict] = field(default_factory=list)
    reject: list[AssignmentVerdict] = field(default_factory=list)
    already_reviewed: int = 0


def review_plan(study: Study, ledger: Ledger, votes: pd.DataFrame, rules: QCRules, approve_all: bool = False) -> ReviewPlan:
    """Which submitted (not yet reviewed) assignments pass and which fail QC."""
    plan = ReviewPlan()
    for v in assess(votes, rules, study):
        row = ledger.assignment(v.assignment_id)
        if row is None or row.status != "Submitted":
            plan.already_reviewed += 1
            continue
        (plan.approve if (v.passed or approve_all) else plan.reject).append(v)
    return plan


def apply_review(verdicts: list[AssignmentVerdict], action: str, ledger: Ledger, client_for: ClientFor) -> int:
    """``action``: approve | reject. Each assignment's own endpoint comes from the ledger. One
    refused call (e.g. auto-approved meanwhile) does not stop the rest; failures are listed."""
    from mturk.client import resolve_target

    done, failed = 0, []
    for v in verdicts:
        row = ledger.assignment(v.assignment_id)
        tgt = resolve_target(endpoint_url=row.endpoint)
        client = client_for(tgt)
        fb = v.feedback() if action == "reject" or v.passed else "Thank you for your work."
        try:
            with api_errors(tgt, f"{action.capitalize()}Assignment {v.assignment_id}"):
                if action == "approve":
                    client.approve_assignment(AssignmentId=v.assignment_id, RequesterFeedback=fb)
                else:
                    client.reject_assignment(AssignmentId=v.assignment_id, RequesterFeedback=fb)
        except UserError as e:
            if "credentials" in str(e) or "cannot reach" in str(e):
                raise  # nothing else will work either
            failed.append(str(e))
            continue
        ledger.record_review(v.assignment_id, "Approved" if action == "approve" else "Rejected", fb)
        done += 1
    if failed:
        log.warning("%d assignment(s) not %s:\n  %s", len(failed), action + "d", "\n  ".join(failed))
    return done


def expire(study: Study, ledger: Ledger, client_for: ClientFor, target: Target | None = None) -> int:
    """End every live HIT of the study now: MTurk expires a HIT whose ExpireAt lies in the past."""
    n = 0
    for tgt in _targets(study, ledger, target):
        client = client_for(tgt)
        for hit in ledger.hits(study.name, tgt.endpoint, "created"):
            with api_errors(tgt, f"UpdateExpirationForHIT {hit.hit_id}"):
                client.update_expiration_for_hit(HITId=hit.hit_id, ExpireAt=datetime(1970, 1, 1, tzinfo=timezone.utc))
            ledger.mark_expired(tgt.endpoint, hit.hit_id)
            n += 1
    return n

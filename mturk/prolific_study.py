"""A study on Prolific: its draft study, publishing behind the spend flags, matching submissions to
the server's assignments, and paying (approve / reject / bonus / stop) from the one QC's decisions.

How a study maps onto Prolific (README, "Recruiting on Prolific"): Prolific sends each participant
to our rating server (``external_study_url`` = the server's public ``/worker`` URL with Prolific's
``{%PROLIFIC_PID%}``, ``{%STUDY_ID%}`` and ``{%SESSION_ID%}``), where the PROLIFIC_PID becomes the
rater's identity. A participant takes ``hits_per_participant`` HITs (one by default, which also
keeps each participant inside one condition of an exposure-controlled design), so the study needs
HITs x assignments / hits_per_participant places; the reward per place is the study's reward per
HIT times hits_per_participant. The server then sends them back to Prolific with the code for how
they finished: completed (manual review: QC decides pay), failed screening (manual review: the
README says why it should normally be paid), or timed out (asked to return).

The ledger (``DIR/ledger.sqlite``) keeps the Prolific study id, so a re-run never creates a second
draft: a row is marked pending before the create call, and a pending row is resolved by looking
for the draft's unique internal name before creating again.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from mturk.ledger import Ledger
from mturk.prolific import ProlificClient, Submission, check_rejection
from mturk.study import Study
from regnet.errors import UserError

log = logging.getLogger(__name__)

LEDGER_ENDPOINT = "prolific"
COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc="
PARAMS = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
REVIEWED = ("APPROVED", "REJECTED", "RETURNED", "TIMED-OUT", "SCREENED OUT")


@dataclass(frozen=True)
class CompletionCodes:
    completed: str
    screened_out: str
    timed_out: str

    def url(self, which: str) -> str:
        return COMPLETE_URL + getattr(self, which)


@dataclass
class ProlificPlan:
    name: str
    internal_name: str
    description: str
    external_study_url: str
    places: int
    reward_cents: int
    estimated_minutes: int
    hits_per_participant: int
    codes: CompletionCodes
    extra: dict = field(default_factory=dict)

    def body(self) -> dict:
        """The "Create a draft study" request body."""
        return {
            "name": self.name, "internal_name": self.internal_name, "description": self.description,
            "external_study_url": self.external_study_url, "prolific_id_option": "url_parameters",
            "completion_codes": [
                {"code": self.codes.completed, "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]},
                {"code": self.codes.screened_out, "code_type": "OTHER", "actions": [{"action": "MANUALLY_REVIEW"}]},
                {"code": self.codes.timed_out, "code_type": "OTHER", "actions": [{"action": "REQUEST_RETURN"}]},
            ],
            "total_available_places": self.places, "estimated_completion_time": self.estimated_minutes,
            "reward": self.reward_cents, "device_compatibility": ["desktop"],
            "peripheral_requirements": ["audio"], **self.extra,
        }


def completion_codes(study: Study) -> CompletionCodes:
    """Codes derived from the study's content hash: stable across re-runs, different per study."""
    def code(kind: str) -> str:
        return hashlib.sha256(f"{study.uid}:{kind}".encode()).hexdigest()[:8].upper()
    return CompletionCodes(code("completed"), code("screened_out"), code("timed_out"))


def estimated_minutes(study: Study, hits_per_participant: int) -> int:
    """Prolific's estimated completion time: a minute per trial shown (two clips of a few seconds
    and the answer, checks and practice included) plus three minutes of consent, calibration and
    headphone check, rounded up. Pass --estimated-minutes to state a measured figure instead."""
    per_hit = max(len(h.trial_ids) + (1 if h.practice_id else 0) for h in study.hits) if study.hits else 0
    return int(math.ceil(per_hit * hits_per_participant * 1.0 + 3))


def plan_for(study: Study, public_url: str, *, hits_per_participant: int = 1,
             minutes: int | None = None) -> ProlificPlan:
    if not public_url.startswith(("http://", "https://")):
        raise UserError(f"--public-url: {public_url!r} is not an http(s) URL where Prolific participants "
                        "can reach the rating server")
    if hits_per_participant < 1:
        raise UserError("--hits-per-participant: must be at least 1")
    slots = len(study.hits) * study.max_assignments
    places = math.ceil(slots / hits_per_participant)
    reward = (Decimal(study.reward) * 100 * hits_per_participant).quantize(Decimal("1"), ROUND_HALF_UP)
    url = public_url.rstrip("/") + "/worker?" + PARAMS
    return ProlificPlan(
        name=study.title, internal_name=f"regnet-bench {study.name} {study.uid[:12]}",
        description=study.description, external_study_url=url, places=places, reward_cents=int(reward),
        estimated_minutes=minutes or estimated_minutes(study, hits_per_participant),
        hits_per_participant=hits_per_participant, codes=completion_codes(study))


@dataclass
class PublishResult:
    prolific_id: str
    status: str
    created: bool
    published: bool
    total_cost_cents: int
    plan: ProlificPlan


def cost_lines(plan: ProlificPlan, total_cents: int) -> list[str]:
    rewards = plan.reward_cents * plan.places
    return [f"Prolific: {plan.places} places x {plan.reward_cents / 100:.2f} reward "
            f"({plan.hits_per_participant} HIT(s) each, about {plan.estimated_minutes} min) = {rewards / 100:.2f} "
            f"in rewards; Prolific's fee and VAT at your account's rates: {(total_cents - rewards) / 100:.2f}; "
            f"total {total_cents / 100:.2f} (your account's currency; from Prolific's cost calculator)"]


def publish(study: Study, ledger: Ledger, client: ProlificClient, plan: ProlificPlan, *, production: bool = False,
            yes_spend_money: bool = False, max_cost: Decimal | None = None) -> PublishResult:
    """Create the draft (once) and, with all three spend flags, publish it. Nothing is spent until
    publishing, which locks rewards + fees in the Prolific account."""
    total = client.study_cost(plan.reward_cents, plan.places)
    if production:
        if not yes_spend_money or max_cost is None:
            raise UserError("--production on Prolific publishes the study and locks its cost in your account: "
                            "add --yes-spend-money and --max-cost AMOUNT")
        if Decimal(total) / 100 > max_cost:
            raise UserError(f"--max-cost: the study costs {total / 100:.2f} on Prolific, above {max_cost}; "
                            "nothing was published")
    key = study.uid
    pid = ledger.get(LEDGER_ENDPOINT, key, "study_id")
    created = False
    if pid is None and ledger.get(LEDGER_ENDPOINT, key, "pending"):
        pid = _find_by_internal_name(client, plan.internal_name)
        if pid:
            ledger.put(LEDGER_ENDPOINT, key, "study_id", pid)
    if pid is None:
        ledger.put(LEDGER_ENDPOINT, key, "pending", plan.internal_name)
        out = client.create_study(plan.body())
        pid = str(out.get("id") or "")
        if not pid:
            raise UserError("Prolific: the draft study was created without an id in the answer; look in the app")
        ledger.put(LEDGER_ENDPOINT, key, "study_id", pid)
        ledger.put(LEDGER_ENDPOINT, key, "codes", ",".join(asdict(plan.codes).values()))
        created = True
        log.info("Prolific draft study %s created (%d places)", pid, plan.places)
    status = str(client.get_study(pid).get("status", "UNPUBLISHED"))
    published = False
    if production and status == "UNPUBLISHED":
        out = client.transition_study(pid, "PUBLISH")
        status = str(out.get("status") or "PUBLISHING")
        ledger.put(LEDGER_ENDPOINT, key, "published", status)
        published = True
    return PublishResult(pid, status, created, published, total, plan)


def _find_by_internal_name(client: ProlificClient, internal_name: str) -> str | None:
    out = client.request("GET", "/api/v1/studies/")
    for s in out.get("results", []) if isinstance(out, dict) else []:
        if s.get("internal_name") == internal_name:
            return str(s.get("id"))
    return None


def study_id_of(study: Study, ledger: Ledger) -> str:
    pid = ledger.get(LEDGER_ENDPOINT, study.uid, "study_id")
    if not pid:
        raise UserError(f"{study.directory}: not published on Prolific (no Prolific study id in its ledger); "
                        "run publish-hits --prolific first")
    return pid


@dataclass
class Reconciliation:
    matched: list[Submission]
    prolific_only: list[Submission]  # submitted on Prolific, no answers on our server
    server_only: list[str]  # answered on our server, no submission on Prolific
    screened_out: list[Submission] = field(default_factory=list)  # came back with the screen-out code

    def lines(self) -> list[str]:
        out = [f"Prolific: {len(self.matched)} submissions match raters on the server"
               + (f", {len(self.screened_out)} screened out by the listening check" if self.screened_out else "")]
        if self.prolific_only:
            out.append(f"Prolific: {len(self.prolific_only)} submitted on Prolific with no answers on the server: "
                       + ", ".join(f"{s.participant_id} ({s.status})" for s in self.prolific_only[:10]))
        if self.server_only:
            out.append(f"Prolific: {len(self.server_only)} raters answered on the server with no Prolific "
                       "submission: " + ", ".join(self.server_only[:10]))
        return out


def reconcile(submissions: list[Submission], server_workers: set[str], screened_out_code: str = "") -> Reconciliation:
    """Match Prolific submissions (participant ids) with the workers who answered on the server.
    Participants still working (ACTIVE), who returned the study, or who came back with the
    screen-out code (no answers by design) are not counted as missing."""
    by_pid = {s.participant_id: s for s in submissions}
    finished = [s for s in submissions if s.status not in ("ACTIVE", "RESERVED", "RETURNED")]
    screened = [s for s in finished if screened_out_code and s.study_code == screened_out_code
                and s.participant_id not in server_workers]
    matched = [s for s in finished if s.participant_id in server_workers]
    prolific_only = [s for s in finished if s.participant_id not in server_workers and s not in screened]
    server_only = sorted(w for w in server_workers if w not in by_pid)
    return Reconciliation(matched, prolific_only, server_only, screened)


@dataclass
class ReviewOutcome:
    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    no_decision: list[str] = field(default_factory=list)


def review(client: ProlificClient, submissions: list[Submission], pay: dict[str, tuple[bool, str]], *,
           message: str, category: str, dry_run: bool = False) -> ReviewOutcome:
    """Approve (in one bulk call) or reject each submission awaiting review as ``pay`` says
    (participant id -> (pay?, reason)); reviewed ones are left alone, so a re-run sends nothing new."""
    out = ReviewOutcome()
    to_approve = []
    for s in submissions:
        if s.status in REVIEWED:
            out.already.append(s.participant_id)
            continue
        if s.status != "AWAITING REVIEW":
            continue
        decision = pay.get(s.participant_id)
        if decision is None:
            out.no_decision.append(s.participant_id)
            continue
        ok, reason = decision
        if ok:
            to_approve.append(s)
        else:
            text = message if len(message) >= 100 or not reason else f"{message} ({reason})"
            check_rejection(text, category)
            if not dry_run:
                client.reject(s.id, text, category)
            out.rejected.append(s.participant_id)
    if to_approve and not dry_run:
        client.bulk_approve([s.id for s in to_approve])
    out.approved = [s.participant_id for s in to_approve]
    return out


def bonuses(client: ProlificClient, study_id: str, amounts: dict[str, str], *, yes_spend_money: bool,
            max_cost: Decimal | None) -> dict:
    """Set up and pay bonuses (participant id -> amount "1.50"); both spend flags required, and the
    total Prolific quotes (bonuses + fee + VAT) must stay within ``max_cost``."""
    if not amounts:
        raise UserError("--amounts: no bonuses listed")
    for pid, amt in amounts.items():
        try:
            if Decimal(amt) <= 0:
                raise ValueError
        except (ValueError, ArithmeticError):
            raise UserError(f"--amounts: {amt!r} for {pid} is not a positive amount like 1.50") from None
    if not yes_spend_money or max_cost is None:
        raise UserError("bonuses on Prolific spend money: add --yes-spend-money and --max-cost AMOUNT")
    setup = client.set_up_bonuses(study_id, amounts)
    total = Decimal(str(setup.get("total_amount", 0) or 0)) / 100
    if total > max_cost:
        raise UserError(f"--max-cost: the bonuses cost {total:.2f} with Prolific's fee and VAT, above {max_cost}; "
                        "they were set up but not paid")
    client.pay_bonuses(str(setup.get("id")))
    return setup


def participant_decisions(passed: list, failed: list, reviewed: list) -> dict[str, tuple[bool, str]]:
    """Pay per participant from the one QC's per-assignment verdicts: ``passed``/``failed`` are the
    verdicts (``worker_id``, ``reasons``) of assignments still to review, ``reviewed`` the ledger's
    rows (``worker_id``, ``status``, ``feedback``) of assignments reviewed earlier. A participant is
    paid when none of their assignments failed; one failure rejects the whole submission, since
    Prolific pays per participant, not per HIT."""
    out: dict[str, tuple[bool, str]] = {}
    for r in reviewed:
        if r.status == "Rejected":
            out[r.worker_id] = (False, r.feedback or "rejected in review")
        elif r.status == "Approved":
            out.setdefault(r.worker_id, (True, ""))
    for v in passed:
        out.setdefault(v.worker_id, (True, ""))
    for v in failed:
        prev = out.get(v.worker_id)
        reason = "; ".join(v.reasons) or "failed QC"
        out[v.worker_id] = (False, reason if prev is None or prev[0] else f"{prev[1]}; {reason}")
    return out


def write_recruit_config(path, plan: ProlificPlan) -> None:
    """``DIR/prolific.json``: what ``serve --recruit-config`` needs (eval_server/recruit.py reads it)."""
    import json
    from pathlib import Path

    Path(path).write_text(json.dumps({
        "completion_url": plan.codes.url("completed"), "screenout_url": plan.codes.url("screened_out"),
        "timeout_url": plan.codes.url("timed_out"), "hits_per_participant": plan.hits_per_participant,
        "external_study_url": plan.external_study_url}, indent=1) + "\n")

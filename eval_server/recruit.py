"""Raters recruited elsewhere (Prolific): when they are finished, and which way.

A recruited rater ends in one of three ways, each with its own link back to the platform
(``serve --recruit-config FILE``, the JSON ``publish-hits --prolific`` writes):

- ``completed``: submitted ``hits_per_recruit`` HITs (0 = every HIT open to them), or has
  submitted at least one and nothing is left for them;
- ``screened_out``: submitted nothing, and a qualification test they took (the headphone check)
  keeps them out of HITs that are still open;
- ``timed_out``: submitted nothing, and an assignment they accepted ran past its deadline.

Anything else (still working, or not screened yet) is ``None``: they stay on the HIT list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from eval_server.assignments import unmet_requirements
from eval_server.db import HIT, Assignment, HITType, QualificationRequest
from regnet.errors import UserError

OUTCOMES = ("completed", "screened_out", "timed_out")
SUBMITTED = ("Submitted", "Approved", "Rejected")


@dataclass(frozen=True)
class RecruitConfig:
    completion_url: str = ""
    screenout_url: str = ""
    timeout_url: str = ""
    hits_per_recruit: int = 0

    def url(self, outcome: str) -> str:
        return {"completed": self.completion_url, "screened_out": self.screenout_url or self.completion_url,
                "timed_out": self.timeout_url}.get(outcome, "")


def read_recruit_config(path: str | Path) -> RecruitConfig:
    """The JSON file ``publish-hits --prolific`` writes (``DIR/prolific.json``)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
        cfg = RecruitConfig(completion_url=str(d.get("completion_url", "")),
                            screenout_url=str(d.get("screenout_url", "")), timeout_url=str(d.get("timeout_url", "")),
                            hits_per_recruit=int(d.get("hits_per_participant", 0)))
    except FileNotFoundError:
        raise UserError(f"--recruit-config: {path} not found") from None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise UserError(f"--recruit-config: {path} is not a recruitment file ({type(e).__name__})") from None
    if cfg.hits_per_recruit < 0:
        raise UserError(f"--recruit-config: {path}: hits_per_participant must be at least 0")
    return cfg


def outcome(s, worker_id: str, at: float, hits_per_recruit: int, anything_left: bool) -> str | None:
    """How a recruited rater has finished (see the module doc), or None while they have not."""
    done = s.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.worker_id == worker_id, Assignment.status.in_(SUBMITTED))) or 0
    if done:
        if (hits_per_recruit and done >= hits_per_recruit) or not anything_left:
            return "completed"
        return None
    if anything_left:
        return None
    if _screened_out(s, worker_id, at):
        return "screened_out"
    expired = s.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.worker_id == worker_id, Assignment.status == "Abandoned", Assignment.deadline <= at))
    return "timed_out" if expired else None


def takeable(s, worker_id: str, hits: list[dict]) -> bool:
    """Whether any of these listed HITs (`next_task.visible_hits` rows) can be accepted by the
    worker: a HIT that guards only Accept is listed to someone who fails its qualification."""
    for type_id in {h["hitTypeId"] for h in hits}:
        ht = s.get(HITType, type_id)
        if ht is not None and not unmet_requirements(s, worker_id, json.loads(ht.qual_requirements), "Accept"):
            return True
    return False


def _screened_out(s, worker_id: str, at: float) -> bool:
    tested = set(s.scalars(select(QualificationRequest.type_id).where(QualificationRequest.worker_id == worker_id)))
    if not tested:
        return False
    types = s.scalars(select(HITType).where(HITType.id.in_(
        select(HIT.hit_type_id).where(HIT.disposed.is_(False), HIT.reviewing.is_(False), HIT.expiration > at))))
    for ht in types:
        for req in json.loads(ht.qual_requirements):
            if req.get("QualificationTypeId") in tested and unmet_requirements(s, worker_id, [req], "Accept"):
                return True
    return False

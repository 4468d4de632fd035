"""Prolific's researcher API (api.prolific.com/api/v1), the calls a study needs: cost, draft study,
publish, stop, submissions (paged), approve, reject, bulk approve, return requests and bonuses.

Requests and responses follow Prolific's API reference (docs.prolific.com/api-reference: "Create a
draft study", "Transition a study's status", "Calculate the study cost", "List submissions",
"Approve or reject a submission", "Bulk approve submissions", "Request the participant ... return",
"Set up bonus payments", "Pay bonus payments"). The token comes from ``PROLIFIC_API_TOKEN`` only
(never from a file in the study folder, which travels). Every failure is one `UserError` line:
401/403 (token), 400 (Prolific's own message, flattened), 429 (retried after ``Retry-After``,
a bounded number of times), 5xx and network errors (retried, then reported).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from regnet.errors import UserError

log = logging.getLogger(__name__)

API_URL = "https://api.prolific.com"
TOKEN_ENV = "PROLIFIC_API_TOKEN"
# Prolific's rejection categories ("Approve or reject a submission"); a reject needs one and a
# message of at least 100 characters, which Prolific sends to the participant.
REJECTION_CATEGORIES = ("TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL",
                        "FAILED_CHECK", "LOW_EFFORT", "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA",
                        "UNSUPP_DEVICE", "OTHER")
MIN_REJECT_MESSAGE = 100


@dataclass(frozen=True)
class Submission:
    id: str
    participant_id: str
    status: str  # ACTIVE, AWAITING REVIEW, APPROVED, REJECTED, RETURNED, TIMED-OUT, SCREENED OUT, ...
    study_code: str = ""
    started_at: str = ""
    completed_at: str = ""

    @classmethod
    def from_api(cls, d: dict) -> "Submission":
        return cls(id=str(d.get("id", "")), participant_id=str(d.get("participant_id") or d.get("participant") or ""),
                   status=str(d.get("status", "")), study_code=str(d.get("study_code") or d.get("entered_code") or ""),
                   started_at=str(d.get("started_at") or ""), completed_at=str(d.get("completed_at") or ""))


def token_from_env() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UserError(f"{TOKEN_ENV}: not set; create an API token in Prolific's app (Settings, API tokens) "
                        f"and export {TOKEN_ENV}=...")
    return token


def _one_line(body: Any) -> str:
    """Prolific's error body ({"error": {"title", "detail"}} or a field -> messages map) as one line."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        detail = err.get("detail")
        parts = [str(err.get("title") or "")]
        if isinstance(detail, dict):
            parts += [f"{k}: {'; '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in detail.items()]
        elif detail:
            parts.append(str(detail))
        text = " - ".join(p for p in parts if p)
    elif isinstance(body, dict):
        text = "; ".join(f"{k}: {'; '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in body.items())
    else:
        text = str(body)
    return " ".join(text.split())[:300] or "no message"


class ProlificClient:
    """A thin, retrying client. ``max_retries`` bounds 429/5xx retries; ``sleep`` is injectable
    so tests do not wait."""

    def __init__(self, token: str, base_url: str = API_URL, *, max_retries: int = 4, timeout_s: float = 30.0,
                 max_wait_s: float = 60.0, sleep=time.sleep, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.max_retries, self.timeout_s, self.max_wait_s, self._sleep = max_retries, timeout_s, max_wait_s, sleep
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Content-Type": "application/json"})

    # -- transport -------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> Any:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        what = f"Prolific {method} {path.split('?')[0] if not path.startswith('http') else path}"
        for attempt in range(self.max_retries + 1):
            try:
                r = self.session.request(method, url, data=None if body is None else json.dumps(body),
                                         params=params, timeout=self.timeout_s)
            except requests.RequestException as e:
                if attempt < self.max_retries:
                    self._sleep(min(self.max_wait_s, 2 ** attempt))
                    continue
                raise UserError(f"{what}: cannot reach Prolific ({type(e).__name__})") from None
            if r.status_code == 429 or r.status_code >= 500:
                if attempt < self.max_retries:
                    wait = _retry_after(r.headers.get("Retry-After"), 2 ** attempt)
                    log.info("%s: %d, retrying in %.0f s", what, r.status_code, min(wait, self.max_wait_s))
                    self._sleep(min(wait, self.max_wait_s))
                    continue
                kind = "rate limited" if r.status_code == 429 else "server error"
                raise UserError(f"{what}: {kind} ({r.status_code}) after {self.max_retries + 1} tries")
            if r.status_code in (401, 403):
                raise UserError(f"{what}: the API token was refused ({r.status_code}); check {TOKEN_ENV}")
            if r.status_code >= 400:
                try:
                    msg = _one_line(r.json())
                except ValueError:
                    msg = _one_line(r.text)
                raise UserError(f"{what}: refused ({r.status_code}): {msg}")
            if not r.content:
                return {}
            try:
                return r.json()
            except ValueError:
                raise UserError(f"{what}: answer is not JSON ({r.status_code})") from None
        raise AssertionError("unreachable")

    # -- studies ---------------------------------------------------------------------------------
    def study_cost(self, reward_cents: int, places: int) -> int:
        """Total cost in cents, Prolific's fee and VAT at the account's rates included."""
        out = self.request("POST", "/api/v1/study-cost-calculator/",
                           {"reward": int(reward_cents), "total_available_places": int(places)})
        try:
            return int(round(float(out["total_cost"])))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"Prolific cost calculator: no total_cost in its answer ({_one_line(out)})") from None

    def create_study(self, body: dict) -> dict:
        return self.request("POST", "/api/v1/studies/", body)

    def get_study(self, study_id: str) -> dict:
        return self.request("GET", f"/api/v1/studies/{study_id}/")

    def transition_study(self, study_id: str, action: str) -> dict:
        """action: PUBLISH, PAUSE, START (resume) or STOP."""
        return self.request("POST", f"/api/v1/studies/{study_id}/transition/", {"action": action})

    # -- submissions -----------------------------------------------------------------------------
    def submissions(self, study_id: str, page_size: int = 100) -> Iterator[Submission]:
        """Every submission of the study, page by page (``page``/``page_size``; ``_links.next``)."""
        page = 1
        while True:
            out = self.request("GET", "/api/v1/submissions/",
                               params={"study": study_id, "page": page, "page_size": page_size})
            results = out.get("results", []) if isinstance(out, dict) else []
            for d in results:
                yield Submission.from_api(d)
            nxt = ((out.get("_links") or {}).get("next") or {}) if isinstance(out, dict) else {}
            href = nxt.get("href") if isinstance(nxt, dict) else nxt
            if not results or not href or len(results) < page_size:
                return
            page += 1

    def approve(self, submission_id: str) -> dict:
        return self.request("POST", f"/api/v1/submissions/{submission_id}/transition/", {"action": "APPROVE"})

    def reject(self, submission_id: str, message: str, category: str) -> dict:
        check_rejection(message, category)
        return self.request("POST", f"/api/v1/submissions/{submission_id}/transition/",
                            {"action": "REJECT", "message": message, "rejection_category": category})

    def bulk_approve(self, submission_ids: list[str]) -> dict:
        return self.request("POST", "/api/v1/submissions/bulk-approve/", {"submission_ids": list(submission_ids)})

    def request_return(self, submission_id: str, reasons: list[str]) -> dict:
        return self.request("POST", f"/api/v1/submissions/{submission_id}/request-return/",
                            {"request_return_reasons": list(reasons)})

    # -- bonuses ---------------------------------------------------------------------------------
    def set_up_bonuses(self, study_id: str, amounts: dict[str, str]) -> dict:
        """``amounts``: participant or submission id -> amount in the study's currency ("1.50")."""
        csv = "".join(f"{pid},{amt}\n" for pid, amt in amounts.items())
        return self.request("POST", "/api/v1/submissions/bonus-payments/", {"study_id": study_id, "csv_bonuses": csv})

    def pay_bonuses(self, bulk_id: str) -> dict:
        return self.request("POST", f"/api/v1/bulk-bonus-payments/{bulk_id}/pay/")


def check_rejection(message: str, category: str) -> None:
    if category not in REJECTION_CATEGORIES:
        raise UserError(f"--category: {category!r} is not one of Prolific's rejection categories "
                        f"({', '.join(REJECTION_CATEGORIES)})")
    if len(message or "") < MIN_REJECT_MESSAGE:
        raise UserError(f"--feedback: Prolific requires a rejection message of at least {MIN_REJECT_MESSAGE} "
                        f"characters ({len(message or '')} given); it is sent to the participant")


def _retry_after(value: str | None, default: float) -> float:
    try:
        return max(0.0, float(value)) if value is not None else float(default)
    except ValueError:
        return float(default)

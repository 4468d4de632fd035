"""What a running server is configured with (flags, environment, values kept in the database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServerConfig:
    db_url: str
    media_dirs: tuple[Path, ...] = ()
    requester_key: str = ""
    requester_secret: str = ""
    admin_token: str = ""
    # MTurk has no local money: GetAccountBalance answers this configured figure.
    account_balance: str = "10000.00"
    # Recruitment links (e.g. Prolific): where a worker goes, or which code they see, when done.
    completion_url: str = ""
    completion_code: str = ""
    # Recruited raters who failed screening, or whose assignment timed out, go here (eval_server/recruit.py);
    # after hits_per_recruit submitted HITs (0: every HIT open to them) they are done.
    screenout_url: str = ""
    timeout_url: str = ""
    hits_per_recruit: int = 0
    max_body_bytes: int = 2 * 1024 * 1024
    # One answer submit (POST /mturk/externalSubmit): at most this many form fields and bytes (uploads
    # included); more is refused with 413 and a message, so one submit cannot bloat the exports.
    max_submit_fields: int = 1000
    max_submit_bytes: int = 10 * 1024 * 1024
    # SigV4 requests older (or newer) than this are refused, as AWS does (15 minutes).
    max_clock_skew_s: int = 15 * 60
    secret_key: str = field(default="", repr=False)
    # Raters sign in only by their personal link (`export-links`: /worker?workerId=ID&sig=HMAC(secret, ID));
    # off, anyone may type or link in an id (a local lab, a class).
    require_signed_links: bool = False
    # Other origins (scheme://host[:port]) whose ExternalQuestion pages may post to /mturk/externalSubmit
    # (docs/architecture.md, "Rater identity"); our own origin always may.
    submit_origins: tuple[str, ...] = ()

"""Identifiers in MTurk's style and the clock."""

from __future__ import annotations

import secrets
import string
import time

_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_id(length: int = 30) -> str:
    """30 characters of A-Z0-9, like MTurk's HIT and assignment ids."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def now() -> float:
    return time.time()

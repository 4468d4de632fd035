"""What every requester operation shares: the registry, input checks against botocore's model,
ids, money, pagination tokens and the UniqueRequestToken ledger."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import botocore.session
from sqlalchemy.orm import Session

from eval_server.config import ServerConfig
from eval_server.db import Database, RequestToken
from eval_server.errors import ApiError
from eval_server.ids import new_id, now  # noqa: F401  (re-exported for the operation modules)

TARGET_PREFIX = "MTurkRequesterServiceV20170117."
TOKEN_LIFETIME_S = 24 * 3600


@dataclass
class ApiContext:
    db: Database
    config: ServerConfig
    base_url: str  # the server as the caller reached it, for URLs handed out (uploads, worker pages)


Handler = Callable[[ApiContext, dict], dict]
OPERATIONS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        OPERATIONS[name] = fn
        return fn
    return deco


@lru_cache(maxsize=1)
def service_model():
    return botocore.session.get_session().get_service_model("mturk")


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


_MONEY_RE = re.compile(r"^[0-9]{1,7}(\.[0-9]{1,2})?\Z")


def money(value: str, field: str, *, minimum: str = "0.00") -> str:
    """MTurk's money format: a decimal string in US dollars with at most two decimals ("0.50")."""
    if not isinstance(value, str) or not _MONEY_RE.match(value.strip()):
        raise ApiError(f"Value '{shown(value)}' for {field} is not a valid amount: use dollars with at most "
                       "two decimal places, e.g. \"0.50\".")
    try:
        d = Decimal(value.strip())
    except InvalidOperation:
        raise ApiError(f"Value '{shown(value)}' for {field} is not a valid amount.") from None
    if d < Decimal(minimum):
        raise ApiError(f"{field} must be at least {minimum}.")
    return f"{d:.2f}"


# ---- input validation against the service model -------------------------------------------------

INT32 = (-2**31, 2**31 - 1)  # botocore "integer" (Java int on MTurk); also PostgreSQL's INTEGER
INT64 = (-2**63, 2**63 - 1)  # botocore "long"
YEAR_S = 365 * 24 * 3600
# What MTurk's API reference documents for members the botocore model leaves open (top-level members,
# by name), so that anything stored here is something MTurk would have stored too.
STRING_LIMITS: dict[str, tuple[int, int]] = {
    "Title": (1, 128), "Description": (1, 2000), "Keywords": (0, 1000), "RequesterAnnotation": (0, 255),
    "RequesterFeedback": (0, 1024), "Subject": (1, 200), "MessageText": (1, 4096),
    # Ours: an AnswerKey is a document like Question (64 KB); ids and upload names fit their columns.
    "AnswerKey": (1, 65535), "QualificationRequestId": (1, 64), "QuestionIdentifier": (1, 255),
    "Query": (0, 1000),  # a search text (SQLite refuses LIKE patterns over 50,000 bytes)
}
INTEGER_LIMITS: dict[str, tuple[int, int]] = {
    "MaxAssignments": (1, 1_000_000), "NumberOfAdditionalAssignments": (1, 1_000_000),
    "AssignmentDurationInSeconds": (30, YEAR_S), "LifetimeInSeconds": (30, YEAR_S),
    "AutoApprovalDelayInSeconds": (0, 30 * 24 * 3600),
    # Not bounded in MTurk's reference; held to a year here so they fit every backend's INTEGER column.
    "RetryDelayInSeconds": (0, YEAR_S), "TestDurationInSeconds": (1, YEAR_S),
}
# Timestamps are epoch seconds: finite, and within what every client can parse back (years 1-9999).
TIMESTAMP_RANGE = (-62135596800.0, 253402300799.0)


def shown(value: Any, n: int = 40) -> str:
    """A value as an error message may show it: one line, at most `n` characters."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= n else text[:n] + "..."


def validate_input(op_name: str, params: Any) -> dict:
    """Check the request body against botocore's input shape (types, required members, enums, ranges)
    and MTurk's documented limits, so that nothing stored can make a later call fail."""
    op = service_model().operation_model(op_name)
    if not isinstance(params, dict):
        raise ApiError("The request body must be a JSON object.")
    if op.input_shape is None:
        return {}
    _check(op.input_shape, params, "")
    return params


def _range_error(where: str, value: Any, lo: Any, hi: Any, what: str = "value") -> ApiError:
    return ApiError(f"Value '{shown(value)}' at '{where}' failed to satisfy constraint: Member must have "
                    f"{what} between {lo} and {hi}")


def _check(shape, value: Any, path: str) -> None:
    t = shape.type_name
    where = path or "request"
    top = path if "." not in path and "[" not in path else None  # a top-level member's name
    if t == "structure":
        if not isinstance(value, dict):
            raise ApiError(f"{where}: expected an object.")
        for req in shape.required_members:
            if value.get(req) is None:
                raise ApiError(f"Value null at '{_join(path, req)}' failed to satisfy constraint: "
                               "Member must not be null")
        for k, v in list(value.items()):
            if k not in shape.members:
                raise ApiError(f"{where}: unknown member '{shown(k)}'.")
            if v is None:
                del value[k]  # JSON null is an absent member (as AWS reads it), never a stored NULL
            else:
                _check(shape.members[k], v, _join(path, k))
    elif t == "list":
        if not isinstance(value, list):
            raise ApiError(f"{where}: expected a list.")
        for i, item in enumerate(value):
            _check(shape.member, item, f"{where}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            raise ApiError(f"{where}: expected an object.")
        for k, v in value.items():
            _check(shape.value, v, f"{where}.{k}")
    elif t == "string":
        if not isinstance(value, str):
            raise ApiError(f"{where}: expected a string.")
        _check_text(value, where)
        md = shape.metadata
        if shape.enum and value not in shape.enum:
            raise ApiError(f"Value '{shown(value)}' at '{where}' failed to satisfy constraint: Member must "
                           f"satisfy enum value set: [{', '.join(shape.enum)}]")
        if "min" in md and len(value) < md["min"] or "max" in md and len(value) > md["max"]:
            raise _range_error(where, value, md.get("min", 0), md.get("max", "any"), "length")
        if top in STRING_LIMITS:
            lo, hi = STRING_LIMITS[top]
            if not lo <= len(value) <= hi:
                raise _range_error(where, value, lo, hi, "length")
        # Worker ids are not held to MTurk's "A..." pattern: raters here come from other sources too.
        if "pattern" in md and shape.name not in _UNPATTERNED and not re.search(md["pattern"], value):
            raise ApiError(f"Value '{shown(value)}' at '{where}' failed to satisfy constraint: Member must "
                           f"satisfy regular expression pattern: {md['pattern']}")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(f"{where}: expected an integer.")
        md = shape.metadata
        lo, hi = INT32 if t == "integer" else INT64
        lo, hi = max(lo, md.get("min", lo)), min(hi, md.get("max", hi))
        if top in INTEGER_LIMITS:
            lo, hi = max(lo, INTEGER_LIMITS[top][0]), min(hi, INTEGER_LIMITS[top][1])
        if not lo <= value <= hi:
            raise _range_error(where, value, lo, hi)
    elif t == "boolean":
        if not isinstance(value, bool):
            raise ApiError(f"{where}: expected true or false.")
    elif t in ("double", "float", "timestamp"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(f"{where}: expected a number" + (" (epoch seconds)." if t == "timestamp" else "."))
        if not math.isfinite(value):
            raise ApiError(f"{where}: expected a finite number, not {value}.")
        if t == "timestamp" and not TIMESTAMP_RANGE[0] <= value <= TIMESTAMP_RANGE[1]:
            raise _range_error(where, value, "0001-01-01", "9999-12-31")


def _check_text(value: str, where: str) -> None:
    """Text every backend can store and every client can read back: valid Unicode (no lone
    surrogates, which a JSON body can spell as \\ud800) and no NUL (PostgreSQL's text refuses it)."""
    if "\x00" in value:
        raise ApiError(f"Value at '{where}' failed to satisfy constraint: Member must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(f"Value at '{where}' failed to satisfy constraint: Member must be valid Unicode "
                       "(it holds a lone surrogate)") from None


_UNPATTERNED = {"CustomerId"}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---- pagination ------------------------------------------------------------------------------------

def page_args(p: dict, default: int = 10) -> tuple[int, int]:
    """(offset, limit) from NextToken/MaxResults. Tokens are opaque to callers: an encoded offset."""
    limit = p.get("MaxResults") or default
    token = p.get("NextToken")
    if not token:
        return 0, limit
    try:
        raw = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
        offset = raw["o"]
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ApiError("NextToken is not a token this server handed out.",
                       "AWS.MechanicalTurk.InvalidPaginationToken") from None
    # Only an offset this server could have handed out (a SQL OFFSET must fit a 32-bit integer).
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= INT32[1]:
        raise ApiError("NextToken is not a token this server handed out.",
                       "AWS.MechanicalTurk.InvalidPaginationToken")
    return offset, limit


def paged(rows: list, offset: int, limit: int, total_more: bool) -> tuple[list, str | None]:
    token = None
    if total_more:
        token = base64.urlsafe_b64encode(json.dumps({"o": offset + limit}).encode()).decode()
    return rows, token


def run_page(session: Session, stmt, offset: int, limit: int) -> tuple[list, str | None]:
    """Run a SELECT for one page (fetching one extra row to know whether another page follows)."""
    rows = list(session.scalars(stmt.offset(offset).limit(limit + 1)))
    return paged(rows[:limit], offset, limit, len(rows) > limit)


def page_out(items: list, token: str | None, key: str) -> dict:
    out: dict[str, Any] = {"NumResults": len(items), key: items}
    if token:
        out["NextToken"] = token
    return out


# ---- UniqueRequestToken ------------------------------------------------------------------------------

def token_owner(s: Session, kind: str, token: str | None, at: float) -> str | None:
    """The entity made by `token` within the last 24 h, or None; an older use is forgotten, as MTurk does."""
    if not token:
        return None
    row = s.get(RequestToken, (kind, token))
    if row is None:
        return None
    if at - row.created_at > TOKEN_LIFETIME_S:
        s.delete(row)
        s.flush()
        return None
    return row.entity_id


def remember_token(s: Session, kind: str, token: str | None, entity_id: str, at: float) -> None:
    if token:
        s.add(RequestToken(kind=kind, token=token, entity_id=entity_id, created_at=at))


def duplicate_token(token: str, what: str, entity_id: str, turk_code: str) -> ApiError:
    return ApiError(f'The idempotency token "{token}" has already been processed. {what} "{entity_id}" '
                    "was created by it.", turk_code)


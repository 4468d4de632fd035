"""What every requester operation shares: the registry, input checks against botocore's model,
ids, money, pagination tokens and the UniqueRequestToken ledger."""

from __future__ import annotations

import base64
import binascii
import json
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


_MONEY_RE = re.compile(r"^\d{1,7}(\.\d{1,2})?$")


def money(value: str, field: str, *, minimum: str = "0.00") -> str:
    """MTurk's money format: a decimal string in US dollars with at most two decimals ("0.50")."""
    if not isinstance(value, str) or not _MONEY_RE.match(value.strip()):
        raise ApiError(f"Value '{value}' for {field} is not a valid amount: use dollars with at most "
                       "two decimal places, e.g. \"0.50\".")
    try:
        d = Decimal(value.strip())
    except InvalidOperation:
        raise ApiError(f"Value '{value}' for {field} is not a valid amount.") from None
    if d < Decimal(minimum):
        raise ApiError(f"{field} must be at least {minimum}.")
    return f"{d:.2f}"


# ---- input validation against the service model -------------------------------------------------

def validate_input(op_name: str, params: Any) -> dict:
    """Check the request body against botocore's input shape: types, required members, enums, ranges."""
    op = service_model().operation_model(op_name)
    if not isinstance(params, dict):
        raise ApiError("The request body must be a JSON object.")
    if op.input_shape is None:
        return {}
    _check(op.input_shape, params, "")
    return params


def _check(shape, value: Any, path: str) -> None:
    t = shape.type_name
    where = path or "request"
    if t == "structure":
        if not isinstance(value, dict):
            raise ApiError(f"{where}: expected an object.")
        for req in shape.required_members:
            if value.get(req) is None:
                raise ApiError(f"Value null at '{_join(path, req)}' failed to satisfy constraint: "
                               "Member must not be null")
        for k, v in value.items():
            if k not in shape.members:
                raise ApiError(f"{where}: unknown member '{k}'.")
            if v is not None:
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
        md = shape.metadata
        if shape.enum and value not in shape.enum:
            raise ApiError(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must satisfy "
                           f"enum value set: [{', '.join(shape.enum)}]")
        if "min" in md and len(value) < md["min"] or "max" in md and len(value) > md["max"]:
            raise ApiError(f"Value at '{where}' failed to satisfy constraint: Member must have length "
                           f"between {md.get('min', 0)} and {md.get('max', 'any')}")
        # Worker ids are not held to MTurk's "A..." pattern: raters here come from other sources too.
        if "pattern" in md and shape.name not in _UNPATTERNED and not re.search(md["pattern"], value):
            raise ApiError(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must "
                           f"satisfy regular expression pattern: {md['pattern']}")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(f"{where}: expected an integer.")
        md = shape.metadata
        if "min" in md and value < md["min"] or "max" in md and value > md["max"]:
            raise ApiError(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have "
                           f"value between {md.get('min', '-inf')} and {md.get('max', 'inf')}")
    elif t == "boolean":
        if not isinstance(value, bool):
            raise ApiError(f"{where}: expected true or false.")
    elif t in ("double", "float", "timestamp"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(f"{where}: expected a number" + (" (epoch seconds)." if t == "timestamp" else "."))


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
        offset = int(raw["o"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError("NextToken is not a token this server handed out.",
                       "AWS.MechanicalTurk.InvalidPaginationToken") from None
    if offset < 0:
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


"""The requester API: one handler per MTurk operation, dispatched by X-Amz-Target."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from eval_server.api import assignment_ops, hits, qualification_ops, worker_ops  # noqa: F401  (registers)
from eval_server.api.common import OPERATIONS, TARGET_PREFIX, ApiContext, service_model, validate_input
from eval_server.errors import ApiError

log = logging.getLogger(__name__)


def dispatch(ctx: ApiContext, target: str, params: object) -> dict:
    if not target.startswith(TARGET_PREFIX):
        raise ApiError(f"Unknown X-Amz-Target {target!r}: expected {TARGET_PREFIX}<Operation>.",
                       "AWS.MechanicalTurk.UnknownOperation")
    name = target[len(TARGET_PREFIX):]
    handler = OPERATIONS.get(name)
    if handler is None or name not in service_model().operation_names:
        raise ApiError(f"Unknown operation {name!r}.", "AWS.MechanicalTurk.UnknownOperation")
    p = validate_input(name, params)
    for attempt in range(3):
        try:
            return handler(ctx, p)
        except IntegrityError as e:
            if not is_race(e):
                # NOT NULL, CHECK or foreign-key: running it again would fail the same way. The
                # checks in common.validate_input should have caught it; this is the last guard.
                log.warning("%s: value refused by the database: %s", name, e.orig)
                raise ApiError(f"{name}: a value in the request cannot be stored ({_column(e)}).") from None
            # A concurrent request inserted the same row (same token, same HIT type) first; the
            # transaction was rolled back whole, so running the operation again is safe and sees it.
            log.debug("%s: concurrent insert, retrying (%d)", name, attempt + 1)
        except (DataError, OverflowError) as e:
            # A number or text the column cannot hold (PostgreSQL's 22xxx, SQLite's 64-bit INTEGER).
            log.warning("%s: value out of range for the database: %s", name, getattr(e, "orig", e))
            raise ApiError(f"{name}: a value in the request is out of range for storage.") from None
        except OperationalError as e:
            log.warning("%s: database error: %s", name, e.orig)
            raise ApiError("The database is busy; retry the request.", "AWS.MechanicalTurk.ServiceUnavailable",
                           "ServiceFault", 503) from None
    raise ApiError("The request conflicted with concurrent requests; retry it.",
                   "AWS.MechanicalTurk.ServiceUnavailable", "ServiceFault", 503)


def is_race(e: IntegrityError) -> bool:
    """A unique-key clash (another request inserted the same key first) rather than a bad value."""
    code = getattr(e.orig, "pgcode", None)
    if code is not None:
        return code == "23505"  # unique_violation
    return "UNIQUE constraint failed" in str(e.orig)


def _column(e: IntegrityError) -> str:
    diag = getattr(e.orig, "diag", None)
    column = getattr(diag, "column_name", None) if diag is not None else None
    if column:
        return f"{getattr(diag, 'table_name', '')}.{column}".lstrip(".")
    return str(e.orig).split(":")[-1].strip() or "constraint"

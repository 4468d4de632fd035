"""The requester API: one handler per MTurk operation, dispatched by X-Amz-Target."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError, OperationalError

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
        except IntegrityError:
            # A concurrent request inserted the same row (same token, same HIT type) first; the
            # transaction was rolled back whole, so running the operation again is safe and sees it.
            log.debug("%s: concurrent insert, retrying (%d)", name, attempt + 1)
        except OperationalError as e:
            log.warning("%s: database error: %s", name, e.orig)
            raise ApiError("The database is busy; retry the request.", "AWS.MechanicalTurk.ServiceUnavailable",
                           "ServiceFault", 503) from None
    raise ApiError("The request conflicted with concurrent requests; retry it.",
                   "AWS.MechanicalTurk.ServiceUnavailable", "ServiceFault", 503)

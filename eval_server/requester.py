"""`POST /`: the MTurk requester API over AWS JSON 1.1, signed with SigV4."""

from __future__ import annotations

import json
import logging
import uuid

from flask import Blueprint, Response, current_app, request

from eval_server import sigv4
from eval_server.api import dispatch
from eval_server.api.common import ApiContext
from eval_server.errors import ApiError, AuthError
from eval_server.state import state

log = logging.getLogger(__name__)
bp = Blueprint("requester", __name__)
CONTENT_TYPE = "application/x-amz-json-1.1"


def _reply(body: dict, status: int = 200) -> Response:
    resp = Response(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    resp.headers["x-amzn-RequestId"] = str(uuid.uuid4())
    return resp


def api_error(e: ApiError) -> Response:
    return _reply(e.body(), e.status)


@bp.post("/")
def api() -> Response:
    st = state()
    body = request.get_data(cache=False)
    target = request.headers.get("X-Amz-Target", "")
    try:
        sigv4.verify(sigv4.SignedRequest(request.method, request.path, request.query_string.decode("latin-1"),
                                         request.headers, body),
                     st.config.requester_key, st.config.requester_secret, st.config.max_clock_skew_s)
    except AuthError as e:
        log.info("refused %s: %s", target, e.message)
        return _reply(e.body(), 400)
    try:
        try:
            params = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError) as e:  # ValueError: JSONDecodeError, or a number of 4,300+ digits
            raise ApiError(f"The request body is not valid JSON: {e}.", "AWS.MechanicalTurk.MalformedRequest") from None
        except RecursionError:  # e.g. {"a":{"a":...}} nested thousands deep: the client's fault, not ours
            raise ApiError("The request body is not valid JSON: nested too deeply.",
                           "AWS.MechanicalTurk.MalformedRequest") from None
        ctx = ApiContext(db=st.db, config=st.config, base_url=request.host_url.rstrip("/"))
        return _reply(dispatch(ctx, target, params))
    except ApiError as e:
        log.info("%s -> %s: %s", target, e.error_type, e.message)
        return api_error(e)
    except Exception:
        log.exception("%s failed", target)
        if current_app.testing:
            raise
        return _reply(ApiError("An internal error occurred; the request was not completed.",
                               "AWS.MechanicalTurk.InternalServiceError", "ServiceFault", 500).body(), 500)

"""Errors of the requester API, in the JSON shape botocore turns into its modelled exceptions."""

from __future__ import annotations

import re
import time

MAX_MESSAGE = 1000
_UNPRINTABLE = re.compile(r"[^\S ]|[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def one_line(message: str) -> str:
    """A message as one printable line of bounded length, whatever caller text it quotes."""
    message = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"),
                               message)
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."


class ApiError(Exception):
    """`RequestError` (the caller's fault, HTTP 400) or `ServiceFault` (ours, HTTP 500)."""

    def __init__(self, message: str, turk_code: str = "AWS.MechanicalTurk.InvalidParameterValue",
                 error_type: str = "RequestError", status: int = 400):
        message = one_line(message)
        super().__init__(message)
        self.message = message
        self.turk_code = turk_code
        self.error_type = error_type
        self.status = status

    def body(self) -> dict:
        # MTurk appends a request id in parentheses; a millisecond clock serves the same purpose here.
        return {"__type": self.error_type, "Message": f"{self.message} ({int(time.time() * 1000)})",
                "TurkErrorCode": self.turk_code}


def not_found(kind: str, entity_id: str) -> ApiError:
    return ApiError(f"{kind} {entity_id} does not exist.", "AWS.MechanicalTurk.{}DoesNotExist".format(
        kind.replace(" ", "")))


def bad_state(message: str) -> ApiError:
    return ApiError(message, "AWS.MechanicalTurk.InvalidState")


class AuthError(Exception):
    """A request whose signature cannot be accepted (unknown key, wrong secret, stale date)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    def body(self) -> dict:
        return {"__type": self.error_type, "message": self.message, "Message": self.message}

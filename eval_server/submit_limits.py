"""Bounds on one answer submit (`POST /mturk/externalSubmit`) and how uploaded files are kept and served.

A submit carries at most `ServerConfig.max_submit_fields` form fields and `max_submit_bytes` bytes
(uploads included); more is refused whole (413, one line), so one request can neither store thousands of
columns for every later export nor hold the server's memory. Uploaded files are served as downloads only:
a type from a short safe list (else application/octet-stream), `nosniff`, and a file name that cannot
break out of the Content-Disposition header.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from eval_server.config import ServerConfig

MAX_FIELD_NAME = 255  # an upload's field name is part of its key (rb_uploads.question_id, VARCHAR(255))
_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
# Types a browser may show inline without running anything of ours; everything else is a plain download.
_SERVED_AS_IS = re.compile(r"(audio|video)/[a-z0-9.+-]+|image/(png|jpeg|gif|webp)|application/(pdf|zip|octet-stream)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def apply(request: Request, config: ServerConfig) -> tuple[int, str] | None:
    """Set this request's parsing limits and parse the form; (status, message) when it is too large."""
    request.max_content_length = config.max_submit_bytes
    request.max_form_memory_size = config.max_submit_bytes
    # Parsing stops well past the field cap (the count below gives the precise message).
    request.max_form_parts = 2 * config.max_submit_fields + 16
    try:
        if request.mimetype == "application/x-www-form-urlencoded":
            # Count the parts before parsing them: 200,000 fields would cost seconds to parse only to
            # be refused (assignmentId and csrf_token may come on top of the answers).
            parts = request.get_data(cache=True).count(b"&") + 1
            if parts > config.max_submit_fields + 2:
                return 413, (f"this submission has {parts} form fields; at most {config.max_submit_fields} "
                             "are taken (ServerConfig.max_submit_fields)")
        request.form, request.files  # noqa: B018  (parse now, inside the limits)
    except RequestEntityTooLarge:
        if request.content_length is not None and request.content_length > config.max_submit_bytes:
            return 413, (f"this submission is {request.content_length} bytes; at most "
                         f"{config.max_submit_bytes} bytes are taken")
        return 413, (f"this submission is over the limits: at most {config.max_submit_fields} fields and "
                     f"{config.max_submit_bytes} bytes are taken")
    return None


def check_fields(fields: list[tuple[str, str]], files: list, config: ServerConfig) -> tuple[int, str] | None:
    if len(fields) > config.max_submit_fields:
        return 413, (f"this submission has {len(fields)} fields; at most {config.max_submit_fields} "
                     "are taken (ServerConfig.max_submit_fields)")
    for name, _ in files:
        if not name or len(name) > MAX_FIELD_NAME:
            return 400, f"a file field's name must be 1 to {MAX_FIELD_NAME} characters"
    return None


def stored_filename(name: str) -> str:
    """The name kept with an upload (the exact one is in the answer): no control characters or NUL
    (PostgreSQL's text refuses NUL), at most 255 characters."""
    return _CONTROL.sub("_", name)[:255] or "upload"


def stored_type(mimetype: str | None) -> str:
    return mimetype.lower() if mimetype and _TYPE_RE.fullmatch(mimetype) else "application/octet-stream"


def served_type(content_type: str) -> str:
    return content_type if _SERVED_AS_IS.fullmatch(content_type or "") else "application/octet-stream"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real one percent-encoded (RFC 6266 / 5987)."""
    clean = _CONTROL.sub("_", filename).strip() or "upload"
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", clean).strip("._") or "upload"
    return f"attachment; filename=\"{ascii_name[:150]}\"; filename*=UTF-8''{quote(clean[:150], safe='')}"

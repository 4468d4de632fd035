"""`GET /media/<name>`: clip files from the configured folders, with range requests, never outside them."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from flask import Blueprint, Response, abort, send_file
from werkzeug.security import safe_join

from eval_server.state import state

bp = Blueprint("media", __name__)

# Python's table lacks or misnames some of these (e.g. audio/x-wav); browsers want the standard names.
_TYPES = {".mp4": "video/mp4", ".m4a": "audio/mp4", ".webm": "video/webm", ".wav": "audio/wav",
          ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".ogv": "video/ogg", ".png": "image/png",
          ".jpg": "image/jpeg", ".flac": "audio/flac"}


def find_media(dirs: tuple[Path, ...], name: str) -> Path | None:
    for d in dirs:
        joined = safe_join(str(d), name)
        if joined is None:
            return None
        p = Path(joined)
        # A symlink inside a media folder may not lead out of it either.
        try:
            resolved = p.resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # ValueError: a NUL byte in the name
            continue
        if resolved.is_file() and resolved.is_relative_to(d.resolve()):
            return resolved
    return None


@bp.get("/media/<path:name>")
def serve(name: str) -> Response:
    path = find_media(state().config.media_dirs, name)
    if path is None:
        abort(404, description=f"no media file {name!r}")
    mime = _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    resp = send_file(path, mimetype=mime, conditional=True, etag=True, max_age=3600)
    resp.headers["Accept-Ranges"] = "bytes"
    return resp

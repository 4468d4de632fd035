"""Who a rater is: the session set at sign-in, and nothing else.

Every worker route that reads or changes a rater's assignments asks `current_worker()`; a `workerId`
query parameter is only ever used to sign in from a link (`/worker?workerId=ID[&sig=...]`), never to say
who is calling. Signed links carry `sig = HMAC-SHA256(server secret, "worker-link:" + ID)` (stdlib
`hmac`), so a study that requires them (`ServerConfig.require_signed_links`, `serve
--require-signed-links`) only admits raters holding the link `export-links` wrote for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import urlencode, urlparse

from flask import Response, abort, request, session

WORKER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
SESSION_KEY = "worker_id"
# Keeps link signatures from ever equalling another HMAC made with the same secret (e.g. upload URLs).
_LINK_PURPOSE = b"worker-link:"


def _refuse(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def session_worker() -> str | None:
    """The signed-in rater, or None."""
    return session.get(SESSION_KEY)


def current_worker() -> str:
    """The signed-in rater; answers 403 (one line) when the request carries no rater session."""
    worker = session_worker()
    if not worker:
        abort(_refuse(403, "sign in first: open /worker (or your study link) in this browser"))
    return worker


def set_worker(worker_id: str, source: str) -> None:
    """Start a session as `worker_id` (the caller has checked the id and, where required, the link)."""
    # A new identity starts a clean session: nothing of the previous rater's (recruitment details,
    # the CSRF token bound to their session) carries over.
    session.clear()
    session[SESSION_KEY] = worker_id
    session["recruit"] = source


def valid_worker_id(value: str | None) -> bool:
    return bool(value) and WORKER_RE.match(value) is not None


def link_signature(secret: str, worker_id: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), _LINK_PURPOSE + worker_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def link_ok(secret: str, worker_id: str, sig: str | None) -> bool:
    return bool(sig) and hmac.compare_digest(link_signature(secret, worker_id), sig)


def sign_in_link(base_url: str, secret: str, worker_id: str) -> str:
    """The personal link of one rater: `<base>/worker?workerId=ID&sig=...`."""
    q = urlencode({"workerId": worker_id, "sig": link_signature(secret, worker_id)})
    return f"{base_url.rstrip('/')}/worker?{q}"


def own_origin() -> str:
    return request.host_url.rstrip("/")


def cross_origin() -> bool:
    """True when the browser says this request comes from a page of another origin. Scripts and
    command-line clients send neither header and are not refused by it; browsers send
    Sec-Fetch-Site (or at least Origin on POST) and cannot forge them from a page."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        # The browser's own verdict (pages cannot set it); it also holds behind a proxy that changes Host.
        return site not in ("same-origin", "none")
    # Browsers without Fetch Metadata: compare the Origin they send on POSTs with our own.
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    if origin == "null":  # sandboxed frames, privacy redirects: no origin we can trust
        return True
    o, mine = urlparse(origin), urlparse(own_origin())
    return (o.scheme, o.netloc) != (mine.scheme, mine.netloc)


def require_same_origin(what: str) -> None:
    """403 (one line) for a state change posted from a page on another origin."""
    if cross_origin():
        abort(_refuse(403, f"{what} must come from this server's own pages, not from another site"))

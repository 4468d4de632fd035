"""The Flask application factory: requester API, worker pages, media and admin in one app."""

from __future__ import annotations

import logging

from flask import Flask, Response, redirect, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from eval_server import admin, media, next_task, requester, worker
from eval_server.config import ServerConfig
from eval_server.db import Database
from eval_server.errors import ApiError
from eval_server.sessions import RememberedCookieSessions
from eval_server.state import ServerState

log = logging.getLogger(__name__)

# Every response: only this server's own pages may frame it (the worker page frames the HIT page), and
# no browser may guess a type other than the one we send.
SECURITY_HEADERS = {"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "frame-ancestors 'self'",
                    "X-Content-Type-Options": "nosniff"}


def create_app(config: ServerConfig, db: Database | None = None) -> Flask:
    """The WSGI app for `config`; the database schema must already be set up (`Database.setup`)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.config["SECRET_KEY"] = config.secret_key
    app.session_interface = RememberedCookieSessions()
    # Lax, not Strict: raters arrive by links from other sites (Prolific, a lab's e-mail) and a Strict
    # cookie would be withheld on that first navigation and its redirects, signing them out. Lax still
    # withholds it from cross-site POSTs and frames; every state change is a POST, and the GET routes
    # change nothing (link sign-in never replaces an existing session without a same-origin POST).
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    # A token lives as long as the rater's session: a page left open for hours must still submit.
    app.config["WTF_CSRF_TIME_LIMIT"] = None
    app.extensions["regnet_eval_server"] = ServerState(config=config, db=db or Database(config.db_url))
    csrf = CSRFProtect(app)
    # The requester API authenticates every call with SigV4 (eval_server/requester.py), no cookie.
    csrf.exempt(requester.bp)
    # The HIT page is the requester's HTML and cannot carry our token; the route requires the rater's
    # session to own the assignment and refuses other origins instead (worker.external_submit).
    csrf.exempt(worker.external_submit)
    app.register_blueprint(requester.bp)
    app.register_blueprint(worker.bp)
    app.register_blueprint(next_task.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(admin.bp)

    @app.get("/")
    def index() -> Response:
        return redirect("/worker")

    @app.after_request
    def security_headers(resp: Response) -> Response:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        # A route with a stricter policy of its own (uploaded files) keeps it, with frame-ancestors added.
        csp = resp.headers["Content-Security-Policy"]
        if "frame-ancestors" not in csp:
            resp.headers["Content-Security-Policy"] = csp.rstrip("; ") + "; frame-ancestors 'self'"
        return resp

    @app.errorhandler(CSRFError)
    def csrf_error(e: CSRFError):
        return Response(f"refused: {e.description} Reload the page and try again.\n", status=403,
                        content_type="text/plain; charset=utf-8")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(e: RequestEntityTooLarge):
        msg = f"The request body is larger than {config.max_body_bytes} bytes."
        if request.path == "/" and request.method == "POST":
            return requester.api_error(ApiError(msg, "AWS.MechanicalTurk.RequestTooLarge", status=413))
        return Response(msg + "\n", status=413, content_type="text/plain; charset=utf-8")

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        return Response(f"{e.code} {e.name}: {e.description}\n", status=e.code,
                        content_type="text/plain; charset=utf-8")

    return app

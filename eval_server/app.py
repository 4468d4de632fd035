"""The Flask application factory: requester API, worker pages, media and admin in one app."""

from __future__ import annotations

import logging

from flask import Flask, Response, redirect, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from eval_server import admin, media, requester, worker
from eval_server.config import ServerConfig
from eval_server.db import Database
from eval_server.errors import ApiError
from eval_server.state import ServerState

log = logging.getLogger(__name__)


def create_app(config: ServerConfig, db: Database | None = None) -> Flask:
    """The WSGI app for `config`; the database schema must already be set up (`Database.setup`)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.config["SECRET_KEY"] = config.secret_key
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.extensions["regnet_eval_server"] = ServerState(config=config, db=db or Database(config.db_url))
    app.register_blueprint(requester.bp)
    app.register_blueprint(worker.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(admin.bp)

    @app.get("/")
    def index() -> Response:
        return redirect("/worker")

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

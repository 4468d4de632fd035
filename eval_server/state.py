"""What the Flask app holds for its requests: the configuration and the database."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from eval_server.config import ServerConfig
from eval_server.db import Database


@dataclass
class ServerState:
    config: ServerConfig
    db: Database


def state() -> ServerState:
    return current_app.extensions["regnet_eval_server"]

"""Logging set-up for the CLI. Library code only calls ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import sys


def setup_logging(verbosity: int = 0) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless -vv.
    for noisy in ("botocore", "boto3", "urllib3", "numba", "matplotlib", "PIL", "waitress", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)

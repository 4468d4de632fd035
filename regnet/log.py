"""Logging set-up for the CLI (library code only calls ``logging.getLogger(__name__)``) and the
training loops' progress bar."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted, not the stream of set-up time: a
    process that runs the CLI several times (tests, a notebook) may have replaced stderr since, and
    writing to the old, closed one prints a logging traceback."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property ignores it
        pass


def setup_logging(verbosity: int = 0) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless -vv.
    for noisy in ("botocore", "boto3", "urllib3", "numba", "matplotlib", "PIL", "waitress", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)


def progress_bar(total: int, initial: int, desc: str, enabled: bool = True, unit: str = "step") -> tqdm:
    """A bar for a training loop (step, losses as postfix, elapsed<ETA). Training is the one long
    stage, so unlike the project's other bars (``disable=None``: hidden off a terminal) it also
    writes when stderr is a log file or pipe (e.g. a quickstart run logged to a file, silent for
    minutes otherwise): there at most every 30 s, in ASCII."""
    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, file=sys.stderr,
                mininterval=0.1 if tty else 30.0, ascii=None if tty else True, dynamic_ncols=tty)

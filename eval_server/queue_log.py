"""waitress's "Task queue depth is N" warning, as a summary line at most every few seconds.

waitress warns on every request that arrives while all request threads are busy, from its one I/O
thread and under its task queue's lock. Under a study's load that is most requests: 20,747 lines in one
run of benchmarks/server_load.py, each formatted and written to stderr while the I/O thread could not
hand out work. The signal itself (the threads were all busy; more --threads or --processes may help) is
worth keeping, so one line per interval says it, with the peak depth and how many warnings it stands for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

QUEUE_LOGGER = "waitress.queue"


class QueueDepthSummary(logging.Filter):
    """Passes the first queue-depth warning of each `every_s` seconds, rewritten as a summary of the
    warnings held back since the last one that passed."""

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next = float("-inf")
        self._held = 0
        self._peak = 0

    def filter(self, record: logging.LogRecord) -> bool:
        depth = record.args[0] if isinstance(record.args, tuple) and record.args else 0
        with self._lock:
            self._held += 1
            self._peak = max(self._peak, int(depth))
            now = self._clock()
            if now < self._next:
                return False
            record.msg = ("Task queue depth is %d (peak %d, %d requests queued behind busy threads since the "
                          "last such line); more --threads or --processes may help")
            record.args = (depth, self._peak, self._held)
            self._held, self._peak, self._next = 0, 0, now + self.every_s
            return True


def summarise_queue_warnings(every_s: float = 10.0) -> QueueDepthSummary:
    """Install the summary on waitress's queue logger (once per process; returns the one installed)."""
    logger = logging.getLogger(QUEUE_LOGGER)
    for f in logger.filters:
        if isinstance(f, QueueDepthSummary):
            return f
    f = QueueDepthSummary(every_s)
    logger.addFilter(f)
    return f

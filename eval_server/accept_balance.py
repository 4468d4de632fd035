"""Spreading keep-alive connections evenly over `serve --processes N`.

The processes share one listening socket, and whichever wakes first accepts. A rater keeps one
keep-alive connection for the whole session, so who accepted decides which process serves every one of
that rater's requests. Left to chance, 32 raters split as unevenly as 10 / 22 on 2 processes
(benchmarks/README.md), and the raters on the fuller process wait about twice as long for each answer:
that process sets the tail of the whole study. Here each process publishes how many connections it has
open, in memory shared across the fork, and a process stops taking new ones while it has more than the
least loaded of the others. A process that has not published for a few seconds (stopped, or killed) no
longer counts, so the others never wait on it.

A process that declines leaves the listening socket out of its poll, so it must look again soon: what
it read may be a turn old, and both processes may decline for that turn. Its loop therefore wakes every
LOOK_AGAIN_S even when idle (waitress's default is once a second), which bounds how long a new
connection can wait and costs an idle process about 20 loop turns a second.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Callable

# Every process publishes on every turn of its loop, and its loop turns at least every LOOK_AGAIN_S,
# so 3 s without news means it is gone (or frozen, when its raters are better served elsewhere).
STALE_AFTER_S = 3.0
LOOK_AGAIN_S = 0.05


class ConnectionShares:
    """Open connections per server process, made before the fork so every child sees the same memory."""

    def __init__(self, processes: int, clock: Callable[[], float] = time.monotonic):
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.processes = processes
        self._clock = clock
        # Per process: its open connections and when it said so. A lock-free read may see a value one
        # turn old; that only makes the balance off by one connection for one turn.
        self._open = multiprocessing.RawArray("i", processes)
        self._seen = multiprocessing.RawArray("d", processes)

    def may_accept(self, me: int, open_now: int) -> bool:
        """Publish process `me`'s count; whether it should take the next connection."""
        now = self._clock()
        self._open[me] = open_now
        self._seen[me] = now
        others = [self._open[j] for j in range(self.processes)
                  if j != me and now - self._seen[j] < STALE_AFTER_S]
        return not others or open_now <= min(others)

    def attach(self, server, me: int) -> None:
        """Make waitress server `server` (one listening socket) accept only on its turn."""
        own = server.readable

        def readable() -> bool:
            # waitress's own check first: it also runs the channel clean-up and the connection limit.
            return own() and self.may_accept(me, len(server.active_channels))
        server.readable = readable
        # Read once, by run(), as the poll timeout of every turn (waitress/server.py BaseWSGIServer.run).
        server.adj.asyncore_loop_timeout = LOOK_AGAIN_S

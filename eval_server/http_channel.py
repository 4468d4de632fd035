"""waitress's connection, minus a busy loop while a request thread writes its response.

A request thread writes its response under the connection's `outbuf_lock` and sends it itself
(waitress's HTTPChannel.write_soon; `send_bytes` is 1). Meanwhile the connection reports itself writable,
so waitress's select loop returns at once, finds the lock taken (`_flush_some_if_lockable`), sends
nothing and selects again: a busy loop that also keeps taking the GIL back from the very thread it waits
for, which then sits out Python's switch interval (5 ms) before it can finish. Under 32 raters the loops
turned about 27 times per request, nearly every turn in this state; with this channel, about twice
(benchmarks/README.md). Here the connection is not writable while a request thread holds that lock: the
loop sleeps in select, and waitress wakes it again itself when the thread leaves output unsent
(`pull_trigger` in write_soon) and when the request ends (HTTPChannel.service). A connection over its
output high-water mark stays writable, since its request thread may be waiting for the loop to drain it.
"""

from __future__ import annotations

from waitress.channel import HTTPChannel


class QuietHTTPChannel(HTTPChannel):
    def writable(self) -> bool:
        if (self.requests and 0 < self.total_outbufs_len <= self.adj.outbuf_high_watermark
                and not (self.will_close or self.close_when_flushed)):
            if not self.outbuf_lock.acquire(False):
                return False  # a request thread is writing and sending
            self.outbuf_lock.release()
        return super().writable()

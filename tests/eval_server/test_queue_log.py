"""waitress's per-request "Task queue depth" warning becomes one summary line per interval
(eval_server/queue_log.py): the signal kept, the flood (thousands of lines a run) gone."""

from __future__ import annotations

import logging

from eval_server.queue_log import QUEUE_LOGGER, QueueDepthSummary, summarise_queue_warnings


def _record(depth: int) -> logging.LogRecord:
    return logging.LogRecord(QUEUE_LOGGER, logging.WARNING, __file__, 1, "Task queue depth is %d", (depth,), None)


def test_one_line_per_interval_with_the_peak_and_the_count_it_stands_for():
    now = [100.0]
    f = QueueDepthSummary(every_s=10.0, clock=lambda: now[0])
    first = _record(2)
    assert f.filter(first) and first.getMessage().startswith("Task queue depth is 2 (peak 2, 1 requests")
    passed = []
    for depth in (5, 9, 3) * 100:  # 300 warnings within the interval: none passes
        now[0] += 0.01
        r = _record(depth)
        if f.filter(r):
            passed.append(r)
    assert passed == []
    now[0] = 111.0
    r = _record(4)
    assert f.filter(r)
    assert r.getMessage().startswith("Task queue depth is 4 (peak 9, 301 requests queued behind busy threads")
    assert "--threads or --processes" in r.getMessage()


def test_the_summary_is_installed_once_on_waitress_queue_logger():
    logger = logging.getLogger(QUEUE_LOGGER)
    before = list(logger.filters)
    try:
        a = summarise_queue_warnings()
        assert summarise_queue_warnings() is a
        assert sum(isinstance(x, QueueDepthSummary) for x in logger.filters) == 1
    finally:
        logger.filters[:] = before


def test_waitress_still_warns_through_that_logger(caplog):
    """The name the summary hangs on is the one waitress logs its queue depth to."""
    from waitress.task import ThreadedTaskDispatcher

    d = ThreadedTaskDispatcher()  # no threads started: every task added waits in the queue

    class Task:
        def service(self):
            pass

        def cancel(self):
            pass
    with caplog.at_level(logging.WARNING, logger=QUEUE_LOGGER):
        d.add_task(Task())
    assert any(r.name == QUEUE_LOGGER and "Task queue depth" in r.getMessage() for r in caplog.records)

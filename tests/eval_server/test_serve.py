"""`eval_server.server.serve` moves the start-up heap out of the collector's sight before it serves or
forks (a full collection over it stalled a serve process for ~100 ms)."""

from __future__ import annotations

import gc
import socket

from eval_server import server


def test_freezing_leaves_a_full_collection_little_to_walk():
    gc.collect()
    junk = [[i] for i in range(50_000)]  # start-up's objects, as far as the collector can tell
    try:
        before = len(gc.get_objects())
        server.freeze_startup_heap()
        assert gc.get_freeze_count() >= 50_000
        assert len(gc.get_objects()) < before - 50_000  # a full collection no longer walks them
    finally:
        gc.unfreeze()
        del junk


def test_serve_freezes_before_it_serves(monkeypatch):
    order: list[str] = []
    monkeypatch.setattr(server, "freeze_startup_heap", lambda: order.append("freeze"))
    monkeypatch.setattr(server.waitress, "serve", lambda *a, **k: order.append("serve"))
    with socket.socket() as sock:
        server.serve(object(), sock, threads=1, processes=1)
    assert order == ["freeze", "serve"]

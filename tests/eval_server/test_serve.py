"""`eval_server.server.serve` moves the start-up heap out of the collector's sight before it serves or
forks (a full collection over it stalled a serve process for ~100 ms), and its forked processes end with
it."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from eval_server import server
from tests.helpers.server import start_subprocess


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
    class Server:
        def print_listen(self, _): pass
        def run(self): order.append("serve")
    monkeypatch.setattr(server, "waitress_server", lambda *a, **k: Server())
    with socket.socket() as sock:
        server.serve(object(), sock, threads=1, processes=1)
    assert order == ["freeze", "serve"]


def _alive(pid: int) -> bool:
    """Any thread of the process still running. The main thread can already be a zombie (waiting for
    whoever adopted the process to reap it) while the request threads are still exiting, and the
    process's sockets close only when the last of them has."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return False
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue  # that thread has just gone
        if state not in ("Z", "X"):
            return True
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_server_processes_end_with_a_killed_parent(tmp_path):
    """SIGKILL on `serve --processes 2` (a supervisor, an OOM kill): its children must not go on
    answering on the port and writing to the database with nothing left to stop them."""
    srv = start_subprocess(f"sqlite:///{tmp_path / 'k.db'}", "--processes", "2", "--threads", "2")
    children: list[int] = []
    try:
        children = srv.children(2)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [c for c in children if _alive(c)], "server processes outlived their parent"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", urlsplit(srv.url).port), timeout=2).close()
    finally:
        for c in children:
            if _alive(c):
                os.kill(c, signal.SIGKILL)
        srv.stop()


def test_default_layout_is_the_one_measured_fastest():
    """Without --processes/--threads: on 2 cores SQLite 3 x 2 and PostgreSQL 2 x 4 (benchmarks/README.md;
    one process of 8 threads was the slowest); the same shape on more cores, at most 8 processes; one
    process where the system cannot fork."""
    assert server.default_layout(True, 2, True) == (3, 2)
    assert server.default_layout(False, 2, True) == (2, 4)
    assert server.default_layout(True, 1, True) == (2, 2)
    assert server.default_layout(False, 1, True) == (2, 4)
    assert server.default_layout(True, 16, True) == (8, 2)
    assert server.default_layout(False, 16, True) == (8, 4)
    assert server.default_layout(True, None, True) == (2, 2)  # os.cpu_count() can be None
    assert server.default_layout(True, 2, False) == (1, 8)
    assert 1 <= server.usable_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize("flags, expect", [
    ((), None),  # the default layout
    (("--threads", "8"), (1, 8)),  # threads alone: one process, as before
    (("--processes", "1"), (1, 8)),
    (("--processes", "2"), (2, 2)),
    (("--processes", "2", "--threads", "5"), (2, 5)),
])
def test_serve_flags_pick_the_layout(tmp_path, flags, expect):
    import argparse

    from regnet.commands.server import _layout, register

    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    args = p.parse_args(["serve", "--db", str(tmp_path / "x.sqlite"), *flags])
    want = expect or server.default_layout(True, server.usable_cores(), hasattr(os, "fork"))
    assert _layout(args) == want


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts the forked processes in /proc")
def test_serve_without_flags_runs_the_default_layout(tmp_path):
    """A lab that runs plain `regnet-bench serve` gets the layout measured fastest, not one process of 8
    threads (about 400 submits/s at 32 raters on 2 cores, against 800-1,200), and is told which."""
    processes, threads = server.default_layout(True, server.usable_cores(), True)
    srv = start_subprocess(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        assert len(srv.children(processes)) == processes
        deadline = time.monotonic() + 10
        want = f"serving with {processes} processes x {threads} threads"
        while not any(want in line for line in srv.output) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(want in line for line in srv.output), srv.output
        c = srv.client()
        assert c.get_account_balance()["AvailableBalance"]
    finally:
        srv.stop()

"""Running the app: resolve keys (flags, environment, or generated once and kept in the database),
then serve it with waitress, in one process or several sharing one listening socket."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import waitress
from flask import Flask

from eval_server.accept_balance import ConnectionShares
from eval_server.app import create_app
from eval_server.config import ServerConfig
from eval_server.db import Database
from eval_server.http_channel import QuietHTTPChannel
from eval_server.queue_log import summarise_queue_warnings
from regnet.errors import UserError

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class Generated:
    """Secrets made on this start (each is shown once, when it is made)."""
    requester_key: str = ""
    requester_secret: str = ""
    admin_token: str = ""


def prepare(config: ServerConfig) -> tuple[ServerConfig, Database, Generated]:
    """Open (and create or migrate) the database and fill in every key the config leaves empty."""
    for d in config.media_dirs:
        if not d.is_dir():
            raise UserError(f"--media: {d} is not a folder")
    db = Database(config.db_url)
    db.setup()
    gen = Generated()
    key, secret = config.requester_key, config.requester_secret
    if bool(key) != bool(secret):
        raise UserError("--requester-key and --requester-secret (or REGNET_REQUESTER_KEY and "
                        "REGNET_REQUESTER_SECRET) must be given together")
    if not key:
        key, made = db.meta_default("requester_key", lambda: "AK" + secrets.token_hex(9).upper())
        secret, _ = db.meta_default("requester_secret", lambda: secrets.token_urlsafe(30))
        if made:
            gen = replace(gen, requester_key=key, requester_secret=secret)
    admin = config.admin_token
    if not admin:
        admin, made = db.meta_default("admin_token", lambda: secrets.token_urlsafe(24))
        if made:
            gen = replace(gen, admin_token=admin)
    cfg = replace(config, requester_key=key, requester_secret=secret, admin_token=admin,
                  secret_key=config.secret_key or session_secret(db))
    return cfg, db, gen


def session_secret(db: Database) -> str:
    """One secret for every process on this database, so a worker's cookie works on any of them; it also
    signs the raters' personal links (`export-links`, eval_server/identity.py)."""
    return db.meta_default("session_secret", lambda: secrets.token_hex(32))[0]


def build_app(config: ServerConfig) -> tuple[Flask, ServerConfig, Generated]:
    cfg, db, gen = prepare(config)
    return create_app(cfg, db), cfg, gen


def bind(host: str, port: int) -> socket.socket:
    try:
        sock = socket.create_server((host, port), backlog=1024, reuse_port=False)
    except OSError as e:
        raise UserError(f"--host/--port: cannot listen on {host}:{port} ({e.strerror})") from None
    return sock


def usable_cores() -> int | None:
    """The cores this process may run on (a container's cpuset, not the host's count, where known)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def default_layout(sqlite: bool, cores: int | None, can_fork: bool, *, processes: int | None = None,
                   threads: int | None = None) -> tuple[int, int]:
    """(processes, request threads per process) for `serve`: the flags given, the rest chosen here.
    Measured on 2 cores at 32 raters (benchmarks/README.md): on SQLite 3 processes x 2 threads was
    fastest (the processes' writers queue on one writer lock, and fewer threads per process wait less
    for its GIL), on PostgreSQL 2 x 4; one process of 8 threads was the slowest (about 400 submits/s
    against 800-1,200). More cores get the same shape, cores + 1 processes on SQLite and cores on
    PostgreSQL, at most 8 (not measured there). Without fork (Windows), or given threads alone, it is
    one process; one process gets 8 threads."""
    if processes is None:
        if threads is not None or not can_fork:
            processes = 1
        else:
            n = max(1, cores or 1)
            processes = min(8, n + 1) if sqlite else min(8, max(2, n))
    if threads is None:
        threads = 8 if processes == 1 else 2 if sqlite else 4
    return processes, threads


def serve(app: Flask, sock: socket.socket, *, threads: int, processes: int) -> None:
    """Serve until interrupted. With processes > 1, forked children share the listening socket and the
    database; the parent only supervises them."""
    summarise_queue_warnings()
    freeze_startup_heap()
    if processes <= 1:
        srv = waitress_server(app, sockets=[sock], threads=threads)
        srv.print_listen("Serving on http://{}:{}")
        srv.run()
        return
    shares = ConnectionShares(processes)
    parent = os.getpid()
    children = []
    for me in range(processes):
        pid = os.fork()
        if pid == 0:
            # Each child gets fresh database connections: pooled ones must not cross a fork.
            app.extensions["regnet_eval_server"].db.engine.dispose(close=False)
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            die_with_parent(parent)
            try:
                srv = waitress_server(app, sockets=[sock], threads=threads)
                shares.attach(srv, me)
                srv.print_listen("Serving on http://{}:{}")
                srv.run()
            finally:
                os._exit(0)
        children.append(pid)

    def stop(*_):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        for pid in children:
            os.waitpid(pid, 0)
    except KeyboardInterrupt:
        stop()
        for pid in children:
            os.waitpid(pid, 0)


def waitress_server(app: Flask, **adjustments):
    """A waitress server for `app` (one listening socket) whose connections do not busy-loop while a
    request thread writes (eval_server/http_channel.py)."""
    srv = waitress.create_server(app, ident="regnet-bench", clear_untrusted_proxy_headers=True, **adjustments)
    srv.channel_class = QuietHTTPChannel
    return srv


def die_with_parent(parent: int) -> None:
    """End this server process when `serve`'s parent ends. Killed with SIGKILL, which it cannot pass on,
    the parent would otherwise leave its children answering on the port and writing to the database,
    with nothing left to stop them. The kernel's parent-death signal does it on Linux; elsewhere this is
    a no-op."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("server process %d will not stop with its parent (prctl: errno %d)", os.getpid(),
                    ctypes.get_errno())
    if os.getppid() != parent:  # the parent ended before the signal was asked for
        os._exit(0)


def freeze_startup_heap() -> None:
    """Move what start-up made (modules, the app, its templates and SQL metadata: some 170,000 objects)
    out of the garbage collector's sight, before forking. A full collection walked all of it, about
    100 ms on a 2-core machine during which the process answered nothing, a stall far longer than a
    submit; those objects live until exit anyway. Forked children also keep sharing their pages, which
    the collector's bookkeeping would otherwise copy (the use the `gc.freeze` documentation gives)."""
    gc.collect()
    gc.freeze()


def media_dirs(values: list[str] | None) -> tuple[Path, ...]:
    return tuple(Path(v).expanduser().resolve() for v in (values or []))


@dataclass
class ThreadedServer:
    """The app served by waitress on a background thread of this process (quickstart, tests)."""
    url: str
    _srv: object = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def wait(self) -> None:
        """Block until Ctrl-C."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass

    def close(self) -> None:
        srv = self._srv

        def shut() -> None:
            # Runs inside waitress's own loop: closing every channel empties its map and ends the loop.
            for channel in list(srv._map.values()):
                with contextlib.suppress(OSError):
                    channel.close()
        try:
            srv.trigger.pull_trigger(shut)
        except OSError:
            # The loop's wake-up pipe is already gone (the loop ended, or its fd was closed under
            # it): nothing will run `shut` for us, so close the channels from here.
            shut()
        self._thread.join(timeout=10)
        srv.task_dispatcher.shutdown(timeout=5)


def start_in_thread(app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = 8,
                    connection_limit: int = 100) -> ThreadedServer:
    try:
        srv = waitress_server(app, host=host, port=port, threads=threads, connection_limit=connection_limit)
    except OSError as e:
        raise UserError(f"--host/--port: cannot listen on {host}:{port} ({e.strerror})") from None
    t = threading.Thread(target=srv.run, daemon=True, name="eval-server")
    t.start()
    return ThreadedServer(f"http://{host}:{srv.effective_port}", srv, t)

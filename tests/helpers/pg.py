"""A throwaway PostgreSQL cluster on 127.0.0.1 for the tests (`tests.helpers.server`'s ``pg`` fixture)
and the server benchmark (`benchmarks/server_load.py`): run by an unprivileged user when we are root,
stopped and removed afterwards. Nothing here needs pytest."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class PgUnavailable(RuntimeError):
    """initdb / pg_ctl are not installed."""


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_available() -> bool:
    return bool(pg_bin("initdb") and pg_bin("pg_ctl"))


@dataclass
class PgCluster:
    base: str  # URL without database name
    admin_url: str


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def pg_cluster(tmp: Path | None = None, durable: bool = False) -> Iterator[PgCluster]:
    """``durable``: fsync on (a benchmark's commits as durable as SQLite's); off for tests, which only
    need the semantics. ``tmp``: where the data directory goes when we are not root (as root it goes
    directly under the system temp dir, which the cluster's own user can reach)."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise PgUnavailable("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="regnet-pg-", dir=tmp if os.geteuid() != 0 else None))
    data = root / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = "postgres" if _has_user("postgres") else "nobody"
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
        run_as = [shutil.which("runuser") or "/sbin/runuser", "-u", user, "--"]
    port = free_port()
    log = root / "log.txt"

    def run(cmd: list[str], timeout: int) -> None:
        r = subprocess.run(run_as + cmd, capture_output=True, text=True, timeout=timeout, cwd=root)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:1])} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")

    try:
        run([initdb, "-D", str(data), "-A", "trust", "-U", "regnet", *([] if durable else ["--no-sync"]), "-E",
             "UTF8"], 120)
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200" \
            + ("" if durable else " -c fsync=off")
        run([pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"], 90)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        base = f"postgresql+psycopg2://regnet@127.0.0.1:{port}"
        yield PgCluster(base=base, admin_url=f"{base}/postgres")
    finally:
        subprocess.run(run_as + [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True,
                       timeout=60, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


def create_pg_database(cluster: PgCluster, name: str | None = None) -> str:
    from sqlalchemy import create_engine, text

    name = name or f"t_{uuid.uuid4().hex[:12]}"
    eng = create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return f"{cluster.base}/{name}"

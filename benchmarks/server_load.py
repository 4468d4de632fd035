"""Requests per second of the local rating server: the HIT page and answer submissions at 1, 8 and 32
concurrent loopback clients. Bounded: each level stops after --requests requests or --seconds seconds.

    .venv/bin/python benchmarks/server_load.py [--db URL] [--processes N] [--threads N]

The server runs as its own process (`regnet-bench serve`), so the clients' Python does not share its GIL.
Assignments for the submission runs are accepted beforehand (not timed); a submission is one
POST /mturk/externalSubmit, stored in its own committed transaction (SQLite: WAL, synchronous=FULL).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import requests

KEY, SECRET = "AKBENCHKEY", "bench-secret"
QUESTION = ('<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/'
            'HTMLQuestion.xsd"><HTMLContent><![CDATA[<!DOCTYPE html><html><body><form method="post" '
            'action="/mturk/externalSubmit"><input type="hidden" name="assignmentId"><input name="t1">'
            '<video src="/media/x.mp4"></video></form></body></html>]]></HTMLContent><FrameHeight>600</FrameHeight>'
            '</HTMLQuestion>')
LEVELS = (1, 8, 32)


def start(db: str, processes: int, threads: int) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "regnet.cli", "-q", "serve", "--db", db, "--port", "0", "--threads", str(threads),
           "--processes", str(processes), "--requester-key", KEY, "--requester-secret", SECRET]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"server: (http://\S+)", line or "")
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("server did not start")


def run_level(n_clients: int, jobs: list, do, seconds: float) -> tuple[int, float]:
    """Run `do(session, job)` over jobs with n_clients threads until done or out of time."""
    lock = threading.Lock()
    it = iter(jobs)
    done = [0]
    stop_at = time.time() + seconds

    def client():
        s = requests.Session()
        while time.time() < stop_at:
            with lock:
                job = next(it, None)
            if job is None:
                return
            do(s, job)
            with lock:
                done[0] += 1
    t0 = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        for f in [pool.submit(client) for _ in range(n_clients)]:
            f.result()
    return done[0], time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=None, help="database URL or SQLite path (default: a temporary SQLite file)")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--requests", type=int, default=400, help="most requests per level")
    ap.add_argument("--seconds", type=float, default=8.0, help="most seconds per level")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    db = args.db or os.path.join(tmp.name, "bench.sqlite")
    proc, url = start(db, args.processes, args.threads)
    try:
        c = boto3.client("mturk", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                         aws_secret_access_key=SECRET)
        total = args.requests * len(LEVELS)
        hit = c.create_hit(Title="bench", Description="d", Reward="0.01", AssignmentDurationInSeconds=3600,
                           LifetimeInSeconds=3600, MaxAssignments=total, Question=QUESTION)["HIT"]["HITId"]
        print(f"server {url}, db {db.split('://')[0] if '://' in db else 'sqlite'}, processes {args.processes}, "
              f"threads {args.threads}; cores {os.cpu_count()} (shared: figures are indicative)")
        page_url = f"{url}/worker/task?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId={hit}"

        def get_page(s, _):
            r = s.get(page_url, timeout=30)
            assert r.status_code == 200

        # Accept every assignment the submission runs will use (untimed), spread over 8 clients.
        accepted: list[str] = []

        def accept(s, i):
            r = s.get(f"{url}/worker/accept", params={"hitId": hit, "workerId": f"AB{i}"}, allow_redirects=False,
                      timeout=30)
            accepted.append(r.headers["Location"].split("assignmentId=")[1].split("&")[0])
        run_level(8, list(range(total)), accept, 600)

        def submit(s, aid):
            r = s.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "t1": "left"}, timeout=30)
            assert r.status_code == 200, r.text

        figures = {}
        for n in LEVELS:
            done, dt = run_level(n, list(range(args.requests)), get_page, args.seconds)
            figures[f"hit_page_rps_c{n}"] = done / dt
            print(f"HIT page    {n:>2} clients: {done:>4} requests in {dt:5.2f} s = {done / dt:7.1f} req/s")
        for i, n in enumerate(LEVELS):
            batch = accepted[i * args.requests:(i + 1) * args.requests]
            done, dt = run_level(n, batch, submit, args.seconds)
            figures[f"submit_rps_c{n}"] = done / dt
            print(f"submission  {n:>2} clients: {done:>4} requests in {dt:5.2f} s = {done / dt:7.1f} req/s")
        print(f"submit_rps_c32: {figures['submit_rps_c32']:.1f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        tmp.cleanup()


if __name__ == "__main__":
    main()

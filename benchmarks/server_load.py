"""The rating server at study scale: next task, then submit, at 1, 8 and 32 concurrent raters.

Workload (issue 15): 6 HIT groups x 2,000 HITs x 3 assignments (12,000 HITs) on one server. At each level
the raters of that level, each signed in with its own session, all work on one group (the worst case for
herding): during the next-task phase each one repeats "Accept & work" (POST /worker/accept-next, which
answers 303 to the HIT's frame page), loads that page and the HIT's own page in its iframe; during the
submit phase each submits the assignments it took (POST /mturk/externalSubmit). Reported per level:
next-task page loads/s and their latency, refusals while the group still had HITs for the rater, submits/s
with p50/p99, the CPU the server and the clients spent per request (the server's from /proc, its
worker processes included), the machine's speed of the moment (`reference_ms`), and, after the run,
answers stored = answers acknowledged. Backends: SQLite
(`serve`'s own layout, 3 processes x 2 threads on 2 cores: their writers queue on the file's writer lock,
eval_server/sqlite_lock.py, and their connections split evenly, eval_server/accept_balance.py) and
PostgreSQL (`serve`'s 2 x 4 on 2 cores, on a throwaway cluster like the tests', with fsync on). Each
rater is one keep-alive HTTP/1.1 connection with its cookies (`RaterHttp`, a plain socket), so the clients,
which share the machine's cores with the server, take as little of them as they can.

    .venv/bin/python benchmarks/server_load.py                       # the full workload, both backends
    .venv/bin/python benchmarks/server_load.py --hits-per-group 200 --seconds 3 --backends sqlite
    .venv/bin/python benchmarks/server_load.py --cpu-requests 300 --groups 2 --hits-per-group 300

--cpu-requests N measures what throughput on a shared machine cannot: the server's CPU time per request
of each hot route (accept-next, the frame page, the HIT page, submit), N of each, through Flask's test
client in this one process (time.process_time over each batch; no sockets, no client processes), with
--cpu-profile ROUTE printing cProfile's top functions for one route. Its last line is the CPU ms of one
next-task page load (the three requests together).

Bounded: each phase of each level stops after --seconds or --max-per-rater page loads per rater; the
server and the clients run as separate processes (the clients in --client-processes processes), so
neither's GIL limits the other, but on a shared machine they share its cores: figures are indicative,
and the CPU line says how much of the machine each side took.
The goal (issue 15) is next-task >= 3x Turkle 3.1.0's 52-55/s, measured there under the same load
generator (Turkle cannot be installed here, so its figures are the issue's), 0 refusals while HITs remain,
and submit >= 650/s with p99 <= 50 ms at 32 raters, on SQLite. The last line is the SQLite next-task page
loads/s at the highest level.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the throwaway PostgreSQL cluster and the server process, as the tests make them

from tests.helpers.server import KEY, SECRET  # noqa: E402
QUESTION = ('<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/'
            'HTMLQuestion.xsd"><HTMLContent><![CDATA[<!DOCTYPE html><html><body><form method="post" '
            'action="/mturk/externalSubmit"><input type="hidden" name="assignmentId"><input name="t1">'
            '<video src="/media/x.mp4"></video></form></body></html>]]></HTMLContent><FrameHeight>600</FrameHeight>'
            '</HTMLQuestion>')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
IFRAME_SRC = re.compile(r'<iframe id="task"[^>]* src="([^"]+)"')
TURKLE_NEXT_TASK_PER_S = (52, 55)


# ---- the server -------------------------------------------------------------------------------------

def server_layout(sqlite: bool, processes: int | None, threads: int | None) -> tuple[int, int]:
    """The server's (processes, threads): those given, the rest as plain `serve` would choose them."""
    from eval_server.server import default_layout, usable_cores

    return default_layout(sqlite, usable_cores(), hasattr(os, "fork"), processes=processes, threads=threads)


def start_server(db: str, processes: int, threads: int):
    """`regnet-bench serve` in a child process, started as the tests start theirs (tests/helpers/server.py)."""
    from tests.helpers.server import start_subprocess

    return start_subprocess(db, "--threads", str(threads), "--processes", str(processes),
                            env={"PYTHONPATH": str(REPO)}, timeout_s=90)


@contextlib.contextmanager
def postgres_db() -> "contextlib.AbstractContextManager[str]":
    """A throwaway PostgreSQL cluster on 127.0.0.1, started as the tests start theirs
    (tests/helpers/pg.py) but with fsync on, so its commits are as durable as SQLite's."""
    from tests.helpers.pg import create_pg_database, pg_cluster

    with pg_cluster(durable=True) as cluster:
        yield create_pg_database(cluster, "bench")


def make_workload(url: str, groups: int, hits_per_group: int, assignments: int) -> list[str]:
    """The HIT groups (one HIT type each) and their HITs, created through the requester API."""
    import boto3
    from botocore.config import Config

    def client():
        return boto3.client("mturk", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                            aws_secret_access_key=SECRET,
                            config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=16))
    c = client()
    types = [c.create_hit_type(Title=f"bench study {g}", Description="rate the sound", Reward="0.05",
                               AssignmentDurationInSeconds=3600)["HITTypeId"] for g in range(groups)]
    local = threading.local()

    def create(job):
        if not hasattr(local, "c"):
            local.c = client()
        g, i = job
        local.c.create_hit_with_hit_type(HITTypeId=types[g], MaxAssignments=assignments, LifetimeInSeconds=86400,
                                         Question=QUESTION, RequesterAnnotation=f"bench-{g}-{i}",
                                         UniqueRequestToken=f"bench-{g}-{i}")
    jobs = [(g, i) for g in range(groups) for i in range(hits_per_group)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, jobs))
    return types


# ---- the raters (run in client processes) -----------------------------------------------------------

@dataclass
class RaterResult:
    page_loads: int = 0
    page_latency: list[float] = field(default_factory=list)
    refusals_with_hits_left: int = 0
    refusal_codes: dict[int, int] = field(default_factory=dict)
    submits: int = 0
    submit_latency: list[float] = field(default_factory=list)
    submit_errors: int = 0
    next_task_s: float = 0.0
    submit_s: float = 0.0


class RaterHttp:
    """One rater's browser, as lean as a load generator can make it: one keep-alive HTTP/1.1
    connection (a plain socket) and its cookies. The clients share the machine's two cores with the
    server, so whatever they spend is taken from it: `requests` spent about 0.85 ms of CPU per
    request here and http.client (which parses every response's headers with the email package)
    0.37-0.40 ms; this one sends the same requests for 0.13-0.19 ms (benchmarks/README.md). It reads
    what the server sends: bodies with Content-Length, chunked, or up to the connection's close."""

    def __init__(self, url: str, timeout: float = 60.0):
        u = urlsplit(url)
        self._addr = (u.hostname, u.port or 80)
        self._host = f"{u.hostname}:{u.port}" if u.port else str(u.hostname)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self.cookies: dict[str, str] = {}
        self.headers: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        """(status, headers with lower-case names, body); redirects are not followed."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            lines.append("Content-Type: application/x-www-form-urlencoded")
        if form is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (0, 1):
            try:
                if self._sock is None:
                    self._sock = socket.create_connection(self._addr, timeout=self._timeout)
                    self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._buf = b""
                self._sock.sendall(message)
                return self._response(method)
            except OSError as e:  # ConnectionError and socket.timeout included
                # The server closed an idle keep-alive connection: one new connection, as a browser would.
                # A submit the server did take is refused when sent again (409), so it counts as an error,
                # never twice.
                self.close()
                if attempt:
                    raise RuntimeError(f"{method} {path}: {e}") from None
        raise AssertionError("unreachable")

    def _response(self, method: str) -> tuple[int, dict[str, str], str]:
        end = self._fill_until(b"\r\n\r\n")
        head = self._buf[:end].decode("latin-1").split("\r\n")
        self._buf = self._buf[end + 4:]
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookie, _, cookie_value = value.split(";", 1)[0].partition("=")
                self.cookies[cookie.strip()] = cookie_value.strip()
            headers[name] = value
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            data = self._chunked()
        elif "content-length" in headers:
            data = self._take(int(headers["content-length"]))
        else:
            while self._recv():
                pass
            data, self._buf = self._buf, b""
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data.decode("utf-8", "replace")

    def _recv(self) -> bool:
        chunk = self._sock.recv(65536)
        self._buf += chunk
        return bool(chunk)

    def _fill_until(self, marker: bytes) -> int:
        while (i := self._buf.find(marker)) < 0:
            if not self._recv():
                raise ConnectionError("the server closed the connection mid-response")
        return i

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._recv():
                raise ConnectionError("the server closed the connection mid-response")
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _chunked(self) -> bytes:
        parts = []
        while True:
            end = self._fill_until(b"\r\n")
            size = int(self._buf[:end].split(b";", 1)[0], 16)
            self._buf = self._buf[end + 2:]
            if size == 0:
                self._buf = self._buf[self._fill_until(b"\r\n") + 2:]  # no trailers here
                return b"".join(parts)
            parts.append(self._take(size))
            self._take(2)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buf = None, b""


def _sign_in(url: str, worker: str) -> RaterHttp:
    s = RaterHttp(url)
    status, headers, body = s.request("GET", "/worker?" + urlencode({"workerId": worker}))
    if status in (302, 303):  # the link sign-in lands on /worker itself
        status, _, body = s.request("GET", urlsplit(headers["location"]).path)
    m = CSRF_META.search(body)
    if status != 200 or not m:
        raise RuntimeError(f"sign-in as {worker} failed ({status}): {body[:200]}")
    s.headers["X-CSRFToken"] = m.group(1)
    return s


def _next_task(s: RaterHttp, group: str) -> tuple[int, str | None]:
    """Accept & work, then load the frame page and the HIT page in it; (accept status, assignment id)."""
    status, headers, _ = s.request("POST", "/worker/accept-next?" + urlencode({"hitTypeId": group}))
    if status not in (302, 303):
        return status, None
    loc = urlsplit(headers["location"])
    frame_path = loc.path + ("?" + loc.query if loc.query else "")
    status, _, body = s.request("GET", frame_path)
    m = IFRAME_SRC.search(body)
    if status != 200 or not m:
        return -status, None
    status, _, _ = s.request("GET", html.unescape(m.group(1)))
    if status != 200:
        return -status, None
    return 200, frame_path.split("assignmentId=")[1].split("&")[0]


def client_process(url: str, group: str, workers: list[str], hits_in_group: int, seconds: float,
                   max_per_rater: int, barrier, out) -> None:
    """The raters `workers`, one thread each: sign in, next-task phase, submit phase (phases start
    together across client processes)."""
    sessions = [_sign_in(url, w) for w in workers]
    held: list[list[str]] = [[] for _ in workers]
    results = [RaterResult() for _ in workers]

    def next_tasks(k: int, stop_at: float) -> None:
        s, res = sessions[k], results[k]
        while time.time() < stop_at and res.page_loads < min(max_per_rater, hits_in_group):
            t0 = time.perf_counter()
            status, aid = _next_task(s, group)
            if aid is None:
                res.refusal_codes[status] = res.refusal_codes.get(status, 0) + 1
                # A rater may take each HIT of the group once; the group holds more than all raters take.
                if len(held[k]) < hits_in_group:
                    res.refusals_with_hits_left += 1
                continue
            res.page_latency.append(time.perf_counter() - t0)
            res.page_loads += 1
            held[k].append(aid)

    def submits(k: int, stop_at: float) -> None:
        s, res = sessions[k], results[k]
        for aid in held[k]:
            if time.time() >= stop_at:
                return
            t0 = time.perf_counter()
            status, _, _ = s.request("POST", "/mturk/externalSubmit", {"assignmentId": aid, "t1": f"answer {aid}"})
            if status == 200:
                res.submit_latency.append(time.perf_counter() - t0)
                res.submits += 1
            else:
                res.submit_errors += 1

    cpu0 = time.process_time()  # all of this process's threads
    for phase in (next_tasks, submits):
        barrier.wait()
        t0 = time.perf_counter()
        stop_at = time.time() + seconds
        with ThreadPoolExecutor(len(workers)) as pool:
            for f in [pool.submit(phase, k, stop_at) for k in range(len(workers))]:
                f.result()
        elapsed = time.perf_counter() - t0
        for res in results:
            if phase is next_tasks:
                res.next_task_s = elapsed
            else:
                res.submit_s = elapsed
    out.put((results, time.process_time() - cpu0))


def run_level(url: str, group: str, n: int, level_tag: str, hits_in_group: int,
              args) -> tuple[list[RaterResult], float]:
    """The level's raters in client processes: their results, and the CPU seconds the clients used."""
    ctx = mp.get_context("spawn")
    procs = max(1, min(args.client_processes, n))
    workers = [f"BENCH-{level_tag}-{i:03d}" for i in range(n)]
    chunks = [workers[p::procs] for p in range(procs)]
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    ps = [ctx.Process(target=client_process, args=(url, group, chunk, hits_in_group, args.seconds,
                                                   args.max_per_rater, barrier, out), daemon=True)
          for chunk in chunks]
    for p in ps:
        p.start()
    results: list[RaterResult] = []
    client_cpu = 0.0
    for _ in ps:
        got, cpu = out.get(timeout=args.seconds * 2 + 600)
        results += got
        client_cpu += cpu
    for p in ps:
        p.join(timeout=30)
    return results, client_cpu


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server process and its live children (the
    `--processes N` workers), from /proc; NaN where /proc does not exist."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, found = 0.0, False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return float("nan")
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, ..., utime (14th field overall), stime (15th).
        if int(e) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
            found = True
    return total if found else float("nan")


def reference_ms() -> float:
    """CPU milliseconds of a fixed pure-Python workload (string, dict and integer work, as a request
    handler does), best of 5: the machine's speed of the moment. On a shared machine the same code's
    server CPU per request swings with it (1.8 to 3.6 ms in one hour here), so runs compare only where
    this figure is alike."""
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        d: dict[str, int] = {}
        for i in range(60_000):
            k = f"k{i % 997}"
            d[k] = d.get(k, 0) + (i * i) % 7
        "".join(sorted(d)).encode().decode()
        best = min(best, time.process_time() - t0)
    return best * 1e3


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def stored_answers(db: str) -> int:
    from sqlalchemy import func, select

    from eval_server.db import Assignment, Database
    d = Database(db)
    try:
        with d.read() as s:
            return s.scalar(select(func.count()).select_from(Assignment).where(Assignment.status == "Submitted"))
    finally:
        d.dispose()


def run_backend(name: str, db: str, processes: int, threads: int, args) -> dict[str, float]:
    srv = start_server(db, processes, threads)
    figures: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        groups = make_workload(srv.url, args.groups, args.hits_per_group, args.assignments)
        n_hits = args.groups * args.hits_per_group
        dt = time.perf_counter() - t0
        print(f"[{name}] server {srv.url}, processes {processes}, threads {threads}; {args.groups} groups x "
              f"{args.hits_per_group} HITs x {args.assignments} assignments = {n_hits} HITs created in {dt:.1f} s "
              f"({n_hits / dt:.0f}/s)", flush=True)
        s = _sign_in(srv.url, "BENCH-LIST")
        t1 = time.perf_counter()
        page = s.request("GET", "/worker")[2]
        t2 = time.perf_counter()
        api = s.request("GET", "/worker/api/hits")[2]
        t3 = time.perf_counter()
        s.close()
        print(f"[{name}] HIT list with {n_hits} HITs on the server: /worker {len(page.encode())} bytes in "
              f"{(t2 - t1) * 1e3:.0f} ms, /worker/api/hits {len(api.encode())} bytes in {(t3 - t2) * 1e3:.0f} ms",
              flush=True)
        acked = 0
        for i, n in enumerate(args.levels):
            group = groups[i % len(groups)]
            ref = reference_ms()
            cpu0 = server_cpu_s(srv.proc.pid)
            res, client_cpu = run_level(srv.url, group, n, f"{name[:2]}{n}", args.hits_per_group, args)
            server_cpu = server_cpu_s(srv.proc.pid) - cpu0
            loads = sum(r.page_loads for r in res)
            t_next = max(r.next_task_s for r in res)
            lat = [x for r in res for x in r.page_latency]
            # Counted only while the group had free slots left: a full group refuses rightly.
            group_full = i >= len(groups) or loads >= args.hits_per_group * args.assignments
            refused = sum(r.refusals_with_hits_left for r in res) if not group_full else 0
            codes: dict[int, int] = {}
            for r in res:
                for k, v in r.refusal_codes.items():
                    codes[k] = codes.get(k, 0) + v
            subs = sum(r.submits for r in res)
            t_sub = max(r.submit_s for r in res)
            slat = [x for r in res for x in r.submit_latency]
            errors = sum(r.submit_errors for r in res)
            acked += subs
            # What one server core does, whatever the clients took from the shared cores: the rate the
            # server would reach on a core of its own (sign-in, both phases; an upper bound per core).
            figures[f"server_cpu_ms_per_request_c{n}"] = server_cpu * 1e3 / max(1, 3 * loads + subs + n)
            figures[f"next_task_c{n}"] = loads / t_next
            figures[f"submit_c{n}"] = subs / t_sub if t_sub else 0.0
            print(f"[{name}] next task {n:>2} raters: {loads:>5} page loads in {t_next:5.2f} s = "
                  f"{loads / t_next:7.1f}/s (p50 {pct(lat, .5) * 1e3:.0f} ms, p99 {pct(lat, .99) * 1e3:.0f} ms); "
                  f"refusals while HITs remained: {refused}" + (f" {codes}" if codes else "")
                  + (" (the group was filled)" if group_full else ""), flush=True)
            print(f"[{name}] submit    {n:>2} raters: {subs:>5} submits    in {t_sub:5.2f} s = "
                  f"{figures[f'submit_c{n}']:7.1f}/s (p50 {pct(slat, .5) * 1e3:.0f} ms, "
                  f"p99 {pct(slat, .99) * 1e3:.0f} ms); errors {errors}", flush=True)
            n_req = 3 * loads + subs
            print(f"[{name}] CPU       {n:>2} raters: server {server_cpu:.1f} s for {n_req + n} requests = "
                  f"{figures[f'server_cpu_ms_per_request_c{n}']:.2f} ms each, the clients "
                  f"{client_cpu * 1e3 / max(1, n_req):.2f} ms each; machine reference {ref:.1f} ms "
                  f"(load average {os.getloadavg()[0]:.1f})",
                  flush=True)
        stored = stored_answers(db)
        queue_warnings = sum("Task queue depth" in ln for ln in srv.output)
        print(f"[{name}] answers stored = acknowledged: {stored} = {acked}"
              f"{'' if stored == acked else '  MISMATCH'}; waitress queue-depth warnings: {queue_warnings}",
              flush=True)
    finally:
        srv.stop()
    return figures


def cpu_per_request(args) -> dict[str, float]:
    """CPU ms per request of each hot route, N requests each, in this process (see the docstring)."""
    import cProfile
    import io
    import pstats

    from eval_server.config import ServerConfig
    from eval_server.server import build_app, start_in_thread
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ServerConfig(db_url=os.path.join(tmp, "cpu.sqlite"), requester_key=KEY, requester_secret=SECRET,
                           admin_token="cpu-bench")
        app, _, _ = build_app(cfg)
        # The HITs are made through the requester API on a real socket, then the server is closed: the
        # measured requests go through the test client only, so nothing else spends this process's CPU.
        srv = start_in_thread(app, threads=8)
        try:
            groups = make_workload(srv.url, args.groups, args.hits_per_group, args.assignments)
        finally:
            srv.close()
        n = args.cpu_requests
        if n > args.hits_per_group * args.assignments:
            raise SystemExit("--cpu-requests: more than one group's assignments (--hits-per-group x --assignments)")
        raters = []
        for i in range(min(32, n)):
            c = app.test_client()
            r = c.get("/worker", query_string={"workerId": f"CPU-{i:03d}"}, follow_redirects=True)
            raters.append((c, CSRF_META.search(r.get_data(as_text=True)).group(1)))
        jobs = [raters[k % len(raters)] for k in range(n)]
        prof = cProfile.Profile() if args.cpu_profile else None
        cpu: dict[str, float] = {}

        def batch(name: str, calls: list, ok: int) -> list[str]:
            """Run the calls, timed together; each response is kept only as what the next step needs
            (a Location or the body), so the collector does not walk hundreds of live responses."""
            if prof is not None and args.cpu_profile == name:
                prof.enable()
            out, bad = [], []
            t0 = time.process_time()
            for f in calls:
                r = f()
                if r.status_code != ok:
                    bad.append(r.status_code)
                out.append(r.headers.get("Location") or r.get_data(as_text=True))
            cpu[name] = (time.process_time() - t0) / len(calls) * 1e3
            if prof is not None:
                prof.disable()
            if bad:
                raise SystemExit(f"{name}: {len(bad)} of {len(out)} answered {sorted(set(bad))}, not {ok}")
            return out
        locs = batch("accept-next", [lambda c=c, t=t: c.post("/worker/accept-next", query_string={
            "hitTypeId": groups[0]}, headers={"X-CSRFToken": t}) for c, t in jobs], 303)
        frames = batch("frame", [lambda c=c, u=u: c.get(u) for (c, _), u in zip(jobs, locs)], 200)
        srcs = [html.unescape(IFRAME_SRC.search(body).group(1)) for body in frames]
        batch("task", [lambda c=c, u=u: c.get(u) for (c, _), u in zip(jobs, srcs)], 200)
        aids = [u.split("assignmentId=")[1].split("&")[0] for u in locs]
        batch("submit", [lambda c=c, a=a: c.post("/mturk/externalSubmit", data={"assignmentId": a, "t1": f"answer {a}"})
                         for (c, _), a in zip(jobs, aids)], 200)
        app.extensions["regnet_eval_server"].db.dispose()
    print(f"CPU time per request, {n} of each, one process, SQLite ({args.groups} groups x {args.hits_per_group} "
          f"HITs x {args.assignments}); load average {os.getloadavg()[0]:.1f}:")
    for name, ms in cpu.items():
        print(f"  {name:<12} {ms:6.2f} ms")
    if prof is not None:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    cpu["page_load"] = cpu["accept-next"] + cpu["frame"] + cpu["task"]
    print(f"next_task_page_load_cpu_ms: {cpu['page_load']:.2f}")
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--groups", type=int, default=6)
    ap.add_argument("--hits-per-group", type=int, default=2000)
    ap.add_argument("--assignments", type=int, default=3, help="MaxAssignments of each HIT")
    ap.add_argument("--levels", default="1,8,32", help="concurrent raters per level")
    ap.add_argument("--seconds", type=float, default=8.0, help="most seconds per phase and level")
    ap.add_argument("--max-per-rater", type=int, default=400, help="most page loads per rater and level")
    # Unset, each is what plain `serve` runs (eval_server.server.default_layout: 3 x 2 on SQLite and 2 x 4 on
    # PostgreSQL on 2 cores, the layouts with the shortest submit tail at 32 raters, benchmarks/README.md).
    ap.add_argument("--pg-processes", type=int, help="server processes on PostgreSQL (default: serve's)")
    ap.add_argument("--pg-threads", type=int, help="server threads per process on PostgreSQL (default: serve's)")
    ap.add_argument("--sqlite-processes", type=int,
                    help="server processes on SQLite (default: serve's; their writers queue on the file's writer "
                         "lock, eval_server/sqlite_lock.py)")
    ap.add_argument("--sqlite-threads", type=int, help="server threads per process on SQLite (default: serve's)")
    ap.add_argument("--client-processes", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--cpu-requests", type=int, default=0,
                    help="instead of the load run: CPU ms per request of each hot route, N requests each")
    ap.add_argument("--cpu-profile", choices=("accept-next", "frame", "task", "submit"),
                    help="with --cpu-requests: cProfile's top functions of this route")
    args = ap.parse_args()
    if args.cpu_requests:
        cpu_per_request(args)
        return
    args.levels = [int(x) for x in args.levels.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown or not backends:
        raise SystemExit(f"--backends: unknown {sorted(unknown)}; use sqlite and/or postgresql")
    if max(args.levels) * args.max_per_rater > args.hits_per_group * args.assignments:
        print("note: the level's raters could take more than the group holds; refusals at the end are counted "
              "only while the rater still had HITs of the group left to take")
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (a shared machine makes figures "
          f"indicative); goal at {max(args.levels)} raters on SQLite: next task >= "
          f"{3 * TURKLE_NEXT_TASK_PER_S[0]}/s (3x Turkle's {TURKLE_NEXT_TASK_PER_S[0]}-{TURKLE_NEXT_TASK_PER_S[1]}/s, "
          f"the issue's figures), 0 refusals while HITs remain, submit >= 650/s with p99 <= 50 ms", flush=True)
    results: dict[str, dict[str, float]] = {}
    for b in ("postgresql", "sqlite"):  # SQLite last: its figure is the last line
        if b not in backends:
            continue
        if b == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results[b] = run_backend("sqlite", os.path.join(tmp, "bench.sqlite"),
                                         *server_layout(True, args.sqlite_processes, args.sqlite_threads), args)
        else:
            try:
                with postgres_db() as url:
                    results[b] = run_backend("postgresql", url,
                                             *server_layout(False, args.pg_processes, args.pg_threads), args)
            except (RuntimeError, subprocess.CalledProcessError) as e:
                print(f"[postgresql] not run: {e}", flush=True)
    top = max(args.levels)
    for b, figs in results.items():
        print(f"{b}: next task {figs[f'next_task_c{top}']:.1f}/s, submit {figs[f'submit_c{top}']:.1f}/s "
              f"at {top} raters")
    last = "sqlite" if "sqlite" in results else next(iter(results), None)
    if last is None:
        raise SystemExit("no backend ran")
    print(f"next_task_page_loads_per_s_{last}_c{top}: {results[last][f'next_task_c{top}']:.1f}")


if __name__ == "__main__":
    main()

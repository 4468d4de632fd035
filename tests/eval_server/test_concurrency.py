"""Many raters at once: nothing lost or duplicated, MaxAssignments and one-per-worker hold, on SQLite and
PostgreSQL, with two server processes on one database; and a killed server keeps what it acknowledged."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from tests.helpers.server import SIMPLE_FORM, accept_hit, assignment_of, rater, start_subprocess

from eval_server import xml_answers

CLIENTS = 20
HITS = 25
PER_HIT = 5  # 20 clients x 25 HITs = 500 tries for 125 slots: most accepts race for a full HIT
TIME_LIMIT_S = 90


def _make_hits(c, n, max_assignments, annotation):
    ht = c.create_hit_type(Title="load", Description="d", Reward="0.01", AssignmentDurationInSeconds=600)
    return [c.create_hit_with_hit_type(HITTypeId=ht["HITTypeId"], MaxAssignments=max_assignments,
                                       LifetimeInSeconds=3600, Question=SIMPLE_FORM, RequesterAnnotation=annotation,
                                       UniqueRequestToken=f"{annotation}-{i}")["HIT"]["HITId"] for i in range(n)]


def _rater(url, worker, hit_ids, stop_at, acked, refused):
    s = rater(url, worker)
    order = list(hit_ids)
    random.Random(worker).shuffle(order)
    for hit in order:
        if time.time() > stop_at:
            return
        r = accept_hit(s, url, hit)
        if r.status_code != 302:
            refused[r.status_code] += 1
            continue
        aid = assignment_of(r)
        answer = f"{worker}:{hit}"
        r = s.post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "answer": answer}, timeout=30)
        if r.status_code == 200:
            acked.append((hit, worker, aid, answer))
        else:
            refused[("submit", r.status_code)] += 1


def _all_assignments(c, hit_id):
    out, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = c.list_assignments_for_hit(HITId=hit_id, MaxResults=100, **kw)
        out += page["Assignments"]
        token = page.get("NextToken")
        if not token:
            return out


def test_concurrent_raters_two_processes(db_url):  # noqa: F811
    srv = start_subprocess(db_url, "--processes", "2", "--threads", "8")
    try:
        c = srv.client(retries=3)
        hits = _make_hits(c, HITS, PER_HIT, "load")
        acked: list[tuple] = []
        refused: Counter = Counter()
        stop_at = time.time() + TIME_LIMIT_S
        t0 = time.time()
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(_rater, srv.url, f"W{i:02d}", hits, stop_at, acked, refused)
                       for i in range(CLIENTS)]
            for f in futures:
                f.result()
        elapsed = time.time() - t0
        # Every slot was filled and every other try was refused as "full" (409), nothing else went wrong.
        assert len(acked) == HITS * PER_HIT, (len(acked), refused)
        assert set(refused) == {409}, refused
        stored = {}
        for hit in hits:
            assigns = _all_assignments(c, hit)
            assert len(assigns) == PER_HIT
            workers = [a["WorkerId"] for a in assigns]
            assert len(set(workers)) == len(workers)
            for a in assigns:
                stored[a["AssignmentId"]] = (hit, a["WorkerId"], xml_answers.parse(a["Answer"])["answer"])
        assert stored == {aid: (hit, w, ans) for hit, w, aid, ans in acked}
        print(f"{db_url.split(':')[0]}: {len(acked)} submissions + {sum(refused.values())} refused accepts "
              f"from {CLIENTS} clients in {elapsed:.1f} s")
    finally:
        srv.proc.terminate()
        srv.proc.wait(timeout=10)


def test_burst_accepts_never_exceed_max(sqlite_url):  # noqa: F811
    srv = start_subprocess(sqlite_url, "--processes", "2", "--threads", "16")
    try:
        c = srv.client()
        [hit] = _make_hits(c, 1, 3, "burst")
        barrier = threading.Barrier(CLIENTS)
        results = []
        sessions = [rater(srv.url, f"B{i}") for i in range(CLIENTS)]  # signed in before the race

        def go(i):
            barrier.wait(timeout=30)
            results.append(accept_hit(sessions[i], srv.url, hit).status_code)
        threads = [threading.Thread(target=go, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert Counter(results) == {302: 3, 409: CLIENTS - 3}
        assert c.get_hit(HITId=hit)["HIT"]["NumberOfAssignmentsPending"] == 3
    finally:
        srv.proc.terminate()
        srv.proc.wait(timeout=10)


def test_killed_server_keeps_acknowledged_answers(sqlite_url):  # noqa: F811
    srv = start_subprocess(sqlite_url, "--threads", "8")
    c = srv.client()
    hits = _make_hits(c, 40, 3, "kill")
    acked: list[tuple] = []
    refused: Counter = Counter()
    stop = time.time() + 60

    def rater(i):
        try:
            _rater(srv.url, f"K{i}", hits, stop, acked, refused)
        except requests.RequestException:
            pass  # the server died under us: expected
    threads = [threading.Thread(target=rater, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(acked) < 25 and time.time() < deadline:
        time.sleep(0.02)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=10)
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 25
    srv2 = start_subprocess(sqlite_url, "--threads", "4")
    try:
        c2 = srv2.client()
        stored = {}
        for hit in hits:
            for a in _all_assignments(c2, hit):
                stored[a["AssignmentId"]] = xml_answers.parse(a["Answer"])["answer"]
        for hit, worker, aid, answer in acked:
            assert stored.get(aid) == answer
        assert len(stored) >= len(acked)
    finally:
        srv2.proc.terminate()
        srv2.proc.wait(timeout=10)

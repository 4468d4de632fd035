"""Next task at study scale: accept-next hands concurrent raters different HITs of a group, honouring the
same rules as accept; the worker's HIT list is a bounded page (grouped by HIT type, filtered, paged)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import requests
from tests.helpers.server import SIMPLE_FORM, rater, start_inprocess

class Rater:
    """One signed-in browser session (its POSTs carry the session's CSRF token)."""

    def __init__(self, url: str, worker: str):
        self.url, self.worker = url, worker
        self.s = rater(url, worker)

    def accept_next(self, hit_type_id: str | None = None) -> requests.Response:
        params = {"hitTypeId": hit_type_id} if hit_type_id else {}
        return self.s.post(f"{self.url}/worker/accept-next", params=params, allow_redirects=False, timeout=60)


def _location(r: requests.Response) -> dict[str, str]:
    assert r.status_code in (302, 303), (r.status_code, r.text[:200])
    loc = urlparse(r.headers["Location"])
    assert loc.path == "/worker/hit", loc
    return {k: v[0] for k, v in parse_qs(loc.query).items()}


def _group(c, n_hits: int, max_assignments: int = 1, title: str = "rate", quals=None) -> tuple[str, list[str]]:
    ht = c.create_hit_type(Title=title, Description="d", Reward="0.01", AssignmentDurationInSeconds=600,
                           QualificationRequirements=quals or [])["HITTypeId"]
    with ThreadPoolExecutor(4) as pool:
        hits = list(pool.map(lambda i: c.create_hit_with_hit_type(
            HITTypeId=ht, MaxAssignments=max_assignments, LifetimeInSeconds=3600, Question=SIMPLE_FORM,
            RequesterAnnotation=f"{title}-{i}")["HIT"]["HITId"], range(n_hits)))
    return ht, hits


def test_32_concurrent_accept_next_get_32_different_hits(db_url):  # noqa: F811
    srv = start_inprocess(db_url, threads=32)
    try:
        c = srv.client(retries=3)
        group, hits = _group(c, 32)
        other, _ = _group(c, 8, title="other")
        raters = [Rater(srv.url, f"R{i:02d}") for i in range(32)]
        start = threading.Barrier(32)

        def go(r: Rater):
            start.wait()
            return r.accept_next(group)
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(go, raters))
        got = [_location(r) for r in results]
        assert sorted(g["hitId"] for g in got) == sorted(hits)  # 32 different HITs, all of this group
        assert len({g["assignmentId"] for g in got}) == 32
        for r, g in zip(raters, got):
            assert g["workerId"] == r.worker
            page = r.s.get(srv.url + results[raters.index(r)].headers["Location"])
            assert page.status_code == 200 and '<iframe id="task"' in page.text
        # The group is full now: one line, not a HIT of the other group, nothing over-filled.
        late = Rater(srv.url, "LATE").accept_next(group)
        assert late.status_code == 404 and "no HITs left" in late.text and late.text.count("\n") == 1
        for h in hits:
            assert len(c.list_assignments_for_hit(HITId=h)["Assignments"]) == 0  # accepted, not yet submitted
            assert c.get_hit(HITId=h)["HIT"]["NumberOfAssignmentsAvailable"] == 0
        assert Rater(srv.url, "OTHER").accept_next(other).status_code in (302, 303)
    finally:
        srv.close()


def test_accept_next_follows_accepts_rules(sqlite_url):  # noqa: F811
    srv = start_inprocess(sqlite_url)
    try:
        c = srv.client()
        group, hits = _group(c, 2, max_assignments=3)
        r = Rater(srv.url, "ONE")
        first = _location(r.accept_next(group))
        sub = r.s.post(f"{srv.url}/mturk/externalSubmit", data={"assignmentId": first["assignmentId"], "answer": "a"})
        assert sub.status_code == 200
        # One assignment per worker: the next one is the other HIT, then nothing (though slots remain).
        second = _location(r.accept_next(group))
        assert {first["hitId"], second["hitId"]} == set(hits)
        assert r.accept_next(group).status_code == 404
        # The 404 took nothing: the HIT the rater holds still has its other two slots.
        assert c.get_hit(HITId=second["hitId"])["HIT"]["NumberOfAssignmentsAvailable"] == 2

        qt = c.create_qualification_type(Name="trained", Description="d", QualificationTypeStatus="Active")
        qt_id = qt["QualificationType"]["QualificationTypeId"]
        guarded, _ = _group(c, 3, title="guarded", quals=[{"QualificationTypeId": qt_id, "Comparator": "Exists"}])
        novice = Rater(srv.url, "NOVICE")
        refused = novice.accept_next(guarded)
        assert refused.status_code == 403 and "qualification" in refused.text
        c.associate_qualification_with_worker(QualificationTypeId=qt_id, WorkerId="NOVICE", IntegerValue=1,
                                              SendNotification=False)
        _location(novice.accept_next(guarded))

        c.create_worker_block(WorkerId="BAD", Reason="spam")
        blocked = Rater(srv.url, "BAD").accept_next(group)
        assert blocked.status_code == 403 and "blocked" in blocked.text

        # Without a group: any HIT the rater may take.
        assert _location(Rater(srv.url, "ANY").accept_next())["hitId"] in hits
        # A state change: never by GET; unknown group: one line.
        assert r.s.get(f"{srv.url}/worker/accept-next", params={"hitTypeId": group}).status_code == 405
        missing = Rater(srv.url, "LOST").accept_next("NOSUCHTYPE")
        assert missing.status_code == 404 and missing.text.count("\n") == 1
        # Not signed in: refused, nothing accepted.
        anon = requests.post(f"{srv.url}/worker/accept-next", params={"hitTypeId": group}, allow_redirects=False)
        assert anon.status_code in (400, 401, 403)
    finally:
        srv.close()


def test_hit_list_is_bounded_and_grouped(sqlite_url):  # noqa: F811
    srv = start_inprocess(sqlite_url)
    try:
        c = srv.client()
        big, big_hits = _group(c, 480, max_assignments=3, title="big study")
        small, small_hits = _group(c, 20, title="small study")
        r = Rater(srv.url, "LISTER")
        body = r.s.get(f"{srv.url}/worker/api/hits").json()
        assert 0 < len(body["hits"]) <= 50  # a page, not all 500
        groups = {g["hitTypeId"]: g for g in r.s.get(f"{srv.url}/worker/api/groups").json()["groups"]}
        assert groups[big]["hits"] == 480 and groups[big]["assignmentsAvailable"] == 1440
        assert groups[small]["hits"] == 20 and groups[small]["title"] == "small study"
        page = r.s.get(f"{srv.url}/worker")
        assert page.status_code == 200 and page.text.count("data-hit-id=") <= 50
        assert len(page.content) < 60_000
        # The "Accept & work" button per group: a POST form carrying the CSRF token.
        for ht in (big, small):
            form = re.search(r'<form[^>]*action="/worker/accept-next\?hitTypeId=' + ht + r'"[^>]*>', page.text)
            assert form and 'method="post"' in form.group(0)
        assert "480" in page.text and "1440" in page.text
    finally:
        srv.close()


def test_hit_list_paging_and_filter(sqlite_url):  # noqa: F811
    srv = start_inprocess(sqlite_url)
    try:
        c = srv.client()
        g1, hits1 = _group(c, 7, title="one")
        g2, hits2 = _group(c, 3, title="two")
        r = Rater(srv.url, "PAGER")
        seen, offset = [], 0
        while True:
            resp = r.s.get(f"{srv.url}/worker/api/hits", params={"hitTypeId": g1, "limit": 3, "offset": offset})
            assert resp.status_code == 200
            page = resp.json()["hits"]
            assert len(page) <= 3 and all(h["hitTypeId"] == g1 for h in page)
            seen += [h["hitId"] for h in page]
            nxt = resp.links.get("next")
            if not nxt:
                break
            offset = int(parse_qs(urlparse(nxt["url"]).query)["offset"][0])
        assert sorted(seen) == sorted(hits1) and len(seen) == 7
        only2 = r.s.get(f"{srv.url}/worker/api/hits", params={"hitTypeId": g2}).json()["hits"]
        assert sorted(h["hitId"] for h in only2) == sorted(hits2)
        # A held assignment is listed first with its id (continue where you left off), then open HITs.
        held = _location(r.accept_next(g2))
        first = r.s.get(f"{srv.url}/worker/api/hits", params={"limit": 2}).json()["hits"]
        assert first[0]["hitId"] == held["hitId"] and first[0]["assignmentId"] == held["assignmentId"]
        assert first[1]["assignmentId"] is None
        # The page shows the filtered group and pages on.
        html = r.s.get(f"{srv.url}/worker", params={"hitTypeId": g1, "limit": 3}).text
        assert html.count("data-hit-id=") == 3 and all(h not in html for h in hits2 if h != held["hitId"])
        assert 'rel="next"' in html
        for bad in ({"limit": "0"}, {"limit": "x"}, {"offset": "-1"}, {"limit": "100000"}):
            resp = r.s.get(f"{srv.url}/worker/api/hits", params=bad)
            assert resp.status_code == 400 and resp.text.count("\n") == 1, (bad, resp.text)
    finally:
        srv.close()


def test_simulated_raters_walk_every_page(sqlite_url):  # noqa: F811
    """mturk.simulate's bots read the paged list to its end (the Link header), not just the first page."""
    import numpy as np

    from mturk.simulate.client import SimulatedRater
    srv = start_inprocess(sqlite_url)
    try:
        _, hits = _group(srv.client(), 130, title="many")
        bot = SimulatedRater(srv.url, "SIM-0-0", {}, None, None, np.random.default_rng(0))
        assert sorted(bot.available_hits()) == sorted(hits)
    finally:
        srv.close()


def test_done_page_offers_the_next_hit_of_the_group(sqlite_url):  # noqa: F811
    """After a submit the "Next HIT" button is accept-next on a group (not the first HIT of a list that
    every rater shares), or the rater's own open assignment."""
    srv = start_inprocess(sqlite_url)
    try:
        group, _ = _group(srv.client(), 3)
        r = Rater(srv.url, "DONE1")
        a = _location(r.accept_next(group))
        assert r.s.post(f"{srv.url}/mturk/externalSubmit", data={"assignmentId": a["assignmentId"], "answer": "x"}
                        ).status_code == 200
        page = r.s.get(f"{srv.url}/worker/done", params={"assignmentId": a["assignmentId"]}).text
        form = re.search(r'<form[^>]*action="/worker/accept-next\?hitTypeId=' + group + r'"[^>]*>', page)
        assert form and 'method="post"' in form.group(0) and 'id="next"' in page
        held = _location(r.accept_next(group))
        page = r.s.get(f"{srv.url}/worker/done").text
        assert f'assignmentId={held["assignmentId"]}' in page and "accept-next" not in page
    finally:
        srv.close()

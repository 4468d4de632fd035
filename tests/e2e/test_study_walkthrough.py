"""Two raters in real headless Chromium walk a study built by `build-study` and published by
`publish-hits` to the local server: sign in, the consent page taken from the study file, the volume
calibration and the Woods et al. (2017) headphone check. The one who answers as a headphone listener
passes and does the practice question (with feedback) and one HIT of each protocol; the one who
answers as a loudspeaker listener is refused every HIT. `collect` and `report` then count them."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.helpers.browser import ANSWER, ARGS, do_hit, sign_in, take_screening_in_browser
from tests.helpers.server import KEY, SECRET, start_inprocess
from tests.helpers.study import make_manifests

from mturk import screening as sc
from regnet.cli import main

CONSENT = "Walkthrough lab consent: you may stop at any time."


@pytest.mark.browser
def test_two_raters_walk_consent_screening_practice_and_each_protocol(
        chromium_path, sqlite_url, tmp_path, monkeypatch):  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    clips = make_manifests(tmp_path / "clips", n_videos=6)
    consent = tmp_path / "consent.txt"
    consent.write_text(CONSENT)
    study_dir = tmp_path / "study"
    assert main(["build-study", "--clips", *map(str, clips), "--out", str(study_dir), "--seed", "1",
                 "--questions", "missing", "--trials-per-hit", "2", "--consent", str(consent)]) == 0
    srv = start_inprocess(sqlite_url, media_dirs=(study_dir / "media",), threads=8)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    try:
        assert main(["publish-hits", "--study", str(study_dir), "--endpoint-url", srv.url,
                     "--media-base-url", "/media", "--no-system-quals"]) == 0
        client = srv.client()
        by_kind: dict[str, str] = {}
        for h in client.list_hits(MaxResults=100)["HITs"]:
            q = client.get_hit(HITId=h["HITId"])["HIT"]["Question"]
            for kind in ANSWER:
                if f'data-kind="{kind}"' in q and kind not in by_kind:
                    by_kind[kind] = h["HITId"]
        assert sorted(by_kind) == sorted(ANSWER)
        qid = next(t["QualificationTypeId"] for t in client.list_qualification_types(
            MustBeRequestable=False)["QualificationTypes"] if t["Name"].startswith("regnet-bench screening"))
        answered: list[str] = []
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=ARGS)
            try:
                # Rater 1: headphones.
                page = browser.new_context().new_page()
                page.set_default_timeout(30000)
                sign_in(page, srv.url, "RATER-HP")
                page.goto(f"{srv.url}/worker")
                page.click("a[href*='/worker/qualification']")
                assert CONSENT in page.inner_text("body")  # the study's own consent text, before screening
                take_screening_in_browser(page, srv.url, study_dir, headphones=True)
                for kind, hit_id in by_kind.items():
                    # every HIT page opens with the practice question (answered wrong, then right)
                    answered += do_hit(page, srv.url, hit_id, practice=True)
                # Rater 2: loudspeakers. The test is taken, and every HIT is then refused.
                page2 = browser.new_context().new_page()
                page2.set_default_timeout(30000)
                sign_in(page2, srv.url, "RATER-LS")
                take_screening_in_browser(page2, srv.url, study_dir, headphones=False)
                token = page2.get_attribute("meta[name='csrf-token']", "content")
                for hit_id in by_kind.values():
                    status, text = page2.evaluate(
                        "([h, t]) => fetch('/worker/accept', {method: 'POST', redirect: 'manual', headers: "
                        "{'Content-Type': 'application/x-www-form-urlencoded'}, body: 'hitId=' + h + '&csrf_token=' + t})"
                        ".then(async r => [r.status, await r.text()])", [hit_id, token])
                    assert status == 403 and "screening" in text, (status, text)
            finally:
                browser.close()
        values = {w: client.get_qualification_score(QualificationTypeId=qid, WorkerId=w)["Qualification"]["IntegerValue"]
                  for w in ("RATER-HP", "RATER-LS")}
        assert values == {"RATER-HP": sc.CONSENT_SCORE + 6, "RATER-LS": sc.CONSENT_SCORE}
        assert main(["collect", "--study", str(study_dir), "--endpoint-url", srv.url]) == 0
    finally:
        srv.close()
    votes = pd.read_csv(study_dir / "votes.csv", dtype={"worker_id": str, "answer": str})
    assert set(votes["worker_id"]) == {"RATER-HP"} and set(votes["trial_id"]) == set(answered)
    assert not votes["trial_id"].str.startswith("px").any()  # the practice question is never a vote
    scr = pd.read_csv(study_dir / "screening.csv", dtype=str).set_index("worker_id")
    assert scr.loc["RATER-HP", "passed"] == "1" and scr.loc["RATER-LS", "passed"] == "0"
    assert scr.loc["RATER-LS", "reason"] == "headphone check failed (0 of 6 correct, 5 needed)"

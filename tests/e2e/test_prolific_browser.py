"""A study recruited on Prolific, in real headless Chromium: participants arrive by the Prolific URL
(signed in from their PROLIFIC_PID), go through consent and the headphone check, and land on the
right link back to Prolific: the completion code after their HIT, the screen-out code after failing
the check. Prolific itself is replaced by `responses` (the real service cannot be reached)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pandas as pd
import pytest
import responses
from responses import matchers
from tests.helpers.browser import ANSWER, ARGS, answer_open_hit, take_screening_in_browser
from tests.helpers.server import KEY, SECRET, start_inprocess
from tests.helpers.study import make_manifests

from eval_server.recruit import read_recruit_config
from mturk.prolific import API_URL
from regnet.cli import main

PSTUDY = "64f0a1b2c3d4e5f601234567"


def _arrive(page, url: str, pid: str) -> None:
    """As Prolific sends a participant: its external_study_url with the three parameters filled in."""
    page.goto(f"{url}/worker?" + urlencode({"PROLIFIC_PID": pid, "STUDY_ID": PSTUDY, "SESSION_ID": f"ses-{pid}"}))
    page.wait_for_selector("#worker")


@pytest.mark.browser
def test_prolific_participants_take_the_study_and_land_on_the_right_completion_url(
        chromium_path, sqlite_url, tmp_path, monkeypatch):  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    clips = make_manifests(tmp_path / "clips", n_videos=6)
    study_dir = tmp_path / "study"
    assert main(["build-study", "--clips", *map(str, clips), "--out", str(study_dir), "--seed", "1",
                 "--protocols", "pair", "--questions", "missing", "--trials-per-hit", "2"]) == 0
    trials = pd.read_csv(study_dir / "trials.csv", dtype=str, keep_default_na=False)
    truth = {r.trial_id: r.truth for r in trials.itertuples() if r.truth in ("left", "right")}
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "tok-test")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru("http://127.0.0.1")
        rsps.post(f"{API_URL}/api/v1/study-cost-calculator/", json={"total_cost": 600})
        rsps.post(f"{API_URL}/api/v1/studies/", json={"id": PSTUDY, "status": "UNPUBLISHED"}, status=201)
        rsps.get(f"{API_URL}/api/v1/studies/{PSTUDY}/", json={"id": PSTUDY, "status": "UNPUBLISHED"})
        assert main(["publish-hits", "--study", str(study_dir), "--prolific",
                     "--public-url", "https://lab.example.org"]) == 0
        body = json.loads(next(c.request.body for c in rsps.calls if c.request.url == f"{API_URL}/api/v1/studies/"))
        recruit = read_recruit_config(study_dir / "prolific.json")
        codes = {c["code_type"] + str(i): c["code"] for i, c in enumerate(body["completion_codes"])}
        assert recruit.completion_url.endswith("cc=" + codes["COMPLETED0"])
        srv = start_inprocess(sqlite_url, media_dirs=(study_dir / "media",), threads=8,
                              completion_url=recruit.completion_url, screenout_url=recruit.screenout_url,
                              timeout_url=recruit.timeout_url, hits_per_recruit=recruit.hits_per_recruit)
        try:
            assert main(["publish-hits", "--study", str(study_dir), "--endpoint-url", srv.url,
                         "--media-base-url", "/media", "--no-system-quals"]) == 0
            with sync_api.sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_path, args=ARGS)
                try:
                    page = browser.new_context().new_page()
                    page.set_default_timeout(30000)
                    _arrive(page, srv.url, "pPASS")
                    assert "pPASS" in page.inner_text("#worker")
                    take_screening_in_browser(page, srv.url, study_dir, headphones=True)
                    page.goto(f"{srv.url}/worker")
                    page.click("button.accept-next")  # Accept & work on the first group offered
                    answered = answer_open_hit(page, lambda tid, kind: truth.get(tid) or ANSWER[kind])
                    # one HIT each (hits_per_participant 1): the completion code, no "next HIT"
                    assert page.get_attribute("#complete", "href") == recruit.completion_url
                    assert page.locator("#next").count() == 0
                    page2 = browser.new_context().new_page()
                    page2.set_default_timeout(30000)
                    _arrive(page2, srv.url, "pFAIL")
                    take_screening_in_browser(page2, srv.url, study_dir, headphones=False, back_to_list=False)
                    assert page2.locator("#screened").count() == 1
                    assert page2.get_attribute("#complete", "href") == recruit.screenout_url
                finally:
                    browser.close()
            subs = {"results": [
                {"id": "sub-pass", "participant_id": "pPASS", "status": "AWAITING REVIEW",
                 "study_code": codes["COMPLETED0"]},
                {"id": "sub-fail", "participant_id": "pFAIL", "status": "AWAITING REVIEW",
                 "study_code": codes["OTHER1"]}], "_links": {"next": {"href": None}}}
            rsps.get(f"{API_URL}/api/v1/submissions/", json=subs,
                     match=[matchers.query_param_matcher({"study": PSTUDY, "page": "1", "page_size": "100"})])
            assert main(["collect", "--study", str(study_dir), "--endpoint-url", srv.url, "--prolific"]) == 0
        finally:
            srv.close()
    votes = pd.read_csv(study_dir / "votes.csv", dtype=str)
    assert set(votes["worker_id"]) == {"pPASS"} and set(votes["trial_id"]) <= set(answered)

"""Two raters in real headless Chromium walk a study built by `build-study` and published by
`publish-hits` to the local server: sign in, the consent page taken from the study file, the volume
calibration and the Woods et al. (2017) headphone check. The one who answers as a headphone listener
passes and does the practice question (with feedback) and one HIT of each protocol; the one who
answers as a loudspeaker listener is refused every HIT. `collect` and `report` then count them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.helpers.server import CHROMIUM_ARGS, KEY, SECRET, start_inprocess
from tests.helpers.study import make_manifests

from mturk import screening as sc
from regnet.cli import main

ANSWER = {"pair": "left", "real_fake": "real", "mos": "4"}
ARGS = CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"]
CONSENT = "Walkthrough lab consent: you may stop at any time."


def sign_in(page, url: str, worker: str) -> None:
    page.goto(f"{url}/worker?workerId={worker}")
    if page.locator("#confirmSwitch").count():
        page.click("#confirmSwitch")
    page.wait_for_selector("#worker")


def take_screening_in_browser(page, url: str, study_dir, headphones: bool = True, back_to_list: bool = True) -> None:
    """From the HIT list, open the screening test, agree, check every sound loads, answer, submit.
    The answers are the study's own (as a headphone or a loudspeaker listener hears its files).
    ``back_to_list``: wait for the HIT list after it (a recruited rater who fails goes elsewhere)."""
    study = json.loads((study_dir / "study.json").read_text())
    s = sc.Screening.from_dict(study["screening"])
    page.goto(f"{url}/worker")
    page.click("a[href*='/worker/qualification']")
    page.wait_for_selector("input[name='consent']")
    # Every sound of the form is served and decodes: 5 s calibration, six 4 s trials.
    durations = page.evaluate(
        "() => Promise.all([...document.querySelectorAll('audio')].map(a => new Promise((ok, bad) => {"
        " if (a.readyState >= 1) return ok(a.duration); a.addEventListener('loadedmetadata', () => ok(a.duration));"
        " a.addEventListener('error', () => bad('audio ' + a.src + ' failed')); a.load(); })))")
    assert [round(d, 1) for d in durations] == [sc.CALIBRATION_S] + [4.0] * len(s.trials)
    answers = sc.simulated_answers(s, study_dir / "media", headphones=headphones)
    for qid, value in answers.items():
        page.check(f"input[name='{qid}'][value='{value}']")
    # Wait for the whole POST -> redirect -> HIT list navigation to load: a goto() issued while it is
    # still loading can be aborted (net::ERR_ABORTED).
    with page.expect_navigation(url="**/worker" if back_to_list else "**/worker/done", wait_until="load"):
        page.click("#submitButton")
    if back_to_list:
        page.wait_for_selector("#worker")


def play_and_answer_practice(frame) -> None:
    """The practice question opens the page: play its videos, answer wrong then right, read the feedback."""
    practice = frame.locator("fieldset.practice")
    practice.wait_for()
    practice.evaluate("fs => Promise.all([...fs.querySelectorAll('video')].map(v => {v.muted = true; return v.play();}))")
    radios = practice.locator("input[type=radio]")
    frame.locator("body").evaluate(
        "() => new Promise((ok, bad) => { const t0 = Date.now(); (function poll() {"
        " const r = [...document.querySelectorAll('fieldset.practice input[type=radio]')];"
        " if (r.every(e => !e.disabled)) return ok(); if (Date.now() - t0 > 60000) return bad('practice locked');"
        " setTimeout(poll, 100); })(); })")
    truth = practice.get_attribute("data-truth")
    values = [radios.nth(i).get_attribute("value") for i in range(radios.count())]
    kind = practice.get_attribute("data-kind")
    wrong = next(v for v in values if v != truth and (kind != "mos" or abs(int(v) - int(truth)) > 1))
    practice.locator(f"input[value='{wrong}']").check()
    assert practice.locator(".feedback").inner_text().startswith("Not quite.")
    practice.locator(f"input[value='{truth}']").check()
    assert practice.locator(".feedback").inner_text().startswith("Right.")


def do_hit(page, url: str, hit_id: str) -> list[str]:
    page.goto(f"{url}/worker/hit?hitId={hit_id}")
    page.click("#acceptHit")
    return answer_open_hit(page)


def answer_open_hit(page, answer_for=None) -> list[str]:
    """On an accepted HIT's page: the practice question, then play every clip and answer every trial
    (``answer_for(trial_id, kind)``, default ANSWER[kind]), submit; returns the trial ids answered."""
    page.wait_for_selector("#returnHit")
    frame = page.frame_locator("iframe").first
    frame.locator("fieldset.trial").first.wait_for()
    play_and_answer_practice(frame)
    trials = frame.locator("fieldset.trial")
    ids = [trials.nth(i).get_attribute("data-trial-id") for i in range(trials.count())]
    kinds = [trials.nth(i).get_attribute("data-kind") for i in range(trials.count())]
    frame.locator("body").evaluate(
        "() => Promise.all([...document.querySelectorAll('fieldset.trial video, .references video')]"
        ".map(v => {v.muted = true; return v.play();}))")
    frame.locator("body").evaluate(
        "() => new Promise((ok, bad) => { const t0 = Date.now(); (function poll() {"
        " if ([...document.querySelectorAll('fieldset.trial input[type=radio]')].every(e => !e.disabled)) return ok();"
        " if (Date.now() - t0 > 60000) return bad('answers stayed locked'); setTimeout(poll, 100); })(); })")
    for tid, kind in zip(ids, kinds):
        value = answer_for(tid, kind) if answer_for else ANSWER[kind]
        frame.locator(f"input[name='{tid}'][value='{value}']").check()
    frame.locator("#submitButton").click()
    page.wait_for_url("**/worker/done**")
    return ids


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
                    answered += do_hit(page, srv.url, hit_id)
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

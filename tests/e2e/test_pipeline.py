"""The whole path in one test: synthetic videos → train a tiny RegNet (and woREG) → generate clips →
evaluate → assemble HITs → publish through boto3 to the local server → a real headless browser answers
HITs as a person would (one of each protocol) → simulated raters answer the rest → collect → report.

It drives the same `Quickstart` stages the README's first command runs, at the `tiny` scale.
"""

from __future__ import annotations

import json

import boto3
import pandas as pd
import pytest

from tests.helpers.browser import ANSWER, ARGS, do_hit, sign_in, take_screening_in_browser

from regnet.pipelines.quickstart import Quickstart, QuickstartOptions


@pytest.mark.browser
@pytest.mark.slow
def test_synth_to_report_with_a_browser_and_simulated_raters(tmp_path, chromium_path):
    from playwright.sync_api import sync_playwright

    qs = Quickstart(QuickstartOptions(workdir=tmp_path / "qs", preset="tiny", n_per_class=2, seconds=2.0,
                                      steps=15, seed=0, port=0, simulate=2, serve=False,
                                      # 2: with this few test videos a 3-trial HIT leaves none free for its
                                      # check, and build-study refuses a HIT without one.
                                      trials_per_hit=2))
    qs.make_data()
    qs.train()
    qs.generate()
    qs.evaluate()
    qs.build_study()
    for system in ("regnet", "woreg", "real"):
        clips = pd.read_csv(qs.clips / system / "clips.csv")
        assert len(clips) > 0 and (clips["system"] == system).all()
    assert "regnet" in (qs.results / "objective.md").read_text()

    with qs.server() as srv:
        qs.publish(srv)
        mturk = boto3.client("mturk", endpoint_url=srv.url, region_name="us-east-1",
                             aws_access_key_id=srv.key, aws_secret_access_key=srv.secret)
        hits = mturk.list_hits(MaxResults=100)["HITs"]
        study = json.loads((qs.study / "study.json").read_text())
        assert len(hits) == len(study["hits"]) and all(h["MaxAssignments"] == 3 for h in hits)
        qs.publish(srv)  # a re-run creates nothing twice
        assert len(mturk.list_hits(MaxResults=100)["HITs"]) == len(hits)

        # A person (headless Chromium) answers one HIT of each protocol through the worker pages.
        by_kind: dict[str, str] = {}
        for h in hits:
            html = mturk.get_hit(HITId=h["HITId"])["HIT"]["Question"]
            for kind in ANSWER:
                if f'data-kind="{kind}"' in html and kind not in by_kind.values():
                    by_kind.setdefault(h["HITId"], kind)
                    break
        assert sorted(by_kind.values()) == sorted(ANSWER)
        answered: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=ARGS)
            try:
                page = browser.new_page()
                # The study's screening test comes first (consent, volume, headphone check), as for anyone.
                sign_in(page, srv.url, "LAB-PERSON-1")
                take_screening_in_browser(page, srv.url, qs.study, headphones=True)
                for hit_id in by_kind:
                    # Signed in by link again (confirming if someone else was); each HIT waits for its
                    # done page to load, so this next goto() is never aborted by that navigation. A
                    # HIT may or may not open with a practice question (answered if there).
                    sign_in(page, srv.url, "LAB-PERSON-1")
                    answered += do_hit(page, srv.url, hit_id, practice=None)
            finally:
                browser.close()

        qs.simulate(srv)
        votes_path = qs.collect(srv)
        qs.collect(srv)  # re-collecting adds nothing
    votes = pd.read_csv(votes_path, dtype={"worker_id": str, "answer": str})
    assert not votes.duplicated(["assignment_id", "trial_id"]).any()
    person = votes[votes["worker_id"] == "LAB-PERSON-1"]
    assert set(person["trial_id"]) == set(answered)
    assert not person["simulated"].astype(bool).any()
    assert person["played_to_end"].astype(bool).all()
    bots = votes[votes["worker_id"] != "LAB-PERSON-1"]
    assert len(bots) > 0 and bots["simulated"].astype(bool).all()

    qs.report(simulated=True)
    report = (qs.results / "report.md").read_text()
    assert "simulated" in report.lower()
    for name in ("table1_preference.csv", "table2_real_fake.csv", "table_mos.csv", "report.html"):
        assert (qs.results / name).is_file(), name

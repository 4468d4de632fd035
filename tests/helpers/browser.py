"""A rater in real headless Chromium, as the browser tests drive one through the worker pages: sign
in by link, the screening test (consent, volume, headphone check), the practice question, and a HIT
opened, accepted, played and answered. Holds no tests itself."""

from __future__ import annotations

import json

from mturk import screening as sc
from tests.helpers.server import CHROMIUM_ARGS

ANSWER = {"pair": "left", "real_fake": "real", "mos": "4"}
ARGS = CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"]


def task_frame(page):
    """The HIT page's frame (`<iframe id="task">`), loaded. `page.frame(name="task")` is None for a
    moment after the accepted page shows its buttons, before the iframe is attached; waiting for the
    element first closes that race."""
    frame = page.wait_for_selector("iframe#task", state="attached").content_frame()
    frame.wait_for_load_state()
    return frame


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


def do_hit(page, url: str, hit_id: str, answer_for=None, practice: bool | None = True) -> list[str]:
    """Open a HIT from the worker pages, accept it (a POST form carrying the session's CSRF token) and
    answer it with `answer_open_hit`; returns the trial ids answered."""
    page.goto(f"{url}/worker/hit?hitId={hit_id}")
    page.click("#acceptHit")
    return answer_open_hit(page, answer_for, practice=practice)


def answer_open_hit(page, answer_for=None, practice: bool | None = True) -> list[str]:
    """On an accepted HIT's page: the practice question, then play every clip and answer every trial
    (``answer_for(trial_id, kind)``, default ANSWER[kind]), submit, and wait for the done page to load
    (its own navigation: a goto() issued before it has can be aborted, net::ERR_ABORTED). Returns the
    trial ids answered. ``practice``: True, the page must open with a practice question; False, it must
    have none; None, either (answered if there)."""
    page.wait_for_selector("#returnHit")
    frame = page.frame_locator("iframe").first
    frame.locator("fieldset.trial").first.wait_for()
    # The HIT page is rendered whole by the server: once a trial is there, so is any practice question.
    has_practice = frame.locator("fieldset.practice").count() > 0
    if practice is not None:
        assert has_practice == practice, f"practice question expected: {practice}, on the page: {has_practice}"
    if has_practice:
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

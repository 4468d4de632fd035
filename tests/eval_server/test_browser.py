"""A rater in real headless Chromium: sign in, preview, accept, play the video to its end, answer, submit."""

from __future__ import annotations

import pytest
from tests.helpers.browser import task_frame
from tests.helpers.server import CHROMIUM_ARGS, make_video, start_inprocess, video_question

from eval_server import xml_answers


@pytest.mark.browser
def test_rater_does_a_hit_in_chromium(chromium_path, sqlite_url, tmp_path):  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "a1b2c3.mp4")
    srv = start_inprocess(sqlite_url, media_dirs=(media,))
    try:
        c = srv.client()
        hit = c.create_hit(Title="Is this sound real?", Description="watch and answer", Reward="0.05",
                           AssignmentDurationInSeconds=600, LifetimeInSeconds=600, MaxAssignments=1,
                           Question=video_question("a1b2c3.mp4"))["HIT"]["HITId"]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(20000)
                page.goto(f"{srv.url}/worker")
                page.fill("#workerId", "AWORKER1")
                page.click("#signIn")
                page.wait_for_selector(f"tr[data-hit-id='{hit}']")

                page.click(f"tr[data-hit-id='{hit}'] a.preview")
                page.wait_for_selector("#acceptHit")
                preview = page.frame_locator("#task")
                preview.locator("#v").wait_for(state="attached")
                assert page.frame(name="task").evaluate(
                    "new URLSearchParams(location.search).get('assignmentId')") == "ASSIGNMENT_ID_NOT_AVAILABLE"

                page.click("#acceptHit")
                page.wait_for_selector("#returnHit")
                task = task_frame(page)
                assert task.evaluate("new URLSearchParams(location.search).get('assignmentId')") != \
                    "ASSIGNMENT_ID_NOT_AVAILABLE"
                assert task.is_disabled("#go")
                # Play to the end (the page only enables Submit after 'ended').
                task.evaluate("document.getElementById('v').play()")
                task.wait_for_function("document.getElementById('played').value === '1'")
                assert task.evaluate("document.getElementById('v').duration") > 0.3
                task.check("#real")
                task.click("#go")
                page.wait_for_url("**/worker/done**")
                assert "saved" in page.inner_text("#thanks")
            finally:
                browser.close()
        [a] = c.list_assignments_for_hit(HITId=hit)["Assignments"]
        assert a["WorkerId"] == "AWORKER1"
        assert xml_answers.parse(a["Answer"]) == {"t1": "real", "t1__played": "1"}
    finally:
        srv.close()

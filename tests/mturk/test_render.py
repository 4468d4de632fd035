from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import html5lib
import pytest
from tests.helpers.study import build_small_study, make_manifests

from mturk.render import render_hit
from regnet.mturk_xml import MAX_QUESTION_BYTES, html_question
from mturk.study import HitSpec, Trial
from regnet.cli import main
from regnet.errors import UserError

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("render")
    clips = make_manifests(root / "clips", n_videos=6)
    return build_small_study(clips, root / "study", trials_per_hit=2)


def _hit(study, kind):
    return next(h for h in study.hits if h.kind == kind)


def test_page_markup_contract_and_validity(study):
    for kind in ("pair", "real_fake", "mos"):
        hit = _hit(study, kind)
        html = render_hit(study, hit, "https://media.example/m")
        # Strict HTML5 parse: any parse error raises.
        html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)
        assert len(html_question(html).encode()) <= MAX_QUESTION_BYTES
        doc = html5lib.parse(html, namespaceHTMLElements=False)
        # The practice question (its own fieldset, class "practice") comes first; the trials follow.
        assert [f.get("class") for f in doc.findall(".//fieldset")][0] == "practice"
        sets = doc.findall(".//fieldset[@class='trial']")
        assert [f.get("data-trial-id") for f in sets] == hit.trial_ids
        for f in sets:
            t = study.trial(f.get("data-trial-id"))
            assert (f.get("class"), f.get("data-kind"), f.get("data-question")) == ("trial", t.kind, t.question)
            roles = [v.get("data-role") for v in f.findall(".//video")]
            assert roles == (["left", "right"] if kind == "pair" else ["single"])
            for v in f.findall(".//video"):
                assert v.get("src") == "https://media.example/m/" + (
                    t.left_media if v.get("data-role") in ("left", "single") else t.right_media)
            values = sorted(i.get("value") for i in f.findall(".//input[@type='radio']"))
            assert values == sorted({"pair": ["left", "right"], "real_fake": ["real", "fake"],
                                     "mos": list("12345")}[kind])
            assert all(i.get("name") == t.trial_id for i in f.findall(".//input[@type='radio']"))
            hidden = {i.get("name") for i in f.findall(".//input[@type='hidden']")}
            assert hidden == {f"{t.trial_id}__played", f"{t.trial_id}__plays"}
        names = {i.get("name") for i in doc.findall(".//form/input")}
        assert {"assignmentId", "time_on_page_s", "hidden_s"} <= names
        refs = [v.get("data-role") for v in doc.findall(".//section[@class='references']//video")]
        assert refs == (["ref1", "ref5"] if kind == "mos" else [])
        # No system names, no source paths: only opaque media names ("real" is an ordinary word here).
        low = html.lower()
        assert "regnet" not in low and "baseline" not in low and ".mp4" in low
        assert not any(str(study.trial(t).left_clip) in html for t in hit.trial_ids)


def test_oversized_page_is_refused(study):
    trials = [Trial(trial_id=f"t{i:04d}", kind="pair", question="missing", role="main", video_id=f"v{i}",
                    class_name="c", left_system="a", left_clip="", left_media=f"{i:020d}l.mp4",
                    right_system="b", right_media=f"{i:020d}r.mp4") for i in range(200)]
    big = type(study)(**{**study.__dict__, "trials": trials,
                         "hits": [HitSpec("h9999", "pair", [t.trial_id for t in trials])]})
    with pytest.raises(UserError, match="64 KB"):
        render_hit(big, big.hits[0], "https://m.example")


def test_page_holding_cdata_end_is_split_not_refused():
    import xml.etree.ElementTree as ET

    page = "<p>a]]>b</p><script>if (x[y[0]]>1) {}</script>]]"
    root = ET.fromstring(html_question(page, frame_height=450))
    assert root.find("{*}HTMLContent").text == page
    assert root.find("{*}FrameHeight").text == "450"


def test_preview_study_verb(study, tmp_path, capsys):
    assert main(["preview-study", "--study", str(study.directory), "--out", str(tmp_path / "pages")]) == 0
    pages = sorted((tmp_path / "pages").glob("*.html"))
    assert [p.stem for p in pages] == [h.local_id for h in study.hits]
    assert "../" in pages[0].read_text()  # relative media path back to the study folder
    assert capsys.readouterr().out.count(".html") == len(study.hits)


class _Host(BaseHTTPRequestHandler):
    """A minimal page host standing in for MTurk/the local server: the HIT page at /task, media
    at /media/<name>, and the form post at /mturk/externalSubmit recorded for the test."""

    pages: dict = {}
    media_dir = None
    posts: list = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path.startswith("/task/"):
            body, ctype = self.pages[path[6:]].encode(), "text/html; charset=utf-8"
        elif path.startswith("/media/") and (self.media_dir / path[7:]).is_file():
            body, ctype = (self.media_dir / path[7:]).read_bytes(), "video/mp4"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.posts.append((self.path, urllib.parse.parse_qs(self.rfile.read(n).decode(), keep_blank_values=True)))
        body = b"<!DOCTYPE html><title>ok</title><p>submitted</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.browser
def test_hit_page_in_headless_chromium(study, chromium_path):
    from playwright.sync_api import sync_playwright

    _Host.pages = {k: render_hit(study, _hit(study, k), "/media") for k in ("pair", "mos")}
    _Host.media_dir = study.directory / "media"
    _Host.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            page = browser.new_page()
            # Preview: MTurk's placeholder assignment id; answers and submit stay disabled.
            page.goto(f"{base}/task/pair?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1")
            assert page.is_visible("#preview-banner")
            assert page.is_disabled("#submitButton")
            assert page.eval_on_selector_all("input[type=radio]", "els => els.every(e => e.disabled)")

            for kind, answer in (("pair", "left"), ("mos", "4")):
                hit = _hit(study, kind)
                page.goto(f"{base}/task/{kind}?assignmentId=A-{kind}&hitId=H1&workerId=W1&turkSubmitTo={base}")
                assert not page.is_visible("#preview-banner")
                # Answers stay locked before playback, and an early submit is refused.
                assert page.eval_on_selector_all("input[type=radio]", "els => els.every(e => e.disabled)")
                page.click("#submitButton")
                assert "Play every video" in page.inner_text("#submit-msg")
                if kind == "mos":
                    # Trial videos alone are not enough: the two references must be played too.
                    page.evaluate("Promise.all([...document.querySelectorAll('fieldset video')].map(v => "
                                  "{v.muted = true; return v.play();}))")
                    page.wait_for_function("[...document.querySelectorAll('fieldset video')].every(v => v.ended)")
                    assert page.eval_on_selector_all("fieldset.trial input[type=radio]",
                                                     "els => els.every(e => e.disabled)")
                page.evaluate("Promise.all([...document.querySelectorAll('video')].map(v => "
                              "{v.muted = true; return v.play();}))")
                page.wait_for_function("[...document.querySelectorAll('input[type=radio]')].every(e => !e.disabled)",
                                       timeout=20000)
                for tid in hit.trial_ids:
                    page.check(f"input[name='{tid}'][value='{answer}']")
                # The practice question must be answered first; its feedback follows the answer.
                page.click("#submitButton")
                assert "practice question" in page.inner_text("#submit-msg")
                practice = study.trial(hit.practice_id)
                wrong = next(v for v in ("left", "right", "real", "fake", "5")
                             if v in {"pair": ("left", "right"), "mos": ("5",)}[kind] and v != practice.truth)
                page.check(f"input[name='practice__{practice.trial_id}'][value='{wrong}']")
                assert page.inner_text("fieldset.practice .feedback").startswith("Not quite.")
                page.check(f"input[name='practice__{practice.trial_id}'][value='{practice.truth}']")
                assert page.inner_text("fieldset.practice .feedback").startswith("Right.")
                with page.expect_navigation():
                    page.click("#submitButton")
                path, form = _Host.posts[-1]
                assert path == "/mturk/externalSubmit"
                assert form["assignmentId"] == [f"A-{kind}"]
                for tid in hit.trial_ids:
                    assert form[tid] == [answer]
                    assert form[f"{tid}__played"] == ["1"]
                    assert int(form[f"{tid}__plays"][0]) >= 1
                assert float(form["time_on_page_s"][0]) > 0
                assert float(form["hidden_s"][0]) >= 0
                assert "simulated" not in form
                # The practice answer travels under a field that is no trial id: never a vote.
                assert form[f"practice__{hit.practice_id}"] == [practice.truth]
                assert hit.practice_id not in form
            browser.close()
    finally:
        server.shutdown()


def _anchors(text: str) -> dict[str, str]:
    """{"1": what a 1 means, "5": what a 5 means} as a piece of page text states them."""
    import re

    return {n: m.strip().rstrip(".") for n, m in re.findall(r"(?:^|[\s(;,])([15])\s*[:=]\s*([^;,)]+)", text)}


def test_mos_scale_has_one_direction_and_one_wording(study):
    """Instructions, questions, reference captions and the report's labels say the same thing."""
    hit = _hit(study, "mos")
    doc = html5lib.parse(render_hit(study, hit, "m"), namespaceHTMLElements=False)
    dts = doc.findall(".//section[@class='instructions']//dt")
    dds = doc.findall(".//section[@class='instructions']//dd")
    instructions = {"".join(dt.itertext()).strip(): "".join(dd.itertext()) for dt, dd in zip(dts, dds)}
    prompts = {}
    for f in doc.findall(".//fieldset[@class='trial']"):
        prompts.setdefault(f.get("data-question"), "".join(f.find(".//p[@class='prompt']").itertext()))
    assert prompts
    names = {"missing": "Sound missing", "redundant": "Sound redundant", "mismatched": "Sound mismatched"}
    for q, prompt in prompts.items():
        said = _anchors(instructions[names[q]])
        assert set(said) == {"1", "5"} and said == _anchors(prompt), (q, said, _anchors(prompt))
    # One place holds the wording; the report's labels come from it too.
    from mturk.study import MOS_CRITERIA, mos_label

    for q, prompt in prompts.items():
        c = MOS_CRITERIA[q]
        assert _anchors(prompt) == {"1": c.worst, "5": c.best} and c.anchors in mos_label(q)
    captions = ["".join(x.itertext()) for x in doc.findall(".//section[@class='references']//figcaption")]
    assert captions[0].startswith("Scores 1") and captions[1].startswith("Scores 5")
    from mturk.vocabulary import ANSWER_LABELS

    labels = list(ANSWER_LABELS["mos"].values())
    assert labels[0].startswith("1 (bad") and labels[-1].startswith("5 (excellent")


def test_every_page_opens_with_a_practice_question_that_never_becomes_a_vote(study):
    from mturk.answers import AssignmentInfo, vote_rows

    trials = study.trial_index()
    for hit in study.hits:
        p = trials[hit.practice_id]
        assert p.role == "practice" and p.kind == hit.kind and p.truth and p.hit == hit.local_id
        assert p.trial_id not in hit.trial_ids and p.check in ("other_class", "silent")
        doc = html5lib.parse(render_hit(study, hit, "m"), namespaceHTMLElements=False)
        first = doc.findall(".//fieldset")[0]
        assert first.get("class") == "practice" and first.get("data-truth") == p.truth
        assert {i.get("name") for i in first.findall(".//input[@type='radio']")} == {f"practice__{p.trial_id}"}
        assert first.find(".//p[@class='feedback']").get("data-explain")
        # A submitted page: the practice answer is carried but yields no vote row.
        answers = {f"practice__{p.trial_id}": p.truth, **{t: "left" for t in hit.trial_ids}}
        rows = vote_rows(AssignmentInfo("pilot", "H", "A", "W"), answers, trials)
        assert {r["trial_id"] for r in rows} == set(hit.trial_ids)
        # Even a form that names the practice question by its trial id yields no vote for it.
        rows = vote_rows(AssignmentInfo("pilot", "H", "A", "W"), {**answers, p.trial_id: p.truth}, trials)
        assert p.trial_id not in {r["trial_id"] for r in rows}
    import pandas as pd

    df = pd.read_csv(study.directory / "trials.csv", dtype=str, keep_default_na=False)
    assert (df.role == "practice").sum() == len(study.hits)


def test_no_practice_option(tmp_path):
    clips = make_manifests(tmp_path / "clips", n_videos=4)
    s = build_small_study(clips, tmp_path / "s", protocols=("pair",), questions=("missing",), practice=False)
    assert all(h.practice_id == "" for h in s.hits) and not any(t.role == "practice" for t in s.trials)
    assert 'class="practice"' not in render_hit(s, s.hits[0], "m")


def test_report_labels_the_mos_scale_in_the_page_wording(study):
    import pandas as pd

    from mturk.study import mos_label
    from mturk.report.build import ReportOptions, build_report
    from mturk.report.inputs import load_study as report_study

    rows = []
    for w in ("W1", "W2", "W3"):
        for t in study.trials:
            if t.kind == "mos" and t.role != "practice":  # every trial of the HIT answered, checks rightly
                a = t.truth or "4"
                rows.append({"study": "pilot", "hit_id": t.hit, "assignment_id": f"{w}-{t.hit}", "worker_id": w,
                             "trial_id": t.trial_id, "kind": "mos", "question": t.question,
                             "left_system": t.left_system, "right_system": "", "answer": a, "chosen_system": "",
                             "rating": float(a), "is_gold": t.role == "gold", "submit_time": "2026-01-01T10:00:00",
                             "work_time_s": 30.0, "class": t.class_name, "video_id": t.video_id,
                             "trial_role": t.role, "truth": t.truth, "played_to_end": True, "simulated": False})
    rep = build_report(pd.DataFrame(rows), "votes.csv", report_study(study.directory),
                       ReportOptions(plots=False))
    notes = " ".join(rep.table("table_mos").notes)
    for q in {t.question for t in study.trials if t.kind == "mos"}:
        assert mos_label(q) in notes

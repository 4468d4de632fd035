"""Simulated raters over real HTTP. The local server (eval_server) is written in parallel, so this
serves the three worker routes of docs/architecture.md from a minimal Flask fake that renders the
real HIT page (`mturk.render.render_hit`) and records what is posted to /mturk/externalSubmit."""

from __future__ import annotations

import threading
from urllib.parse import urlencode

import pandas as pd
import pytest
from flask import Flask, abort, jsonify, redirect, request, session
from werkzeug.serving import make_server

from mturk.render import render_hit
from mturk.study import HitSpec, Study, save_study
from regnet.cli import main

from tests.helpers.media import bursts
from tests.helpers.simulate import METRICS, make_study


class FakeServer:
    """The worker side of the local server, as far as a rater sees it."""

    def __init__(self, study: Study, extra_page: str | None = None):
        self.study, self.submitted, self.taken = study, [], set()
        pages = {h.local_id: render_hit(study, h, "/media") for h in study.hits}
        if extra_page:
            pages["h-foreign"] = extra_page
        self.pages = pages
        app = Flask("fake-eval-server")
        app.secret_key = "fake"

        @app.get("/worker")
        def home():
            # Sign-in by link starts the session; the page carries the session's CSRF token.
            w = request.args.get("workerId") or session.get("w")
            session["w"] = w
            session.setdefault("csrf", f"tok-{w}")
            return f'<meta name="csrf-token" content="{session["csrf"]}"><span id="worker">Worker {w}</span>'

        @app.get("/worker/api/hits")
        def hits():
            w = session.get("w") or abort(403)
            return jsonify({"hits": [{"hitId": h, "title": "t", "reward": "0.10",
                                      "available": (h, w) not in self.taken} for h in self.pages]})

        @app.post("/worker/accept")
        def accept():
            w = session.get("w") or abort(403)
            if request.form.get("csrf_token") != session.get("csrf"):
                abort(403)
            h = request.form["hitId"]
            if h not in self.pages or (h, w) in self.taken:
                abort(409)
            self.taken.add((h, w))
            q = urlencode({"assignmentId": f"A-{h}-{w}", "hitId": h, "workerId": w,
                           "turkSubmitTo": request.host_url.rstrip("/")})
            return redirect(f"/worker/task?{q}", 302)

        @app.get("/worker/task")
        def task():
            return self.pages[request.args["hitId"]]

        @app.post("/mturk/externalSubmit")
        def submit():
            if session.get("w") is None or not request.form["assignmentId"].endswith("-" + session["w"]):
                abort(403)
            self.submitted.append(request.form.to_dict())
            return "<p>Thank you</p>"

        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def study_dir(tmp_path):
    study = make_study()
    save_study(study, tmp_path / "study")
    METRICS.to_csv(tmp_path / "objective_clips.csv", index=False)
    return tmp_path


def test_bots_take_every_hit_through_http_and_submit_like_a_browser(study_dir, capsys):
    foreign = render_hit(make_study(), HitSpec("x", "pair", ["pr-1"]), "/media").replace(
        'data-trial-id="pr-1"', 'data-trial-id="zz-9"')
    with FakeServer(make_study(), extra_page=foreign) as server:
        rc = main(["simulate-raters", "--endpoint-url", server.url, "--study", str(study_dir / "study"),
                   "--n", "3", "--seed", "7", "--noise", "0", "--check-accuracy", "1",
                   "--metrics", str(study_dir / "objective_clips.csv")])
        assert rc == 0
        posts = server.submitted
    assert "SIM-7-0\t2 HITs\t6 answers\t1 skipped" in capsys.readouterr().out
    assert len(posts) == 6  # 3 bots x 2 study HITs; the foreign HIT is skipped, not submitted
    workers = {p["assignmentId"].split("-", 2)[2] for p in posts}
    assert workers == {"SIM-7-0", "SIM-7-1", "SIM-7-2"}
    for p in posts:
        assert p["simulated"] == "1" and p["hidden_s"] == "0" and float(p["time_on_page_s"]) > 0
        ids = ["pr-1", "pr-2", "ck-1", "gd-1"] if "pr-1" in p else ["rf-1", "rf-2"]
        for tid in ids:
            assert p[f"{tid}__played"] == "1" and int(p[f"{tid}__plays"]) >= 1
        if "pr-1" in p:
            assert (p["pr-1"], p["pr-2"], p["gd-1"]) == ("left", "right", "left")
            assert p["ck-1"] in ("left", "right")
        else:
            assert (p["rf-1"], p["rf-2"]) == ("real", "fake")


def _write_system_audio(root):
    """real and regnet strike on time, worse 200 ms late; one clips.csv per system."""
    import soundfile as sf

    for system, times in (("real", [0.3, 0.9, 1.4]), ("worse", [0.5, 1.1, 1.6]), ("regnet", [0.3, 0.9, 1.4])):
        d = root / system
        d.mkdir()
        sf.write(d / "v1.wav", bursts(times), 22050)
        pd.DataFrame([{"system": system, "video_id": "v1", "class": "dog", "clip_path": "v1.wav",
                       "wav_path": "v1.wav", "duration_s": 2.0}]).to_csv(d / "clips.csv", index=False)


def test_metrics_computed_from_clips_when_no_table_given(study_dir, tmp_path):
    _write_system_audio(tmp_path)
    with FakeServer(make_study()) as server:
        rc = main(["simulate-raters", "--endpoint-url", server.url, "--study", str(study_dir / "study"),
                   "--n", "1", "--noise", "0", "--clips", *(str(tmp_path / s / "clips.csv")
                                                            for s in ("real", "regnet", "worse"))])
        posts = server.submitted
    assert rc == 0 and len(posts) == 2
    pair_post = next(p for p in posts if "pr-1" in p)
    assert (pair_post["pr-1"], pair_post["pr-2"]) == ("left", "right")  # regnet (on time) over worse


def test_metrics_measured_from_the_study_own_clips(tmp_path):
    _write_system_audio(tmp_path)
    study = make_study(clip_dir=tmp_path)
    save_study(study, tmp_path / "study")
    with FakeServer(study) as server:
        rc = main(["simulate-raters", "--endpoint-url", server.url, "--study", str(tmp_path / "study"),
                   "--n", "1", "--noise", "0"])
        posts = server.submitted
    assert rc == 0 and len(posts) == 2
    by_kind = {("pair" if "pr-1" in p else "rf"): p for p in posts}
    assert (by_kind["pair"]["pr-1"], by_kind["pair"]["pr-2"]) == ("left", "right")
    assert (by_kind["rf"]["rf-1"], by_kind["rf"]["rf-2"]) == ("real", "fake")


def test_unreachable_server_is_a_one_line_error(study_dir, capsys):
    rc = main(["simulate-raters", "--endpoint-url", "http://127.0.0.1:9", "--study",
               str(study_dir / "study"), "--metrics", str(study_dir / "objective_clips.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "error: --endpoint-url: cannot reach" in err and "Traceback" not in err


def test_only_foreign_hits_is_an_error(study_dir, capsys):
    foreign = render_hit(make_study(), HitSpec("x", "pair", ["pr-1"]), "/media").replace(
        'data-trial-id="pr-1"', 'data-trial-id="zz-9"')
    server = FakeServer(make_study(), extra_page=foreign)
    server.pages = {"h-foreign": foreign}
    with server:
        rc = main(["simulate-raters", "--endpoint-url", server.url, "--study", str(study_dir / "study"),
                   "--n", "1", "--metrics", str(study_dir / "objective_clips.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "no HIT could be taken" in err and "zz-9 not in the study" in err

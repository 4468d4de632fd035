"""The whole requester path against the real local server (eval_server, in-process on 127.0.0.1):
build-study -> publish-hits --endpoint-url -> a worker takes and submits HITs over HTTP -> collect
-> approve; then a second study that keeps the first study's workers out."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlparse

import html5lib
import pytest
import requests
from tests.helpers.server import accept_hit, rater
from tests.helpers.study import build_small_study, make_manifests
from werkzeug.serving import make_server

from eval_server.app import create_app
from eval_server.config import ServerConfig
from eval_server.db import Database
from mturk.ledger import Ledger
from mturk.study import load_study
from mturk.votes import read_votes
from regnet.cli import main

KEY, SECRET = "AKIDMTURKE2E", "e2e-secret"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    clips = make_manifests(tmp_path / "clips", n_videos=6)
    s1 = build_small_study(clips, tmp_path / "s1", protocols=("pair",), questions=("missing",), trials_per_hit=2)
    s2 = build_small_study(clips, tmp_path / "s2", protocols=("real_fake",), trials_per_hit=3, name="second")
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    db = Database(url)
    db.setup()
    app = create_app(ServerConfig(db_url=url, requester_key=KEY, requester_secret=SECRET, secret_key="t",
                                  media_dirs=(s1.directory / "media", s2.directory / "media")), db)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield f"http://127.0.0.1:{http.server_port}", s1, s2
    http.shutdown()
    db.dispose()


def take_hit(base: str, hit_id: str, worker: str) -> requests.Response:
    """What a worker's browser does: sign in, accept, load the page, post the form (answers + played flags)."""
    s = rater(base, worker)
    r = accept_hit(s, base, hit_id)
    if r.status_code != 302:
        return r
    q = parse_qs(urlparse(r.headers["Location"]).query)
    page = s.get(f"{base}/worker/task", params={k: v[0] for k, v in q.items()}, timeout=10)
    assert page.status_code == 200
    doc = html5lib.parse(page.text, namespaceHTMLElements=False)
    form = {"assignmentId": q["assignmentId"][0], "time_on_page_s": "42.0", "hidden_s": "0.0"}
    for fs in doc.iter("fieldset"):
        tid = fs.get("data-trial-id")
        form[tid] = fs.find(".//input[@type='radio']").get("value")
        form.update({f"{tid}__played": "1", f"{tid}__plays": "1"})
        for v in fs.iter("video"):  # the media URL the page carries is served
            assert requests.head(v.get("src"), timeout=10).status_code == 200
    return s.post(f"{base}/mturk/externalSubmit", data=form, timeout=10)


def test_publish_collect_approve_on_local_server(setup, capsys):
    base, s1, s2 = setup
    d1 = str(s1.directory)
    assert main(["publish-hits", "--study", d1, "--endpoint-url", base, "--no-system-quals"]) == 0
    assert f"created {len(s1.hits)} HIT(s)" in capsys.readouterr().out
    assert main(["publish-hits", "--study", d1, "--endpoint-url", base, "--no-system-quals"]) == 0
    assert "nothing to create" in capsys.readouterr().out
    with Ledger.for_study(d1) as led:
        hits = led.hits(s1.name, base)
    assert len(hits) == len(s1.hits) and all(h.hit_id for h in hits)
    for h in hits[:2]:
        r = take_hit(base, h.hit_id, "W1")
        assert r.status_code < 400, r.text[:300]
    assert main(["collect", "--study", d1]) == 0
    assert "2 new" in capsys.readouterr().out
    votes = read_votes(s1.directory / "votes.csv")
    assert votes.assignment_id.nunique() == 2 and (votes.worker_id == "W1").all()
    study = load_study(d1)
    assert sorted(votes.trial_id) == sorted(t for h in study.hits[:2] for t in h.trial_ids)
    assert votes.played_to_end.all()
    assert main(["collect", "--study", d1]) == 0
    assert "0 new" in capsys.readouterr().out

    # The second study keeps out everyone who took part in the first.
    assert main(["publish-hits", "--study", str(s2.directory), "--endpoint-url", base, "--no-system-quals",
                 "--exclude-participants-of", d1]) == 0
    capsys.readouterr()
    with Ledger.for_study(s2.directory) as led:
        h2 = led.hits(s2.name, base)[0].hit_id
    assert take_hit(base, h2, "W1").status_code >= 400
    assert take_hit(base, h2, "W2").status_code < 400

    assert main(["expire", "--study", d1]) == 0
    assert main(["approve", "--study", d1, "--all"]) == 0
    assert "2 assignment(s) approved" in capsys.readouterr().out

"""Simulated raters against the real local server (eval_server): HITs created through boto3 with
the real HIT pages, taken by the bots over HTTP, and read back through the MTurk API."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import boto3
import pytest
from werkzeug.serving import make_server

from eval_server.app import create_app
from eval_server.config import ServerConfig
from eval_server.db import Database
from mturk.answers import AssignmentInfo, parse_question_form_answers, vote_rows
from mturk.render import render_hit
from regnet.mturk_xml import html_question
from mturk.study import save_study
from regnet.cli import main

from tests.helpers.simulate import METRICS, make_study

KEY, SECRET = "AKIDSIMTEST", "sim-secret"


@pytest.fixture
def server(tmp_path):
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    db = Database(url)
    db.setup()
    app = create_app(ServerConfig(db_url=url, requester_key=KEY, requester_secret=SECRET,
                                  secret_key="test"), db)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join(timeout=5)
    db.dispose()


def _answers(xml: str) -> dict[str, str]:
    root = ET.fromstring(xml)
    out = {}
    for ans in root.iter():
        if ans.tag.endswith("Answer") and not ans.tag.endswith("QuestionFormAnswers"):
            kids = {c.tag.split("}")[-1]: (c.text or "") for c in ans}
            out[kids.get("QuestionIdentifier", "")] = kids.get("FreeText", "")
    return out


def test_bots_submit_through_the_real_server(server, tmp_path, capsys):
    study = make_study()
    save_study(study, tmp_path / "study")
    METRICS.to_csv(tmp_path / "objective_clips.csv", index=False)
    mturk = boto3.client("mturk", endpoint_url=server, region_name="us-east-1",
                         aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    hit_ids = {}
    for h in study.hits:
        r = mturk.create_hit(Title=f"sim {h.local_id}", Description="d", Reward="0.10", MaxAssignments=3,
                             LifetimeInSeconds=3600, AssignmentDurationInSeconds=600,
                             Question=html_question(render_hit(study, h, "/media")))
        hit_ids[r["HIT"]["HITId"]] = h
    rc = main(["simulate-raters", "--endpoint-url", server, "--study", str(tmp_path / "study"), "--n", "3",
               "--seed", "1", "--noise", "0", "--check-accuracy", "1",
               "--metrics", str(tmp_path / "objective_clips.csv")])
    assert rc == 0, capsys.readouterr().err
    workers, votes = set(), []
    for hit_id, h in hit_ids.items():
        assignments = mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"]
        assert len(assignments) == 3
        for a in assignments:
            workers.add(a["WorkerId"])
            got = _answers(a["Answer"])
            info = AssignmentInfo("sim", hit_id, a["AssignmentId"], a["WorkerId"])
            votes += vote_rows(info, parse_question_form_answers(a["Answer"]), study.trial_index())
            assert got["simulated"] == "1"
            for tid in h.trial_ids:
                assert got[f"{tid}__played"] == "1"
            if h.kind == "pair":
                assert (got["pr-1"], got["pr-2"], got["gd-1"]) == ("left", "right", "left")
            else:
                assert (got["rf-1"], got["rf-2"]) == ("real", "fake")
    assert workers == {"SIM-1-0", "SIM-1-1", "SIM-1-2"}
    # what collect makes of them: every vote labelled simulated, played to the end
    assert len(votes) == 3 * 6 and all(v["simulated"] and v["played_to_end"] for v in votes)
    assert {v["chosen_system"] for v in votes if v["trial_id"] in ("pr-1", "pr-2")} == {"regnet"}
    # every HIT is done for these workers: a re-run finds nothing to do, and says so without failing
    rc = main(["simulate-raters", "--endpoint-url", server, "--study", str(tmp_path / "study"), "--n", "1",
               "--seed", "1", "--metrics", str(tmp_path / "objective_clips.csv")])
    assert rc == 0 and "SIM-1-0\t0 HITs" in capsys.readouterr().out

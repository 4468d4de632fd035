"""Exposure control (issue 16, design 1): in real-or-fake no rater judges two conditions (systems'
sounds) of one video. Conditions are split over rater groups by a Latin square, each HIT belongs
to one group, enforced with one qualification per group (granted on accept by our server, by
sync-exposure on MTurk) that the other groups' HITs require absent; `report` states the design and
drops what broke it."""

from __future__ import annotations

import collections
import json
import threading

import pandas as pd
import pytest
from botocore.stub import Stubber
from tests.helpers.server import accept_hit, mturk_client, rater
from tests.helpers.study import build_small_study, make_manifests, stubbed_client
from werkzeug.serving import make_server

from eval_server.app import create_app
from eval_server.config import ServerConfig
from eval_server.db import Database
from eval_server.exposure import grants_in
from mturk.exposure import check_votes, for_report, latin_square, qual_name, sync_exposure
from mturk.ledger import Ledger
from mturk.study import load_study
from regnet.cli import main

KEY, SECRET = "AKIDEXPOSURE1", "exposure-secret"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_manifests(tmp_path_factory.mktemp("clips"), n_videos=6)


@pytest.fixture(scope="module")
def rf_study(clips, tmp_path_factory):
    d = tmp_path_factory.mktemp("rf") / "s"
    return build_small_study(clips, d, protocols=("real_fake",), trials_per_hit=3, name="rf")


def test_latin_square_splits_conditions_over_groups(rf_study):
    study = rf_study
    doc = json.loads((study.directory / "study.json").read_text())
    design = doc["exposure"]["real_fake"]
    systems = study.systems
    assert design["groups"] == len(systems) == 3 and design["conditions"] == systems
    assert design["square"] == latin_square(design["videos"], systems)
    main = [t for t in study.trials if t.kind == "real_fake" and t.role == "main"]
    # Every (video, system) is judged once over all groups; each group sees every video once.
    assert collections.Counter((t.video_id, t.left_system) for t in main) == {
        (v, s): 1 for v in design["videos"] for s in systems}
    for g in range(3):
        mine = [t for t in main if t.group == str(g)]
        assert sorted(t.video_id for t in mine) == sorted(design["videos"])
        for t in mine:
            assert t.left_system == systems[(design["videos"].index(t.video_id) + g) % 3]
    # Each HIT belongs to one group, and study.json lists which.
    for h in study.hits:
        groups = {study.trial(t).group for t in h.trial_ids if study.trial(t).role == "main"}
        assert groups == {str(h.group)}
        assert h.local_id in design["hits"][str(h.group)]
        for t in h.trial_ids:
            if study.trial(t).role == "main":
                assert t in design["trials"][str(h.group)]
    # trials.csv carries the group of each main trial.
    df = pd.read_csv(study.directory / "trials.csv", dtype=str, keep_default_na=False)
    assert set(df[(df.kind == "real_fake") & (df.role == "main")].group) == {"0", "1", "2"}


def test_mos_exposure_is_an_option(clips, tmp_path):
    s = build_small_study(clips, tmp_path / "m", protocols=("mos",), questions=("missing",), trials_per_hit=2,
                          exposure=("mos",))
    main = [t for t in s.trials if t.role == "main"]
    by_video = collections.defaultdict(set)
    for t in main:
        by_video[(t.group, t.video_id)].add(t.left_system)
    assert by_video and all(len(v) == 1 for v in by_video.values())
    off = build_small_study(clips, tmp_path / "n", protocols=("mos",), questions=("missing",), trials_per_hit=2)
    assert off.exposure == {} and all(h.group is None for h in off.hits)


@pytest.fixture
def server(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    db = Database(url)
    db.setup()
    app = create_app(ServerConfig(db_url=url, requester_key=KEY, requester_secret=SECRET, secret_key="t"), db)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    db.dispose()


def test_local_server_grants_on_accept_and_closes_other_groups(rf_study, server, tmp_path):
    import shutil

    d = tmp_path / "study"
    shutil.copytree(rf_study.directory, d)
    assert main(["publish-hits", "--study", str(d), "--endpoint-url", server, "--no-system-quals"]) == 0
    study = load_study(d)
    with Ledger.for_study(d) as led:
        by_local = {r.local_hit: r.hit_id for r in led.hits(study.name, server)}
        quals = {g: led.get(server, study.name, f"exposure_qual:real_fake:{g}") for g in range(3)}
    assert all(quals.values()) and len(set(quals.values())) == 3
    group_hits = {g: [by_local[h.local_id] for h in study.hits if h.group == g] for g in range(3)}
    c = mturk_client(server, KEY, SECRET)
    # Each group's HITs carry the grant rule in their annotation and exclude the other groups.
    for g, ids in group_hits.items():
        h = c.get_hit(HITId=ids[0])["HIT"]
        assert grants_in(h["RequesterAnnotation"]) == [quals[g]]
        absent = {r["QualificationTypeId"] for r in h["QualificationRequirements"] if r["Comparator"] == "DoesNotExist"}
        assert absent == {quals[o] for o in range(3) if o != g}
    w = rater(server, "AEXPOSED1")
    assert accept_hit(w, server, group_hits[0][0]).status_code == 302
    # The group's qualification was granted in the accept itself ...
    held = c.list_workers_with_qualification_type(QualificationTypeId=quals[0])["Qualifications"]
    assert [q["WorkerId"] for q in held] == ["AEXPOSED1"]
    # ... so the other groups' HITs refuse this rater, while their own group's stay open.
    for g in (1, 2):
        r = accept_hit(w, server, group_hits[g][0])
        assert r.status_code == 403, (r.status_code, r.text[:200])
    if len(group_hits[0]) > 1:
        assert accept_hit(w, server, group_hits[0][1]).status_code == 302
    # Another rater starting in group 2 is kept out of group 0.
    w2 = rater(server, "AEXPOSED2")
    assert accept_hit(w2, server, group_hits[2][0]).status_code == 302
    assert accept_hit(w2, server, group_hits[0][0]).status_code == 403


def test_sync_exposure_grants_on_mturk(rf_study, tmp_path, monkeypatch):
    """MTurk has no grant-on-accept: sync-exposure grants each group's qualification to the workers
    of its submitted assignments, once (the ledger remembers)."""
    import shutil

    from mturk import client as mclient
    from mturk.client import SANDBOX_URL

    d = tmp_path / "study"
    shutil.copytree(rf_study.directory, d)
    study = load_study(d)
    g1 = [h for h in study.hits if h.group == 1][0]
    with Ledger.for_study(d) as led:
        for i, h in enumerate(study.hits):
            tok = f"rb-{study.uid}-{h.local_id}"
            led.mark_pending(study.name, h.local_id, tok, SANDBOX_URL, "3TYPE")
            led.mark_created(SANDBOX_URL, tok, f"3HIT{i:026d}", "3TYPE")
            if h.group is not None:
                led.put(SANDBOX_URL, study.name, f"exposure_qual:real_fake:{h.group}", f"3QUALGROUP{h.group}")
    client = stubbed_client()
    with Stubber(client) as stub:
        for i, h in enumerate(study.hits):
            assignments = [{"AssignmentId": "3A1", "WorkerId": "AW1", "HITId": f"3HIT{i:026d}",
                            "AssignmentStatus": "Submitted"}] if h.local_id == g1.local_id else []
            stub.add_response("list_assignments_for_hit", {"Assignments": assignments, "NumResults": len(assignments)})
            if assignments:
                stub.add_response("associate_qualification_with_worker", {},
                                  {"QualificationTypeId": "3QUALGROUP1", "WorkerId": "AW1", "IntegerValue": 1,
                                   "SendNotification": False})
        monkeypatch.setattr(mclient, "make_client", lambda target, service="mturk": client)
        assert main(["sync-exposure", "--study", str(d), "--sandbox"]) == 0
        stub.assert_no_pending_responses()
    with Ledger.for_study(d) as led:
        assert led.is_marked(SANDBOX_URL, "3QUALGROUP1", "AW1")
        res = sync_exposure(study, led, lambda t: _lister(study), None)
    assert res.granted == 0 and res.already == 1


class _lister:
    """A client that lists the same submitted assignment again and may not grant anything."""

    def __init__(self, study):
        self.g1 = {f"3HIT{i:026d}" for i, h in enumerate(study.hits) if h.group == 1}

    def list_assignments_for_hit(self, HITId, **kw):
        a = [{"AssignmentId": "3A1", "WorkerId": "AW1", "AssignmentStatus": "Submitted"}] if HITId in self.g1 and \
            HITId == sorted(self.g1)[0] else []
        return {"Assignments": a}

    def associate_qualification_with_worker(self, **kw):
        raise AssertionError("granted twice")


def _votes(rows):
    cols = ["worker_id", "assignment_id", "video_id", "left_system", "kind", "trial_role", "submit_time",
            "trial_id", "question", "answer"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


def test_check_votes_finds_and_drops_violations(rf_study):
    exposure = rf_study.exposure
    v = _votes([
        ("W1", "A1", "v0", "real", "real_fake", "main", "2026-01-01T10:00:00", "rf1", "real", "real"),
        ("W1", "A2", "v0", "regnet", "real_fake", "main", "2026-01-01T11:00:00", "rf2", "real", "fake"),
        ("W1", "A2", "v1", "regnet", "real_fake", "main", "2026-01-01T11:00:00", "rf3", "real", "fake"),
        ("W2", "A3", "v0", "regnet", "real_fake", "main", "2026-01-01T10:00:00", "rf2", "real", "fake"),
        # A catch on the same video is no condition of the design.
        ("W2", "A3", "v0", "check:silent", "real_fake", "catch", "2026-01-01T10:00:00", "ck1", "real", "fake"),
    ])
    chk = check_votes(v, exposure)
    assert list(chk.violations[["worker_id", "video_id", "conditions"]].itertuples(index=False, name=None)) == [
        ("W1", "v0", "real > regnet")]
    # The first judgement was made unexposed and stays; the later condition goes.
    assert list(chk.drop) == [1]
    row = chk.summary.iloc[0]
    assert row["Rater groups"] == 3 and row["Workers with 2+ conditions of a video"] == 1 and row["Votes dropped"] == 1
    kept, table = for_report(v, rf_study.directory)
    assert len(kept) == 4 and 1 not in kept.index
    assert table.key == "design_exposure" and "Latin square" in table.display.iloc[0]["Design"]
    # Without a recorded design the report flags, and does not drop.
    flagged = check_votes(v, {})
    assert len(flagged.drop) == 0 and len(flagged.violations) == 1 and "no exposure control" in flagged.notes[0]


def test_report_states_design_and_drops_violations(rf_study, tmp_path):
    """`report --study`: the design table comes first and violating votes are not counted."""
    from mturk.report.build import build_report
    from mturk.report.inputs import load_study as report_study

    rows = []
    k = 0
    for w in ("W1", "W2", "W3", "W4"):
        for t in [t for t in rf_study.trials if t.role == "main" and t.group == "0"]:
            k += 1
            rows.append({"study": "rf", "hit_id": "H" + t.hit, "assignment_id": f"{w}-{t.hit}", "worker_id": w,
                         "trial_id": t.trial_id, "kind": "real_fake", "question": "real", "left_system": t.left_system,
                         "right_system": "", "answer": "real", "chosen_system": "", "rating": float("nan"),
                         "is_gold": False, "submit_time": f"2026-01-01T10:{k:02d}:00", "work_time_s": 30.0,
                         "class": t.class_name, "video_id": t.video_id, "trial_role": "main", "truth": "",
                         "played_to_end": True, "simulated": False})
    # W1 also took a group-1 HIT (the leak a race on MTurk allows): later conditions of seen videos.
    for t in [t for t in rf_study.trials if t.role == "main" and t.group == "1"]:
        k += 1
        rows.append({**rows[0], "trial_id": t.trial_id, "left_system": t.left_system, "video_id": t.video_id,
                     "class": t.class_name, "assignment_id": f"W1-{t.hit}", "hit_id": "H" + t.hit,
                     "submit_time": f"2026-01-01T11:{k % 60:02d}:00"})
    votes = pd.DataFrame(rows)
    # These votes carry only the main trials: with the study, QC (mturk.qc.decide, shared with
    # reject) counts each HIT's absent check trials as unanswered unless told to allow them.
    from mturk.report.build import ReportOptions
    from mturk.report.qc import QCRules

    rep = build_report(votes, "votes.csv", report_study(rf_study.directory),
                       ReportOptions(rules=QCRules(max_unanswered=99)))
    t = rep.tables[0] if rep.tables[0].key == "design_exposure" else rep.table("design_exposure")
    assert int(t.data.iloc[0]["Votes dropped"]) == 6 and int(t.data.iloc[0]["Workers with 2+ conditions of a video"]) == 1
    assert any("leaked" in n for n in t.notes)


def test_grants_in_parses_the_annotation_convention():
    assert grants_in("rb-abc-h0001 grant-on-accept=3Q1,3Q2") == ["3Q1", "3Q2"]
    assert grants_in("rb-abc-h0001") == [] and grants_in(None) == []
    assert qual_name(type("S", (), {"name": "x", "uid": "u"})(), "real_fake", 2).endswith("real_fake group 2")


def test_publish_plan_states_the_groups(rf_study, tmp_path, capsys):
    import shutil

    d = tmp_path / "study"
    shutil.copytree(rf_study.directory, d)
    assert main(["publish-hits", "--study", str(d), "--endpoint-url", "http://127.0.0.1:9", "--no-system-quals",
                 "--dry-run"]) == 0
    assert "exposure: real_fake in 3 rater groups" in capsys.readouterr().out

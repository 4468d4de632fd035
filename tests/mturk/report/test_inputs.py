"""The report reads a study folder and votes through the study side's one reader and one vote
normaliser: a whole regnet-bench study comes typed, a study described by hand gives only the fields
it has (in the typed study's own names, wrong types refused in one line), and every source of votes
leaves in one shape."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.helpers.study import build_small_study, make_manifests

from mturk.batch_csv import export_batch_csv
from mturk.report.inputs import load_study, load_votes
from mturk.votes import read_votes, write_votes
from regnet.errors import UserError


def test_a_built_study_comes_typed_and_a_hand_written_one_gives_its_fields(tmp_path):
    study = build_small_study(make_manifests(tmp_path / "clips", n_videos=4), tmp_path / "study")
    info = load_study(tmp_path / "study")
    assert info.study is not None and info.study.name == study.name
    assert info.systems == tuple(study.systems) and info.votes_per_item == study.max_assignments
    hand = tmp_path / "elsewhere"
    hand.mkdir()
    (hand / "study.json").write_text(json.dumps({"systems": ["regnet", "vs"], "max_assignments": 5}))
    info = load_study(hand)
    assert info.study is None and info.systems == ("regnet", "vs") and info.votes_per_item == 5
    assert info.focus == "regnet" and info.real_system is None


@pytest.mark.parametrize("doc, field", [({"systems": "regnet"}, "systems"),
                                        ({"max_assignments": "three"}, "max_assignments"),
                                        ({"reward": "fifty cents"}, "reward"),
                                        ([1, 2], "JSON object")])
def test_a_field_of_the_wrong_type_is_one_line_not_ignored(tmp_path, doc, field):
    (tmp_path / "study.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=field) as e:
        load_study(tmp_path)
    assert "\n" not in str(e.value) and "study.json" in str(e.value)


def test_a_broken_regnet_bench_study_is_an_error_not_a_study_without_hits(tmp_path):
    build_small_study(make_manifests(tmp_path / "clips", n_videos=4), tmp_path / "study")
    sj = tmp_path / "study" / "study.json"
    doc = json.loads(sj.read_text())
    del doc["hits"]
    sj.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="study.json"):
        load_study(tmp_path / "study")


def test_votes_from_a_file_a_batch_csv_and_a_batch_table_leave_in_one_shape(tmp_path):
    from mturk.votes import normalize_votes

    study_dir = tmp_path / "study"
    study = build_small_study(make_manifests(tmp_path / "clips", n_videos=4), study_dir)
    t = next(t for t in study.trials if t.role == "main")
    votes = normalize_votes(pd.DataFrame([
        {"assignment_id": f"A{k}", "worker_id": f"W{k}", "hit_id": "H1", "trial_id": t.trial_id, "kind": t.kind,
         "question": t.question, "answer": "left" if t.kind == "pair" else "real" if t.kind == "real_fake" else "3",
         "study": study.name, "submit_time": "2026-11-01T10:00:00+00:00", "work_time_s": 60.0,
         "played_to_end": "1", "is_gold": "False", "simulated": "no"} for k in range(3)]), "test")
    assert not votes["is_gold"].any() and not votes["simulated"].any() and votes["played_to_end"].all()
    write_votes(tmp_path / "votes.csv", votes)
    batch = export_batch_csv(votes, tmp_path / "batch.csv", study_dir)
    info = load_study(study_dir)
    from_file, _ = load_votes(tmp_path / "votes.csv", info)
    from_batch, _ = load_votes(batch, info)
    from_table, _ = load_votes(study=info, batch=pd.read_csv(batch, dtype=str, keep_default_na=False),
                               source="table")
    key = ["assignment_id", "worker_id", "trial_id", "answer", "is_gold", "simulated", "played_to_end", "trial_role"]
    want = read_votes(tmp_path / "votes.csv")[key].sort_values("assignment_id").reset_index(drop=True)
    for got in (from_file, from_batch, from_table):
        pd.testing.assert_frame_equal(got[key].sort_values("assignment_id").reset_index(drop=True), want,
                                      check_dtype=False)

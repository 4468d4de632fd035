from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from botocore.stub import Stubber
from tests.helpers.study import build_small_study, make_manifests, stubbed_client

from mturk import client as mclient
from mturk.answers import parse_question_form_answers
from mturk.batch_csv import votes_from_batch_csv
from mturk.client import SANDBOX_URL
from mturk.ledger import Ledger
from mturk.qc import QCRules, assess, check_passed
from mturk.study import load_study
from mturk.votes import VOTE_COLUMNS, read_votes
from regnet.cli import main
from regnet.errors import UserError

QUAL = "3PARTICIPANTQUAL00000000000001"
NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("col")
    clips = make_manifests(root / "clips", n_videos=6)
    build_small_study(clips, root / "study", protocols=("pair", "mos"), questions=("missing",), trials_per_hit=2)
    return root / "study"


@pytest.fixture
def study_dir(built, tmp_path):
    d = tmp_path / "study"
    shutil.copytree(built, d)
    study = load_study(d)
    with Ledger.for_study(d) as led:
        for i, h in enumerate(study.hits[:2], start=1):
            led.mark_pending(study.name, h.local_id, f"tok{i}", SANDBOX_URL, "HT")
            led.mark_created(SANDBOX_URL, f"tok{i}", f"HIT{i}", "HT")
        led.put(SANDBOX_URL, study.name, "participant_qual_id", QUAL)
    return d


def qfa(fields: dict) -> str:
    body = "".join(f"<Answer><QuestionIdentifier>{k}</QuestionIdentifier><FreeText>{v}</FreeText></Answer>"
                   for k, v in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><QuestionFormAnswers xmlns="{NS}">{body}</QuestionFormAnswers>'


def good_answers(study, hit, played="1", wrong_checks=False):
    out = {"time_on_page_s": "61.5", "hidden_s": "0.0"}
    for tid in hit.trial_ids:
        t = study.trial(tid)
        if t.truth:
            ans = t.truth
            if wrong_checks:
                ans = {"left": "right", "right": "left", "1": "5", "fake": "real"}[ans]
        else:
            ans = "left" if t.kind == "pair" else "3"
        out.update({tid: ans, f"{tid}__played": played, f"{tid}__plays": "2"})
    return out


def assignment(aid, worker, hit_id, fields, status="Submitted"):
    return {"AssignmentId": aid, "WorkerId": worker, "HITId": hit_id, "AssignmentStatus": status,
            "AcceptTime": T0, "SubmitTime": T0 + timedelta(seconds=95), "Answer": qfa(fields)}


def stub_listing(stub, pages_by_hit):
    for hit_id, pages in pages_by_hit:
        for i, page in enumerate(pages):
            params = {"HITId": hit_id, "MaxResults": 100, "AssignmentStatuses": ["Submitted", "Approved", "Rejected"]}
            if i:
                params["NextToken"] = f"{hit_id}-p{i}"
            resp = {"Assignments": page, "NumResults": len(page)}
            if i < len(pages) - 1:
                resp["NextToken"] = f"{hit_id}-p{i + 1}"
            stub.add_response("list_assignments_for_hit", resp, params)


def use_client(monkeypatch, client):
    monkeypatch.setattr(mclient, "make_client", lambda target, service="mturk": client)


def run_collect(study_dir, monkeypatch, capsys):
    study = load_study(study_dir)
    h1, h2 = study.hits[:2]
    pages = [("HIT1", [[assignment("A1", "W1", "HIT1", good_answers(study, h1))],
                       [assignment("A2", "W2", "HIT1", good_answers(study, h1, wrong_checks=True))]]),
             ("HIT2", [[assignment("A3", "W1", "HIT2", good_answers(study, h2, played="0"))]])]
    client = stubbed_client()
    with Stubber(client) as stub:
        stub_listing(stub, pages)
        for w in ("W1", "W2"):
            stub.add_response("associate_qualification_with_worker", {},
                              {"QualificationTypeId": QUAL, "WorkerId": w, "IntegerValue": 1, "SendNotification": False})
        use_client(monkeypatch, client)
        assert main(["collect", "--study", str(study_dir)]) == 0
        stub.assert_no_pending_responses()
    assert "3 new" in capsys.readouterr().out
    return study, pages


def test_paginated_collect_and_rerun(study_dir, monkeypatch, capsys):
    study, pages = run_collect(study_dir, monkeypatch, capsys)
    votes = read_votes(study_dir / "votes.csv")
    assert list(votes.columns[:len(VOTE_COLUMNS)]) == VOTE_COLUMNS
    h1 = study.hits[0]
    assert sorted(votes.assignment_id.unique()) == ["A1", "A2", "A3"]
    a1 = votes[votes.assignment_id == "A1"].set_index("trial_id")
    assert sorted(a1.index) == sorted(h1.trial_ids)
    for tid, r in a1.iterrows():
        t = study.trial(tid)
        assert (r.kind, r.question, r.hit_id, r.worker_id, r.trial_role) == (t.kind, t.question, "HIT1", "W1", t.role)
        assert r.work_time_s == 95 and r.played_to_end and not r.simulated
        if t.kind == "pair":
            assert r.chosen_system == (t.left_system if r.answer == "left" else t.right_system)
        else:
            assert r.rating == float(r.answer)
        assert r.is_gold == (t.role == "gold")
    assert not votes[votes.assignment_id == "A3"].played_to_end.any()
    # Re-run: the server lists the same assignments; nothing is added, nobody is marked twice.
    client = stubbed_client()
    with Stubber(client) as stub:
        stub_listing(stub, pages)
        use_client(monkeypatch, client)
        assert main(["collect", "--study", str(study_dir)]) == 0
        stub.assert_no_pending_responses()
    assert "0 new, 0 vote(s) added" in capsys.readouterr().out
    assert len(read_votes(study_dir / "votes.csv")) == len(votes)


def test_approve_and_reject_follow_qc(study_dir, monkeypatch, capsys):
    run_collect(study_dir, monkeypatch, capsys)
    # Dry runs send nothing.
    use_client(monkeypatch, None)
    assert main(["reject", "--study", str(study_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "reject A2" in out and "reject A3" in out and "A1" not in out
    client = stubbed_client()
    with Stubber(client) as stub:
        stub.add_response("approve_assignment", {}, {"AssignmentId": "A1",
                                                     "RequesterFeedback": "Thank you for your careful work."})
        use_client(monkeypatch, client)
        assert main(["approve", "--study", str(study_dir)]) == 0
        stub.assert_no_pending_responses()
    client = stubbed_client()
    with Stubber(client) as stub:
        from botocore.stub import ANY

        # A refused call (say, auto-approved meanwhile) does not stop the others.
        stub.add_client_error("reject_assignment", "RequestError", "This operation can be called with a status "
                              "of: Submitted", expected_params={"AssignmentId": "A2", "RequesterFeedback": ANY})
        stub.add_response("reject_assignment", {}, {"AssignmentId": "A3", "RequesterFeedback": ANY})
        use_client(monkeypatch, client)
        assert main(["reject", "--study", str(study_dir)]) == 0
        stub.assert_no_pending_responses()
    with Ledger.for_study(study_dir) as led:
        assert led.assignment("A1").status == "Approved"
        assert led.assignment("A2").status == "Submitted"
        a3 = led.assignment("A3")
        assert a3.status == "Rejected" and "before the videos played" in a3.feedback
    client = stubbed_client()
    with Stubber(client) as stub:
        stub.add_response("reject_assignment", {}, {"AssignmentId": "A2", "RequesterFeedback": ANY})
        use_client(monkeypatch, client)
        assert main(["reject", "--study", str(study_dir)]) == 0
        stub.assert_no_pending_responses()
    with Ledger.for_study(study_dir) as led:
        a2 = led.assignment("A2")
        assert a2.status == "Rejected" and "answered wrongly" in a2.feedback
    # Reviewed work is never reviewed twice.
    use_client(monkeypatch, None)
    assert main(["approve", "--study", str(study_dir), "--all"]) == 0
    assert "0 assignment(s) approved" in capsys.readouterr().out


def test_expire(study_dir, monkeypatch, capsys):
    client = stubbed_client()
    with Stubber(client) as stub:
        for h in ("HIT1", "HIT2"):
            stub.add_response("update_expiration_for_hit", {},
                              {"HITId": h, "ExpireAt": datetime(1970, 1, 1, tzinfo=timezone.utc)})
        use_client(monkeypatch, client)
        assert main(["expire", "--study", str(study_dir)]) == 0
        stub.assert_no_pending_responses()
    assert "2 HIT(s) expired" in capsys.readouterr().out
    with Ledger.for_study(study_dir) as led:
        assert {r.status for r in led.hits(load_study(study_dir).name) if r.hit_id} == {"expired"}


def test_collect_wrong_endpoint_is_one_line(study_dir, capsys):
    assert main(["collect", "--study", str(study_dir), "--endpoint-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "no HIT of study" in err and err.count("\n") == 1


def test_batch_csv_round_trip(study_dir, monkeypatch, capsys, tmp_path):
    run_collect(study_dir, monkeypatch, capsys)
    votes = read_votes(study_dir / "votes.csv")
    out = tmp_path / "batch.csv"
    assert main(["export-batch", "--study", str(study_dir), "--out", str(out)]) == 0
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(df.AssignmentId) == ["A1", "A2", "A3"]
    assert list(df.Approve) == ["x", "", ""] and df.Reject.iloc[1].startswith("Sorry")
    assert all(c.startswith(("Input.", "Answer.")) or c[0].isupper() for c in df.columns)
    key = ["assignment_id", "trial_id", "kind", "question", "left_system", "right_system", "answer",
           "chosen_system", "trial_role", "truth", "played_to_end", "worker_id", "class", "video_id"]

    def norm(v):
        return v[key].astype(object).where(v[key].notna(), "").astype(str).sort_values(["assignment_id", "trial_id"]).reset_index(drop=True)

    # Stand-alone (trial data from Input.trials) and with the study folder: the same votes.
    alone = votes_from_batch_csv(out)
    with_study = votes_from_batch_csv(out, study_dir)
    pd.testing.assert_frame_equal(norm(alone), norm(votes))
    pd.testing.assert_frame_equal(norm(with_study), norm(votes))
    assert (alone.work_time_s == 95).all()
    assert main(["import-batch", str(out), "--out", str(tmp_path / "v.csv")]) == 0
    assert len(read_votes(tmp_path / "v.csv")) == len(votes)


def test_turkle_style_export_imports_with_study(study_dir, tmp_path):
    """A Turkle/MTurk web-UI file: its own Input columns, only Answer.* from our page."""
    study = load_study(study_dir)
    h = study.hits[0]
    ans = good_answers(study, h)
    row = {"HITId": "17", "HITTypeId": "3", "Title": "t", "AssignmentId": "901", "WorkerId": "alice",
           "AcceptTime": "Fri May 01 12:00:00 UTC 2026", "SubmitTime": "Fri May 01 12:01:40 UTC 2026",
           "WorkTimeInSeconds": "", "Input.page": "h0001.html", **{f"Answer.{k}": v for k, v in ans.items()},
           "Answer.simulated": "1"}
    path = tmp_path / "turkle.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    votes = votes_from_batch_csv(path, study_dir)
    assert sorted(votes.trial_id) == sorted(h.trial_ids)
    assert (votes.work_time_s == 100).all() and votes.simulated.all() and (votes.worker_id == "alice").all()
    with pytest.raises(UserError, match="Input.trials"):
        votes_from_batch_csv(path)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="AssignmentId"):
        votes_from_batch_csv(bad)


def test_qfa_parser_and_qc_rules():
    assert parse_question_form_answers(qfa({"pr0001": "left", "t": ""})) == {"pr0001": "left", "t": ""}
    with pytest.raises(UserError):
        parse_question_form_answers("<not xml")
    assert check_passed("mos", "1", "2") is True and check_passed("mos", "1", "3") is False
    assert check_passed("pair", "", "left") is None and check_passed("real_fake", "fake", "real") is False
    votes = pd.DataFrame([
        {"assignment_id": "A", "worker_id": "W", "hit_id": "H", "trial_id": "g1", "kind": "pair", "answer": "left",
         "truth": "right", "trial_role": "gold", "played_to_end": True},
        {"assignment_id": "A", "worker_id": "W", "hit_id": "H", "trial_id": "g2", "kind": "pair", "answer": "left",
         "truth": "left", "trial_role": "gold", "played_to_end": True}])
    assert assess(votes)[0].passed  # one of two gold wrong: within the default 50%
    assert not assess(votes, QCRules(max_gold_error_rate=0.4))[0].passed


def test_collect_writes_the_decisions_reject_and_report_share(study_dir, monkeypatch, capsys, tmp_path):
    from mturk.qc import read_decisions

    run_collect(study_dir, monkeypatch, capsys)
    dec, cfg = read_decisions(study_dir / "qc_decisions.csv")
    assert cfg.max_failed_catch == 0
    d = dec.set_index("assignment_id")
    assert list(d.loc[["A1", "A2", "A3"], "pay"]) == ["approve", "reject", "reject"]
    assert [str(x) for x in d.loc[["A1", "A2", "A3"], "keep"]] == ["True", "False", "False"]
    use_client(monkeypatch, None)
    assert main(["reject", "--study", str(study_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert {ln.split()[1] for ln in out.splitlines() if ln.startswith("reject ")} == \
        set(d.index[d["pay"] == "reject"])
    res = tmp_path / "res"
    assert main(["report", "--votes", str(study_dir / "votes.csv"), "--study", str(study_dir),
                 "--out", str(res), "--no-plots"]) == 0
    votes = read_votes(study_dir / "votes.csv")
    qct = pd.read_csv(res / "table_qc.csv")
    dropped = dict(zip(qct["rule"], qct["assignments"]))
    assert dropped.get("failed checks") == 1 and dropped.get("playback") == 1
    main_rows = votes[(votes.trial_role == "main") & (votes.assignment_id == "A1")]
    assert f"{len(main_rows)} main-trial votes analysed" in (res / "report.md").read_text()


def test_blank_batch_answers_are_counted_as_no_answer(study_dir, monkeypatch, capsys, tmp_path):
    """A blank Answer.<trial> once vanished on the batch-CSV route, and with it the "no answer"
    QC count; it is a row with an empty answer now, and the assignment is rejected for it."""
    run_collect(study_dir, monkeypatch, capsys)
    out = tmp_path / "batch.csv"
    assert main(["export-batch", "--study", str(study_dir), "--out", str(out)]) == 0
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    study = load_study(study_dir)
    tid = next(t for t in study.hits[0].trial_ids if study.trial(t).role == "main")
    df.loc[df.AssignmentId == "A1", f"Answer.{tid}"] = ""
    df.to_csv(out, index=False)
    for study_arg in (None, study_dir):
        votes = votes_from_batch_csv(out, study_arg)
        row = votes[(votes.assignment_id == "A1") & (votes.trial_id == tid)]
        assert len(row) == 1 and (row.answer.isna() | (row.answer == "")).all()
        # Trials of the other HIT (columns of other rows) are not this assignment's blanks.
        assert set(votes[votes.assignment_id == "A1"].trial_id) == set(study.hits[0].trial_ids)
        v = {x.assignment_id: x for x in assess(votes, study=load_study(study_dir))}
        assert not v["A1"].passed and "1 question(s) left unanswered" in v["A1"].reasons

"""Bad input is a one-line UserError or a counted exclusion; QC rules drop what they say."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mturk.votes import VOTE_COLUMNS
from regnet.errors import UserError
from regnet.report.build import ReportOptions, build_report
from regnet.report.inputs import load_study, load_votes
from regnet.report.qc import QCRules, apply_qc
from regnet.report.validate import validate


def votes(n_items=4, workers=("W1", "W2", "W3")) -> pd.DataFrame:
    rows = []
    for i in range(n_items):
        for w in workers:
            rows.append(dict(trial_id=f"t{i}", kind="pair", question="missing",
                             left_system="regnet", right_system="vs", answer="left",
                             worker_id=w, assignment_id=f"A_{w}", work_time_s=120.0,
                             trial_role="main", played_to_end=True, simulated=False))
        rows.append(dict(trial_id="gold1", kind="pair", question="mismatched", left_system="x",
                         right_system="y", truth="left", answer="left", worker_id="W1",
                         assignment_id="A_W1", work_time_s=120.0, trial_role="gold"))
    return pd.DataFrame(rows).drop_duplicates(["assignment_id", "trial_id"]).reindex(columns=VOTE_COLUMNS)


def reasons(qc):
    return {e.rule: (e.votes, e.raters, e.assignments) for e in qc.exclusions}


def test_clean_table_drops_nothing():
    qc = apply_qc(validate(votes(), "v"), QCRules())
    assert qc.exclusions == [] and len(qc.kept) == 12 and qc.n_check_votes == 1


def test_failed_checks_drop_the_rater_and_count_it():
    df = votes()
    extra = df[df["trial_role"] == "gold"].assign(worker_id="W2", assignment_id="A_W2",
                                                  answer="right")
    qc = apply_qc(validate(pd.concat([df, extra]), "v"), QCRules(max_check_fail_rate=0.25))
    assert reasons(qc)["failed checks"] == (5, 1, 1)   # 4 main votes + the failed gold
    assert set(qc.kept["worker_id"]) == {"W1", "W3"}
    r = qc.raters.set_index("worker_id")
    assert r.loc["W2", "excluded_by"] == "checks" and r.loc["W2", "fail_rate"] == 1.0
    assert any("unscreened" in n for n in qc.notes)   # W3 saw no check and was kept


def test_playback_time_limits_and_unanswered():
    # One rule set with `reject` (mturk.qc.decide): an answer before playback ended or a blank
    # answer rejects the whole assignment for pay, so none of its votes is analysed (this test
    # once expected only the two offending votes to go).
    df = votes()
    df.loc[(df.worker_id == "W1") & (df.trial_id == "t0"), "played_to_end"] = False
    df.loc[df.worker_id == "W2", "work_time_s"] = 2.0       # 4 trials in 2 s
    df.loc[df.worker_id == "W3", "work_time_s"] = 9000.0
    df.loc[(df.worker_id == "W1") & (df.trial_id == "t1"), "answer"] = None
    qc = apply_qc(validate(df, "v"), QCRules(min_seconds_per_trial=1.0, max_work_time_s=3600))
    r = reasons(qc)
    assert r["too fast"] == (4, 1, 1) and r["too slow"] == (4, 1, 1)
    assert r["playback"] == (5, 1, 1)          # W1: 4 main votes + its gold
    assert "no answer" not in r and len(qc.kept) == 0
    w1 = qc.decisions.assignments.set_index("assignment_id").loc["A_W1"]
    assert w1.pay == "reject" and "played to the end" in w1.pay_reason and "unanswered" in w1.pay_reason
    keep_all = apply_qc(validate(df, "v"), QCRules(require_played_to_end=False, max_unanswered=1,
                                                   min_seconds_per_trial=0, max_work_time_s=None))
    assert reasons(keep_all) == {"no answer": (1, 1, 1)} and len(keep_all.kept) == 11


def test_duplicates_are_counted_not_silent():
    df = votes()
    dup = pd.concat([df, df.iloc[[0]]])
    qc = apply_qc(validate(dup, "v"), QCRules())
    assert reasons(qc)["duplicate"] == (1, 1, 1) and len(qc.kept) == 12
    again = df.iloc[[0]].assign(assignment_id="A_W1_second")
    qc = apply_qc(validate(pd.concat([df, again]), "v"), QCRules())
    assert reasons(qc)["repeat rater"] == (1, 1, 1)
    rep = build_report(pd.concat([df, df.iloc[[0]]]), "v")
    qct = rep.table("table_qc")
    assert "duplicate" in set(qct.data["rule"])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.assign(answer=d["answer"].where(d.index != 0, "7"), kind="mos"), "outside 1-5"),
    (lambda d: d.assign(assignment_id="SAME"), "used by more than one worker"),
    (lambda d: d.assign(kind="ranking"), "unknown kind"),
    (lambda d: d.assign(answer="middle"), "not left/right"),
    (lambda d: d.iloc[0:0], "no votes"),
    (lambda d: d.assign(right_system=d["left_system"]).query("trial_role == 'main'"),
     "compares a system with itself"),
])
def test_bad_input_is_one_line_user_error(mutate, message):
    df = votes()
    if "kind" in message or "outside" in message:
        df = df[df["trial_role"] == "main"]
        if "outside" in message:
            df = df.assign(question="missing")
    with pytest.raises(UserError, match=message) as e:
        validate(mutate(df), "votes.csv")
    assert "\n" not in str(e.value)


def test_unknown_system_against_study(tmp_path):
    (tmp_path / "study.json").write_text(json.dumps({"systems": ["regnet", "woreg"]}))
    study = load_study(tmp_path)
    with pytest.raises(UserError, match="unknown system.*'vs'"):
        validate(votes(), "votes.csv", study)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "votes.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="empty"):
        load_votes(empty)
    header_only = tmp_path / "h.csv"
    header_only.write_text(",".join(VOTE_COLUMNS) + "\n")
    df, src = load_votes(header_only)
    with pytest.raises(UserError, match="no votes"):
        build_report(df, src)
    with pytest.raises(UserError, match="not found"):
        load_votes(tmp_path / "nope.csv")


def test_everything_dropped_is_an_error_naming_the_rules():
    df = votes().assign(played_to_end=False)
    with pytest.raises(UserError, match="no main-trial vote left after QC.*playback"):
        build_report(df, "v", None, ReportOptions())


def test_wrong_database_is_one_line(tmp_path):
    pytest.importorskip("eval_server.export")
    with pytest.raises(UserError, match="not a readable regnet-bench server database") as e:
        load_votes(db_url=f"sqlite:///{tmp_path / 'other.sqlite'}")
    assert "\n" not in str(e.value)

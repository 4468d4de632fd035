"""Bad input is a one-line UserError or a counted exclusion; QC rules drop what they say."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mturk.votes import VOTE_COLUMNS, write_votes
from regnet.cli import main
from regnet.errors import UserError
from mturk.report.build import ReportOptions, build_report
from mturk.report.inputs import load_study, load_votes
from mturk.report.qc import QCRules, apply_qc
from mturk.report.validate import validate


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
    from regnet.commands.report import load_server_votes

    with pytest.raises(UserError, match="not a readable regnet-bench server database") as e:
        load_server_votes(f"sqlite:///{tmp_path / 'other.sqlite'}")
    assert "\n" not in str(e.value)


def _asg(worker, aid, n_main, checks, played=None, blank=None, start=0):
    """One assignment: n_main pair votes and (trial_id, role, truth, answer) checks."""
    rows = []
    for k in range(n_main):
        rows.append(dict(trial_id=f"t{start + k}", kind="pair", question="missing",
                         left_system="regnet", right_system="vs", answer="left",
                         worker_id=worker, assignment_id=aid, hit_id="H" + aid,
                         work_time_s=300.0, trial_role="main", played_to_end=True))
    for tid, role, truth, ans in checks:
        rows.append(dict(trial_id=tid, kind="pair", question="mismatched", left_system="x",
                         right_system="y", truth=truth, answer=ans, worker_id=worker,
                         assignment_id=aid, hit_id="H" + aid, work_time_s=300.0, trial_role=role,
                         played_to_end=True))
    for k in played or ():
        rows[k]["played_to_end"] = False
    for k in blank or ():
        rows[k]["answer"] = None
    return rows


def three_disagreements() -> pd.DataFrame:
    """The ways the two QCs once disagreed: `reject` refused each of A1, B1, C1 and D1, and the
    tables kept their main votes (the report looked at a rater's share over every check, and
    dropped single votes where reject refused the whole assignment)."""
    ok = [("c_ok%d" % k, "catch", "left", "left") for k in range(3)]
    rows = []
    # A: one missed catch in A1 (reject: any); 1 of 8 checks over the rater (report: > 25%).
    rows += _asg("WA", "A1", 5, [("cA1", "catch", "left", "right")] + ok, start=0)
    rows += _asg("WA", "A2", 5, [("cA2_%d" % k, "catch", "left", "left") for k in range(4)], start=5)
    # B: one answer before playback ended (reject: the assignment; report: that vote).
    rows += _asg("WB", "B1", 5, ok, played=[2], start=10)
    # C: one question left blank (reject: the assignment; report: that vote).
    rows += _asg("WC", "C1", 5, ok, blank=[1], start=15)
    # D: 2 of 3 gold wrong in D1 (reject: > 50%), 2 of 12 checks over the rater (report: 17%).
    gold = [("gD%d" % k, "gold", "left", "right" if k < 2 else "left") for k in range(3)]
    rows += _asg("WD", "D1", 5, gold, start=20)
    rows += _asg("WD", "D2", 5, [("gD2_%d" % k, "gold", "left", "left") for k in range(9)],
                 start=25)
    # A clean assignment, kept by both.
    rows += _asg("WE", "E1", 5, ok, start=30)
    return pd.DataFrame(rows).reindex(columns=VOTE_COLUMNS)


def test_votes_that_reject_refuses_never_reach_the_tables():
    from mturk.qc import assess

    df = three_disagreements()
    refused = {v.assignment_id for v in assess(df) if not v.passed}
    assert refused == {"A1", "B1", "C1", "D1"}
    qc = apply_qc(validate(df, "v"), QCRules())
    assert not set(qc.kept["assignment_id"]) & refused
    assert set(qc.kept["assignment_id"]) == {"A2", "D2", "E1"}
    # Two outputs per assignment, one pass: pay and keep with their reasons.
    d = qc.decisions.assignments.set_index("assignment_id")
    assert list(d.loc[["A1", "B1", "C1", "D1"], "pay"]) == ["reject"] * 4
    assert d.loc["B1", "keep_reason"].startswith("rejected for pay: 1 answer(s) given before")
    assert bool(d.loc["E1", "keep"]) and d.loc["E1", "pay"] == "approve"
    # keep implies approve for every assignment, whatever the rules.
    for rules in (QCRules(), QCRules(max_check_fail_rate=0.0), QCRules(max_failed_catch=3),
                  QCRules(require_played_to_end=False, max_unanswered=2)):
        q = apply_qc(validate(df, "v"), rules)
        dd = q.decisions.assignments
        assert not (dd["keep"].astype(bool) & (dd["pay"] == "reject")).any()
        refused = {v.assignment_id for v in assess(df, rules) if not v.passed}
        assert not set(q.kept["assignment_id"]) & refused
    # A rater over 25% of all checks is left out of the analysis but paid where each
    # assignment passed (the P.808 split between pay and keep).
    q = apply_qc(validate(df, "v"), QCRules(max_check_fail_rate=0.05))
    dd = q.decisions.assignments.set_index("assignment_id")
    assert dd.loc["A2", "pay"] == "approve" and not bool(dd.loc["A2", "keep"])
    assert "rater screened" in {e.rule for e in q.exclusions}


def test_report_honours_decisions_file_of_approve_reject(tmp_path):
    """An assignment refused pay by an earlier reject run (recorded in qc_decisions.csv) stays out
    even when the report is run with rules that would keep it."""
    from mturk.qc import decide, write_decisions

    df = three_disagreements()
    write_votes(tmp_path / "votes.csv", df)
    write_decisions(decide(df), tmp_path / "votes.csv")
    rep = build_report(df, "v", None, ReportOptions(
        rules=QCRules(max_failed_catch=5, max_gold_error_rate=1.0, require_played_to_end=False,
                      max_unanswered=5), decisions=tmp_path / "qc_decisions.csv"))
    assert set(rep.qc.kept["assignment_id"]) == {"A2", "D2", "E1"}
    assert "rejected" in set(rep.table("table_qc").data["rule"])
    # The CLI finds the file beside the votes and takes its rules.
    out = tmp_path / "res"
    assert main(["report", "--votes", str(tmp_path / "votes.csv"), "--out", str(out),
                 "--no-plots"]) == 0
    qct = pd.read_csv(out / "table_qc.csv")
    assert {"failed checks", "playback", "no answer"} <= set(qct["rule"])


def test_is_gold_without_trial_role_is_a_check_not_a_main_vote(tmp_path):
    """A votes file with the design's is_gold column but no trial_role: gold rows once became
    main votes (a "check vs real" row in Table I, no rater screened)."""
    df = votes()
    gold = df["trial_role"] == "gold"
    df.loc[gold, "left_system"], df.loc[gold, "right_system"] = "check", "real"
    df["is_gold"] = gold
    path = tmp_path / "votes.csv"
    df.drop(columns=["trial_role"]).to_csv(path, index=False)
    raw, src = load_votes(path)
    assert list(raw.loc[raw["is_gold"], "trial_role"].unique()) == ["gold"]
    rep = build_report(raw, src)
    t1 = rep.table("table1_preference").data
    assert set(t1["system_a"]) | set(t1["system_b"]) == {"regnet", "vs"}
    assert rep.qc.n_check_votes == 1


@pytest.mark.parametrize("rating, answer, message", [
    ("6", "3", "rating column outside 1-5"),
    ("abc", "3", "rating column outside 1-5"),
    ("4", "3", "rating disagrees with answer"),
])
def test_rating_column_is_validated(tmp_path, rating, answer, message):
    df = pd.DataFrame([dict(trial_id=f"m{k}", kind="mos", question="missing", left_system="regnet",
                            answer=answer if k == 0 else "2", rating=rating if k == 0 else "2",
                            worker_id="W1", assignment_id="A1", work_time_s=60.0,
                            trial_role="main", played_to_end=True) for k in range(3)])
    path = tmp_path / "votes.csv"
    df.reindex(columns=VOTE_COLUMNS).to_csv(path, index=False)
    raw, src = load_votes(path)
    with pytest.raises(UserError, match=message) as e:
        validate(raw, src)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_rating_column_honoured_where_the_answer_is_blank():
    df = pd.DataFrame([dict(trial_id="m1", kind="mos", question="missing", left_system="regnet",
                            answer=None, rating=4.0, worker_id="W1", assignment_id="A1")])
    v = validate(df.reindex(columns=VOTE_COLUMNS).assign(trial_role="main"), "v")
    assert v["answer"].iloc[0] == "4" and v["rating"].iloc[0] == 4.0


def test_one_config_section_in_the_study(tmp_path):
    from mturk.qc import QCConfig

    d = tmp_path / "study"
    d.mkdir()
    (d / "study.json").write_text(json.dumps({"systems": ["regnet", "vs"],
                                              "qc": {"max_failed_catch": 1, "max_work_time_s": None}}))
    cfg = QCConfig.for_study(d)
    assert cfg.max_failed_catch == 1 and cfg.max_work_time_s is None
    assert QCConfig.for_study(None) == QCConfig()
    # The study's rules reach reject and report alike: one missed catch is now tolerated.
    df = three_disagreements()
    from mturk.qc import assess

    assert "A1" not in {v.assignment_id for v in assess(df, cfg) if not v.passed}
    for bad, msg in (({"max_failed_catch": "two"}, "whole number"), ({"nope": 1}, "unknown QC rule")):
        (d / "study.json").write_text(json.dumps({"qc": bad}))
        with pytest.raises(UserError, match=msg) as e:
            QCConfig.for_study(d)
        assert "\n" not in str(e.value) and "study.json" in str(e.value)

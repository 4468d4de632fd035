"""The Prolific client and a study's life on Prolific, against recorded examples of Prolific's
documented API (tests/fixtures/prolific_api.json), with `responses` standing in for the service."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from responses import matchers

from mturk.ledger import Ledger
from mturk.prolific import API_URL, ProlificClient, Submission, token_from_env
from mturk.prolific_study import bonuses, completion_codes, plan_for, publish, reconcile, review
from mturk.study import HitSpec, Qualifications, Study
from regnet.errors import UserError

FIX = json.loads((Path(__file__).parents[1] / "fixtures" / "prolific_api.json").read_text())
SID = FIX["create_study"]["response"]["id"]


def _study(n_hits: int = 4, assignments: int = 3) -> Study:
    hits = [HitSpec(f"h{i}", "pair", [f"t{i}a", f"t{i}b", f"t{i}c"], practice_id=f"p{i}") for i in range(n_hits)]
    return Study(name="demo", uid="abc123def456789", seed=0, systems=["regnet", "real"], real_system="real",
                 protocols=["pair"], questions=["missing"], title="Rate the sound of short videos",
                 description="Watch short videos and say which sound fits better.", keywords="video,sound",
                 reward="0.50", max_assignments=assignments, assignment_duration_s=3600, lifetime_s=86400,
                 auto_approval_delay_s=86400, trials_per_hit=3, qualifications=Qualifications(), hits=hits)


def _client() -> ProlificClient:
    return ProlificClient("tok-123", sleep=lambda s: None)


def _url(path: str) -> str:
    return API_URL + path


def test_token_only_from_the_environment(monkeypatch):
    monkeypatch.delenv("PROLIFIC_API_TOKEN", raising=False)
    with pytest.raises(UserError, match="PROLIFIC_API_TOKEN: not set"):
        token_from_env()
    monkeypatch.setenv("PROLIFIC_API_TOKEN", " t0k ")
    assert token_from_env() == "t0k"


def test_the_draft_body_follows_the_study_design():
    study = _study()
    plan = plan_for(study, "https://lab.example.org/")
    body = plan.body()
    assert body["external_study_url"] == ("https://lab.example.org/worker?PROLIFIC_PID={{%PROLIFIC_PID%}}"
                                          "&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}")
    assert body["total_available_places"] == 12 and body["reward"] == 50  # 4 HITs x 3 raters, $0.50
    assert body["prolific_id_option"] == "url_parameters"
    kinds = [(c["code_type"], c["actions"][0]["action"]) for c in body["completion_codes"]]
    assert kinds == [("COMPLETED", "MANUALLY_REVIEW"), ("OTHER", "MANUALLY_REVIEW"), ("OTHER", "REQUEST_RETURN")]
    assert len({c["code"] for c in body["completion_codes"]}) == 3
    assert body["estimated_completion_time"] == 3 + 4  # 3 trials + practice, plus screening
    two = plan_for(study, "https://lab.example.org", hits_per_participant=2)
    assert two.places == 6 and two.reward_cents == 100
    assert completion_codes(study) == plan.codes  # stable across runs
    with pytest.raises(UserError, match="--public-url"):
        plan_for(study, "lab.example.org")


@responses.activate
def test_publish_creates_one_draft_shows_cost_and_publishes_only_with_the_spend_flags(tmp_path):
    study = _study()
    plan = plan_for(study, "https://lab.example.org")
    responses.post(_url("/api/v1/study-cost-calculator/"), json=FIX["cost"]["response"],
                   match=[matchers.json_params_matcher({"reward": 50, "total_available_places": 12}),
                          matchers.header_matcher({"Authorization": "Token tok-123"})])
    responses.post(_url("/api/v1/studies/"), json=FIX["create_study"]["response"], status=201,
                   match=[matchers.json_params_matcher(plan.body())])
    responses.get(_url(f"/api/v1/studies/{SID}/"), json=FIX["get_study"]["response"])
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        res = publish(study, ledger, _client(), plan)
        assert res.created and not res.published and res.prolific_id == SID and res.total_cost_cents == 1200
        # a re-run creates nothing
        res2 = publish(study, ledger, _client(), plan)
        assert not res2.created and res2.prolific_id == SID
        assert sum(1 for c in responses.calls if c.request.url == _url("/api/v1/studies/")) == 1
        # publishing needs every spend flag and a cost within --max-cost
        with pytest.raises(UserError, match="--yes-spend-money and --max-cost"):
            publish(study, ledger, _client(), plan, production=True)
        with pytest.raises(UserError, match="costs 12.00 on Prolific, above 5"):
            publish(study, ledger, _client(), plan, production=True, yes_spend_money=True, max_cost=Decimal("5"))
        assert not [c for c in responses.calls if c.request.url.endswith("/transition/")]
        responses.post(_url(f"/api/v1/studies/{SID}/transition/"), json=FIX["publish_study"]["response"],
                       match=[matchers.json_params_matcher({"action": "PUBLISH"})])
        res3 = publish(study, ledger, _client(), plan, production=True, yes_spend_money=True, max_cost=Decimal("20"))
        assert res3.published and res3.status == "PUBLISHING"


@responses.activate
def test_a_pending_create_is_resolved_by_the_drafts_internal_name(tmp_path):
    study = _study()
    plan = plan_for(study, "https://lab.example.org")
    responses.post(_url("/api/v1/study-cost-calculator/"), json={"total_cost": 1200})
    responses.get(_url("/api/v1/studies/"), json={"results": [{"id": SID, "internal_name": plan.internal_name}]})
    responses.get(_url(f"/api/v1/studies/{SID}/"), json={"id": SID, "status": "UNPUBLISHED"})
    create = responses.post(_url("/api/v1/studies/"), json={"id": "other"})
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.put("prolific", study.uid, "pending", plan.internal_name)  # crashed after the create call
        res = publish(study, ledger, _client(), plan)
    assert res.prolific_id == SID and not res.created and create.call_count == 0


@responses.activate
def test_submissions_are_read_page_by_page():
    p1, p2 = FIX["list_submissions_page1"], FIX["list_submissions_page2"]
    responses.get(_url("/api/v1/submissions/"), json=p1["response"],
                  match=[matchers.query_param_matcher(p1["request"]["query"])])
    responses.get(_url("/api/v1/submissions/"), json=p2["response"],
                  match=[matchers.query_param_matcher(p2["request"]["query"])])
    subs = list(_client().submissions(SID, page_size=2))
    assert [s.participant_id for s in subs] == ["pA", "pB", "pC"]
    assert subs[0] == Submission("65a000000000000000000001", "pA", "AWAITING REVIEW", "CODE",
                                 "2026-11-30T10:00:00Z", "2026-11-30T10:08:00Z")


@responses.activate
def test_errors_are_one_line_and_429_is_retried():
    responses.post(_url("/api/v1/studies/"), json=FIX["error_400"]["response"], status=400)
    with pytest.raises(UserError) as e:
        _client().create_study({"name": "x"})
    msg = str(e.value)
    assert "\n" not in msg and "refused (400)" in msg and "total_available_places" in msg
    responses.get(_url(f"/api/v1/studies/{SID}/"), status=401, json={"error": {"title": "Unauthorized"}})
    with pytest.raises(UserError, match="token was refused \\(401\\); check PROLIFIC_API_TOKEN"):
        _client().get_study(SID)
    waits = []
    rl = responses.get(_url("/api/v1/studies/s2/"), status=429, headers={"Retry-After": "7"})
    client = ProlificClient("t", sleep=waits.append, max_retries=2)
    with pytest.raises(UserError, match="rate limited \\(429\\) after 3 tries"):
        client.get_study("s2")
    assert rl.call_count == 3 and waits == [7.0, 7.0]
    responses.replace(responses.GET, _url("/api/v1/studies/s2/"), json={"id": "s2", "status": "ACTIVE"})
    assert client.get_study("s2")["status"] == "ACTIVE"


def test_reconcile_reports_mismatches_both_ways():
    subs = [Submission("1", "pA", "AWAITING REVIEW"), Submission("2", "pB", "APPROVED"),
            Submission("3", "pX", "AWAITING REVIEW"), Submission("4", "pR", "RETURNED"),
            Submission("5", "pW", "ACTIVE")]
    r = reconcile(subs, {"pA", "pB", "local-only"})
    assert [s.participant_id for s in r.matched] == ["pA", "pB"]
    assert [s.participant_id for s in r.prolific_only] == ["pX"]
    assert r.server_only == ["local-only"]
    assert any("pX" in line for line in r.lines()) and any("local-only" in line for line in r.lines())


@responses.activate
def test_review_approves_in_bulk_rejects_with_reason_and_is_idempotent():
    subs = [Submission("s1", "pA", "AWAITING REVIEW"), Submission("s2", "pB", "AWAITING REVIEW"),
            Submission("s3", "pC", "APPROVED"), Submission("s4", "pD", "AWAITING REVIEW")]
    message = ("Your answers failed the attention checks built into this study (clips with no sound, "
               "or the same clip twice), so we cannot use them.")
    bulk = responses.post(_url("/api/v1/submissions/bulk-approve/"),
                          match=[matchers.json_params_matcher({"submission_ids": ["s1"]})])
    rej = responses.post(_url("/api/v1/submissions/s2/transition/"), json=FIX["reject_submission"]["response"],
                         match=[matchers.json_params_matcher({"action": "REJECT", "message": message,
                                                              "rejection_category": "FAILED_CHECK"})])
    out = review(_client(), subs, {"pA": (True, ""), "pB": (False, "2 of 3 catch trials failed")},
                 message=message, category="FAILED_CHECK")
    assert out.approved == ["pA"] and out.rejected == ["pB"] and out.already == ["pC"] and out.no_decision == ["pD"]
    assert bulk.call_count == 1 and rej.call_count == 1
    with pytest.raises(UserError, match="at least 100 characters"):
        review(_client(), subs, {"pB": (False, "x")}, message="too short", category="FAILED_CHECK")
    with pytest.raises(UserError, match="rejection categories"):
        review(_client(), subs, {"pB": (False, "x")}, message=message, category="BAD")
    # once reviewed on Prolific, nothing is sent again
    done = [Submission("s1", "pA", "APPROVED"), Submission("s2", "pB", "REJECTED")]
    again = review(_client(), done, {"pA": (True, ""), "pB": (False, "x")}, message=message, category="FAILED_CHECK")
    assert again.already == ["pA", "pB"] and bulk.call_count == 1 and rej.call_count == 1


@responses.activate
def test_bonuses_need_the_spend_flags_and_stay_within_max_cost():
    setup = responses.post(_url("/api/v1/submissions/bonus-payments/"), json=FIX["set_up_bonuses"]["response"],
                           status=201, match=[matchers.json_params_matcher({"study_id": SID, "csv_bonuses": "pA,1.50\n"})])
    pay = responses.post(_url("/api/v1/bulk-bonus-payments/66b000000000000000000001/pay/"), status=202)
    with pytest.raises(UserError, match="--yes-spend-money and --max-cost"):
        bonuses(_client(), SID, {"pA": "1.50"}, yes_spend_money=False, max_cost=None)
    with pytest.raises(UserError, match="not a positive amount"):
        bonuses(_client(), SID, {"pA": "-1"}, yes_spend_money=True, max_cost=Decimal("5"))
    with pytest.raises(UserError, match="cost 2.00 .* above 1.00"):
        bonuses(_client(), SID, {"pA": "1.50"}, yes_spend_money=True, max_cost=Decimal("1.00"))
    assert pay.call_count == 0
    bonuses(_client(), SID, {"pA": "1.50"}, yes_spend_money=True, max_cost=Decimal("5"))
    assert setup.call_count == 2 and pay.call_count == 1


def test_participant_decisions_reject_a_participant_with_any_failed_assignment():
    from types import SimpleNamespace as NS

    from mturk.prolific_study import participant_decisions

    passed = [NS(worker_id="pA", reasons=[]), NS(worker_id="pB", reasons=[])]
    failed = [NS(worker_id="pB", reasons=["2 catch trials failed"])]
    reviewed = [NS(worker_id="pC", status="Approved", feedback=""), NS(worker_id="pD", status="Rejected",
                                                                       feedback="no answers")]
    d = participant_decisions(passed, failed, reviewed)
    assert d == {"pA": (True, ""), "pB": (False, "2 catch trials failed"), "pC": (True, ""),
                 "pD": (False, "no answers")}


def test_the_recruit_config_written_for_serve_is_what_the_server_reads(tmp_path):
    from eval_server.recruit import read_recruit_config
    from mturk.prolific_study import write_recruit_config

    plan = plan_for(_study(), "https://lab.example.org", hits_per_participant=2)
    write_recruit_config(tmp_path / "prolific.json", plan)
    cfg = read_recruit_config(tmp_path / "prolific.json")
    assert cfg.completion_url.endswith("cc=" + plan.codes.completed) and cfg.hits_per_recruit == 2
    assert cfg.screenout_url.endswith(plan.codes.screened_out) and cfg.timeout_url.endswith(plan.codes.timed_out)


# -- the verbs, on a real study folder ----------------------------------------------------------------
@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    from tests.helpers.study import build_small_study, make_manifests

    root = tmp_path_factory.mktemp("prolific")
    clips = make_manifests(root / "clips", n_videos=6)
    build_small_study(clips, root / "study", protocols=("pair",), questions=("missing",), trials_per_hit=1)
    return root / "study"


@responses.activate
def test_publish_hits_prolific_verb_draft_then_refusal_without_flags(study_folder, tmp_path, monkeypatch, capsys):
    import shutil

    from mturk.study import load_study
    from regnet.cli import main

    d = tmp_path / "study"
    shutil.copytree(study_folder, d)
    study = load_study(d)
    places = len(study.hits) * study.max_assignments
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "tok-123")
    responses.post(_url("/api/v1/study-cost-calculator/"), json={"total_cost": 999},
                   match=[matchers.json_params_matcher({"reward": 50, "total_available_places": places})])
    create = responses.post(_url("/api/v1/studies/"), json={"id": SID, "status": "UNPUBLISHED"}, status=201)
    responses.get(_url(f"/api/v1/studies/{SID}/"), json={"id": SID, "status": "UNPUBLISHED"})
    assert main(["publish-hits", "--study", str(d), "--prolific"]) == 2
    assert "--public-url" in capsys.readouterr().err
    args = ["publish-hits", "--study", str(d), "--prolific", "--public-url", "https://lab.example.org"]
    assert main(args + ["--dry-run"]) == 0
    assert create.call_count == 0 and "dry run: nothing created" in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"Prolific study {SID}: UNPUBLISHED (created now)" in out and "total 9.99" in out
    cfg = json.loads((d / "prolific.json").read_text())
    assert cfg["hits_per_participant"] == 1 and cfg["completion_url"].startswith("https://app.prolific.com/")
    assert main(args) == 0 and create.call_count == 1  # idempotent
    assert main(args + ["--production"]) == 2
    assert "--yes-spend-money and --max-cost" in capsys.readouterr().err
    monkeypatch.delenv("PROLIFIC_API_TOKEN")
    assert main(args) == 2 and "PROLIFIC_API_TOKEN: not set" in capsys.readouterr().err


def test_screened_out_participants_are_not_mismatches():
    subs = [Submission("1", "pA", "AWAITING REVIEW", "DONE"), Submission("2", "pS", "AWAITING REVIEW", "SCRN")]
    r = reconcile(subs, {"pA"}, screened_out_code="SCRN")
    assert [s.participant_id for s in r.screened_out] == ["pS"] and not r.prolific_only
    assert "1 screened out" in r.lines()[0]

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError
from botocore.stub import ANY, Stubber
from tests.helpers.study import build_small_study, make_manifests, stubbed_client

from mturk import client as mclient
from mturk.client import SANDBOX_URL, api_errors, resolve_target
from mturk.ledger import Ledger
from mturk.publish import (estimate_cost, participant_qual_name, publish, render_all, request_token,
                           upload_media)
from mturk.study import load_study
from regnet.cli import main
from regnet.errors import UserError

MEDIA = "https://media.example/m"
QUAL_ID = "3QUALIFICATIONTYPEID0000000001"
HIT_TYPE = "3HITTYPEID00000000000000000001"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("pub")
    clips = make_manifests(root / "clips", n_videos=6)
    build_small_study(clips, root / "study", protocols=("pair",), questions=("missing",), trials_per_hit=1)
    return root / "study"


@pytest.fixture
def study_dir(built, tmp_path):
    d = tmp_path / "study"
    shutil.copytree(built, d)
    return d


def hit_id(i: int) -> str:
    return f"3HIT{i:026d}"


def expected_hit_type(study, exclude=()):
    reqs = [
        {"QualificationTypeId": "000000000000000000L0", "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [95], "ActionsGuarded": "DiscoverPreviewAndAccept"},
        {"QualificationTypeId": "00000000000000000040", "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [1000], "ActionsGuarded": "DiscoverPreviewAndAccept"},
        {"QualificationTypeId": "00000000000000000071", "Comparator": "In", "LocaleValues": [{"Country": "US"}],
         "ActionsGuarded": "DiscoverPreviewAndAccept"},
    ] + [{"QualificationTypeId": q, "Comparator": "DoesNotExist", "ActionsGuarded": "DiscoverPreviewAndAccept"}
         for q in exclude]
    return {"AutoApprovalDelayInSeconds": 259200, "AssignmentDurationInSeconds": 3600, "Reward": "0.50",
            "Title": study.title, "Keywords": study.keywords, "Description": study.description,
            "QualificationRequirements": reqs}


def stub_qual(stub, study):
    stub.add_response("create_qualification_type", {"QualificationType": {"QualificationTypeId": QUAL_ID}},
                      {"Name": participant_qual_name(study), "Keywords": "regnet-bench",
                       "QualificationTypeStatus": "Active", "Description":
                       "Took part in a regnet-bench listening study; later studies may exclude these workers."})


def stub_hits(stub, study, questions, local_ids, first=1):
    for i, lid in enumerate(local_ids, start=first):
        tok = request_token(study, lid)
        stub.add_response("create_hit_with_hit_type", {"HIT": {"HITId": hit_id(i), "HITTypeId": HIT_TYPE}},
                          {"HITTypeId": HIT_TYPE, "MaxAssignments": 3, "LifetimeInSeconds": 259200,
                           "Question": questions[lid], "RequesterAnnotation": tok, "UniqueRequestToken": tok})


def use_client(monkeypatch, client):
    monkeypatch.setattr(mclient, "make_client", lambda target, service="mturk": client)


def test_sandbox_publish_exact_requests(study_dir, monkeypatch, capsys):
    study = load_study(study_dir)
    questions = render_all(study, MEDIA)
    client = stubbed_client()
    with Stubber(client) as stub:
        stub_qual(stub, study)
        stub.add_response("create_hit_type", {"HITTypeId": HIT_TYPE},
                          expected_hit_type(study, exclude=["3EARLIERSTUDYQUAL000000000001"]))
        stub_hits(stub, study, questions, [h.local_id for h in study.hits])
        use_client(monkeypatch, client)
        rc = main(["publish-hits", "--study", str(study_dir), "--sandbox", "--media-base-url", MEDIA,
                   "--exclude-qualification", "3EARLIERSTUDYQUAL000000000001"])
        stub.assert_no_pending_responses()
    assert rc == 0
    out = capsys.readouterr().out
    n = len(study.hits)
    assert f"{n} to create" in out and f"= ${Decimal('0.60') * 3 * n:.2f}" in out
    assert f"created {n} HIT(s)" in out and f"/projects/{HIT_TYPE}/tasks" in out
    tokens = [request_token(study, h.local_id) for h in study.hits]
    assert len(set(tokens)) == n and all(len(t) <= 64 for t in tokens)
    with Ledger.for_study(study_dir) as led:
        rows = led.hits(study.name, SANDBOX_URL)
        assert [r.hit_id for r in rows] == [hit_id(i) for i in range(1, n + 1)]
        assert {r.status for r in rows} == {"created"} and [r.unique_request_token for r in rows] == tokens
        assert led.get(SANDBOX_URL, study.name, "participant_qual_id") == QUAL_ID
    # Everything exists now: a re-run sends nothing at all (an unstubbed call would fail).
    with Stubber(stubbed_client()) as empty:
        use_client(monkeypatch, empty.client)
        assert main(["publish-hits", "--study", str(study_dir), "--media-base-url", MEDIA]) == 0
    assert "nothing to create" in capsys.readouterr().out


def test_pages_carry_media_urls(study_dir):
    study = load_study(study_dir)
    q = render_all(study, MEDIA)[study.hits[0].local_id]
    assert q.startswith('<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
                        '2011-11-11/HTMLQuestion.xsd"><HTMLContent><![CDATA[')
    assert f'src="{MEDIA}/{study.trial(study.hits[0].trial_ids[0]).left_media}"' in q


def test_interrupted_publish_resumes_with_the_rest(study_dir, monkeypatch):
    study = load_study(study_dir)
    questions = render_all(study, MEDIA)
    ids = [h.local_id for h in study.hits]
    k = 2
    target = resolve_target(sandbox=True)
    client = stubbed_client()
    with Stubber(client) as stub, Ledger.for_study(study_dir) as led:
        stub_qual(stub, study)
        stub.add_response("create_hit_type", {"HITTypeId": HIT_TYPE}, expected_hit_type(study))
        stub_hits(stub, study, questions, ids[:k])
        stub.add_client_error("create_hit_with_hit_type", "ServiceUnavailable", "throttled for too long",
                              http_status_code=503)
        with pytest.raises(UserError, match=f"{k} of {len(ids)} HITs exist") as e:
            publish(study, client, target, led, questions)
        assert "\n" not in str(e.value)
        assert [r.status for r in led.hits(study.name)] == ["created"] * k + ["pending"]
    client = stubbed_client()
    with Stubber(client) as stub, Ledger.for_study(study_dir) as led:
        # The participant qualification is in the ledger: not created again.
        stub.add_response("create_hit_type", {"HITTypeId": HIT_TYPE}, expected_hit_type(study))
        stub_hits(stub, study, questions, ids[k:], first=k + 1)
        res = publish(study, client, target, led, questions)
        stub.assert_no_pending_responses()
        assert res.created == [hit_id(i) for i in range(k + 1, len(ids) + 1)] and res.skipped == k
        assert [r.hit_id for r in led.hits(study.name)] == [hit_id(i) for i in range(1, len(ids) + 1)]


def test_token_reused_after_crash_recovers_the_existing_hit(study_dir):
    """A run died after MTurk created the HIT but before the ledger said so."""
    study = load_study(study_dir)
    study.qualifications.mark_participants = False
    questions = render_all(study, MEDIA)
    target = resolve_target(sandbox=True)
    first = study.hits[0].local_id
    client = stubbed_client()
    with Stubber(client) as stub, Ledger.for_study(study_dir) as led:
        led.mark_pending(study.name, first, request_token(study, first), target.endpoint, HIT_TYPE)
        stub.add_response("create_hit_type", {"HITTypeId": HIT_TYPE}, expected_hit_type(study))
        stub.add_client_error("create_hit_with_hit_type", "ParameterValidationError",
                              f"The HIT with ID \"{hit_id(77)}\" already exists for this UniqueRequestToken.")
        stub_hits(stub, study, questions, [h.local_id for h in study.hits[1:]], first=2)
        publish(study, client, target, led, questions)
        assert led.hit_by_token(target.endpoint, request_token(study, first)).hit_id == hit_id(77)


def test_production_needs_both_guards(study_dir, monkeypatch, capsys):
    def no_client(*a, **k):
        raise AssertionError("no request may be sent")

    monkeypatch.setattr(mclient, "make_client", no_client)
    base = ["publish-hits", "--study", str(study_dir), "--production", "--media-base-url", MEDIA]
    n = len(load_study(study_dir).hits)
    cost = Decimal("0.60") * 3 * n
    for extra, msg in (([], "--production: this spends"), (["--yes-spend-money"], "--max-cost: required"),
                       (["--yes-spend-money", "--max-cost", f"{cost - Decimal('0.01')}"], "does not cover"),
                       (["--max-cost", "1000"], "--yes-spend-money")):
        assert main(base + extra) == 2
        cap = capsys.readouterr()
        assert f"cost: {n} x 3 x $0.60 = ${cost:.2f}" in cap.out  # the cost is shown first
        assert msg in cap.err and cap.err.count("\n") == 1
    with Ledger.for_study(study_dir) as led:
        assert led.hits(load_study(study_dir).name) == []


def test_production_with_guards_goes_ahead(study_dir, monkeypatch):
    study = load_study(study_dir)
    questions = render_all(study, MEDIA)
    client = stubbed_client()
    with Stubber(client) as stub:
        stub.add_response("create_hit_type", {"HITTypeId": HIT_TYPE}, expected_hit_type(study))
        stub_hits(stub, study, questions, [h.local_id for h in study.hits])
        use_client(monkeypatch, client)
        assert main(["publish-hits", "--study", str(study_dir), "--production", "--yes-spend-money",
                     "--max-cost", "100", "--media-base-url", MEDIA, "--no-participant-qual"]) == 0
    with Ledger.for_study(study_dir) as led:
        assert {r.endpoint for r in led.hits(study.name)} == {mclient.PRODUCTION_URL}


def test_dry_run_sends_nothing_and_lab_server_options(study_dir, monkeypatch, capsys):
    monkeypatch.setattr(mclient, "make_client", lambda *a, **k: (_ for _ in ()).throw(AssertionError("sent")))
    assert main(["publish-hits", "--study", str(study_dir), "--endpoint-url", "http://127.0.0.1:5000",
                 "--no-system-quals", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "target: custom (http://127.0.0.1:5000)" in out and "media: http://127.0.0.1:5000/media/<name>" in out
    assert "000000000000000000L0" not in out and "dry run: nothing sent" in out


def test_lab_publish_requests_without_system_quals(study_dir, monkeypatch):
    study = load_study(study_dir)
    questions = render_all(study, "http://127.0.0.1:5000/media")
    client = stubbed_client()
    want = expected_hit_type(study)
    want["QualificationRequirements"] = []
    with Stubber(client) as stub:
        stub.add_response("create_hit_type", {"HITTypeId": HIT_TYPE}, want)
        stub_hits(stub, study, questions, [h.local_id for h in study.hits])
        use_client(monkeypatch, client)
        monkeypatch.setenv("AWS_ENDPOINT_URL_MTURK", "http://127.0.0.1:5000")
        assert main(["publish-hits", "--study", str(study_dir), "--no-system-quals", "--no-participant-qual"]) == 0
    with Ledger.for_study(study_dir) as led:
        assert {r.endpoint for r in led.hits(study.name)} == {"http://127.0.0.1:5000"}


def test_targets():
    assert resolve_target().endpoint == SANDBOX_URL
    assert resolve_target(production=True).is_production
    assert resolve_target(endpoint_url="http://h:1/").endpoint == "http://h:1"
    with pytest.raises(UserError):
        resolve_target(endpoint_url="ftp://x")


def test_cost_estimate():
    assert estimate_cost("0.50", 3, 10).total == Decimal("18.00")
    assert estimate_cost("0.02", 3, 1).fee == Decimal("0.01")  # MTurk's minimum commission
    assert estimate_cost("1.00", 10, 1).total == Decimal("14.00")  # +20% for 10 or more assignments


def test_api_failures_are_one_line():
    t = resolve_target(endpoint_url="http://127.0.0.1:9")
    with pytest.raises(UserError, match="cannot reach the MTurk endpoint"):
        with api_errors(t, "CreateHITType"):
            raise EndpointConnectionError(endpoint_url=t.endpoint)
    with pytest.raises(UserError, match="^credentials: no AWS credentials"):
        with api_errors(t, "CreateHITType"):
            raise NoCredentialsError()


def test_missing_credentials_cli(study_dir, monkeypatch, capsys, tmp_path):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["publish-hits", "--study", str(study_dir), "--endpoint-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: credentials:") and err.count("\n") == 1
    with Ledger.for_study(study_dir) as led:
        assert led.hits(load_study(study_dir).name) == []


def test_s3_upload_skips_what_is_there(study_dir):
    study = load_study(study_dir)
    names = sorted({m for t in study.trials for m in t.media_names})
    s3 = stubbed_client("s3")
    with Stubber(s3) as stub:
        for i, name in enumerate(names):
            key = f"pre/{name}"
            if i == 0:
                size = (study_dir / "media" / name).stat().st_size
                stub.add_response("head_object", {"ContentLength": size}, {"Bucket": "bkt", "Key": key})
                continue
            stub.add_client_error("head_object", "404", "Not Found", http_status_code=404,
                                  expected_params={"Bucket": "bkt", "Key": key})
            stub.add_response("put_object", {}, {"Bucket": "bkt", "Key": key, "Body": ANY, "ContentType": "video/mp4"})
        assert upload_media(study, s3, "bkt", "/pre/") == "https://bkt.s3.amazonaws.com/pre"
        stub.assert_no_pending_responses()


def test_exposure_groups_publish_exact_requests(tmp_path, monkeypatch):
    """Real-or-fake with exposure control on MTurk: one qualification per rater group, a HIT type per
    group whose requirements keep the other groups out (DoesNotExist), and each HIT annotated with
    its token and the qualification to grant."""
    from mturk.exposure import qual_name

    clips = make_manifests(tmp_path / "clips", n_videos=4)
    build_small_study(clips, tmp_path / "s", protocols=("real_fake",), trials_per_hit=2)
    study = load_study(tmp_path / "s")
    questions = render_all(study, MEDIA)
    quals = {g: f"3QUALGROUP{g}000000000000000000"[:30] for g in range(3)}
    types = {g: f"3HITTYPEGROUP{g}00000000000000000"[:30] for g in range(3)}
    client = stubbed_client()
    with Stubber(client) as stub:
        stub_qual(stub, study)
        stub.add_response("create_hit_type", {"HITTypeId": HIT_TYPE}, expected_hit_type(study))
        for g in range(3):
            stub.add_response("create_qualification_type", {"QualificationType": {"QualificationTypeId": quals[g]}},
                              {"Name": qual_name(study, "real_fake", g), "Keywords": "regnet-bench",
                               "QualificationTypeStatus": "Active", "Description": ANY})
        for g in range(3):
            want = expected_hit_type(study, exclude=[quals[o] for o in range(3) if o != g])
            stub.add_response("create_hit_type", {"HITTypeId": types[g]}, want)
        for i, h in enumerate(study.hits, start=1):
            tok = request_token(study, h.local_id)
            stub.add_response("create_hit_with_hit_type", {"HIT": {"HITId": hit_id(i), "HITTypeId": types[h.group]}},
                              {"HITTypeId": types[h.group], "MaxAssignments": 3, "LifetimeInSeconds": 259200,
                               "Question": questions[h.local_id], "UniqueRequestToken": tok,
                               "RequesterAnnotation": f"{tok} grant-on-accept={quals[h.group]}"})
        use_client(monkeypatch, client)
        assert main(["publish-hits", "--study", str(tmp_path / "s"), "--sandbox", "--media-base-url", MEDIA]) == 0
        stub.assert_no_pending_responses()
    with Ledger.for_study(tmp_path / "s") as led:
        assert {led.get(SANDBOX_URL, study.name, f"exposure_qual:real_fake:{g}") for g in range(3)} == set(quals.values())
        assert {r.hit_type_id for r in led.hits(study.name, SANDBOX_URL)} == set(types.values())

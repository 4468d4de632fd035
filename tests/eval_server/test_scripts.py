"""An MTurk requester script, written as published toolkits write theirs, runs unchanged against the server:
pointed at it only through AWS_ENDPOINT_URL_MTURK. Layout HITs, a ScoreMyKnownAnswers policy, answers
through the worker path, QuestionFormAnswers parsing, approve/reject, bonuses, extra assignments, and
qualification types found by Query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from tests.helpers.server import KEY, SECRET, accept_hit, assignment_of, rater, start_inprocess

LAYOUT = """<h3>Is the sound of this clip real?</h3>
<video src="${video_url}" controls></video>
<p>Clip ${clip_id}</p>
<label><input type="radio" name="real" value="yes"> real</label>
<label><input type="radio" name="real" value="no"> generated</label>
"""

SCRIPT = textwrap.dedent('''
    """A requester script in the usual shape: config.json + input.csv -> HITs -> review -> pay."""
    import csv, json, re, sys
    import xml.etree.ElementTree as ET
    import boto3

    cfg = json.load(open(sys.argv[2]))
    # No endpoint_url in code: the environment decides where "mturk" is (AWS_ENDPOINT_URL_MTURK).
    mturk = boto3.client("mturk", region_name=cfg["region"])
    state_file = cfg["state_file"]
    NS = {"q": "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"}

    def answers(xml):
        root = ET.fromstring(xml)
        return {a.find("q:QuestionIdentifier", NS).text: a.find("q:FreeText", NS).text
                for a in root.findall("q:Answer", NS)}

    if sys.argv[1] == "publish":
        quals = mturk.list_qualification_types(Query=cfg["qualification_query"], MustBeRequestable=False,
                                               MustBeOwnedByCaller=True)["QualificationTypes"]
        reqs = [{"QualificationTypeId": q["QualificationTypeId"], "Comparator": "GreaterThanOrEqualTo",
                 "IntegerValues": [cfg["min_score"]], "ActionsGuarded": "Accept"} for q in quals]
        hit_type = mturk.create_hit_type(Title=cfg["title"], Description=cfg["description"], Reward=cfg["reward"],
                                         AssignmentDurationInSeconds=600, AutoApprovalDelayInSeconds=3600,
                                         QualificationRequirements=reqs)["HITTypeId"]
        hits = []
        for row in csv.DictReader(open(cfg["input_csv"])):
            policy = {"PolicyName": "ScoreMyKnownAnswers/2011-09-01", "Parameters": [
                {"Key": "AnswerKey", "MapEntries": [{"Key": "real", "Values": [row["gold"]]}]},
                {"Key": "ApproveIfKnownAnswerScoreIsAtLeast", "Values": ["100"]},
                {"Key": "RejectIfKnownAnswerScoreIsLessThan", "Values": ["100"]},
                {"Key": "RejectReason", "Values": ["The check clip was answered wrongly."]}]}
            try:
                hit = mturk.create_hit_with_hit_type(
                    HITTypeId=hit_type, MaxAssignments=2, LifetimeInSeconds=3600,
                    HITLayoutId=cfg["layout_id"],
                    HITLayoutParameters=[{"Name": "video_url", "Value": row["video_url"]},
                                         {"Name": "clip_id", "Value": row["clip_id"]}],
                    AssignmentReviewPolicy=policy, UniqueRequestToken="run1-" + row["clip_id"])["HIT"]
                hits.append(hit["HITId"])
            except mturk.exceptions.RequestError as e:
                # A re-run: MTurk names the HIT the token already made in the error message.
                m = re.search(r'HIT with ID "([A-Z0-9]+)"', str(e))
                if not m:
                    raise
                hits.append(m.group(1))
        json.dump({"hit_type": hit_type, "hits": hits, "quals": [q["Name"] for q in quals]}, open(state_file, "w"))
    else:
        st = json.load(open(state_file))
        out = {"answers": {}, "status": {}, "bonus": [], "extended": []}
        for hit_id in st["hits"]:
            for a in mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"]:
                out["answers"][a["AssignmentId"]] = answers(a["Answer"])
                if a["AssignmentStatus"] == "Submitted":
                    mturk.approve_assignment(AssignmentId=a["AssignmentId"])
                status = mturk.get_assignment(AssignmentId=a["AssignmentId"])["Assignment"]["AssignmentStatus"]
                out["status"][a["AssignmentId"]] = status
                if status == "Approved":
                    mturk.send_bonus(WorkerId=a["WorkerId"], AssignmentId=a["AssignmentId"], BonusAmount="0.25",
                                     Reason="thanks", UniqueRequestToken="bonus-" + a["AssignmentId"])
                    out["bonus"].append(a["AssignmentId"])
            mturk.create_additional_assignments_for_hit(HITId=hit_id, NumberOfAdditionalAssignments=1)
            out["extended"].append(mturk.get_hit(HITId=hit_id)["HIT"]["MaxAssignments"])
            out.setdefault("bonuses", []).extend(
                b["BonusAmount"] for b in mturk.list_bonus_payments(HITId=hit_id)["BonusPayments"])
        print(json.dumps(out))
''')


def _run_script(tmp_path, url, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL_MTURK=url, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"))
    r = subprocess.run([sys.executable, str(tmp_path / "requester.py"), *args], env=env, capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def server(sqlite_url):  # noqa: F811
    s = start_inprocess(sqlite_url)
    yield s
    s.close()


def test_requester_script_runs_unchanged(server, tmp_path):
    url = server.url
    (tmp_path / "layout.html").write_text(LAYOUT)
    cli = subprocess.run([sys.executable, "-m", "regnet.cli", "layout", "add", str(tmp_path / "layout.html"),
                          "--db", server.db_url, "--id", "REALFAKE1"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip().splitlines()[-1] == "REALFAKE1"
    again = subprocess.run([sys.executable, "-m", "regnet.cli", "layout", "add", str(tmp_path / "layout.html"),
                            "--db", server.db_url, "--id", "REALFAKE1"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1

    admin = server.client()
    qt = admin.create_qualification_type(Name="Listening screen 2026", Description="passed the screen",
                                         QualificationTypeStatus="Active")["QualificationType"]["QualificationTypeId"]
    admin.create_qualification_type(Name="Unrelated", Description="x", QualificationTypeStatus="Active")
    for w in ("AGOOD", "ABAD"):
        admin.associate_qualification_with_worker(QualificationTypeId=qt, WorkerId=w, IntegerValue=80)
    (tmp_path / "input.csv").write_text("clip_id,video_url,gold\nc1,/media/c1.mp4?a=1&b=<2>,yes\nc2,/media/c2.mp4,no\n")
    (tmp_path / "config.json").write_text(json.dumps({
        "region": "us-east-1", "title": "Real or generated?", "description": "Listen and judge", "reward": "0.15",
        "layout_id": "REALFAKE1", "input_csv": "input.csv", "state_file": "state.json",
        "qualification_query": "listening screen", "min_score": 50}))
    (tmp_path / "requester.py").write_text(SCRIPT)
    _run_script(tmp_path, url, "publish", "config.json")
    _run_script(tmp_path, url, "publish", "config.json")  # a re-run makes nothing new
    st = json.loads((tmp_path / "state.json").read_text())
    assert st["quals"] == ["Listening screen 2026"]
    assert len(st["hits"]) == 2 and admin.list_hits()["NumResults"] == 2

    hit_c1, hit_c2 = st["hits"]
    # A rater without the qualification is refused; qualified raters answer through the worker path.
    r = accept_hit(rater(url, "ANOQUAL"), url, hit_c1)
    assert r.status_code == 403
    expected = {}
    raters = {w: rater(url, w) for w in ("AGOOD", "ABAD")}
    for worker, hit, answer in (("AGOOD", hit_c1, "yes"), ("ABAD", hit_c1, "no"), ("AGOOD", hit_c2, "no")):
        r = accept_hit(raters[worker], url, hit)
        assert r.status_code == 302
        page = raters[worker].get(url + r.headers["Location"]).text
        assert 'action="/mturk/externalSubmit"' in page and 'name="assignmentId"' in page
        if hit == hit_c1:
            assert "/media/c1.mp4?a=1&amp;b=&lt;2&gt;" in page  # parameters are HTML-escaped
        aid = assignment_of(r)
        assert raters[worker].post(f"{url}/mturk/externalSubmit", data={"assignmentId": aid, "real": answer}).ok
        expected[aid] = (worker, answer)

    out = json.loads(_run_script(tmp_path, url, "review", "config.json"))
    assert {aid: a["real"] for aid, a in out["answers"].items()} == {aid: ans for aid, (_, ans) in expected.items()}
    good = {aid for aid, (w, _) in expected.items() if w == "AGOOD"}
    bad = set(expected) - good
    assert {aid for aid, s in out["status"].items() if s == "Approved"} == good
    assert {aid for aid, s in out["status"].items() if s == "Rejected"} == bad
    assert set(out["bonus"]) == good and out["bonuses"] == ["0.25"] * len(good)
    assert out["extended"] == [3, 3]

    res = admin.list_review_policy_results_for_hit(HITId=hit_c1, PolicyLevels=["Assignment"], RetrieveActions=True,
                                                   RetrieveResults=True)
    actions = {a["TargetId"]: a["ActionName"] for a in res["AssignmentReviewReport"]["ReviewActions"]}
    assert sorted(actions.values()) == ["approve", "reject"]
    scores = {r["SubjectId"]: r["Value"] for r in res["AssignmentReviewReport"]["ReviewResults"]
              if r["Key"] == "KnownAnswerScore"}
    assert sorted(scores.values()) == ["0", "100"]
    # Paged one record at a time, the pages add up to the whole report and the last has no token.
    paged_actions, token = [], None
    for _ in range(20):
        page = admin.list_review_policy_results_for_hit(
            HITId=hit_c1, PolicyLevels=["Assignment"], RetrieveActions=True, RetrieveResults=True,
            MaxResults=1, **({"NextToken": token} if token else {}))
        paged_actions += page["AssignmentReviewReport"]["ReviewActions"]
        token = page.get("NextToken")
        if not token:
            break
    assert paged_actions == res["AssignmentReviewReport"]["ReviewActions"]
    [bad_aid] = bad
    assert admin.get_assignment(AssignmentId=bad_aid)["Assignment"]["RequesterFeedback"] == \
        "The check clip was answered wrongly."

    # Bad input gets MTurk's errors and records nothing.
    with pytest.raises(admin.exceptions.RequestError, match="HITLayout NOPE"):
        admin.create_hit(Title="t", Description="d", Reward="0.1", AssignmentDurationInSeconds=60,
                         LifetimeInSeconds=60, HITLayoutId="NOPE")
    with pytest.raises(admin.exceptions.RequestError, match="clip_id"):
        admin.create_hit(Title="t", Description="d", Reward="0.1", AssignmentDurationInSeconds=60,
                         LifetimeInSeconds=60, HITLayoutId="REALFAKE1",
                         HITLayoutParameters=[{"Name": "video_url", "Value": "x"}])
    with pytest.raises(admin.exceptions.RequestError, match="submitted"):
        admin.send_bonus(WorkerId="AGOOD", AssignmentId="NOSUCH", BonusAmount="1.00", Reason="r")
    [good_aid] = [a for a in good if expected[a][1] == "yes"] or list(good)[:1]
    with pytest.raises(admin.exceptions.RequestError):
        admin.send_bonus(WorkerId="AGOOD", AssignmentId=good_aid, BonusAmount="1.5.0", Reason="r")
    with pytest.raises(admin.exceptions.RequestError, match="already been processed"):
        admin.send_bonus(WorkerId="AGOOD", AssignmentId=good_aid, BonusAmount="0.25", Reason="thanks",
                         UniqueRequestToken="bonus-" + good_aid)
    with pytest.raises(admin.exceptions.RequestError, match="fewer than 10"):
        admin.create_additional_assignments_for_hit(HITId=hit_c1, NumberOfAdditionalAssignments=7)
    assert len(admin.list_bonus_payments(AssignmentId=good_aid)["BonusPayments"]) == 1
    assert admin.list_hits()["NumResults"] == 2

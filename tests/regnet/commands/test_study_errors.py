"""QA regressions for the study verbs: bad input is one line (exit 2), stored data survives, and an
unreachable or refusing MTurk endpoint fails fast in one line. Everything stays on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
from types import SimpleNamespace

import pandas as pd
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from tests.helpers.study import build_small_study, make_manifests

from mturk import client as mclient
from mturk.client import SANDBOX_URL, Target, api_errors
from mturk.collect import apply_review
from mturk.votes import read_votes, write_votes
from regnet.cli import main
from regnet.errors import UserError


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa-clips")
    return make_manifests(root / "clips", n_videos=6)


@pytest.fixture(scope="module")
def built(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("qa-study") / "study"
    build_small_study(clips, out, protocols=("pair",), questions=("missing",), trials_per_hit=2)
    return out


@pytest.fixture
def study_dir(built, tmp_path):
    d = tmp_path / "study"
    shutil.copytree(built, d)
    return d


# ---- build-study --------------------------------------------------------------------------------------

def test_binary_clip_manifest_is_one_line(clips, tmp_path, capsys):
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    one_line_error(capsys, ["build-study", "--clips", str(bad), str(clips[1]), "--out", str(tmp_path / "s")],
                   str(bad), "not a readable CSV")


def test_unwritable_out_is_one_line(clips, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(capsys, ["build-study", "--clips", *map(str, clips), "--out", str(blocker / "study"),
                            "--protocols", "pair"], "--out")


def test_negative_check_counts_refused(clips, tmp_path, capsys):
    one_line_error(capsys, ["build-study", "--clips", *map(str, clips), "--out", str(tmp_path / "s"),
                            "--protocols", "pair", "--catch-per-hit", "-1"], "--catch-per-hit")
    assert not (tmp_path / "s" / "study.json").exists()


def test_rebuilding_a_published_study_differently_is_refused(clips, study_dir, capsys):
    before = (study_dir / "trials.csv").read_text()
    (study_dir / "ledger.sqlite").write_bytes(b"")  # published: HITs refer to these trial ids
    pd.DataFrame({"assignment_id": ["A1"]}).to_csv(study_dir / "votes.csv", index=False)
    one_line_error(capsys, ["build-study", "--clips", *map(str, clips), "--out", str(study_dir),
                            "--protocols", "pair", "--questions", "missing", "--trials-per-hit", "2",
                            "--name", "pilot", "--seed", "8"], "already published", "ledger.sqlite")
    assert (study_dir / "trials.csv").read_text() == before
    # The same study again (same seed and settings) is harmless and allowed.
    rc = main(["build-study", "--clips", *map(str, clips), "--out", str(study_dir), "--protocols", "pair",
               "--questions", "missing", "--trials-per-hit", "2", "--name", "pilot", "--seed", "7"])
    assert rc == 0, capsys.readouterr().err
    assert (study_dir / "trials.csv").read_text() == before


# ---- votes and batch files ----------------------------------------------------------------------------

def test_interrupted_votes_write_keeps_stored_votes(monkeypatch, tmp_path):
    path = tmp_path / "votes.csv"
    votes = pd.DataFrame({"assignment_id": ["A1"], "worker_id": ["W1"], "trial_id": ["t1"], "kind": ["pair"],
                          "question": ["missing"], "answer": ["left"]})
    write_votes(path, votes)
    stored = path.read_bytes()

    def dies(self, target, *a, **k):
        with open(target, "w") as f:
            f.write("assignment_id,wor")  # half a file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", dies)
    with pytest.raises(UserError, match="cannot write the votes table"):
        write_votes(path, pd.concat([votes, votes.assign(assignment_id="A2")]))
    monkeypatch.undo()
    assert path.read_bytes() == stored
    assert list(read_votes(path)["assignment_id"]) == ["A1"]
    assert [p.name for p in tmp_path.iterdir()] == ["votes.csv"]  # no temporary left behind


def test_export_batch_to_unwritable_place_is_one_line(tmp_path, capsys):
    votes = tmp_path / "votes.csv"
    write_votes(votes, pd.DataFrame({"assignment_id": ["A1"], "worker_id": ["W1"], "trial_id": ["t1"],
                                     "kind": ["pair"], "question": ["missing"], "answer": ["left"],
                                     "study": ["s"], "hit_id": ["H1"]}))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(capsys, ["export-batch", "--votes", str(votes), "--out", str(blocker / "b.csv")],
                   "cannot write the batch CSV")


# ---- MTurk endpoints: unreachable, closed, refusing ---------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


def test_unreachable_endpoint_gives_up_after_two_attempts(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    target = Target(f"http://127.0.0.1:{_closed_port()}", "custom")
    client = mclient.make_client(target)
    sent = []
    client.meta.events.register("before-send.mturk", lambda **kw: sent.append(1))
    with pytest.raises(UserError, match="cannot reach the MTurk endpoint"):
        with api_errors(target, "GetAccountBalance"):
            client.get_account_balance()
    # Ten adaptive attempts with backoff took most of a minute against a refused port.
    assert len(sent) == mclient.CONNECT_ATTEMPTS == 2


def test_unreachable_mturk_names_its_closure():
    with pytest.raises(UserError) as e:
        with api_errors(Target(SANDBOX_URL, "sandbox"), "CreateHITType"):
            raise EndpointConnectionError(endpoint_url=SANDBOX_URL)
    assert "closed MTurk on 2026-09-30" in str(e.value) and "--endpoint-url" in str(e.value)
    assert "\n" not in str(e.value)


def test_sandbox_publish_and_collect_fail_in_one_line(study_dir, monkeypatch, capsys):
    """No network here: both verbs must end in one line, with or without credentials."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_MTURK", raising=False)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(study_dir / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(study_dir / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    one_line_error(capsys, ["publish-hits", "--study", str(study_dir), "--sandbox", "--media-base-url",
                            "https://media.example/m"], "credentials")
    one_line_error(capsys, ["collect", "--study", str(study_dir), "--sandbox"], "ledger")


def _auth_error(op: str) -> ClientError:
    return ClientError({"Error": {"Code": "InvalidSignatureException", "Message": "The request signature we "
                                  "calculated does not match the signature you provided."}}, op)


def test_wrong_credentials_stop_a_review_at_the_first_refusal():
    calls = []

    class Refusing:
        def approve_assignment(self, **kw):
            calls.append(kw["AssignmentId"])
            raise _auth_error("ApproveAssignment")

    ledger = SimpleNamespace(assignment=lambda aid: SimpleNamespace(endpoint="http://127.0.0.1:9"),
                             record_review=lambda *a: pytest.fail("nothing was reviewed"))
    verdicts = [SimpleNamespace(assignment_id=f"A{i}", worker_id="W", passed=True, reasons=[],
                                feedback=lambda: "") for i in range(5)]
    with pytest.raises(UserError, match="^credentials: .* refused the AWS credentials"):
        apply_review(verdicts, "approve", ledger, lambda target: Refusing())
    assert calls == ["A0"]


# ---- quickstart and serve set-up ----------------------------------------------------------------------

def test_quickstart_refuses_what_would_fail_after_training(tmp_path, capsys):
    wd = tmp_path / "qs"
    one_line_error(capsys, ["quickstart", "--workdir", str(wd), "--n-per-class", "1", "--no-serve"],
                   "--n-per-class")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        one_line_error(capsys, ["quickstart", "--workdir", str(wd), "--port", str(port), "--no-serve"],
                       "--port", str(port))
    assert not wd.exists()  # refused before any stage ran


def test_serve_on_a_busy_port_makes_no_keys_it_cannot_show(tmp_path, capsys):
    from eval_server.db import Database

    db = tmp_path / "lab.sqlite"
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        one_line_error(capsys, ["serve", "--db", str(db), "--port", str(port)], "--port", str(port))
    # The key and secret are printed once, when made: a start that cannot listen must not make them.
    if db.exists():
        d = Database(str(db))
        d.setup()
        assert d.get_meta("requester_key") is None and d.get_meta("admin_token") is None


def test_db_that_is_not_a_database_is_one_line(tmp_path, capsys):
    notdb = tmp_path / "notes.sqlite"
    notdb.write_text("these are my notes, not a database\n" * 100)
    one_line_error(capsys, ["serve", "--db", str(notdb), "--port", "0"], "--db", "not a database")
    layout = tmp_path / "layout.html"
    layout.write_text("<p>${x}</p>")
    one_line_error(capsys, ["layout", "add", str(layout), "--db", str(notdb)], "--db")
    assert notdb.read_text().startswith("these are my notes")

"""Screening before rating (mturk/screening.py): the Woods et al. (2017) headphone-check stimuli
measured from the generated files, the qualification test + AnswerKey scored on our server through
boto3 and the worker pages, build-study / publish-hits / collect / report wiring. In-process server
on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
import requests
from tests.helpers.server import KEY, SECRET, rater, start_inprocess
from tests.helpers.study import make_manifests

from eval_server import questions
from mturk import screening as sc
from regnet.cli import main

SR = sc.SAMPLE_RATE


def segments(x: np.ndarray) -> list[np.ndarray]:
    """The three tones of a trial, cut where the design puts them (1 s tone, 0.5 s gap)."""
    step, n = int(1.5 * SR), int(1.0 * SR)
    return [x[i * step:i * step + n] for i in range(3)]


def db(v: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(v ** 2)))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("scr")
    return d, sc.build_screening(d / "media", "salt", seed=3)


def test_headphone_check_stimuli_are_the_woods_design(built):
    d, s = built
    assert s.headphone_check and len(s.trials) == 6 and s.pass_correct == 5 and s.required_value == 15
    # Each order of (standard, target, foil) once: the answer is 1, 2 and 3 twice each.
    assert sorted(t.order for t in s.trials) == sorted({"STA", "SAT", "TSA", "TAS", "AST", "ATS"})
    assert sorted(t.answer for t in s.trials) == ["1", "1", "2", "2", "3", "3"]
    for t in s.trials:
        assert "S" not in t.media and t.order not in t.media  # the opaque name gives nothing away
        x, sr = sc.read_wav(d / "media" / t.media)
        assert sr == SR and x.shape == (int(4.0 * SR), 2)  # 3 x 1 s tones + 2 x 0.5 s gaps
        step, n = int(1.5 * SR), int(1.0 * SR)
        for g in range(2):  # the gaps are silent
            assert np.all(x[g * step + n:(g + 1) * step] == 0)
        seg = dict(zip(t.order, segments(x)))
        for kind, v in seg.items():
            spectrum = np.abs(np.fft.rfft(v[:, 0]))
            assert np.fft.rfftfreq(len(v), 1 / sr)[np.argmax(spectrum)] == pytest.approx(200.0, abs=1.0)
            env = np.abs(v[:, 0])
            ramp = int(0.1 * sr)
            # 100 ms raised-cosine ramps: quiet at the very start/end, full level after the ramp.
            assert env[:20].max() < 0.02 * env.max() and env[-20:].max() < 0.02 * env.max()
            assert env[ramp:ramp + sr // 100].max() == pytest.approx(env.max(), rel=1e-3)
            assert env[ramp // 2 - 100:ramp // 2 + 100].max() == pytest.approx(0.5 * env.max(), abs=0.03 * env.max())
        # Phase: the foil's right channel is its left inverted; the other two are in phase.
        assert np.allclose(seg["A"][:, 1], -seg["A"][:, 0], atol=2 / 32767)
        for k in "ST":
            assert np.array_equal(seg[k][:, 0], seg[k][:, 1])
        # Levels per channel: foil = standard; target 6 dB below.
        assert db(seg["A"][:, 0]) == pytest.approx(db(seg["S"][:, 0]), abs=0.01)
        assert db(seg["T"][:, 0]) - db(seg["S"][:, 0]) == pytest.approx(-6.0, abs=0.02)
        # Over loudspeakers (channels summed) the foil cancels; over headphones it does not.
        assert np.max(np.abs(seg["A"].sum(axis=1))) < 1e-3
        assert str(t.order.index("T") + 1) == t.answer


def test_calibration_and_tones_at_the_stated_loudness(built):
    d, s = built
    cal, sr = sc.read_wav(d / "media" / s.calibration_media)
    assert np.array_equal(cal[:, 0], cal[:, 1])  # diotic
    assert sc.loudness_lufs(cal, sr) == pytest.approx(s.calibration_lufs, abs=0.1)
    x, _ = sc.read_wav(d / "media" / s.trials[0].media)
    standard = segments(x)[s.trials[0].order.index("S")]
    assert sc.loudness_lufs(standard, sr) == pytest.approx(s.calibration_lufs, abs=0.2)


def test_headphone_listener_passes_and_loudspeaker_listener_fails(built):
    d, s = built
    ok = sc.simulated_answers(s, d / "media", headphones=True)
    bad = sc.simulated_answers(s, d / "media", headphones=False)
    assert all(ok[t.question_id] == t.answer for t in s.trials)
    assert not any(bad[t.question_id] == t.answer for t in s.trials)  # hears the foil as quietest


def test_question_form_renders_audio_on_our_server(built):
    d, s = built
    q = questions.parse(sc.question_form(s, "/media"))
    assert [i.identifier for i in q.form] == ["consent", "volume"] + [f"hc{k}" for k in range(1, 7)]
    assert q.form[1].media[0].url == f"/media/{s.calibration_media}"
    page = questions.render_form(q, "QUALIFICATION_TEST", "", action_path="/worker/qualification")
    assert page.count("<audio") == 7 and f"src='/media/{s.trials[0].media}'" in page
    assert "http://" not in page.split("<form")[0]  # the media URLs are not shown as text
    assert "I agree to take part" in page


@pytest.fixture
def server(sqlite_url, built):  # noqa: F811
    d, _ = built
    srv = start_inprocess(sqlite_url, media_dirs=(d / "media",), threads=4)
    yield srv
    srv.close()


def take(srv, worker: str, qid: str, answers: dict) -> requests.Response:
    http = rater(srv.url, worker)
    page = http.get(f"{srv.url}/worker/qualification", params={"typeId": qid}, timeout=30)
    assert page.status_code == 200 and page.text.count("<audio") == 7
    form = {**sc._hidden_fields(page.text), **answers}
    return http.post(f"{srv.url}/worker/qualification", data=form, timeout=30)


def test_answer_key_scores_pass_and_fail_on_our_server_through_boto3(server, built):
    d, s = built
    client = server.client()
    qid = client.create_qualification_type(
        Name="hc", Description="headphone check", QualificationTypeStatus="Active",
        Test=sc.question_form(s, "/media"), AnswerKey=sc.answer_key(s),
        TestDurationInSeconds=600)["QualificationType"]["QualificationTypeId"]
    good = {"consent": "agree", "volume": "set", **{t.question_id: t.answer for t in s.trials}}
    wrong = dict(good, **{t.question_id: str(int(t.answer) % 3 + 1) for t in s.trials[:2]})
    declined = dict(good, consent="decline")
    for w, a in (("W-GOOD", good), ("W-WRONG", wrong), ("W-DECL", declined)):
        assert take(server, w, qid, a).status_code < 400
    value = {w: client.get_qualification_score(QualificationTypeId=qid, WorkerId=w)["Qualification"]["IntegerValue"]
             for w in ("W-GOOD", "W-WRONG", "W-DECL")}
    assert value == {"W-GOOD": 16, "W-WRONG": 14, "W-DECL": 6}
    assert sc.decode(16, s).passed and value["W-GOOD"] >= s.required_value
    assert not sc.decode(14, s).passed and sc.decode(14, s).reason.startswith("headphone check failed (4 of 6")
    assert sc.decode(6, s).reason == "declined consent"
    # A test is taken once (RetryDelayInSeconds unset), as on MTurk.
    assert take(server, "W-WRONG", qid, good).status_code == 409


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_manifests(tmp_path_factory.mktemp("clips"), n_videos=6)


def build(clips, out, *extra) -> dict:
    rc = main(["build-study", "--clips", *map(str, clips), "--out", str(out), "--seed", "5",
               "--protocols", "pair", "--questions", "missing", "--trials-per-hit", "2", *extra])
    assert rc == 0
    return json.loads((out / "study.json").read_text())


def test_build_study_writes_the_screening(clips, tmp_path, capsys):
    consent = tmp_path / "consent.txt"
    consent.write_text("Our lab's consent.\n\nSecond paragraph.")
    doc = build(clips, tmp_path / "a", "--consent", str(consent))
    s = sc.Screening.from_dict(doc["screening"])
    assert s.enabled and s.headphone_check and len(s.trials) == 6 and s.consent.startswith("Our lab's consent.")
    assert all((tmp_path / "a" / "media" / m).is_file() for m in s.media_names)
    assert "woods headphone check (6 trials, 5 to pass)" in capsys.readouterr().out
    # A dry run against MTurk checks the test too: its sounds need absolute URLs there.
    dry = ["publish-hits", "--study", str(tmp_path / "a"), "--sandbox", "--dry-run"]
    assert main(dry + ["--media-base-url", "/media"]) == 2
    assert "--media-base-url: '/media': MTurk's qualification test needs absolute" in capsys.readouterr().err
    assert main(dry + ["--media-base-url", "https://media.example/m"]) == 0
    assert "screening test (value >= 15)" in capsys.readouterr().out
    s = sc.Screening.from_dict(build(clips, tmp_path / "b", "--no-headphone-check")["screening"])
    assert s.enabled and not s.headphone_check and not s.trials and s.required_value == sc.CONSENT_SCORE
    assert build(clips, tmp_path / "c", "--no-screening")["screening"] == {}
    assert main(["build-study", "--clips", *map(str, clips), "--out", str(tmp_path / "d"),
                 "--consent", str(tmp_path / "missing.txt")]) == 2
    assert "--consent: cannot read" in capsys.readouterr().err


def test_publish_creates_the_qualification_once_and_hits_require_it(clips, tmp_path, monkeypatch, sqlite_url, capsys):  # noqa: F811
    study = tmp_path / "study"
    s = sc.Screening.from_dict(build(clips, study)["screening"])
    srv = start_inprocess(sqlite_url, media_dirs=(study / "media",), threads=4)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    try:
        client = srv.client()
        args = ["publish-hits", "--study", str(study), "--endpoint-url", srv.url, "--media-base-url", "/media",
                "--no-system-quals"]
        assert main(args) == 0
        types = [t for t in client.list_qualification_types(MustBeRequestable=False)["QualificationTypes"]
                 if t["Name"].startswith("regnet-bench screening")]
        assert len(types) == 1
        qid = types[0]["QualificationTypeId"]
        n_hits = client.list_hits()["NumResults"]
        hit = client.get_hit(HITId=client.list_hits()["HITs"][0]["HITId"])["HIT"]
        req = next(r for r in hit["QualificationRequirements"] if r["QualificationTypeId"] == qid)
        assert req["Comparator"] == "GreaterThanOrEqualTo" and req["IntegerValues"] == [s.required_value]
        assert main(args) == 0  # a re-run creates nothing
        assert len([t for t in client.list_qualification_types(MustBeRequestable=False)["QualificationTypes"]
                    if t["Name"].startswith("regnet-bench screening")]) == 1
        assert client.list_hits()["NumResults"] == n_hits
        # A run that died after creating the type but before the ledger write finds it by name.
        with sqlite3.connect(study / "ledger.sqlite") as db:
            db.execute("DELETE FROM settings WHERE key LIKE 'screening_qual_id%'")
        from mturk.client import resolve_target
        from mturk.ledger import Ledger
        from mturk.study import load_study

        with Ledger.for_study(study) as led:
            assert sc.ensure_qual(client, load_study(study), led, resolve_target(endpoint_url=srv.url), "/media") == qid
        # Simulated raters take the test first: one over headphones rates, one over loudspeakers is kept out.
        capsys.readouterr()
        assert main(["simulate-raters", "--endpoint-url", srv.url, "--study", str(study), "--n", "1",
                     "--noise", "0", "--loudspeaker-raters", "1", "--max-hits", "2"]) == 0
        out = capsys.readouterr().out
        assert "SIM-0-0\t2 HITs" in out and "SIM-0-L0" in out
        assert main(["collect", "--study", str(study), "--endpoint-url", srv.url]) == 0
        scr = pd.read_csv(study / "screening.csv", dtype=str)
        assert dict(zip(scr["worker_id"], scr["passed"])) == {"SIM-0-0": "1", "SIM-0-L0": "0"}
        assert scr.set_index("worker_id").loc["SIM-0-L0", "reason"].startswith("headphone check failed (0 of 6")
        assert main(["report", "--votes", str(study / "votes.csv"), "--study", str(study), "--out",
                     str(tmp_path / "results"), "--min-seconds-per-trial", "0"]) == 0
        md = (tmp_path / "results" / "report.md").read_text()
        assert "Screening" in md and "screened out: failed the headphone check | 1" in md.replace("  ", " ")
    finally:
        srv.close()


def test_mturk_needs_absolute_media_urls_for_the_test():
    from regnet.errors import UserError

    with pytest.raises(UserError, match="absolute"):
        sc.check_media_base("/media", "sandbox")
    sc.check_media_base("https://bucket.s3.amazonaws.com/x", "sandbox")
    sc.check_media_base("/media", "custom")


def test_bots_take_the_test_by_their_signed_link(sqlite_url, built):  # noqa: F811
    from eval_server.config import ServerConfig
    from eval_server.identity import sign_in_link
    from eval_server.server import prepare
    from regnet.errors import UserError

    d, s = built
    srv = start_inprocess(sqlite_url, media_dirs=(d / "media",), threads=4, require_signed_links=True)
    try:
        secret = prepare(ServerConfig(db_url=srv.db_url))[0].secret_key
        client = srv.client()
        qid = client.create_qualification_type(
            Name="hc", Description="headphone check", QualificationTypeStatus="Active",
            Test=sc.question_form(s, "/media"), AnswerKey=sc.answer_key(s),
            TestDurationInSeconds=600)["QualificationType"]["QualificationTypeId"]
        answers = sc.simulated_answers(s, d / "media")
        with pytest.raises(UserError, match="signing in as SIM-0-0"):
            sc.take_test(requests.Session(), srv.url, "SIM-0-0", qid, answers)
        sc.take_test(requests.Session(), srv.url, "SIM-0-0", qid, answers,
                     sign_in_url=sign_in_link(srv.url, secret, "SIM-0-0"))
        q = client.get_qualification_score(QualificationTypeId=qid, WorkerId="SIM-0-0")["Qualification"]
        assert q["IntegerValue"] == s.required_value + 1  # consent + 6 of 6
    finally:
        srv.close()


def test_huggins_pitch_stimuli_are_the_milne_design(tmp_path):
    s = sc.build_screening(tmp_path / "media", "salt", seed=4, check="huggins")
    assert s.check == "huggins" and len(s.trials) == 6 and s.pass_correct == 6 and s.required_value == 16
    assert sorted(t.answer for t in s.trials) == ["1", "1", "2", "2", "3", "3"]
    for t in s.trials:
        x, sr = sc.read_wav(tmp_path / "media" / t.media)
        assert sr == SR and x.shape == (int(4.0 * SR), 2)
        assert sc.loudness_lufs(x, sr) == pytest.approx(s.calibration_lufs, abs=0.1)  # as loud as the calibration
        for i, seg in enumerate(segments(x)):
            left, right = np.fft.rfft(seg[:, 0]), np.fft.rfft(seg[:, 1])
            f = np.fft.rfftfreq(len(seg), 1 / sr)
            # No monaural cue: each ear's spectrum has the same power in every 25 Hz band (the 10 ms
            # ramps and 16-bit rounding blur single bins a little).
            def bands(spec):
                p = np.abs(spec[: 25 * 400]) ** 2
                return 10 * np.log10(p.reshape(400, 25).sum(axis=1))
            assert np.max(np.abs(bands(left) - bands(right))) < 0.5
            if str(i + 1) != t.answer:
                assert np.array_equal(seg[:, 0], seg[:, 1])  # diotic noise
                continue
            # The tone's interval: 180° between the ears in 600 Hz +- 6 %, in phase elsewhere.
            core = (f > 600 * 0.95) & (f < 600 * 1.05)
            out = ((f > 50) & (f < 500)) | ((f > 700) & (f < 10000))
            assert np.median(np.real(left[core] * np.conj(right[core])) / np.abs(left[core]) ** 2) < -0.95
            assert np.median(np.real(left[out] * np.conj(right[out])) / np.abs(left[out]) ** 2) > 0.95
            # Loudspeakers: the band cancels in L + R (by more than 16 dB; the ramps leak a little).
            mono = np.abs(np.fft.rfft(seg.sum(axis=1)))
            assert np.mean(mono[core]) < 0.15 * np.mean(mono[out])
    ok = sc.simulated_answers(s, tmp_path / "media", headphones=True)
    bad = sc.simulated_answers(s, tmp_path / "media", headphones=False)
    assert all(ok[t.question_id] == t.answer for t in s.trials)
    assert sum(bad[t.question_id] == t.answer for t in s.trials) < s.pass_correct  # guessing
    assert "faint tone hidden" in sc.question_form(s, "/media")

from __future__ import annotations

import collections
import json
import shutil

import pandas as pd
import pytest
from tests.helpers.study import build_small_study, make_manifests

from mturk.study import load_study, parse_duration, parse_reward
from mturk.trials import StudyOptions, build_study
from regnet.cli import main
from regnet.errors import UserError


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_manifests(tmp_path_factory.mktemp("clips"), n_videos=8)


@pytest.fixture(scope="module")
def built(clips, tmp_path_factory):
    """One study for the tests that only read it."""
    d = tmp_path_factory.mktemp("study") / "s"
    return build_small_study(clips, d), d


def test_same_seed_same_study_other_seed_differs(clips, built, tmp_path):
    a, adir = built
    build_small_study(clips, tmp_path / "b")
    c = build_small_study(clips, tmp_path / "c", seed=8)
    ta, tb = (adir / "trials.csv").read_text(), (tmp_path / "b/trials.csv").read_text()
    assert ta == tb
    assert json.loads((adir / "study.json").read_text())["hits"] == json.loads(
        (tmp_path / "b/study.json").read_text())["hits"]
    assert sorted(p.name for p in (adir / "media").iterdir()) == sorted(p.name for p in (tmp_path / "b/media").iterdir())
    assert (tmp_path / "c/trials.csv").read_text() != ta
    assert a.uid != c.uid


def test_protocols_balance_and_packing(built):
    study, d = built
    df = pd.read_csv(d / "trials.csv", dtype=str, keep_default_na=False)
    main_pairs = df[(df.kind == "pair") & (df.role == "main")]
    # Default pairs: the two generated systems, never the real one.
    assert set(main_pairs.left_system) == {"regnet", "baseline"}
    for q, g in main_pairs.groupby("question"):
        n = collections.Counter(g.left_system)
        assert len(g) == 8 and abs(n["regnet"] - n["baseline"]) <= 1, q
    rf = df[(df.kind == "real_fake") & (df.role == "main")]
    assert collections.Counter(rf.left_system) == {"regnet": 8, "baseline": 8, "real": 8}
    mos = df[(df.kind == "mos") & (df.role == "main")]
    assert len(mos) == 6 * 3 * 3  # two videos serve the references
    checks = df[df.role != "main"]
    assert {"identical", "silent", "other_class", "misaligned"} <= set(checks.check)
    assert (checks[checks.check != "identical"].truth != "").all()
    # Truth of a pair check points at the side with the video's own sound.
    for t in checks[(checks.kind == "pair") & (checks.check != "identical")].itertuples():
        good = t.left_sound if t.truth == "left" else t.right_sound
        assert good == "own"
    for h in study.hits:
        trials = [study.trial(t) for t in h.trial_ids]
        assert len({t.kind for t in trials}) == 1
        assert sum(t.role == "main" for t in trials) <= 3
        videos = [v for t in trials for v in ({t.video_id} | {s[6:] for s in (t.left_sound, t.right_sound)
                                                                if s.startswith("other:")})]
        assert len(videos) == len(set(videos)), h.local_id
        media = [m for t in trials for m in t.media_names] + [m for m in (h.ref1_media, h.ref5_media) if m]
        assert len(media) == len(set(media))
        assert bool(h.ref1_media) == (h.kind == "mos")
    assert study.max_assignments == 3


def test_media_is_opaque_and_self_contained(built, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(built[1], moved)
    study = load_study(moved)
    for t in study.trials:
        for name in t.media_names:
            assert study.media_path(name).is_file()
            assert not any(s in name for s in ("regnet", "baseline", "real", t.video_id))
    silent = next(t for t in study.trials if t.check == "silent")
    side = "left" if silent.left_sound == "silent" else "right"
    assert study.media_path(getattr(silent, f"{side}_media")).stat().st_size < study.media_path(
        getattr(silent, f"{'right' if side == 'left' else 'left'}_media")).stat().st_size


def test_load_study_gives_typed_trials(built):
    study = load_study(built[1])
    t = study.trial("pr0001")
    assert (t.kind, t.role, t.left_sound) == ("pair", "main", "own")
    assert {t.left_system, t.right_system} == {"regnet", "baseline"}
    assert t.class_name in ("dog", "drum") and t.video_id.startswith("v")
    assert [h.trial_ids for h in study.hits] == [h.trial_ids for h in built[0].hits]
    assert study.reward == "0.50" and study.qualifications.min_approval_rate == 95


@pytest.mark.parametrize("text, want", [("0.5", "0.50"), ("1", "1.00"), ("$0.05", "0.05")])
def test_reward_format(text, want):
    assert parse_reward(text) == want


@pytest.mark.parametrize("text", ["0.505", "-1", "abc", "0.00", "1e2"])
def test_reward_format_refused(text):
    with pytest.raises(UserError, match="--reward"):
        parse_reward(text)


def test_durations():
    assert parse_duration("45m", "x") == 2700 and parse_duration("3d", "x") == 259200
    with pytest.raises(UserError, match="--lifetime"):
        parse_duration("10s", "--lifetime")
    with pytest.raises(UserError):
        parse_duration("soon", "--lifetime")


def test_bad_manifests(clips, tmp_path):
    # a clip file that is gone
    bad = tmp_path / "bad"
    shutil.copytree(clips[0].parent, bad)
    (bad / "v3.mp4").unlink()
    with pytest.raises(UserError, match="v3"):
        build_study([bad / "clips.csv", clips[1]], tmp_path / "o1", StudyOptions())
    # systems with no video in common
    other = tmp_path / "other"
    other.mkdir()
    df = pd.read_csv(clips[1])
    df["video_id"] = "x" + df["video_id"]
    df["clip_path"] = df["wav_path"] = [str(clips[1].parent / p) for p in pd.read_csv(clips[1])["clip_path"]]
    df.to_csv(other / "clips.csv", index=False)
    with pytest.raises(UserError, match="no video in common"):
        build_study([clips[0], other / "clips.csv"], tmp_path / "o2", StudyOptions())
    with pytest.raises(UserError, match="MOS needs the real sound"):
        build_study(clips[:2], tmp_path / "o3", StudyOptions())
    with pytest.raises(UserError, match="--pairs"):
        build_study(clips, tmp_path / "o4", StudyOptions(pairs=[("regnet", "nope")]))


def test_cli_build_study(clips, tmp_path, capsys):
    rc = main(["build-study", "--clips", *map(str, clips), "--out", str(tmp_path / "s"), "--seed", "1",
               "--protocols", "pair,real_fake", "--trials-per-hit", "4", "--reward", "0.3",
               "--pairs", "regnet:real"])
    assert rc == 0
    out = capsys.readouterr().out
    study = load_study(tmp_path / "s")
    assert f"{len(study.trials)} trials in {len(study.hits)} HITs" in out
    assert study.reward == "0.30" and set(study.protocols) == {"pair", "real_fake"}
    assert {(study.trial(t).left_system, study.trial(t).right_system) for h in study.hits
            for t in h.trial_ids if study.trial(t).kind == "pair" and study.trial(t).role == "main"} == {
        ("regnet", "real"), ("real", "regnet")}
    rc = main(["build-study", "--clips", str(clips[0]), "--out", str(tmp_path / "t"), "--reward", "0.001"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --reward") and err.count("\n") == 1


def _record(paths, seconds=0.4, sample_rate=22050):
    """Give make_manifests' (old-format) clips.csv files the settings generate/import-clips record."""
    for p in paths:
        df = pd.read_csv(p)
        df["clip_seconds"], df["sample_rate"] = seconds, sample_rate
        df["feature_config_hash"] = f"hash-{df.system[0]}"
        df.to_csv(p, index=False)
    return paths


def test_study_json_records_clip_length_rate_and_each_systems_feature_hash(tmp_path):
    clips = _record(make_manifests(tmp_path / "clips", n_videos=6))
    study = build_small_study(clips, tmp_path / "s", protocols=("pair", "real_fake"))
    doc = json.loads((tmp_path / "s" / "study.json").read_text())
    assert doc["clip_seconds"] == 0.4 and doc["sample_rate"] == 22050
    assert doc["feature_config_hash"] == {s: f"hash-{s}" for s in ("regnet", "baseline", "real")}
    back = load_study(tmp_path / "s")
    assert (back.clip_seconds, back.sample_rate, back.feature_config_hash) == (
        study.clip_seconds, study.sample_rate, study.feature_config_hash) == (0.4, 22050, doc["feature_config_hash"])


def test_old_clips_and_old_study_json_without_the_settings_still_load(built, tmp_path):
    study, d = built  # made from clips.csv files written before the settings were recorded
    assert study.clip_seconds is None and study.sample_rate is None
    assert study.feature_config_hash == {s: "" for s in study.systems}
    old = tmp_path / "old"
    shutil.copytree(d, old)
    doc = json.loads((old / "study.json").read_text())
    for k in ("clip_seconds", "sample_rate", "feature_config_hash"):
        doc.pop(k, None)
    (old / "study.json").write_text(json.dumps(doc))
    back = load_study(old)
    assert back.clip_seconds is None and back.sample_rate is None and back.feature_config_hash == {}
    assert len(back.trials) == len(study.trials)


def test_clips_of_different_lengths_or_rates_are_refused_naming_both_files(tmp_path, capsys):
    clips = make_manifests(tmp_path / "clips", n_videos=4)
    _record(clips[:1], seconds=2.0)
    _record(clips[1:], seconds=10.0)
    rc = main(["build-study", "--clips", *map(str, clips), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and err.count("\n") == 1
    assert str(clips[0]) in err and str(clips[1]) in err
    assert not (tmp_path / "s" / "study.json").exists()
    _record(clips[1:], seconds=2.0, sample_rate=16000)
    with pytest.raises(UserError, match="sample_rate"):
        build_study(clips, tmp_path / "t", StudyOptions())

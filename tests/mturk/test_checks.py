"""Checks (issue 16, design 3): every HIT of every protocol carries at least one gold or catch
trial, or build-study fails with a one-line reason and the smallest change that fixes it; every
check is labelled by what it really shows."""

from __future__ import annotations

import pytest
from tests.helpers.study import build_small_study, make_manifests

from regnet.cli import main
from regnet.errors import UserError


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """4 videos: with 3 main trials a HIT leaves one video free, and MOS's references take two."""
    return make_manifests(tmp_path_factory.mktemp("few"), n_videos=4)


@pytest.fixture(scope="module")
def one_per_class(tmp_path_factory):
    """Each class has one video only: a same-class (misaligned) gold is impossible."""
    return make_manifests(tmp_path_factory.mktemp("opc"), n_videos=5,
                          classes=("dog", "drum", "fireworks", "baby", "cow"))


def _checks(study, hit):
    return [study.trial(t) for t in hit.trial_ids if study.trial(t).role in ("gold", "catch")]


def test_every_hit_of_every_protocol_has_a_check(few, tmp_path):
    study = build_small_study(few, tmp_path / "s", trials_per_hit=3)
    assert {h.kind for h in study.hits} == {"pair", "real_fake", "mos"}
    for h in study.hits:
        assert _checks(study, h), f"{h.kind} HIT {h.local_id} has no check"
    # MOS had no free video for a silent/other-class catch: the reference 5 repeated is its check.
    mos_checks = [t for h in study.hits if h.kind == "mos" for t in _checks(study, h)]
    assert {"ref5_repeat"} <= {t.check for t in mos_checks}
    for t in mos_checks:
        if t.check == "ref5_repeat":
            assert t.truth == "5" and t.left_sound == "own" and t.left_system == "check:ref5_repeat"


def test_no_check_fails_with_the_smallest_fix(few, tmp_path, capsys):
    with pytest.raises(UserError, match=r"^MOS HITs have no check \(\d+ of \d+, e\.g\. h\d+\): add --catch-per-hit 1$"):
        build_small_study(few, tmp_path / "a", protocols=("mos",), catch_per_hit=0, gold_per_hit=0)
    # Pair HITs that fill every video leave no room: the message names the trials-per-hit that does.
    with pytest.raises(UserError, match=r"paired-comparison HITs have no check .*reduce --trials-per-hit to 3"):
        build_small_study(few, tmp_path / "b", protocols=("pair",), questions=("missing",), trials_per_hit=4,
                          gold_per_hit=0)
    # ... and that change works.
    s = build_small_study(few, tmp_path / "c", protocols=("pair",), questions=("missing",), trials_per_hit=3,
                          gold_per_hit=0)
    assert all(_checks(s, h) for h in s.hits)
    # The CLI says it in one line.
    rc = main(["build-study", "--clips", *map(str, few), "--out", str(tmp_path / "d"), "--protocols", "real_fake",
               "--catch-per-hit", "0", "--gold-per-hit", "0", "--no-screening"])
    err = capsys.readouterr().err
    assert rc != 0 and "real-or-fake HITs have no check" in err and "add --catch-per-hit 1" in err
    assert "Traceback" not in err


def test_a_misaligned_gold_that_crosses_classes_is_labelled_as_such(one_per_class, tmp_path):
    study = build_small_study(one_per_class, tmp_path / "s", trials_per_hit=1, protocols=("pair", "real_fake"),
                              catch_per_hit=0, gold_per_hit=1)
    cls = {t.video_id: t.class_name for t in study.trials}
    checks = [t for t in study.trials if t.role in ("gold", "catch")]
    assert checks
    for t in checks:
        other = [s.split(":", 1)[1] for s in (t.left_sound, t.right_sound) if s.startswith("other:")]
        if t.check == "misaligned":
            assert t.role == "gold" and all(cls[u] == t.class_name for u in other)
        if other and cls[other[0]] != t.class_name:
            assert (t.check, t.role) == ("other_class", "catch"), t
    assert not any(t.check == "misaligned" for t in checks)  # none can be same-class here
    # The golds asked for became labelled cross-class catches, one per HIT.
    assert all(sum(t.check == "other_class" for t in _checks(study, h)) == 1 for h in study.hits)


def test_every_check_is_labelled_from_the_vocabulary(few, tmp_path):
    from mturk.vocabulary import CHECKS, ROLES

    study = build_small_study(few, tmp_path / "s", trials_per_hit=2)
    for t in study.trials:
        assert t.role in ROLES
        if t.role in ("gold", "catch", "practice"):
            assert t.check in CHECKS, t
            # The label says what the media really is.
            sounds = {t.left_sound, t.right_sound} - {""}
            if t.check == "silent":
                assert "silent" in sounds
            elif t.check in ("other_class", "misaligned"):
                assert any(s.startswith("other:") for s in sounds)
            elif t.check == "identical":
                assert t.left_clip == t.right_clip and t.left_media != t.right_media
        else:
            assert t.check == ""
    # Real-or-fake with a single class still gets a catch: a silent clip is never the real sound.
    single = make_manifests(tmp_path / "single", n_videos=4, classes=("dog",))
    s = build_small_study(single, tmp_path / "t", protocols=("real_fake",), trials_per_hit=2, gold_per_hit=0)
    assert all(any(c.check == "silent" and c.truth == "fake" for c in _checks(s, h)) for h in s.hits)

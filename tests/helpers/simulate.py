"""A small hand-built study for the simulated-rater tests: two HITs (a pair HIT with a main, a catch
and a gold trial; a real-or-fake HIT) over systems real, regnet and worse, and the per-clip objective
metrics that rank them (real > regnet > worse). Holds no tests itself."""

from __future__ import annotations

import pandas as pd

from mturk.study import HitSpec, Qualifications, Study, Trial

METRICS = pd.DataFrame([
    {"system": "real", "video_id": "v1", "mel_l2_x100": 0.0, "onset_precision": 1.0, "onset_recall": 1.0,
     "onset_f1": 1.0, "envelope_corr": 1.0},
    {"system": "regnet", "video_id": "v1", "mel_l2_x100": 2.0, "onset_precision": 0.9, "onset_recall": 0.9,
     "onset_f1": 0.9, "envelope_corr": 0.8},
    {"system": "worse", "video_id": "v1", "mel_l2_x100": 6.0, "onset_precision": 0.1, "onset_recall": 0.1,
     "onset_f1": 0.1, "envelope_corr": 0.0},
])


def _trial(tid, kind, question, role, left, right="", truth="", left_sound="own", right_sound="",
           clip_dir=None):
    clip = (lambda s: str(clip_dir / s / "v1.wav")) if clip_dir else (lambda s: f"{s}/v1.mp4")
    return Trial(trial_id=tid, kind=kind, question=question, role=role, video_id="v1", class_name="dog",
                 left_system=left, left_clip=clip(left), left_media=f"m_{tid}_l.mp4",
                 right_system=right, right_clip=clip(right) if right else "",
                 right_media=f"m_{tid}_r.mp4" if right else "", left_sound=left_sound,
                 right_sound=right_sound or ("own" if right else ""), truth=truth)


def make_study(clip_dir=None) -> Study:
    c = {"clip_dir": clip_dir}
    trials = [_trial("pr-1", "pair", "missing", "main", "regnet", "worse", **c),
              _trial("pr-2", "pair", "redundant", "main", "worse", "regnet", **c),
              _trial("ck-1", "pair", "missing", "catch", "regnet", "regnet", **c),
              _trial("gd-1", "pair", "mismatched", "gold", "real", "real", truth="left", right_sound="other:v2", **c),
              _trial("rf-1", "real_fake", "real", "main", "real", **c),
              _trial("rf-2", "real_fake", "real", "main", "worse", **c)]
    hits = [HitSpec("h1", "pair", ["pr-1", "pr-2", "ck-1", "gd-1"]), HitSpec("h2", "real_fake", ["rf-1", "rf-2"])]
    return Study(name="sim", uid="u", seed=0, systems=["real", "regnet", "worse"], real_system="real",
                 protocols=["pair", "real_fake"], questions=["missing", "redundant", "mismatched"],
                 title="t", description="d", keywords="k", reward="0.10", max_assignments=3,
                 assignment_duration_s=600, lifetime_s=3600, auto_approval_delay_s=3600, trials_per_hit=2,
                 qualifications=Qualifications(use_system=False), hits=hits, trials=trials)

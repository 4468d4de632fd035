"""Trials made by hand for tests of what reads them (the simulated raters' decisions)."""

from __future__ import annotations

from mturk.study import Trial


def make_trial(trial_id: str, kind: str, question: str, role: str, video_id: str, left_system: str,
               right_system: str = "", **kw) -> Trial:
    """A `mturk.study.Trial` with the fields a rater reads; clips and media left empty."""
    return Trial(trial_id=trial_id, kind=kind, question=question, role=role, video_id=video_id, class_name="",
                 left_system=left_system, left_clip="", left_media="", right_system=right_system, **kw)

"""Where the simulated raters take the clip length from: the study's recorded one first; the first
real clip's length (or the metrics table's column) only for a study written before it was recorded."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import soundfile as sf

from mturk.simulate import sources
from regnet.config import DataConfig
from regnet.metrics.evaluate import EvaluateOptions, EvaluationResult

from tests.helpers.simulate import METRICS, make_study


def _study_with_real_wav(tmp_path, seconds=1.0):
    for s in ("real", "regnet", "worse"):
        (tmp_path / s).mkdir()
        sf.write(tmp_path / s / "v1.wav", np.zeros(int(22050 * seconds), dtype=np.float32), 22050)
    return make_study(clip_dir=tmp_path)


def _measured_at(monkeypatch) -> dict:
    seen = {}

    def fake(clips, cfg, opts, rows=None):
        seen["clip_seconds"] = cfg.clip_seconds
        return EvaluationResult(METRICS.copy(), pd.DataFrame())

    monkeypatch.setattr(sources, "evaluate_clips", fake)
    return seen


def test_metrics_from_study_take_the_recorded_length_not_the_real_wavs(tmp_path, monkeypatch):
    seen = _measured_at(monkeypatch)
    study = _study_with_real_wav(tmp_path, seconds=1.0)
    study.clip_seconds = 0.5  # recorded by build-study; the real wav says 1 s
    _, seconds = sources.metrics_from_study(study, DataConfig(), EvaluateOptions(), None, infer_length=True)
    assert seconds == seen["clip_seconds"] == 0.5
    # A length given on the command line stays.
    _, seconds = sources.metrics_from_study(study, DataConfig(), EvaluateOptions(), None, infer_length=False)
    assert seconds == 10.0


def test_an_old_study_without_a_recorded_length_falls_back_to_the_real_clip(tmp_path, monkeypatch):
    seen = _measured_at(monkeypatch)
    study = _study_with_real_wav(tmp_path, seconds=1.0)
    assert study.clip_seconds is None
    _, seconds = sources.metrics_from_study(study, DataConfig(), EvaluateOptions(), None, infer_length=True)
    assert seconds == seen["clip_seconds"] == 1.0


def test_metrics_table_length_gives_way_to_the_studys(tmp_path):
    p = tmp_path / "objective_clips.csv"
    METRICS.assign(clip_seconds=2.0).to_csv(p, index=False)
    assert sources.metrics_from_table(p)[1] == 2.0  # an old study: the table's column
    assert sources.metrics_from_table(p, recorded=1.5)[1] == 1.5


def test_simulate_raters_with_metrics_uses_the_studys_length(tmp_path):
    from regnet.commands.simulate import _metrics

    p = tmp_path / "objective_clips.csv"
    METRICS.assign(clip_seconds=2.0).to_csv(p, index=False)
    args = argparse.Namespace(metrics=str(p), clips=None, reference="real", manifest=None, config=None,
                              preset=None, overrides=[])
    study = make_study()
    assert _metrics(args, study)[1] == 2.0
    study.clip_seconds = 1.5
    assert _metrics(args, study)[1] == 1.5

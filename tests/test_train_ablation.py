"""`regnet-bench ablate`: the clean-track reference lines up with the features; the verb runs end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regnet.cli import main
from regnet.config import preset
from regnet.data.audio import load_audio
from regnet.data.features import feature_path, load_features
from regnet.data.manifest import read_manifest
from regnet.train.ablation import padded_mel, source_steps


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("abl")
    assert main(["synth", "--out", str(root / "data"), "--n-per-class", "2", "--classes", "strike",
                 "flash", "--seed", "3"]) == 0
    return root


def test_source_steps_finds_the_loop_period():
    cfg = preset("tiny")
    n = cfg.data.n_steps
    base = np.random.default_rng(0).standard_normal((30, 4))
    rgb = np.concatenate([base, base])[:n]
    assert source_steps(rgb, 30 / cfg.data.fps, cfg) == 30
    assert source_steps(np.random.default_rng(1).standard_normal((n, 4)), 2.0, cfg) == n


def test_ablate_runs_and_reference_mel_matches_extract(synth_set, capsys):
    data, runs, res = synth_set / "data", synth_set / "runs", synth_set / "results"
    assert main(["ablate", "--data", str(data), "--out", str(runs), "--results", str(res),
                 "--steps", "2", "--seeds", "2", "--variants", "RegNet,woREG"]) == 0
    assert "| woREG |" in capsys.readouterr().out
    table = pd.read_csv(res / "ablation.csv")
    assert list(table.variant) == ["RegNet", "woREG"] and (table.seeds == 2).all()
    assert np.isfinite(table.l2_clean_mean).all() and (table.l2_clean_mean > 0).all()
    assert "L2 to clean" in (res / "ablation.md").read_text()
    assert np.isfinite(table[["train_code_to_mixed", "train_zero_to_clean"]].to_numpy()).all()
    per_clip = pd.read_csv(runs / "ablation_per_clip.csv")
    assert len(per_clip) == 2 * 2 * 2  # variants x seeds x test clips
    # The reference padding reproduces extract's mel from the video's own (mixed) sound exactly,
    # so the clean track is compared on the same frames, including the looped short videos.
    cfg = preset("small")
    short = [r for r in read_manifest(data / "manifest.csv") if r.duration_s < cfg.data.clip_seconds - 0.1]
    assert short
    for r in short[:2]:
        f = load_features(feature_path(data / "features", r.video_id))
        mel = padded_mel(load_audio(r.video_path, cfg.data.sample_rate, cfg.data.clip_seconds),
                         cfg.data.sample_rate, f.rgb, r.duration_s, cfg)
        assert np.allclose(mel, f.mel, atol=1e-5)


def test_ablate_unknown_variant_is_a_user_error(synth_set, capsys):
    assert main(["ablate", "--data", str(synth_set / "data"), "--variants", "RegNet,bogus",
                 "--out", str(synth_set / "r2"), "--results", str(synth_set / "res2")]) == 2
    assert "--variants: unknown variant 'bogus'" in capsys.readouterr().err

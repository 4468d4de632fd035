"""`evaluate` end to end on files: clips.csv of several systems, a synthetic-style manifest with
clean tracks and event times, the CLI, the embedding plug-in and the skip list."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from regnet.cli import main
from regnet.config import preset
from regnet.errors import UserError
from regnet.data.audio import load_audio
from regnet.metrics.embedding import EmbedderConfig, load_embedder, new_embedder, save_embedder
from regnet.metrics.evaluate import EvaluateOptions, evaluate, write_results

from tests.helpers.bench import bench_clips
from tests.helpers.media import SR


def _value(summary, system, metric, cls="hit"):
    row = summary[(summary.system == system) & (summary["class"] == cls) & (summary.metric == metric)]
    assert len(row) == 1, (system, metric)
    return row.iloc[0]


def test_clean_reference_orders_systems(bench):
    cfg = preset("tiny").data
    res = evaluate(bench_clips(bench, "good", "late", "mute"), cfg, EvaluateOptions(reference="clean"),
                   manifest=bench / "manifest.csv")
    s = res.summary
    assert _value(s, "good", "mel_l2_x100")["mean"] == 0.0
    assert _value(s, "good", "onset_f1")["mean"] == 1.0
    assert _value(s, "late", "onset_f1")["mean"] == 0.0
    assert _value(s, "late", "mel_l2_x100")["mean"] > 0.5
    assert _value(s, "mute", "onset_recall")["mean"] == 0.0
    assert _value(s, "mute", "onset_precision")["n"] == 0  # undefined for every silent clip
    assert set(res.clips["onset_reference"]) == {"events"}
    assert _value(s, "good", "mel_l2_x100")["n"] == 3
    assert not res.skipped


def test_real_reference_from_real_clips_and_audio_onsets(bench):
    cfg = preset("tiny").data
    res = evaluate(bench_clips(bench, "real", "good", "late"), cfg,
                   EvaluateOptions(reference="real", onset_reference="audio"))
    s = res.summary
    assert _value(s, "real", "mel_l2_x100")["mean"] == 0.0
    assert 0.0 < _value(s, "good", "mel_l2_x100")["mean"] < _value(s, "late", "mel_l2_x100")["mean"]
    assert _value(s, "good", "onset_f1")["mean"] > _value(s, "late", "onset_f1")["mean"]
    assert set(res.clips["reference_source"]) == {"real clip"}
    ci = _value(s, "late", "mel_l2_x100")
    assert ci["ci95_low"] < ci["mean"] < ci["ci95_high"]


def test_missing_reference_and_file_are_skipped_not_fatal(bench, tmp_path):
    rows = pd.read_csv(bench / "good" / "clips.csv")
    for col in ("clip_path", "wav_path"):
        rows[col] = [str(bench / "good" / p) for p in rows[col]]
    rows.loc[0, "wav_path"] = str(tmp_path / "gone.wav")
    rows.loc[len(rows)] = ["good", "v9", "hit", str(bench / "good" / "v1.wav"),
                           str(bench / "good" / "v1.wav"), 2.0]
    rows.to_csv(tmp_path / "clips.csv", index=False)
    res = evaluate([tmp_path / "clips.csv"], preset("tiny").data, EvaluateOptions(reference="clean"),
                   manifest=bench / "manifest.csv")
    assert len(res.clips) == 2
    reasons = {s.where: s.reason for s in res.skipped}
    assert "gone.wav" in reasons["good/v1"] and "not found" in reasons["good/v1"]
    assert "not in the manifest" in reasons["good/v9"]
    md = write_results(res, tmp_path / "out")["md"].read_text()
    assert "Skipped 2 clip(s)" in md and "good/v9" in md


def test_cli_writes_tables_and_embedding_metrics(bench, tmp_path, capsys):
    ecfg = EmbedderConfig(n_mels=80, channels=(8,), embed_dim=4, classes=("hit", "other"))
    weights = tmp_path / "embedder.pt"
    save_embedder(weights, new_embedder(ecfg, seed=1), preset("tiny").data)
    assert load_embedder(weights).classes == ("hit", "other")
    out = tmp_path / "results"
    rc = main(["evaluate", "--clips", *map(str, bench_clips(bench, "real", "good", "late")),
               "--manifest", str(bench / "manifest.csv"), "--reference", "clean",
               "--embedding", str(weights), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert str(out / "objective.md") in printed
    summary = pd.read_csv(out / "objective.csv")
    assert set(summary.metric) >= {"mel_l2_x100", "onset_f1", "onset_ap", "envelope_corr",
                                   "kl_posterior", "frechet_distance"}
    assert _value(summary, "good", "kl_posterior")["mean"] == pytest.approx(0.0, abs=1e-9)
    assert _value(summary, "good", "frechet_distance")["mean"] == pytest.approx(0.0, abs=1e-6)
    assert _value(summary, "late", "frechet_distance")["mean"] > 0.0
    md = (out / "objective.md").read_text()
    assert "| good | hit | 3 | 0.000 ± 0.000 |" in md and "FD" in md
    per_clip = pd.read_csv(out / "objective_clips.csv")
    assert len(per_clip) == 9  # clip length (2 s) came from the clips' duration_s
    # without weights the embedding columns are absent and the note says so
    main(["evaluate", "--clips", str(bench / "good" / "clips.csv"), "--manifest",
          str(bench / "manifest.csv"), "--out", str(tmp_path / "r2")])
    assert "skipped: no --embedding" in (tmp_path / "r2" / "objective.md").read_text()


def test_bad_inputs_are_one_line_errors(bench, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torch")
    with pytest.raises(UserError, match="bad.pt"):
        load_embedder(bad)
    rc = main(["evaluate", "--clips", str(bench / "good" / "clips.csv"), "--reference", "clean",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "error: evaluate: no clip could be measured" in err and "Traceback" not in err
    with pytest.raises(UserError, match="--tolerance"):
        EvaluateOptions(tolerance_s=0)


def test_audio_track_of_a_video_file_is_read(bench, tmp_path):
    import imageio_ffmpeg

    mp4 = tmp_path / "v1.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(bench / "good" / "v1.wav"),
                    "-c:a", "aac", "-b:a", "128k", str(mp4)], check=True)
    wav = load_audio(mp4, SR)
    ref = load_audio(bench / "good" / "v1.wav", SR)
    assert abs(len(wav) - len(ref)) < 0.1 * SR  # AAC adds priming samples at most


def _recorded(bench, tmp_path, system, seconds):
    """The bench system's clips.csv with clip_seconds etc. recorded (its duration_s say 2 s)."""
    df = pd.read_csv(bench / system / "clips.csv")
    for k in ("clip_path", "wav_path"):
        df[k] = [str(bench / system / v) for v in df[k]]
    df["clip_seconds"], df["sample_rate"], df["feature_config_hash"] = seconds, SR, "h"
    p = tmp_path / system / "clips.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(p, index=False)
    return p


def test_clip_length_is_the_recorded_one_not_the_duration_median(bench, tmp_path):
    from regnet.config import DataConfig
    from regnet.metrics.evaluate import clip_seconds_of, data_config_for_clips

    # An old clips.csv (no clip_seconds column): the median of its duration_s, as before.
    assert clip_seconds_of(bench_clips(bench, "good")) == 2.0
    assert data_config_for_clips(DataConfig(), bench_clips(bench, "good"), explicit=False).clip_seconds == 2.0
    # A recorded clip length wins over a duration_s median that disagrees with it.
    good, real = _recorded(bench, tmp_path, "good", 1.5), _recorded(bench, tmp_path, "real", 1.5)
    assert clip_seconds_of([good, real]) == 1.5
    cfg = data_config_for_clips(DataConfig(), [good, real], explicit=False)
    assert cfg.clip_seconds == 1.5
    res = evaluate([good, real], cfg, EvaluateOptions())
    assert set(res.clips["clip_seconds"]) == {1.5}
    # Given explicitly, the config's length stays.
    assert data_config_for_clips(DataConfig(), [good], explicit=True).clip_seconds == 10.0


def test_clips_recording_different_lengths_are_one_line_error(bench, tmp_path):
    from regnet.config import DataConfig
    from regnet.metrics.evaluate import data_config_for_clips

    a, b = _recorded(bench, tmp_path / "a", "good", 1.5), _recorded(bench, tmp_path / "b", "late", 2.0)
    with pytest.raises(UserError) as e:
        data_config_for_clips(DataConfig(), [a, b], explicit=False)
    assert "\n" not in str(e.value) and str(a) in str(e.value) and str(b) in str(e.value)
    # One length given on the command line measures them both at it.
    assert data_config_for_clips(DataConfig(), [a, b], explicit=True).clip_seconds == 10.0

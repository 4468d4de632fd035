"""clips.csv records the data config its clips were made with: clip_seconds, sample_rate and the
feature-config hash; older files without these columns still load."""

from __future__ import annotations

import pandas as pd
import pytest

from regnet.clips import ClipRecord, agreed_settings, clip_settings, read_clips, write_clips
from regnet.config import DataConfig, seconds_to_samples
from regnet.errors import UserError


def _write(path, system="regnet", seconds=2.0, sr=22050, fhash="abc123"):
    wav = path.parent / "v.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    wav.write_bytes(b"")
    write_clips(path, [ClipRecord(system, "v", "all", wav, wav, duration_s=1.9, clip_seconds=seconds,
                                  sample_rate=sr, feature_config_hash=fhash)])
    return path


def test_settings_round_trip_through_clips_csv(tmp_path):
    p = _write(tmp_path / "clips.csv")
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    assert {"clip_seconds", "sample_rate", "feature_config_hash"} <= set(df.columns)
    (c,) = read_clips(p, check_files=False)
    assert (c.clip_seconds, c.sample_rate, c.feature_config_hash) == (2.0, 22050, "abc123")
    s = clip_settings(p)
    assert (s.clip_seconds, s.sample_rate, s.feature_config_hash) == (2.0, 22050, "abc123")


def test_old_clips_csv_without_the_columns_still_loads(tmp_path):
    p = tmp_path / "clips.csv"
    pd.DataFrame([{"system": "x", "video_id": "v", "clip_path": "v.wav", "duration_s": 1.5}]).to_csv(p, index=False)
    (c,) = read_clips(p, check_files=False)
    assert c.clip_seconds is None and c.sample_rate is None and c.feature_config_hash == ""
    s = clip_settings(p)
    assert s.clip_seconds is None and s.sample_rate is None and s.feature_config_hash == ""


def test_files_recording_different_lengths_are_refused_in_one_line_naming_both(tmp_path):
    a = _write(tmp_path / "a" / "clips.csv", seconds=2.0)
    b = _write(tmp_path / "b" / "clips.csv", "other", seconds=10.0, fhash="zzz")
    old = tmp_path / "old" / "clips.csv"
    old.parent.mkdir()
    pd.DataFrame([{"system": "o", "video_id": "v", "clip_path": "v.wav"}]).to_csv(old, index=False)
    # Another system's hash may differ; an old file records nothing and is no disagreement.
    s = agreed_settings([a, old, _write(tmp_path / "c" / "clips.csv", "c", fhash="other")])
    assert (s.clip_seconds, s.sample_rate) == (2.0, 22050)
    with pytest.raises(UserError) as e:
        agreed_settings([a, old, b], why="one length please")
    msg = str(e.value)
    assert "\n" not in msg and str(a) in msg and str(b) in msg and "one length please" in msg
    c = _write(tmp_path / "d" / "clips.csv", "d", sr=16000)
    with pytest.raises(UserError, match="sample_rate"):
        agreed_settings([a, c])


def test_clip_samples_is_the_clip_length_in_samples_not_num_samples():
    d = DataConfig()
    # 10 s at 22,050 Hz: the clip is 220,500 samples; the model's mel covers 860 * 256 = 220,160.
    assert d.clip_samples == seconds_to_samples(10.0, 22050) == 220500
    assert d.num_samples == 220160
    d.clip_seconds = 2.0
    assert d.clip_samples == 44100

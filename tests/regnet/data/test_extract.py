"""Batch extraction: the feature cache, resuming, stale files, bad files in a batch, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from regnet.cli import main
from regnet.data.extract import extract_manifest
from regnet.data.features import feature_path, load_features
from regnet.data.manifest import ManifestRow, write_manifest
from regnet.data.video import write_video
from regnet.errors import UserError

from tests.helpers.media import SR, square_frames, tone


def _row(vid, path, audio=None):
    return ManifestRow(video_id=vid, class_name="sq", split="train", video_path=path, audio_path=audio,
                       duration_s=1.0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("vids")
    good = [write_video(d / f"v{i}.mp4", square_frames(30, speed=1 + i), 30, tone(1.0, freq=300 + 200 * i), SR)
            for i in range(2)]
    corrupt = d / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01garbage" * 300)
    one = write_video(d / "one.mp4", square_frames(1), 30, tone(0.5), SR)
    silent = write_video(d / "silent.mp4", square_frames(24), 24)
    return {"good": good, "corrupt": corrupt, "one": one, "silent": silent, "dir": d}


def _fast(cfg):
    cfg.data.flow_size = (64, 48)
    return cfg


def test_cache_is_resumable_and_config_changes_invalidate_it(tmp_path, videos, tiny_config):
    cfg = _fast(tiny_config)
    rows = [_row(f"v{i}", p) for i, p in enumerate(videos["good"])]
    cache = tmp_path / "cache"
    r1 = extract_manifest(rows, cache, cfg.data)
    assert sorted(r1.written) == ["v0", "v1"] and not r1.failed
    f = load_features(feature_path(cache, "v0"), expected_hash=cfg.data.cache_hash())
    assert f.rgb.shape == (cfg.data.n_steps, 1024) and f.class_name == "sq" and f.has_audio
    mtime = feature_path(cache, "v0").stat().st_mtime_ns
    r2 = extract_manifest(rows, cache, cfg.data)
    assert sorted(r2.fresh) == ["v0", "v1"] and not r2.written
    assert feature_path(cache, "v0").stat().st_mtime_ns == mtime  # not rewritten
    old_hash = cfg.data.cache_hash()
    cfg.data.n_mels = 64  # a changed config: the cached files are stale
    assert cfg.data.cache_hash() != old_hash
    with pytest.raises(UserError, match="made with another config"):
        load_features(feature_path(cache, "v0"), expected_hash=cfg.data.cache_hash())
    r3 = extract_manifest(rows, cache, cfg.data)
    assert sorted(r3.stale) == ["v0", "v1"] and sorted(r3.written) == ["v0", "v1"]
    g = load_features(feature_path(cache, "v0"), expected_hash=cfg.data.cache_hash())
    assert g.mel.shape == (64, cfg.data.mel_frames)
    r4 = extract_manifest(rows, cache, cfg.data, force=True)
    assert sorted(r4.written) == ["v0", "v1"]


def test_batch_goes_on_past_bad_files(tmp_path, videos, tiny_config, caplog):
    cfg = _fast(tiny_config)
    rows = [_row("good", videos["good"][0]), _row("corrupt", videos["corrupt"]),
            _row("one", videos["one"]), _row("silent", videos["silent"]),
            _row("gone", videos["dir"] / "gone.mp4")]
    report = extract_manifest(rows, tmp_path / "cache", cfg.data)
    assert sorted(report.written) == ["good", "silent"]
    reasons = dict(report.failed)
    assert set(reasons) == {"corrupt", "one", "gone"}
    assert "corrupt.mp4: not a readable video/audio file" in reasons["corrupt"]
    assert "one.mp4: only one video frame" in reasons["one"]
    assert "gone.mp4: file not found" in reasons["gone"]
    silent = load_features(feature_path(tmp_path / "cache", "silent"))
    assert silent.has_audio is False and not silent.mel.any()
    assert "skipped 3 of 5" in caplog.text


def test_extract_cli_with_workers(tmp_path, videos, capsys):
    rows = [_row(f"v{i}", p) for i, p in enumerate(videos["good"])] + [_row("bad", videos["corrupt"])]
    write_manifest(tmp_path / "manifest.csv", rows)
    argv = ["extract", "--manifest", str(tmp_path / "manifest.csv"), "--out", str(tmp_path / "c"),
            "--preset", "tiny", "--set", "data.flow_size=[64,48]", "--workers", "2"]
    assert main(argv) == 1  # one video skipped
    cap = capsys.readouterr()
    assert "2 extracted" in cap.out and "1 skipped" in cap.out
    # The CLI's log (stderr) lists the skipped file and why, after the progress.
    assert "skipped 1 of 3" in cap.err and "bad: " in cap.err and "corrupt.mp4" in cap.err
    a = load_features(tmp_path / "c" / "v0.npz")
    b = load_features(tmp_path / "c" / "v1.npz")
    assert a.rgb.shape == (43, 1024) and not np.array_equal(a.flow, b.flow)
    # Second run: nothing to do, the bad file is still reported.
    assert main(argv[:-2]) == 1
    assert "2 already fresh" in capsys.readouterr().out


def test_extract_cli_user_errors(tmp_path, capsys):
    assert main(["extract", "--manifest", str(tmp_path / "none.csv"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'none.csv'}: manifest not found"
    (tmp_path / "m.csv").write_text("video_id,video_path\nx,x.mp4\n")
    assert main(["extract", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "c"),
                 "--set", "data.backbone=resnet"]) == 2
    assert "data.backbone_weights" in capsys.readouterr().err

"""`generate` over a whole video of any length: windows of the model's clip length, joined in the
mel domain, output as long as the source (tiny model, 2 s window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from regnet.clips import read_clips
from regnet.cli import main
from regnet.config import preset
from regnet.data.video import probe, write_video
from regnet.generation.windows import join_mels, plan_windows
from regnet.models import RegNet
from regnet.train.checkpoint import save_checkpoint

FPS_TINY = 21.5


def _checkpoint(path: Path) -> Path:
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = RegNet(cfg)
    with torch.no_grad():
        model.state_dict()["postnet.convolutions.4.1.bias"].fill_(0.6)
    save_checkpoint(path, cfg, model, None, class_name="all")
    return path


def _flash_video(path: Path, seconds: float, fps: float, events_s: list[float], size: int = 48) -> Path:
    """A dark square that flashes white for a few frames at each event time (visible events)."""
    n = int(round(seconds * fps))
    frames = np.full((n, size, size, 3), 30, dtype=np.uint8)
    for t in events_s:
        k = int(round(t * fps))
        frames[k:k + 3, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 240
    return write_video(path, frames, fps)


# -- the window plan and the join ------------------------------------------------------------------
def test_plan_covers_the_video_with_overlapping_windows():
    w, o = 43, 11
    for n in (1, 20, 43, 44, 80, 538, 1000):
        plan = plan_windows(n, w, o)
        assert plan[0].start == 0
        if n <= w:
            assert len(plan) == 1
            continue
        assert plan[-1].start + w == n  # the last window ends where the video does
        for a, b in zip(plan, plan[1:]):
            assert b.start > a.start and a.start + w - b.start >= o  # overlap at least o steps
        covered = np.zeros(n, bool)
        for p in plan:
            covered[p.start:p.start + w] = True
        assert covered.all()


def test_join_equals_each_window_outside_the_overlaps_and_blends_inside():
    rng = np.random.default_rng(0)
    w, o, n = 43, 11, 200
    plan = plan_windows(n, w, o)
    mels = [rng.random((80, 4 * w)).astype(np.float32) for _ in plan]
    out = join_mels(mels, plan, frames_per_step=4, total_steps=n)
    assert out.shape == (80, 4 * n)
    weight_one = np.zeros(4 * n, int)
    for p, m in zip(plan, mels):
        lo, hi = 4 * p.start, 4 * (p.start + w)
        weight_one[lo:hi] += 1
    for p, m in zip(plan, mels):
        lo = 4 * p.start
        core = np.where(weight_one[lo:lo + 4 * w] == 1)[0]
        np.testing.assert_array_equal(out[:, lo + core], m[:, core])
    # In overlaps the output is a convex blend: between the smallest and largest window value.
    lo_env = np.full(out.shape, np.inf, np.float32)
    hi_env = np.full(out.shape, -np.inf, np.float32)
    for p, m in zip(plan, mels):
        sl = slice(4 * p.start, 4 * (p.start + w))
        lo_env[:, sl] = np.minimum(lo_env[:, sl], m)
        hi_env[:, sl] = np.maximum(hi_env[:, sl], m)
    assert np.all(out >= lo_env - 1e-6) and np.all(out <= hi_env + 1e-6)


# -- the whole path ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    events = [1.0, 3.3, 6.1, 9.0, 12.4, 15.2, 18.8, 21.5, 24.0]
    _flash_video(root / "videos" / "long25.mp4", 25.0, 25.0, events)
    ck = _checkpoint(root / "regnet.pt")
    rc = main(["-q", "generate", "--checkpoint", str(ck), "--videos", str(root / "videos"),
               "--out", str(root / "out"), "--features", str(root / "features")])
    assert rc == 0
    return root, ck


def test_a_25_s_video_gives_25_s_of_sound_and_the_windows_are_recorded(long_run):
    root, _ = long_run
    (clip,) = read_clips(root / "out" / "clips.csv")
    src = probe(root / "videos" / "long25.mp4")
    wav, sr = sf.read(clip.wav_path)
    assert abs(len(wav) / sr - src.duration_s) <= 1.0 / src.fps
    info = probe(clip.clip_path)
    assert abs(info.duration_s - src.duration_s) <= 1.0 / src.fps + 0.03  # aac frame granularity
    spans = [tuple(float(x) for x in s.split("-")) for s in clip.windows.split(";")]
    assert len(spans) > 12 and spans[0][0] == 0.0
    assert all(abs((b - a) - 2.0) < 1e-6 for a, b in spans)
    assert abs(spans[-1][1] - src.duration_s) <= 1.0 / FPS_TINY + 1e-6


def test_whole_video_mel_matches_the_single_window_model_and_seams_are_smooth(long_run):
    from regnet.generation.generate import whole_video_mel
    from regnet.data.features import feature_path, load_features
    from regnet.train.checkpoint import load_regnet

    root, ck = long_run
    model, cfg, _ = load_regnet(ck, torch.device("cpu"))
    f = load_features(feature_path(root / "features", "long25.whole"))
    visual = f.visual
    w = cfg.data.n_steps
    plan = plan_windows(len(visual), w, overlap_steps=w // 4)
    z = model.sample_z(1, torch.device("cpu"), generator=torch.Generator().manual_seed(0), test=True)
    joined = whole_video_mel(model, visual, plan, z[0], batch_size=4)
    assert joined.shape[1] == 4 * len(visual)
    diffs_within = []
    cover = np.zeros(joined.shape[1], int)
    for p in plan:
        cover[4 * p.start: 4 * (p.start + w)] += 1
    for p in plan:
        x = torch.from_numpy(visual[p.start:p.start + w][None]).float()
        model.eval()
        with torch.no_grad():
            single = model(x, None, z=z)[1].clamp(0, 1)[0].numpy()
        diffs_within.append(np.abs(np.diff(single, axis=1)).max())
        lo = 4 * p.start
        core = np.where(cover[lo:lo + 4 * w] == 1)[0]
        # Where one window alone covers the video, the output IS that window's: every event there
        # sits exactly where the single-window model puts it.
        np.testing.assert_allclose(joined[:, lo + core], single[:, core], atol=1e-6)
    seam = np.abs(np.diff(joined, axis=1)).max(axis=0)[cover[:-1] + cover[1:] > 2]
    assert seam.max() <= max(diffs_within) + 1e-6


def test_max_seconds_keeps_the_first_window_only(long_run, tmp_path):
    root, ck = long_run
    rc = main(["-q", "generate", "--checkpoint", str(ck), "--videos", str(root / "videos"),
               "--out", str(tmp_path / "first"), "--max-seconds", "2"])
    assert rc == 0
    (clip,) = read_clips(tmp_path / "first" / "clips.csv")
    wav, sr = sf.read(clip.wav_path)
    assert abs(len(wav) / sr - 2.0) <= 1.0 / 25.0
    assert clip.windows == "0.000-2.000"


@pytest.mark.parametrize("seconds,fps", [(0.5, 25.0), (20.3, 30000 / 1001)])
def test_output_length_equals_the_video_for_short_and_odd_rate_videos(tmp_path, seconds, fps):
    _flash_video(tmp_path / "videos" / "v.mp4", seconds, fps, [0.2])
    ck = _checkpoint(tmp_path / "regnet.pt")
    assert main(["-q", "generate", "--checkpoint", str(ck), "--videos", str(tmp_path / "videos"),
                 "--out", str(tmp_path / "out")]) == 0
    (clip,) = read_clips(tmp_path / "out" / "clips.csv")
    src = probe(tmp_path / "videos" / "v.mp4")
    wav, sr = sf.read(clip.wav_path)
    assert abs(len(wav) / sr - src.duration_s) <= 1.0 / src.fps
    assert abs(probe(clip.clip_path).duration_s - src.duration_s) <= 1.0 / src.fps + 0.03


def test_a_text_file_as_checkpoint_says_it_is_not_a_pytorch_checkpoint(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("these are my notes, not weights\n")
    _flash_video(tmp_path / "videos" / "v.mp4", 1.0, 25.0, [0.2])
    rc = main(["generate", "--checkpoint", str(bad), "--videos", str(tmp_path / "videos"),
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "not a PyTorch checkpoint" in err[0] and "Weights only" not in err[0] and str(bad) in err[0]


def test_next_batch_features_are_prepared_while_the_model_runs(tmp_path, monkeypatch):
    import threading

    import regnet.generation.generate as gen

    for k in range(2):
        _flash_video(tmp_path / "videos" / f"v{k}.mp4", 1.0, 25.0, [0.2])
    ck = _checkpoint(tmp_path / "regnet.pt")
    second_started = threading.Event()
    seen = {}
    real_prepare, real_mels = gen._prepare, gen._regnet_mels

    def prepare(feats, it, *a, **kw):
        if it.video_id == "v1":
            second_started.set()
        return real_prepare(feats, it, *a, **kw)

    def mels(model, batch, z, bs):
        if batch[0].item.video_id == "v0":
            # Sequential stages would only prepare v1 after this returns: the wait would time out.
            seen["overlap"] = second_started.wait(timeout=20)
        return real_mels(model, batch, z, bs)

    monkeypatch.setattr(gen, "_prepare", prepare)
    monkeypatch.setattr(gen, "_regnet_mels", mels)
    report = gen.generate_clips(ck, tmp_path / "videos", tmp_path / "out", batch_size=1, prefetch=True)
    assert seen["overlap"] and sorted(report.generated) == ["v0", "v1"]
    assert set(report.stage_seconds) >= {"features", "regnet", "vocoder", "write"} and report.wall_seconds > 0

"""Loudness (issue 16, design 2): build-study measures every clip (ITU-R BS.1770, pyloudnorm),
normalises the stimuli to a stated target under a true-peak limit, records before/after per clip
and per system in study.json, and refuses silent or clipped clips unless told otherwise."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mturk.loudness import LoudnessOptions, measure, measure_samples
from mturk.media import ffmpeg_exe
from mturk.study import load_study
from mturk.trials import StudyOptions, build_study
from regnet.cli import main
from regnet.errors import UserError

COLORS = ["red", "green", "blue", "yellow"]


def clip(path: Path, color: str, audio: str | None, seconds: float = 1.0) -> Path:
    """A 64x48 clip; ``audio``: an ffmpeg lavfi audio source + filters, or None for no audio track."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", f"color=c={color}:s=64x48:d={seconds}:r=10"]
    if audio is not None:
        cmd += ["-f", "lavfi", "-i", audio, "-c:a", "aac", "-b:a", "128k"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-t", str(seconds), str(path)]
    subprocess.run(cmd, check=True)
    return path


def sine(freq: int, gain_db: float, seconds: float = 1.0) -> str:
    return f"sine=f={freq}:d={seconds},volume={gain_db}dB"


def manifests(root: Path, audio_of: dict[str, callable], n_videos: int = 4) -> list[Path]:
    out = []
    for s, audio in audio_of.items():
        rows = []
        for i in range(n_videos):
            clip(root / s / f"v{i}.mp4", COLORS[i % 4], audio(i))
            rows.append({"system": s, "video_id": f"v{i}", "class": ("dog", "drum")[i % 2],
                         "clip_path": f"v{i}.mp4", "wav_path": f"v{i}.mp4"})
        p = root / s / "clips.csv"
        pd.DataFrame(rows).to_csv(p, index=False)
        out.append(p)
    return out


def build(clips, out, **loud):
    return build_study(clips, out, StudyOptions(seed=1, trials_per_hit=2, name="loud", protocols=("pair", "real_fake"),
                                                questions=("missing",), loudness=LoudnessOptions(**loud)))


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """Generated sound 30 dB quieter than the real one, a baseline 6 dB louder: as in the smoke run."""
    root = tmp_path_factory.mktemp("uneven")
    return manifests(root, {"regnet": lambda i: sine(440 + 20 * i, -30), "baseline": lambda i: sine(660 + 20 * i, 6),
                            "real": lambda i: sine(880 + 20 * i, 0)})


def test_stimuli_are_normalised_to_the_target(uneven, tmp_path):
    study = build(uneven, tmp_path / "s")
    doc = json.loads((tmp_path / "s/study.json").read_text())
    lo = doc["loudness"]
    assert lo["target_lufs"] == -23.0 and lo["peak_limit_dbtp"] == -1.0 and "BS.1770" in lo["method"]
    before = {s: d["lufs_before_mean"] for s, d in lo["systems"].items()}
    assert before["real"] - before["regnet"] > 25 and before["baseline"] - before["real"] > 4
    for s, d in lo["systems"].items():
        assert d["clips"] == 4
        assert abs(d["lufs_after_mean"] - (-23.0)) < 1.0, (s, d)
    assert len(lo["clips"]) == 12 and all(c["status"] == "ok" for c in lo["clips"])
    # What a rater receives is at the target: measure the media files themselves.
    for t in study.trials:
        if t.role == "main":
            for m in t.media_names:
                got = measure(study.media_path(m))
                assert abs(got.lufs + 23.0) < 1.0 and got.true_peak_dbtp <= -0.5, (m, got)


def test_cli_target_flag_and_measure_only(uneven, tmp_path, capsys):
    assert main(["build-study", "--clips", *map(str, uneven), "--out", str(tmp_path / "a"), "--protocols", "pair",
                 "--questions", "missing", "--trials-per-hit", "2", "--loudness-target", "-30", "--no-screening"]) == 0
    lo = json.loads((tmp_path / "a/study.json").read_text())["loudness"]
    assert all(abs(d["lufs_after_mean"] + 30) < 1.0 for d in lo["systems"].values())
    assert main(["build-study", "--clips", *map(str, uneven), "--out", str(tmp_path / "b"), "--protocols", "pair",
                 "--questions", "missing", "--trials-per-hit", "2", "--loudness-target", "none", "--no-screening"]) == 0
    lo = json.loads((tmp_path / "b/study.json").read_text())["loudness"]
    assert lo["normalised"] is False and lo["systems"]["regnet"]["lufs_after_mean"] < -45
    capsys.readouterr()
    assert main(["build-study", "--clips", *map(str, uneven), "--out", str(tmp_path / "c"),
                 "--loudness-target", "loud"]) != 0
    assert "--loudness-target: 'loud' is not a level" in capsys.readouterr().err


def test_true_peak_limit_holds_and_is_reported(tmp_path):
    # Sparse clicks: low loudness, high peaks. Reaching -23 LUFS would push the peaks over 0 dBFS.
    clicks = lambda i: "aevalsrc='if(lt(mod(t\\,0.25)\\,0.002)\\,0.5\\,0)':d=1"  # noqa: E731
    clips = manifests(tmp_path / "c", {"regnet": clicks, "real": lambda i: sine(880, 0)})
    build(clips, tmp_path / "s")
    lo = json.loads((tmp_path / "s/study.json").read_text())["loudness"]
    limited = [c for c in lo["clips"] if c["system"] == "regnet"]
    assert all(c["status"] == "peak-limited" for c in limited)
    for c in limited:
        assert c["lufs_after"] < -23.5 and c["true_peak_after_dbtp"] <= -0.5, c
    assert lo["systems"]["regnet"]["peak_limited"] == 4


def test_silent_and_clipped_clips_are_refused_with_the_clip_named(tmp_path, caplog):
    ok = {"real": lambda i: sine(880, 0)}
    silent = manifests(tmp_path / "silent", {**ok, "regnet": lambda i: sine(440, -120)})
    with pytest.raises(UserError, match=r"regnet/v\d\.mp4 \(system regnet, video v\d\): silent clip.*--allow-silent"):
        build(silent, tmp_path / "s1")
    none = manifests(tmp_path / "none", {**ok, "regnet": lambda i: None})
    with pytest.raises(UserError, match="no audio track"):
        build(none, tmp_path / "s2")
    clipped = manifests(tmp_path / "clip", {**ok, "regnet": lambda i: sine(440, 30) + ",aformat=sample_fmts=s16"})
    with pytest.raises(UserError, match=r"system regnet, video v\d\): clipped clip.*--allow-clipped"):
        build(clipped, tmp_path / "s3")
    # With the flags the study is built, loudly.
    with caplog.at_level(logging.WARNING, logger="mturk.loudness"):
        build(silent, tmp_path / "s4", allow_silent=True)
        build(clipped, tmp_path / "s5", allow_clipped=True)
    assert sum("!!! LOUDNESS" in r.getMessage() for r in caplog.records) >= 8
    lo = json.loads((tmp_path / "s4/study.json").read_text())["loudness"]
    assert lo["systems"]["regnet"]["silent"] == 4
    assert load_study(tmp_path / "s5").loudness["systems"]["regnet"]["clipped"] == 4


def test_measurement_matches_bs1770_reference_levels():
    """A full-scale 1 kHz sine reads -3.01 LUFS on one channel (BS.1770's calibration); a clip
    shorter than a gating block is measured over its repetition."""
    sr = 48000
    t = np.arange(sr * 2) / sr
    m = measure_samples(np.sin(2 * np.pi * 997 * t) * 10 ** (-20 / 20), sr)
    assert abs(m.lufs - (-23.0)) < 0.1
    short = measure_samples(np.sin(2 * np.pi * 997 * t[: sr // 10]) * 0.1, sr)
    assert abs(short.lufs - (-23.0)) < 0.2 and abs(short.true_peak_dbtp + 20) < 0.1
